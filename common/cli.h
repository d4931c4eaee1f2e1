// Strict command-line numbers: the whole value is the number (no trailing text, no empty value),
// finite, and for integers in [lo, hi]. One way for every program, so that "--beam abc" or
// "--limit -3" is an error naming the option and the value, never a silent 0.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Return 0, or -1 with "OPT: 'S' is not an integer" / "OPT: S is outside [lo, hi]" /
// "OPT: 'S' is not a number" in err.
int cli_parse_int(const char* opt, const char* s, long long lo, long long hi, long long* out, char* err, size_t err_size);
int cli_parse_double(const char* opt, const char* s, double* out, char* err, size_t err_size);

#ifdef __cplusplus
}
#endif
