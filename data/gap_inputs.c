// Selection of the rows that feed each gap estimate (gap_inputs.h). Random choices use Philox
// (kernels/philox.h) on fixed streams of the seed, so a selection depends on nothing else.
#include "data/gap_inputs.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "kernels/philox.h"

enum { STREAM_PAIRS = 1, STREAM_MISMATCH_WHICH = 2, STREAM_MISMATCH_IMAGE = 3, STREAM_SPLIT = 4 };

GapInputOptions gap_input_options_default(void) {
    GapInputOptions o = {0, 1.0, 0.0, GAP_SPLIT_DISJOINT, 0};
    return o;
}

__attribute__((format(printf, 3, 4))) static int fail(char* err, size_t err_size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return -1;
}

static int cmp_i64(const void* a, const void* b) {
    int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
    return (x > y) - (x < y);
}

// Moves a uniformly random choice of k of the n items to the front (partial Fisher-Yates).
static void choose_front(int64_t* items, int64_t n, int64_t k, uint64_t seed, uint64_t stream) {
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)(philox_uniform(seed, stream, (uint64_t)i) * (double)(n - i));
        if (j >= n) j = n - 1;  // the float uniform may round up to 1
        int64_t tmp = items[i];
        items[i] = items[j];
        items[j] = tmp;
    }
}

static int select_pairs(GapInputs* in, const FeatureStore* fs, const char* path, GapSetting setting,
                        const GapInputOptions* opt, char* err, size_t err_size) {
    int64_t* avail = mallocCheck(sizeof(int64_t) * (fs->n_texts ? fs->n_texts : 1));
    int64_t m = 0;
    for (int64_t k = 0; k < fs->n_texts; k++)
        if (fs->image_index[k] >= 0) avail[m++] = k;
    in->n_available = m;
    int64_t n;
    if (opt->pairs > 0) {
        n = opt->pairs;
        if (n > m) {
            free(avail);
            return fail(err, err_size, "%s: %lld pairs asked for, but only %lld captions have an image (/texts/image_index >= 0)",
                        path, (long long)n, (long long)m);
        }
    } else {
        if (!(opt->pair_fraction > 0 && opt->pair_fraction <= 1)) {
            free(avail);
            return fail(err, err_size, "pair fraction %g is not in (0, 1]", opt->pair_fraction);
        }
        n = (int64_t)llround(opt->pair_fraction * (double)m);
    }
    if (n < 2) {
        free(avail);
        return fail(err, err_size,
                    "%s: too few pairs for the %s setting: %lld selected of %lld captions with an image "
                    "(/texts/image_index >= 0); the covariance needs at least 2",
                    path, gap_setting_name(setting), (long long)n, (long long)m);
    }
    choose_front(avail, m, n, opt->seed, STREAM_PAIRS);
    qsort(avail, n, sizeof(int64_t), cmp_i64);
    in->n_pairs = n;
    in->text_rows = avail;
    in->image_rows = mallocCheck(sizeof(int64_t) * n);
    for (int64_t k = 0; k < n; k++) in->image_rows[k] = fs->image_index[avail[k]];
    if (setting != GAP_WEB) return 0;

    if (!(opt->mismatch >= 0 && opt->mismatch < 1))
        return fail(err, err_size, "mismatch fraction %g is not in [0, 1)", opt->mismatch);
    in->mismatched = callocCheck(n, 1);
    int64_t n_bad = (int64_t)llround(opt->mismatch * (double)n);
    if (n_bad > 0 && fs->n_images < 2)
        return fail(err, err_size, "%s: mismatching pairs needs at least 2 images, the store has %d", path, fs->n_images);
    int64_t* which = mallocCheck(sizeof(int64_t) * n);
    for (int64_t k = 0; k < n; k++) which[k] = k;
    choose_front(which, n, n_bad, opt->seed, STREAM_MISMATCH_WHICH);
    for (int64_t r = 0; r < n_bad; r++) {
        int64_t k = which[r], own = in->image_rows[k];
        // another image, uniformly among the n_images - 1 others
        int64_t other = (int64_t)(philox_uniform(opt->seed, STREAM_MISMATCH_IMAGE, (uint64_t)k) * (double)(fs->n_images - 1));
        if (other >= fs->n_images - 1) other = fs->n_images - 2;
        if (other >= own) other++;
        in->image_rows[k] = other;
        in->mismatched[k] = 1;
    }
    in->n_mismatched = n_bad;
    free(which);
    return 0;
}

