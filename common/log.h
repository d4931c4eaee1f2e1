// Leveled logging to stderr: "[tipcap] warn: ...". The level comes from TIPCAP_LOG
// (error|warn|info|debug, default info) or log_set_level().
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN = 1, LOG_LEVEL_INFO = 2, LOG_LEVEL_DEBUG = 3 } LogLevel;

void log_set_level(LogLevel level);
LogLevel log_get_level(void);
__attribute__((format(printf, 2, 3))) void log_msg(LogLevel level, const char* fmt, ...);

#define LOG_ERROR(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_INFO(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
