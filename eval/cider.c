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

// A caption's distinct n-grams in the toolkit's first-occurrence order (n = 1 first, then by
// position), as ids into the corpus-wide n-gram table, with their counts.
typedef struct {
    uint32_t* ids;
    double* counts;
    int n;
} Counts;

// Per n-gram id: the last caption and image that held it, its place in that caption's list,
// and its document frequency. Grown together as new n-grams appear.
typedef struct {
    uint32_t* caption;
    uint32_t* image;
    uint32_t* slot;
    double* df;
    size_t cap;
} PerNgram;

static void per_ngram_reserve(PerNgram* p, size_t id) {
    if (id < p->cap) return;
    size_t old = p->cap, cap = old ? 2 * old : 1 << 16;
    while (cap <= id) cap *= 2;
    p->caption = realloc(p->caption, cap * sizeof *p->caption);
    p->image = realloc(p->image, cap * sizeof *p->image);
    p->slot = realloc(p->slot, cap * sizeof *p->slot);
    p->df = realloc(p->df, cap * sizeof *p->df);
    if (!p->caption || !p->image || !p->slot || !p->df) abort();
    memset(p->caption + old, 0, (cap - old) * sizeof *p->caption);
    memset(p->image + old, 0, (cap - old) * sizeof *p->image);
    memset(p->df + old, 0, (cap - old) * sizeof *p->df);
    p->cap = cap;
}

// Counts a caption's n-grams (interned in `all`); caption_no > 0 tells captions apart.
static void count_caption(NgramMap* all, PerNgram* per, uint32_t caption_no, const uint32_t* w, int len, Counts* out) {
    int n_grams = 0;
    for (int k = 1; k <= 4; k++) n_grams += len - k + 1 > 0 ? len - k + 1 : 0;
    out->ids = malloc((size_t)(n_grams ? n_grams : 1) * sizeof *out->ids);
    out->counts = malloc((size_t)(n_grams ? n_grams : 1) * sizeof *out->counts);
    if (!out->ids || !out->counts) abort();
    out->n = 0;
    for (int k = 1; k <= 4; k++)
        for (int i = 0; i + k <= len; i++) {
            uint32_t id = (uint32_t)(ngmap_get(all, ngram_key(w + i, k)) - all->vals);
            per_ngram_reserve(per, id);
            if (per->caption[id] != caption_no) {
                per->caption[id] = caption_no;
                per->slot[id] = (uint32_t)out->n;
                out->ids[out->n] = id;
                out->counts[out->n++] = 0;
            }
            out->counts[per->slot[id]] += 1;
        }
}

typedef struct {
    double* vec;     // tf * idf, in the caption's n-gram order
    double norm[4];
    double length;   // sum of bigram counts
} TfIdf;

static void to_vec(const Counts* c, const double* idf, const uint8_t* order, double ref_len, TfIdf* out) {
    out->vec = malloc((size_t)(c->n ? c->n : 1) * sizeof *out->vec);
    if (!out->vec) abort();
    double norm2[4] = {0, 0, 0, 0};
    out->length = 0;
    for (int k = 0; k < c->n; k++) {
        uint32_t id = c->ids[k];
        double v = c->counts[k] * (ref_len - idf[id]);
        out->vec[k] = v;
        norm2[order[id]] += v * v;
        if (order[id] == 1) out->length += c->counts[k];
    }
    for (int o = 0; o < 4; o++) out->norm[o] = sqrt(norm2[o]);
}

