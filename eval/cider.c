// CIDEr-D as pycocoevalcap's CiderScorer: tf-idf vectors of 1..4-grams with document
// frequencies over the evaluated images' references, idf log(N) - log(max(1, df)), the clipped
// dot product min(h, r) * r, the Gaussian length penalty (sigma 6) on the difference of the
// toolkit's "length" (its count of bigrams), mean over n, over references, x10, mean over images.
// Sums run in the toolkit's order (dict insertion order, numpy's pairwise mean).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/ngrams.h"

typedef struct {
    NgramKey* keys;  // distinct n-grams in first-occurrence order (n = 1 first)
    double* vec;     // tf * idf
    double norm[4];
    double length;   // sum of bigram counts
    int n;
} TfIdf;

static void to_vec(const NgramMap* counts, const NgramMap* df, double ref_len, TfIdf* out) {
    out->n = (int)counts->n;
    out->keys = malloc((counts->n ? counts->n : 1) * sizeof *out->keys);
    out->vec = malloc((counts->n ? counts->n : 1) * sizeof *out->vec);
    if (!out->keys || !out->vec) abort();
    double norm2[4] = {0, 0, 0, 0};
    out->length = 0;
    for (size_t k = 0; k < counts->n; k++) {
        double d = ngmap_find(df, counts->keys[k]);
        double idf = log(d > 1.0 ? d : 1.0);
        int order = (int)(counts->keys[k] >> 120) - 1;
        double v = counts->vals[k] * (ref_len - idf);
        out->keys[k] = counts->keys[k];
        out->vec[k] = v;
        norm2[order] += v * v;
        if (order == 1) out->length += counts->vals[k];
    }
    for (int o = 0; o < 4; o++) out->norm[o] = sqrt(norm2[o]);
}

double cider_d_score(const EvalImage* images, size_t n, double* per_image) {
    const double sigma = 6.0;
    Vocab vocab;
    vocab_init(&vocab);
    uint32_t* ids = NULL;
    size_t cap = 0;
    // counts per reference and per hypothesis, in image order
    size_t total_refs = 0;
    for (size_t i = 0; i < n; i++) total_refs += (size_t)images[i].n_refs;
    NgramMap* ref_counts = malloc((total_refs ? total_refs : 1) * sizeof *ref_counts);
    NgramMap* hyp_counts = malloc((n ? n : 1) * sizeof *hyp_counts);
    size_t* first_ref = malloc((n + 1) * sizeof *first_ref);
    if (!ref_counts || !hyp_counts || !first_ref) abort();
    NgramMap df, seen;
    ngmap_init(&df, 1 << 16);
    ngmap_init(&seen, 256);
    size_t r_idx = 0;
    for (size_t i = 0; i < n; i++) {
        first_ref[i] = r_idx;
        ngmap_clear(&seen);
        for (int r = 0; r < images[i].n_refs; r++, r_idx++) {
            int len = vocab_split(&vocab, images[i].refs[r], &ids, &cap);
            ngmap_init(&ref_counts[r_idx], 64);
            ngmap_count(&ref_counts[r_idx], ids, len);
            for (size_t k = 0; k < ref_counts[r_idx].n; k++) *ngmap_get(&seen, ref_counts[r_idx].keys[k]) = 1;
        }
        for (size_t k = 0; k < seen.n; k++) *ngmap_get(&df, seen.keys[k]) += 1;
        int len = vocab_split(&vocab, images[i].hyp, &ids, &cap);
        ngmap_init(&hyp_counts[i], 64);
        ngmap_count(&hyp_counts[i], ids, len);
    }
    first_ref[n] = r_idx;
    double ref_len = log((double)n);
    double penalty_den = 2 * sigma * sigma;
    double* scores = malloc((n ? n : 1) * sizeof *scores);
    if (!scores) abort();
    #pragma omp parallel for schedule(dynamic, 32)
    for (size_t i = 0; i < n; i++) {
        TfIdf h;
        to_vec(&hyp_counts[i], &df, ref_len, &h);
        double score[4] = {0, 0, 0, 0};
        for (size_t r = first_ref[i]; r < first_ref[i + 1]; r++) {
            TfIdf rv;
            to_vec(&ref_counts[r], &df, ref_len, &rv);
            // the reference vector as a lookup table
            NgramMap lookup;
            ngmap_init(&lookup, (size_t)rv.n);
            for (int k = 0; k < rv.n; k++) *ngmap_get(&lookup, rv.keys[k]) = rv.vec[k];
            double delta = h.length - rv.length;
            double val[4] = {0, 0, 0, 0};
            for (int k = 0; k < h.n; k++) {
                int order = (int)(h.keys[k] >> 120) - 1;
                double rvv = ngmap_find(&lookup, h.keys[k]);
                val[order] += (h.vec[k] < rvv ? h.vec[k] : rvv) * rvv;
            }
            for (int o = 0; o < 4; o++) {
                if (h.norm[o] != 0 && rv.norm[o] != 0) val[o] /= (h.norm[o] * rv.norm[o]);
                val[o] *= pow(M_E, -(delta * delta) / penalty_den);
                score[o] += val[o];
            }
            ngmap_free(&lookup);
            free(rv.keys);
            free(rv.vec);
        }
        double avg = np_pairwise_sum(score, 4) / 4.0;
        int n_refs = (int)(first_ref[i + 1] - first_ref[i]);
        avg /= n_refs;
        avg *= 10.0;
        scores[i] = avg;
        free(h.keys);
        free(h.vec);
    }
    double mean = n ? np_pairwise_sum(scores, n) / (double)n : 0.0;
    if (per_image) memcpy(per_image, scores, n * sizeof *scores);
    for (size_t r = 0; r < total_refs; r++) ngmap_free(&ref_counts[r]);
    for (size_t i = 0; i < n; i++) ngmap_free(&hyp_counts[i]);
    free(ref_counts);
    free(hyp_counts);
    free(first_ref);
    free(scores);
    ngmap_free(&df);
    ngmap_free(&seen);
    free(ids);
    vocab_free(&vocab);
    return mean;
}
