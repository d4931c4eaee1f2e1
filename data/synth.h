// tipcap-synth: a CLIP-like simulator of image and text embeddings, for tests and the demo only
// (it stands in for CLIP where no GPU or CLIP weights are at hand; docs/DATA.md).
//
// World (all unit vectors in R^D drawn by Philox from the seed):
//   m        the mean direction of text embeddings
//   h(w)     a vector per content word w (hashed: the same word always gets the same vector);
//            words are lower-cased, stop words dropped, plurals folded to entity-vocabulary words
// Text:      t = normalize(a m + b u + e n_t),  u = normalize(sum of h(w) over the caption's words),
//            n_t a caption-specific direction (phrasing)
// Image:     c = normalize(a m + b U + d n_i),  U = normalize(sum of its captions' u) (consensus),
//            n_i an image-specific direction (detail no caption mentions)
//            v = normalize(c + g),  g ~ N(mu*, Sigma*)  (the modality gap)
//   mu*    = gm m + gp p  (p a unit direction orthogonal to m)
//   Sigma* = Q diag(lambda) Q^T, Q a random rotation (so dimensions are strongly correlated),
//            lambda_k proportional to k^-decay, sum lambda = trace
// Vocabulary: /vocab/embeddings[i] is the text embedding of "a photo of a {word}".
// The defaults are calibrated to real CLIP ViT-B/32 (docs/DATA.md gives the measured numbers).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/corpus.h"
#include "data/entities.h"
#include "data/features.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dim;               // D
    uint64_t seed;
    double text_mean;      // a
    double text_content;   // b
    double text_noise;     // e
    double image_detail;   // d
    double gap_along;      // gm: mu* along m
    double gap_across;     // gp: mu* orthogonal to m
    double gap_trace;      // trace of Sigma*
    double gap_decay;      // eigenvalue decay exponent of Sigma*
} SynthOptions;

SynthOptions synth_default_options(void);

// Simulates the images and captions of `corpus` (split `split`, SPLIT_ALL for all) into fs
// (normalized = 1, clip_model "tipcap-synth", true_gap_mu/cov set). `vocab` may be NULL (no
// /vocab group, no plural folding). Returns 0, or -1 with a message in err.
int synth_generate(const SynthOptions* opt, const Corpus* corpus, Split split, const EntityVocab* vocab,
                   FeatureStore* fs, char* err, size_t err_size);

// Mean cosines of a feature store, over n random pairs of each kind (pairs of distinct rows).
typedef struct {
    double text_text;    // two captions
    double image_image;  // two images
    double image_text;   // an image and a caption of another image
    double matched;      // an image and one of its captions
    double vocab_vocab;  // two vocabulary prompts (0 without a vocabulary)
} SynthStats;
void synth_measure(const FeatureStore* fs, uint64_t seed, int n, SynthStats* out);

#ifdef __cplusplus
}
#endif
