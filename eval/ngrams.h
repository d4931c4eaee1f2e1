// Word and n-gram handling shared by BLEU and CIDEr: a sentence is split on whitespace (Python's
// str.split()), each word interned to an id, and an n-gram (n <= 4) packed into one exact
// 128-bit key (see ngram_key).
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char** words;      // interned strings, id -> text
    uint64_t* hashes;  // id -> hash of the text
    uint32_t* lens;    // id -> length
    uint64_t* slots;   // open addressing: (id + 1) or 0
    size_t n_words, cap_words, n_slots;
} Vocab;

void vocab_init(Vocab* v);
void vocab_free(Vocab* v);
// Splits s on whitespace and appends the word ids to *ids (grown with realloc); returns the count.
int vocab_split(Vocab* v, const char* s, uint32_t** ids, size_t* cap);

// An n-gram (1 <= n <= 4) of word ids as one exact key: 30 bits per id (a vocabulary of up to
// 2^30 words), the length in the top bits.
typedef unsigned __int128 NgramKey;
static inline NgramKey ngram_key(const uint32_t* w, int n) {
    NgramKey k = (NgramKey)n << 120;
    for (int i = 0; i < n; i++) k |= (NgramKey)w[i] << (30 * i);
    return k;
}

// Hash map from n-gram key to a double, keeping insertion order (the toolkit iterates Python
// dicts in insertion order, which fixes the order of floating-point sums).
typedef struct {
    NgramKey* keys;
    double* vals;
    int32_t* index;     // open addressing into keys/vals, -1 empty
    size_t n, cap, n_index;
} NgramMap;

void ngmap_init(NgramMap* m, size_t expected);
void ngmap_free(NgramMap* m);
void ngmap_clear(NgramMap* m);
// Returns a pointer to the value for key (inserted as 0 if absent).
double* ngmap_get(NgramMap* m, NgramKey key);
// Returns the value or 0 without inserting.
double ngmap_find(const NgramMap* m, NgramKey key);
// Counts the 1..4-grams of a word-id sequence in the toolkit's order (n = 1 first, then by position).
void ngmap_count(NgramMap* m, const uint32_t* w, int len);

// The id of a word already in the vocabulary, or -1.
long vocab_lookup(const Vocab* v, const char* s, size_t n);
// The id of a word, adding it if new.
uint32_t vocab_add(Vocab* v, const char* s, size_t n);
