// The decoder's output vocabulary as a list of GPT-2 ids. "gpt2": all 50257 (needed to start
// from GPT-2 weights). "corpus": only the ids the training captions and the entity vocabulary use,
// plus EOT and '.', in increasing GPT-2 id order: a decoder trained from scratch then spends
// nothing on tokens it never sees (COCO captions use about a sixth of GPT-2's vocabulary), which
// makes the LM head and the softmax several times cheaper. Checkpoints store the list
// ("decoder.vocab"), so inference maps back to GPT-2 ids for decoding to text.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/entities.h"

typedef struct {
    int n;
    int32_t* ids;    // [n] GPT-2 id of each model id, increasing
    int32_t* index;  // [GPT2_VOCAB_SIZE] model id of each GPT-2 id, -1 if not in the vocabulary
} TokenVocab;

void token_vocab_full(TokenVocab* v);
void token_vocab_from_corpus(TokenVocab* v, const Dataset* train, const EntityVocab* entities);
// From a stored list; returns 0, or -1 with err if the list is not increasing GPT-2 ids.
int token_vocab_from_ids(TokenVocab* v, const int32_t* ids, int n, char* err, size_t err_size);
void token_vocab_free(TokenVocab* v);

// GPT-2 ids -> model ids in place (-1 stays -1). Returns -1 when every id is in the vocabulary,
// else the position of the first one that is not (the array is then partly mapped).
long token_vocab_encode(const TokenVocab* v, int32_t* ids, size_t n);
// Model ids -> GPT-2 ids in place.
void token_vocab_decode(const TokenVocab* v, int32_t* ids, size_t n);
