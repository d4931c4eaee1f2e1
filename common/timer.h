// Monotonic wall-clock timer in seconds (CLOCK_MONOTONIC), and durations as progress lines show them.
#pragma once
#include <stddef.h>
#include <stdio.h>
#include <time.h>

static inline double timer_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// "HH:MM:SS" (00:00:00 for a negative or absurd duration: an ETA before any rate is known).
static inline void timer_format_hms(double s, char* buf, size_t n) {
    long t = s > 0 && s < 1e9 ? (long)s : 0;
    snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}
