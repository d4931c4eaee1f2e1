// A string -> int64 hash map (open addressing; keys are copied). For the data pipeline's lookups:
// image keys, captions, vocabulary words.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char** keys;       // [cap], NULL when empty
    size_t* key_lens;  // [cap]
    int64_t* values;   // [cap]
    size_t cap, count; // cap is a power of two
} StrMap;

void strmap_init(StrMap* m, size_t expected);
void strmap_free(StrMap* m);
// Inserts key -> value if the key is absent; returns the value now stored under the key.
int64_t strmap_put(StrMap* m, const char* key, size_t len, int64_t value);
// The value of key, or `missing`.
int64_t strmap_get(const StrMap* m, const char* key, size_t len, int64_t missing);
