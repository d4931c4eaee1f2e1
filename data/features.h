// The HDF5 feature store of docs/FORMATS.md (CLIP embeddings of images, captions and an
// optional entity vocabulary). Readable by h5py as-is; float16 or float32 on disk, always
// float32 in memory.
//
//   /images/embeddings   float32|float16 [N_img, D]
//   /images/keys         variable-length UTF-8 strings [N_img]
//   /texts/embeddings    float32|float16 [N_txt, D]
//   /texts/captions      variable-length UTF-8 strings [N_txt]
//   /texts/image_index   int64 [N_txt]  (row in /images, -1 if none)
//   /vocab/words         variable-length UTF-8 strings [N_voc]   (optional)
//   /vocab/embeddings    float32 [N_voc, D]                      (optional)
//   /synth/gap_mu, /synth/pair_gap_mu float32 [D]; /synth/gap_cov, /synth/pair_gap_cov float32 [D, D]
//                        (optional: the simulator's ground truth)
//   attributes on /: clip_model (string), dim (int), normalized (0/1), source (string)
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int dim;              // D
    int n_images;
    int n_texts;
    int n_vocab;          // 0 when the file has no /vocab group
    float* image_emb;     // [n_images, dim]
    char** image_keys;    // [n_images]
    float* text_emb;      // [n_texts, dim]
    char** captions;      // [n_texts]
    int64_t* image_index; // [n_texts], -1 if the caption has no image
    char** vocab_words;   // [n_vocab]
    float* vocab_emb;     // [n_vocab, dim]
    char clip_model[64];
    int normalized;       // 1 if the embeddings are L2-normalised
    char source[256];
    // Ground truth of the simulator (tipcap-synth), NULL when absent; /synth/... in the file.
    // Images are v = normalize(c + g) with g ~ N(mu*, Sigma*), c the image's content in the text
    // space (docs/DATA.md): (mu*, Sigma*) is the gap in the method's own form, x = normalize(t + mu + L z).
    float* true_gap_mu;   // [dim] mu*                                      /synth/gap_mu
    float* true_gap_cov;  // [dim, dim] Sigma*                              /synth/gap_cov
    // The population a paired estimator samples: mean and covariance (1/N) of d = v - t over
    // every (image, caption) pair of the file.
    float* pair_gap_mu;   // [dim]                                          /synth/pair_gap_mu
    float* pair_gap_cov;  // [dim, dim]                                     /synth/pair_gap_cov
} FeatureStore;

// Reads and validates the whole file (ranks, dtypes, shapes, D consistent across datasets,
// NaN/Inf, zero norms, image_index in range). Returns 0, or -1 with a message naming the
// file, the dataset and the row in err.
int features_read(const char* path, FeatureStore* fs, char* err, size_t err_size);
// Writes atomically (temporary + rename), chunked, embeddings as float16 if `float16`.
// Returns 0, or -1 with a message in err (nothing is left at `path` then).
int features_write(const char* path, const FeatureStore* fs, int float16, char* err, size_t err_size);
void features_free(FeatureStore* fs);
// Row of the image with this key in /images, or -1.
int features_find_image(const FeatureStore* fs, const char* key);

#ifdef __cplusplus
}
#endif