double cider_d_score(const EvalImage* images, size_t n, double* per_image) {
    const double sigma = 6.0;
    Vocab vocab;
    vocab_init(&vocab);
    uint32_t* ids = NULL;
    size_t cap = 0;
    // counts per reference and per hypothesis, in image order, over one n-gram table
    size_t total_refs = 0;
    for (size_t i = 0; i < n; i++) total_refs += (size_t)images[i].n_refs;
    Counts* ref_counts = malloc((total_refs ? total_refs : 1) * sizeof *ref_counts);
    Counts* hyp_counts = malloc((n ? n : 1) * sizeof *hyp_counts);
    size_t* first_ref = malloc((n + 1) * sizeof *first_ref);
    if (!ref_counts || !hyp_counts || !first_ref) abort();
    NgramMap all;
    ngmap_init(&all, 1 << 18);
    PerNgram per;
    memset(&per, 0, sizeof per);
    uint32_t caption_no = 0;
    size_t r_idx = 0;
    for (size_t i = 0; i < n; i++) {
        first_ref[i] = r_idx;
        for (int r = 0; r < images[i].n_refs; r++, r_idx++) {
            int len = vocab_split(&vocab, images[i].refs[r], &ids, &cap);
            count_caption(&all, &per, ++caption_no, ids, len, &ref_counts[r_idx]);
            // the document frequency: the number of images whose references hold the n-gram
            for (int k = 0; k < ref_counts[r_idx].n; k++) {
                uint32_t id = ref_counts[r_idx].ids[k];
                if (per.image[id] != (uint32_t)i + 1) {
                    per.image[id] = (uint32_t)i + 1;
                    per.df[id] += 1;
                }
            }
        }
        int len = vocab_split(&vocab, images[i].hyp, &ids, &cap);
        count_caption(&all, &per, ++caption_no, ids, len, &hyp_counts[i]);
    }
    first_ref[n] = r_idx;
    // idf and order per n-gram
    size_t n_ids = all.n;
    double* idf = malloc((n_ids ? n_ids : 1) * sizeof *idf);
    uint8_t* order = malloc(n_ids ? n_ids : 1);
    if (!idf || !order) abort();
    for (size_t id = 0; id < n_ids; id++) {
        double d = per.df[id];
        idf[id] = log(d > 1.0 ? d : 1.0);
        order[id] = (uint8_t)((int)(all.keys[id] >> 120) - 1);
    }
    double ref_len = log((double)n);
    double penalty_den = 2 * sigma * sigma;
    double* scores = malloc((n ? n : 1) * sizeof *scores);
    if (!scores) abort();
    #pragma omp parallel
    {
        // the reference vector as a lookup table by n-gram id (0 where absent)
        double* lookup = calloc(n_ids ? n_ids : 1, sizeof *lookup);
        if (!lookup) abort();
        #pragma omp for schedule(dynamic, 32)
        for (size_t i = 0; i < n; i++) {
            TfIdf h;
            to_vec(&hyp_counts[i], idf, order, ref_len, &h);
            double score[4] = {0, 0, 0, 0};
            for (size_t r = first_ref[i]; r < first_ref[i + 1]; r++) {
                TfIdf rv;
                to_vec(&ref_counts[r], idf, order, ref_len, &rv);
                for (int k = 0; k < ref_counts[r].n; k++) lookup[ref_counts[r].ids[k]] = rv.vec[k];
                double delta = h.length - rv.length;
                double val[4] = {0, 0, 0, 0};
                for (int k = 0; k < hyp_counts[i].n; k++) {
                    double rvv = lookup[hyp_counts[i].ids[k]];
                    val[order[hyp_counts[i].ids[k]]] += (h.vec[k] < rvv ? h.vec[k] : rvv) * rvv;
                }
                for (int o = 0; o < 4; o++) {
                    if (h.norm[o] != 0 && rv.norm[o] != 0) val[o] /= (h.norm[o] * rv.norm[o]);
                    val[o] *= pow(M_E, -(delta * delta) / penalty_den);
                    score[o] += val[o];
                }
                for (int k = 0; k < ref_counts[r].n; k++) lookup[ref_counts[r].ids[k]] = 0;
                free(rv.vec);
            }
            double avg = np_pairwise_sum(score, 4) / 4.0;
            int n_refs = (int)(first_ref[i + 1] - first_ref[i]);
            avg /= n_refs;
            avg *= 10.0;
            scores[i] = avg;
            free(h.vec);
        }
        free(lookup);
    }
    double mean = n ? np_pairwise_sum(scores, n) / (double)n : 0.0;
    if (per_image) memcpy(per_image, scores, n * sizeof *scores);
    for (size_t r = 0; r < total_refs; r++) free(ref_counts[r].ids), free(ref_counts[r].counts);
    for (size_t i = 0; i < n; i++) free(hyp_counts[i].ids), free(hyp_counts[i].counts);
    free(ref_counts);
    free(hyp_counts);
    free(first_ref);
    free(scores);
    free(idf);
    free(order);
    free(per.caption);
    free(per.image);
    free(per.slot);
    free(per.df);
    ngmap_free(&all);
    free(ids);
    vocab_free(&vocab);
    return mean;
}
