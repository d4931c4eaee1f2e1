#include "eval/ngrams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* xrealloc(void* p, size_t n) {
    void* q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "tipcap-eval: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return q;
}

static uint64_t hash_str(const char* s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}
static uint64_t hash_key(NgramKey key) {
    uint64_t x = (uint64_t)key ^ ((uint64_t)(key >> 64) * 0x9e3779b97f4a7c15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

void vocab_init(Vocab* v) {
    memset(v, 0, sizeof *v);
    v->n_slots = 1024;
    v->slots = calloc(v->n_slots, sizeof *v->slots);
    if (!v->slots) exit(1);
}
void vocab_free(Vocab* v) {
    for (size_t i = 0; i < v->n_words; i++) free(v->words[i]);
    free(v->words);
    free(v->hashes);
    free(v->lens);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

static uint32_t vocab_intern(Vocab* v, const char* s, size_t n) {
    if (2 * (v->n_words + 1) > v->n_slots) {
        size_t ns = v->n_slots * 2;
        uint64_t* slots = calloc(ns, sizeof *slots);
        if (!slots) exit(1);
        for (size_t i = 0; i < v->n_slots; i++) {
            if (!v->slots[i]) continue;
            size_t j = v->hashes[v->slots[i] - 1] & (ns - 1);
            while (slots[j]) j = (j + 1) & (ns - 1);
            slots[j] = v->slots[i];
        }
        free(v->slots);
        v->slots = slots;
        v->n_slots = ns;
    }
    uint64_t h = hash_str(s, n);
    size_t j = h & (v->n_slots - 1);
    while (v->slots[j]) {
        size_t id = v->slots[j] - 1;
        if (v->hashes[id] == h && v->lens[id] == n && !memcmp(v->words[id], s, n)) return (uint32_t)id;
        j = (j + 1) & (v->n_slots - 1);
    }
    if (v->n_words == v->cap_words) {
        v->cap_words = v->cap_words ? 2 * v->cap_words : 256;
        v->words = xrealloc(v->words, v->cap_words * sizeof *v->words);
        v->hashes = xrealloc(v->hashes, v->cap_words * sizeof *v->hashes);
        v->lens = xrealloc(v->lens, v->cap_words * sizeof *v->lens);
    }
    v->hashes[v->n_words] = h;
    v->lens[v->n_words] = (uint32_t)n;
    char* w = malloc(n + 1);
    if (!w) exit(1);
    memcpy(w, s, n);
    w[n] = 0;
    v->words[v->n_words] = w;
    v->slots[j] = ++v->n_words;
    return (uint32_t)(v->n_words - 1);
}

// Python's str.split(): ASCII whitespace and the Unicode spaces Python knows (U+00A0 is not
// split by the PTB output here, but Python's split() does treat it as whitespace).
static size_t space_len(const char* s) {
    unsigned char c = (unsigned char)s[0];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1f)) return 1;
    if (c == 0xC2 && ((unsigned char)s[1] == 0x85 || (unsigned char)s[1] == 0xA0)) return 2;
    if (c == 0xE1 && (unsigned char)s[1] == 0x9A && (unsigned char)s[2] == 0x80) return 3;
    if (c == 0xE2 && (unsigned char)s[1] == 0x80) {
        unsigned char d = (unsigned char)s[2];
        if ((d >= 0x80 && d <= 0x8A) || d == 0xA8 || d == 0xA9 || d == 0xAF) return 3;
    }
    if (c == 0xE2 && (unsigned char)s[1] == 0x81 && (unsigned char)s[2] == 0x9F) return 3;
    if (c == 0xE3 && (unsigned char)s[1] == 0x80 && (unsigned char)s[2] == 0x80) return 3;
    return 0;
}

int vocab_split(Vocab* v, const char* s, uint32_t** ids, size_t* cap) {
    int n = 0;
    const char* p = s;
    for (;;) {
        size_t sl;
        while (*p && (sl = space_len(p))) p += sl;
        if (!*p) break;
        const char* e = p;
        while (*e && !space_len(e)) e++;
        if ((size_t)n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            *ids = xrealloc(*ids, *cap * sizeof **ids);
        }
        (*ids)[n++] = vocab_intern(v, p, (size_t)(e - p));
        p = e;
    }
    return n;
}

void ngmap_init(NgramMap* m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->n_index = 16;
    while (m->n_index < 2 * expected) m->n_index *= 2;
    m->index = malloc(m->n_index * sizeof *m->index);
    if (!m->index) exit(1);
    memset(m->index, 0xff, m->n_index * sizeof *m->index);
}
void ngmap_free(NgramMap* m) {
    free(m->keys);
    free(m->vals);
    free(m->index);
    memset(m, 0, sizeof *m);
}
void ngmap_clear(NgramMap* m) {
    if (m->n) memset(m->index, 0xff, m->n_index * sizeof *m->index);
    m->n = 0;
}

static void ngmap_grow(NgramMap* m) {
    size_t ni = m->n_index * 2;
    int32_t* index = malloc(ni * sizeof *index);
    if (!index) exit(1);
    memset(index, 0xff, ni * sizeof *index);
    for (size_t i = 0; i < m->n; i++) {
        size_t j = hash_key(m->keys[i]) & (ni - 1);
        while (index[j] >= 0) j = (j + 1) & (ni - 1);
        index[j] = (int32_t)i;
    }
    free(m->index);
    m->index = index;
    m->n_index = ni;
}

double* ngmap_get(NgramMap* m, NgramKey key) {
    if (2 * (m->n + 1) > m->n_index) ngmap_grow(m);
    size_t j = hash_key(key) & (m->n_index - 1);
    while (m->index[j] >= 0) {
        if (m->keys[m->index[j]] == key) return &m->vals[m->index[j]];
        j = (j + 1) & (m->n_index - 1);
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 32;
        m->keys = xrealloc(m->keys, m->cap * sizeof *m->keys);
        m->vals = xrealloc(m->vals, m->cap * sizeof *m->vals);
    }
    m->keys[m->n] = key;
    m->vals[m->n] = 0;
    m->index[j] = (int32_t)m->n;
    return &m->vals[m->n++];
}

double ngmap_find(const NgramMap* m, NgramKey key) {
    size_t j = hash_key(key) & (m->n_index - 1);
    while (m->index[j] >= 0) {
        if (m->keys[m->index[j]] == key) return m->vals[m->index[j]];
        j = (j + 1) & (m->n_index - 1);
    }
    return 0;
}

void ngmap_count(NgramMap* m, const uint32_t* w, int len) {
    for (int k = 1; k <= 4; k++)
        for (int i = 0; i + k <= len; i++) *ngmap_get(m, ngram_key(w + i, k)) += 1;
}

long vocab_lookup(const Vocab* v, const char* s, size_t n) {
    uint64_t h = hash_str(s, n);
    size_t j = h & (v->n_slots - 1);
    while (v->slots[j]) {
        size_t id = v->slots[j] - 1;
        if (v->hashes[id] == h && v->lens[id] == n && !memcmp(v->words[id], s, n)) return (long)id;
        j = (j + 1) & (v->n_slots - 1);
    }
    return -1;
}

uint32_t vocab_add(Vocab* v, const char* s, size_t n) { return vocab_intern(v, s, n); }
