#include "common/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int cli_parse_int(const char* opt, const char* s, long long lo, long long hi, long long* out, char* err, size_t err_size) {
    char* end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    if (end == s || *end || errno) {
        snprintf(err, err_size, "%s: '%s' is not an integer", opt, s);
        return -1;
    }
    if (*out < lo || *out > hi) {
        snprintf(err, err_size, "%s: %s is outside [%lld, %lld]", opt, s, lo, hi);
        return -1;
    }
    return 0;
}

int cli_parse_double(const char* opt, const char* s, double* out, char* err, size_t err_size) {
    char* end;
    errno = 0;
    *out = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(*out)) {
        snprintf(err, err_size, "%s: '%s' is not a number", opt, s);
        return -1;
    }
    return 0;
}
