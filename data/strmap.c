#include "data/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "common/check.h"

static uint64_t strmap_hash(const char* s, size_t n) {  // FNV-1a with a final mix
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 32;
    return h * 0x9E3779B97F4A7C15ull;
}

void strmap_init(StrMap* m, size_t expected) {
    m->cap = 16;
    while (m->cap < expected * 2) m->cap <<= 1;
    m->keys = callocCheck(m->cap, sizeof(char*));
    m->key_lens = callocCheck(m->cap, sizeof(size_t));
    m->values = callocCheck(m->cap, sizeof(int64_t));
    m->count = 0;
}

void strmap_free(StrMap* m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->key_lens);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static size_t strmap_slot(const StrMap* m, const char* key, size_t len) {
    size_t i = strmap_hash(key, len) & (m->cap - 1);
    while (m->keys[i] && !(m->key_lens[i] == len && memcmp(m->keys[i], key, len) == 0)) i = (i + 1) & (m->cap - 1);
    return i;
}

static void strmap_grow(StrMap* m) {
    StrMap bigger;
    bigger.cap = m->cap * 2;
    bigger.keys = callocCheck(bigger.cap, sizeof(char*));
    bigger.key_lens = callocCheck(bigger.cap, sizeof(size_t));
    bigger.values = callocCheck(bigger.cap, sizeof(int64_t));
    bigger.count = m->count;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = strmap_slot(&bigger, m->keys[i], m->key_lens[i]);
        bigger.keys[j] = m->keys[i];
        bigger.key_lens[j] = m->key_lens[i];
        bigger.values[j] = m->values[i];
    }
    free(m->keys);
    free(m->key_lens);
    free(m->values);
    *m = bigger;
}

int64_t strmap_put(StrMap* m, const char* key, size_t len, int64_t value) {
    if ((m->count + 1) * 2 > m->cap) strmap_grow(m);
    size_t i = strmap_slot(m, key, len);
    if (m->keys[i]) return m->values[i];
    m->keys[i] = mallocCheck(len + 1);
    memcpy(m->keys[i], key, len);
    m->keys[i][len] = '\0';
    m->key_lens[i] = len;
    m->values[i] = value;
    m->count++;
    return value;
}

int64_t strmap_get(const StrMap* m, const char* key, size_t len, int64_t missing) {
    size_t i = strmap_slot(m, key, len);
    return m->keys[i] ? m->values[i] : missing;
}
