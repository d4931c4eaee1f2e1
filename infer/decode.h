// Caption decoding on a Model: greedy and beam search over a batch of images, with the prefix
// encoded once per image and a key/value cache (train/model.h's ModelDecoder).
//
// Beam search keeps `beam` live hypotheses per image. Each step every live hypothesis proposes its
// best tokens; a terminal token (EOT, or '.' with stop_at_period) closes a hypothesis, scored
// sum(log p) / len^length_penalty (len counts the generated tokens, the terminal one included);
// at max_len the live ones close too. An image is done when it has `beam` closed hypotheses and no
// live one can still beat the worst of them (an exact bound, not a heuristic), so with a beam as
// wide as the search space the result is the best sequence. no_repeat_ngram n > 0 forbids a token
// that would repeat an n-gram of the hypothesis.
#pragma once
#include "train/model.h"

typedef struct {
    int beam;              // 1: greedy
    int max_len;           // generated tokens at most (the terminal one included)
    double length_penalty; // alpha
    int stop_at_period;    // '.' (GPT-2 id 13) ends a caption (and is kept in it)
    int no_repeat_ngram;   // 0: off
    int eot;               // end-of-text id (GPT-2: 50256)
    int period;            // id of '.' (GPT-2: 13)
} DecodeOptions;

typedef struct {
    int* tokens;           // the caption's tokens, without EOT (owned)
    int len;
    double score;          // length-normalised log-probability
} Caption;

// Decodes every row of `batch` (image embeddings, prompts; gap_noise 0). `d` must hold at least
// batch->B * beam rows and top-k queries of decode_topk_needed() (or the vocabulary size if that
// is smaller). Fills out[0 .. batch->B).
void decode_batch(Model* m, ModelDecoder* d, const ModelBatch* batch, const DecodeOptions* opt, Caption* out);
void caption_free(Caption* c);
// k_max a decoder needs for these options.
int decode_topk_needed(const DecodeOptions* opt);
