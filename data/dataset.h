// Training-side dataset assembly: the captions of one split of a caption corpus, paired with
// their rows in the feature store's /texts, tokenised with GPT-2 and truncated to L tokens, with
// their entities; batches for K prefix slots; a seeded shuffle per epoch; data-parallel sharding;
// a position that can be saved and restored.
//
// Shapes (B = samples in the batch, K = prefix slots, L = max caption tokens, D = embedding dim):
//   tokens   int32 [B, L]      caption tokens, -1 after the caption's end (no EOT here)
//   targets  int32 [B, K + L]  targets[K-1+i] = tokens[i] for i < n, targets[K-1+n] = EOT (50256),
//                              every other position -1: the loss is on caption tokens and EOT only
//                              (the logits at position p predict targets[p]; p = K-1 is the last
//                              prefix slot, which predicts the first caption token)
//   text_emb float [B, D]      the caption's text embedding, as stored (normalised if the file is)
//   entities                   per sample, indices into the EntityVocab (entity_offsets [B + 1])
//
// Shuffling and sharding: step s of epoch e uses samples order_e[c .. c + G) of the permutation
// order_e = dataset_epoch_order(n, seed, e) (a pure function of seed and epoch, via Philox), where
// c = s * G; data-parallel rank r of w takes [c + r*G/w, c + (r+1)*G/w). So one process with
// global batch G and two with G/2 each see the same samples. An epoch has floor(n / G) steps; the
// last n mod G samples of each epoch's permutation are not used in that epoch (they differ from
// epoch to epoch). The position (epoch, cursor) after a step restores the same next batch; it
// counts global samples, so a run may resume with another number of ranks for the same G.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/corpus.h"
#include "data/entities.h"
#include "data/features.h"
#include "data/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int max_len;            // L; 0: from the corpus statistics (len_percentile of token lengths)
    double len_percentile;  // used when max_len == 0; default 99
} DatasetOptions;
#define DATASET_OPTIONS_DEFAULT ((DatasetOptions){.max_len = 0, .len_percentile = 99.0})

typedef struct {
    int n;                   // captions (samples)
    int max_len;             // L
    int dim;                 // D
    int n_truncated;         // captions longer than L (their first L tokens are kept)
    int32_t* tokens;         // [n, L], -1 padded
    int32_t* lengths;        // [n] caption tokens kept (<= L)
    int64_t* text_rows;      // [n] row of the caption in the feature store's /texts
    const float* text_emb;   // [fs->n_texts, D], borrowed from the FeatureStore (must outlive this)
    int32_t* entity_offsets; // [n + 1]
    int32_t* entities;       // [entity_offsets[n]] entity vocabulary indices
    int32_t* corpus_caption; // [n] index of the caption in the Corpus
} Dataset;

// Builds the dataset of the captions of `split` in `corpus` (SPLIT_ALL: every caption).
// Each caption is paired with the /texts row holding the same caption text whose image key
// (/images/keys of its image_index) equals the corpus image's key; rows with image_index -1 match
// any image. A caption without a row is an error naming the caption, the image and the file.
// `vocab` may be NULL (no entities). For a validation dataset pass the training L as max_len.
// A split without captions gives n = 0 (train_iter_init then refuses it). Returns 0, or -1
// with a message in err.
int dataset_build(const Corpus* corpus, Split split, const FeatureStore* fs, Tokenizer* tok,
                  const EntityVocab* vocab, const DatasetOptions* opt, Dataset* ds,
                  char* err, size_t err_size);
void dataset_free(Dataset* ds);

// The caption token length at percentile p (0..100) of n lengths (nearest rank).
int length_percentile(const int32_t* lengths, int n, double p);

typedef struct {
    int capacity;            // max B
    int B, K, L, D;          // B of the current batch
    int32_t* tokens;         // [capacity, L]
    int32_t* targets;        // [capacity, K + L]
    float* text_emb;         // [capacity, D]
    int32_t* lengths;        // [capacity]
    int32_t* entity_offsets; // [capacity + 1]
    int32_t* entities;       // [entity_capacity], grown as needed
    int entity_capacity;
    int64_t* samples;        // [capacity] dataset index of each row
} Batch;

void batch_alloc(Batch* b, int capacity, int K, const Dataset* ds);
void batch_free(Batch* b);
// Fills b with the given samples (B <= capacity) in the layout above.
void dataset_fill_batch(const Dataset* ds, const int64_t* samples, int B, Batch* b);

// The permutation of 0..n-1 for `epoch` (Fisher-Yates driven by Philox(seed, stream = epoch)).
void dataset_epoch_order(int64_t n, uint64_t seed, int64_t epoch, int64_t* order);

typedef struct {
    int64_t epoch;
    int64_t cursor;  // samples of the epoch's permutation already used (a multiple of G)
} DataPosition;

typedef struct {
    const Dataset* ds;
    uint64_t seed;
    int global_batch;        // G
    int rank, world;         // this process takes [rank*G/world, (rank+1)*G/world) of each step
    DataPosition pos;        // where the next step starts
    int64_t* order;          // [n] permutation of order_epoch
    int64_t order_epoch;
} TrainIterator;

// Requires 1 <= G <= n and 0 <= rank < world <= G. Returns 0, or -1 with a message in err.
int train_iter_init(TrainIterator* it, const Dataset* ds, uint64_t seed, int global_batch,
                    int rank, int world, char* err, size_t err_size);
void train_iter_free(TrainIterator* it);
int64_t train_iter_steps_per_epoch(const TrainIterator* it);
// Fills b (capacity >= the local batch size) with this rank's part of the next step and advances.
void train_iter_next(TrainIterator* it, Batch* b);
// The position to save after a step; train_iter_seek() with it continues with the same next batch.
DataPosition train_iter_position(const TrainIterator* it);
int train_iter_seek(TrainIterator* it, DataPosition pos, char* err, size_t err_size);

// Validation: every sample once, in dataset order, in global batches of G (the last one shorter);
// rank r of w takes [r*g/w, (r+1)*g/w) of global batch `index` holding g samples (so B may be 0
// for some ranks on a short last batch).
int64_t dataset_val_batches(const Dataset* ds, int global_batch);
void dataset_val_batch(const Dataset* ds, int64_t index, int global_batch, int rank, int world, Batch* b);

#ifdef __cplusplus
}
#endif