static int select_unpaired(GapInputs* in, const FeatureStore* fs, const char* path, const GapInputOptions* opt,
                           char* err, size_t err_size) {
    int64_t n_img = fs->n_images;
    in->image_set = mallocCheck(sizeof(int64_t) * (n_img ? n_img : 1));
    in->text_set = mallocCheck(sizeof(int64_t) * (fs->n_texts ? fs->n_texts : 1));
    int any_pair = 0;  // without one, disjoint halves would only discard half the images
    for (int64_t k = 0; k < fs->n_texts && !any_pair; k++) any_pair = fs->image_index[k] >= 0;
    in->split = any_pair ? opt->split : GAP_SPLIT_ALL;
    if (in->split == GAP_SPLIT_ALL) {
        for (int64_t i = 0; i < n_img; i++) in->image_set[i] = i;
        for (int64_t k = 0; k < fs->n_texts; k++) in->text_set[k] = k;
        in->n_images = n_img;
        in->n_texts = fs->n_texts;
    } else {
        // the images of a random half; the captions of the other half and those with no image
        int64_t* order = mallocCheck(sizeof(int64_t) * (n_img ? n_img : 1));
        for (int64_t i = 0; i < n_img; i++) order[i] = i;
        int64_t half = (n_img + 1) / 2;
        choose_front(order, n_img, half, opt->seed, STREAM_SPLIT);
        uint8_t* used_image = callocCheck(n_img ? n_img : 1, 1);
        for (int64_t i = 0; i < half; i++) used_image[order[i]] = 1;
        memcpy(in->image_set, order, sizeof(int64_t) * half);
        qsort(in->image_set, half, sizeof(int64_t), cmp_i64);
        in->n_images = half;
        int64_t t = 0;
        for (int64_t k = 0; k < fs->n_texts; k++)
            if (fs->image_index[k] < 0 || !used_image[fs->image_index[k]]) in->text_set[t++] = k;
        in->n_texts = t;
        free(order);
        free(used_image);
    }
    if (in->n_images < 2 || in->n_texts < 2)
        return fail(err, err_size,
                    "%s: too few rows for the unpaired setting: %lld images and %lld captions selected (%s split of %d "
                    "images, %d captions); each covariance needs at least 2",
                    path, (long long)in->n_images, (long long)in->n_texts,
                    in->split == GAP_SPLIT_ALL ? "all" : "disjoint", fs->n_images, fs->n_texts);
    return 0;
}

int gap_inputs_select(GapInputs* in, const FeatureStore* fs, const char* path, GapSetting setting,
                      const GapInputOptions* opt_in, char* err, size_t err_size) {
    GapInputOptions opt = opt_in ? *opt_in : gap_input_options_default();
    memset(in, 0, sizeof *in);
    in->setting = setting;
    int rc = 0;
    if (setting == GAP_PAIRED || setting == GAP_WEB) rc = select_pairs(in, fs, path, setting, &opt, err, err_size);
    else if (setting == GAP_UNPAIRED) rc = select_unpaired(in, fs, path, &opt, err, err_size);
    if (rc) gap_inputs_free(in);
    return rc;
}

void gap_inputs_free(GapInputs* in) {
    free(in->text_rows);
    free(in->image_rows);
    free(in->mismatched);
    free(in->image_set);
    free(in->text_set);
    memset(in, 0, sizeof *in);
}

GapRows gap_inputs_pair_rows(const GapInputs* in, const FeatureStore* fs) {
    GapRows r = {fs->image_emb, in->image_rows, fs->text_emb, in->text_rows, in->n_pairs};
    return r;
}
GapRows gap_inputs_image_rows(const GapInputs* in, const FeatureStore* fs) {
    GapRows r = {fs->image_emb, in->image_set, NULL, NULL, in->n_images};
    return r;
}
GapRows gap_inputs_text_rows(const GapInputs* in, const FeatureStore* fs) {
    GapRows r = {fs->text_emb, in->text_set, NULL, NULL, in->n_texts};
    return r;
}
