// Code point ranges of Unicode letters (\p{L}), numbers (\p{N}) and white space (\s) as GPT-2's
// pre-tokeniser (Python `regex`) defines them; generated into data/unicode_tables.c.
#pragma once
#include <stdint.h>

typedef struct { uint32_t lo, hi; } UnicodeRange;  // inclusive

extern const UnicodeRange unicode_letters[];
extern const int unicode_letters_count;
extern const UnicodeRange unicode_numbers[];
extern const int unicode_numbers_count;
extern const UnicodeRange unicode_spaces[];
extern const int unicode_spaces_count;
