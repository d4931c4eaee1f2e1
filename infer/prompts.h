// Entity prompts for inference, per image: none; automatic (CLIP zero-shot: cosine between the
// image embedding and the vocabulary embeddings of the feature file, softmax with a temperature,
// the most probable words above a threshold, as ViECap); or given by the user per image.
#pragma once
#include <stddef.h>

#include "data/features.h"
#include "data/tokenizer.h"
#include "train/model.h"
#include "train/token_vocab.h"

typedef struct {
    int n_images;
    int* offsets;  // [n_images + 1] into words
    char** words;  // prompt words of image i: words[offsets[i] .. offsets[i+1])
} ImagePrompts;

// Empty prompts for every image.
void prompts_none(const FeatureStore* fs, ImagePrompts* out);
// The at most max_words most probable vocabulary words with probability >= threshold.
// Returns 0, or -1 with err when the feature file has no /vocab.
int prompts_auto(const FeatureStore* fs, int max_words, double temperature, double threshold, ImagePrompts* out,
                 char* err, size_t err_size);
// A JSON object {"image key": ["word", ...], ...}; images absent from it get no prompts.
// Keys that are not images of the feature file, and non-string words, are errors naming them.
int prompts_load(const char* path, const FeatureStore* fs, int max_words, ImagePrompts* out, char* err,
                 size_t err_size);
// Replaces the prompts of one image (interactive use).
void prompts_set(ImagePrompts* p, int image, const char* const* words, int n_words);
void prompts_free(ImagePrompts* p);

// The prompt part of a ModelBatch for images [first, first + B): each word becomes a bag of the
// model's ids of the GPT-2 tokens of " word" (a word with a token outside the model's vocabulary
// is a clear error). The arrays live in buf until the next call.
typedef struct {
    int* prompts;      // [B, M]
    int* bag_offsets;  // [bags + 1]
    int* bag_ids;
    size_t cap_prompts, cap_bags, cap_ids;
} PromptBuffers;
void prompts_fill_batch(const ImagePrompts* p, int first, int B, int M, Tokenizer* tok, const TokenVocab* vocab,
                        PromptBuffers* buf, ModelBatch* mb);
void prompt_buffers_free(PromptBuffers* buf);
