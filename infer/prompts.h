// Entity prompts for inference, per image: none; automatic (CLIP zero-shot: cosine between the
// image embedding and the vocabulary embeddings of the feature file, softmax with a temperature,
// the most probable words above a threshold, as ViECap); or given by the user per image.
#pragma once
#include <stddef.h>

#include "data/features.h"
#include "data/strmap.h"
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

// Images as a user names them: the feature file's key, or the integer COCO id of a COCO file name
// ("391895" finds COCO_val2014_000000391895.jpg), as tipcap-eval pairs results with references.
typedef struct {
    StrMap by_key;  // key -> image
    StrMap by_id;   // decimal COCO id -> image
} ImageLookup;
void image_lookup_init(ImageLookup* l, const FeatureStore* fs);
int image_lookup_find(const ImageLookup* l, const char* name);  // the image, or -1
void image_lookup_free(ImageLookup* l);

// A prompt word as training entities are: lower-case, trimmed, words joined by one space (caller frees).
char* prompt_word_normalize(const char* word);
// The words one image may take: at most max_words, each spelt with tokens of the model's
// vocabulary. Returns 0, or -1 with err ("4 words, the model takes at most 3", "word \"x\": ...").
int prompt_words_check(const char* const* words, int n_words, int max_words, Tokenizer* tok, const TokenVocab* vocab,
                       char* err, size_t err_size);

// A JSON object {"image key or COCO id": ["word", ...], ...}; images absent from it get no
// prompts, entries naming images that are not in the feature file (or beyond --limit) are
// skipped and counted in *n_skipped. Malformed JSON (line and column), a non-array, a word
// that is not a non-empty string, an image given twice and words prompt_words_check refuses are
// errors naming the file and the image. Words are normalized.
int prompts_load(const char* path, const FeatureStore* fs, const ImageLookup* lookup, int max_words, Tokenizer* tok,
                 const TokenVocab* vocab, ImagePrompts* out, int* n_skipped, char* err, size_t err_size);
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
