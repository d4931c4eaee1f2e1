#include "train/token_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "data/tokenizer.h"

static void build_index(TokenVocab* v) {
    v->index = mallocCheck(sizeof(int32_t) * GPT2_VOCAB_SIZE);
    for (int i = 0; i < GPT2_VOCAB_SIZE; i++) v->index[i] = -1;
    for (int i = 0; i < v->n; i++) v->index[v->ids[i]] = i;
}

void token_vocab_full(TokenVocab* v) {
    v->n = GPT2_VOCAB_SIZE;
    v->ids = mallocCheck(sizeof(int32_t) * GPT2_VOCAB_SIZE);
    for (int i = 0; i < GPT2_VOCAB_SIZE; i++) v->ids[i] = i;
    build_index(v);
}

void token_vocab_from_corpus(TokenVocab* v, const Dataset* train, const EntityVocab* entities) {
    unsigned char* used = callocCheck(GPT2_VOCAB_SIZE, 1);
    used[GPT2_EOT] = 1;
    used[13] = 1;  // '.', where captions may stop
    for (size_t i = 0; i < (size_t)train->n * train->max_len; i++)
        if (train->tokens[i] >= 0) used[train->tokens[i]] = 1;
    if (entities)
        for (int i = 0; i < entities->token_offsets[entities->n]; i++) used[entities->tokens[i]] = 1;
    v->n = 0;
    for (int i = 0; i < GPT2_VOCAB_SIZE; i++) v->n += used[i];
    v->ids = mallocCheck(sizeof(int32_t) * (size_t)v->n);
    for (int i = 0, k = 0; i < GPT2_VOCAB_SIZE; i++)
        if (used[i]) v->ids[k++] = i;
    free(used);
    build_index(v);
}

int token_vocab_from_ids(TokenVocab* v, const int32_t* ids, int n, char* err, size_t err_size) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= GPT2_VOCAB_SIZE || (i > 0 && ids[i] <= ids[i - 1])) {
            snprintf(err, err_size, "the vocabulary list is not increasing GPT-2 ids (entry %d: %d)", i, ids[i]);
            return -1;
        }
    v->n = n;
    v->ids = mallocCheck(sizeof(int32_t) * (size_t)(n ? n : 1));
    memcpy(v->ids, ids, sizeof(int32_t) * (size_t)n);
    build_index(v);
    return 0;
}

void token_vocab_free(TokenVocab* v) {
    free(v->ids);
    free(v->index);
    memset(v, 0, sizeof *v);
}

long token_vocab_encode(const TokenVocab* v, int32_t* ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) continue;
        int32_t m = ids[i] < GPT2_VOCAB_SIZE ? v->index[ids[i]] : -1;
        if (m < 0) return (long)i;
        ids[i] = m;
    }
    return -1;
}

void token_vocab_decode(const TokenVocab* v, int32_t* ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0) ids[i] = v->ids[ids[i]];
}
