#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int current_level = -1;  // -1: not yet read from the environment

static LogLevel level_from_env(void) {
    const char* s = getenv("TIPCAP_LOG");
    if (!s) return LOG_LEVEL_INFO;
    if (!strcmp(s, "error")) return LOG_LEVEL_ERROR;
    if (!strcmp(s, "warn")) return LOG_LEVEL_WARN;
    if (!strcmp(s, "debug")) return LOG_LEVEL_DEBUG;
    return LOG_LEVEL_INFO;
}

void log_set_level(LogLevel level) { current_level = (int)level; }

LogLevel log_get_level(void) {
    if (current_level < 0) current_level = (int)level_from_env();
    return (LogLevel)current_level;
}

void log_msg(LogLevel level, const char* fmt, ...) {
    static const char* names[] = {"error", "warn", "info", "debug"};
    if (level > log_get_level()) return;
    fflush(stdout);
    fprintf(stderr, "[tipcap] %s: ", names[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
