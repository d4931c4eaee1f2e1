// BLEU-1..4 as pycocoevalcap's BleuScorer computes it: per image, clipped n-gram counts against
// the maximum count over the references and the 'closest' reference length (ties to the shorter);
// the corpus score from the summed statistics; 1e-15 / 1e-9 guard the divisions.
#include <math.h>
#include <stdlib.h>

#include "eval/eval.h"
#include "eval/ngrams.h"

static const double TINY = 1e-15, SMALL = 1e-9;

// Scores from statistics exactly as compute_score does it (the products accumulate over n).
static void bleu_from_stats(const BleuStats* s, double out[4]) {
    double bleu = 1.0;
    for (int k = 0; k < 4; k++) {
        bleu *= (s->correct[k] + TINY) / (s->guess[k] + SMALL);
        out[k] = pow(bleu, 1.0 / (k + 1));
    }
    double ratio = (s->testlen + TINY) / (s->reflen + SMALL);
    if (ratio < 1)
        for (int k = 0; k < 4; k++) out[k] *= exp(1 - 1 / ratio);
}

void bleu_score(const EvalImage* images, size_t n, double corpus[4], double* per_image, BleuStats* total) {
    Vocab vocab;
    vocab_init(&vocab);
    NgramMap refmax, counts, refcounts;
    ngmap_init(&refmax, 256);
    ngmap_init(&counts, 64);
    ngmap_init(&refcounts, 64);
    uint32_t* ids = NULL;
    size_t cap = 0;
    BleuStats sum = {0};
    for (size_t i = 0; i < n; i++) {
        const EvalImage* im = &images[i];
        ngmap_clear(&refmax);
        int* reflens = malloc((size_t)(im->n_refs ? im->n_refs : 1) * sizeof *reflens);
        if (!reflens) abort();
        for (int r = 0; r < im->n_refs; r++) {
            int len = vocab_split(&vocab, im->refs[r], &ids, &cap);
            reflens[r] = len;
            ngmap_clear(&refcounts);
            ngmap_count(&refcounts, ids, len);
            for (size_t k = 0; k < refcounts.n; k++) {
                double* v = ngmap_get(&refmax, refcounts.keys[k]);
                if (refcounts.vals[k] > *v) *v = refcounts.vals[k];
            }
        }
        int testlen = vocab_split(&vocab, im->hyp, &ids, &cap);
        ngmap_clear(&counts);
        ngmap_count(&counts, ids, testlen);
        BleuStats s = {0};
        s.testlen = testlen;
        int best = 0;
        for (int r = 0; r < im->n_refs; r++) {
            int d = abs(reflens[r] - testlen), db = abs(reflens[best] - testlen);
            if (d < db || (d == db && reflens[r] < reflens[best])) best = r;
        }
        s.reflen = im->n_refs ? reflens[best] : 0;
        for (int k = 0; k < 4; k++) s.guess[k] = testlen - k > 0 ? testlen - k : 0;
        for (size_t k = 0; k < counts.n; k++) {
            int order = (int)(counts.keys[k] >> 120);
            double ref = ngmap_find(&refmax, counts.keys[k]);
            s.correct[order - 1] += ref < counts.vals[k] ? ref : counts.vals[k];
        }
        free(reflens);
        if (per_image) bleu_from_stats(&s, per_image + 4 * i);
        sum.testlen += s.testlen;
        sum.reflen += s.reflen;
        for (int k = 0; k < 4; k++) {
            sum.guess[k] += s.guess[k];
            sum.correct[k] += s.correct[k];
        }
    }
    bleu_from_stats(&sum, corpus);
    if (total) *total = sum;
    free(ids);
    ngmap_free(&refmax);
    ngmap_free(&counts);
    ngmap_free(&refcounts);
    vocab_free(&vocab);
}
