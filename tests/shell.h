// Shell commands and files for the tests that run the programs as a user does.
#pragma once
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "common/check.h"

// Runs a shell command; returns its exit status. stdout and stderr go to `log` (appended).
static inline int sh(const char* log, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int sh(const char* log, const char* fmt, ...) {
    char cmd[4096], full[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "(%s) >> %s 2>&1", cmd, log);
    int rc = system(full);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// The file's contents, or "" when it does not exist.
static inline char* slurp(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return strdupCheck("");
    fclose(f);
    return readFileCheck(path, NULL);
}
