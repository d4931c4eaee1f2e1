// What feeds each gap estimate, chosen from a feature store (data/features.h), seeded:
//   paired    a count or a fraction of the clean (caption, image) pairs (captions with
//             /texts/image_index >= 0), drawn without replacement;
//   web       the same, then a fraction of those pairs deliberately mismatched: the caption is
//             paired with another image, chosen at random, so that the robust estimator's
//             rejections can be compared with the truth;
//   unpaired  an image set and a text set: by default disjoint halves, the images of a random
//             half and the captions of the other half (with the captions that have no image),
//             so that no true pair is used; or all images and all captions. When no caption has
//             an image there is no pair to avoid, and disjoint takes every row too (in->split says);
//   text      nothing.
// The rows are indices into the store; gap_inputs_*_rows() give the estimators' views.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/features.h"
#include "data/gap.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GAP_SPLIT_DISJOINT = 0, GAP_SPLIT_ALL = 1 } GapUnpairedSplit;

typedef struct {
    int64_t pairs;           // paired/web: number of pairs (0: use pair_fraction)
    double pair_fraction;    // paired/web: fraction of the available pairs, in (0, 1]
    double mismatch;         // web: fraction of the chosen pairs given another image, in [0, 1)
    GapUnpairedSplit split;  // unpaired
    uint64_t seed;
} GapInputOptions;

GapInputOptions gap_input_options_default(void);  // all pairs, no mismatch, disjoint halves, seed 0

typedef struct {
    GapSetting setting;
    int64_t n_pairs;        // paired, web
    int64_t* text_rows;     // [n_pairs] rows of /texts, ascending
    int64_t* image_rows;    // [n_pairs] rows of /images (web: another image for mismatched pairs)
    uint8_t* mismatched;    // [n_pairs] web: 1 where the image was swapped (the truth); NULL otherwise
    int64_t n_mismatched;
    int64_t n_available;    // paired, web: pairs in the store
    int64_t n_images;       // unpaired
    int64_t* image_set;     // [n_images] ascending
    int64_t n_texts;        // unpaired
    int64_t* text_set;      // [n_texts] ascending
    GapUnpairedSplit split; // unpaired: the split used (all for disjoint when no caption has an image)
} GapInputs;

// Returns 0, or -1 with an error naming the store's path `path` and what is missing or out of
// range (too few pairs, a count above what the store has, a fraction out of range).
int gap_inputs_select(GapInputs* in, const FeatureStore* fs, const char* path, GapSetting setting,
                      const GapInputOptions* opt, char* err, size_t err_size);
void gap_inputs_free(GapInputs* in);

// Views of the selection for the estimators (valid while fs and in live).
GapRows gap_inputs_pair_rows(const GapInputs* in, const FeatureStore* fs);   // image minus text
GapRows gap_inputs_image_rows(const GapInputs* in, const FeatureStore* fs);  // unpaired images
GapRows gap_inputs_text_rows(const GapInputs* in, const FeatureStore* fs);   // unpaired texts

#ifdef __cplusplus
}
#endif
