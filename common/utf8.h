// UTF-8 validity, shared by the configs (common/config.c) and the data pipeline (data/).
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Offset of the first byte that is not part of valid UTF-8 (overlongs, surrogates and code
// points above U+10FFFF are invalid), or -1 if the whole buffer is valid.
long utf8_first_invalid(const char* s, size_t len);

#ifdef __cplusplus
}
#endif
