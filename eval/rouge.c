// ROUGE-L as pycocoevalcap's Rouge: tokens from splitting on single spaces (so doubled spaces
// give empty tokens, as in the toolkit), LCS against each reference, the maximum precision and
// the maximum recall taken independently over the references, F with beta = 1.2.
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

typedef struct {
    const char* s;
    size_t len;
} Tok;

static int split_single_space(const char* s, Tok** out, size_t* cap) {
    int n = 0;
    const char* p = s;
    for (;;) {
        const char* e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if ((size_t)n == *cap) {
            *cap = *cap ? 2 * *cap : 64;
            *out = realloc(*out, *cap * sizeof **out);
            if (!*out) abort();
        }
        (*out)[n].s = p;
        (*out)[n].len = len;
        n++;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

static int tok_eq(const Tok* a, const Tok* b) { return a->len == b->len && !memcmp(a->s, b->s, a->len); }

static int lcs(const Tok* a, int na, const Tok* b, int nb, int* row) {
    // row[j]: LCS of a[0..i) and b[0..j), one row at a time
    memset(row, 0, (size_t)(nb + 1) * sizeof *row);
    for (int i = 1; i <= na; i++) {
        int diag = 0;
        for (int j = 1; j <= nb; j++) {
            int up = row[j];
            row[j] = tok_eq(&a[i - 1], &b[j - 1]) ? diag + 1 : (row[j] > row[j - 1] ? row[j] : row[j - 1]);
            diag = up;
        }
    }
    return row[nb];
}

double rouge_l_image(const char* hyp, char* const* refs, int n_refs) {
    const double beta = 1.2;
    Tok *c = NULL, *r = NULL;
    size_t cc = 0, rc = 0;
    int nc = split_single_space(hyp, &c, &cc);
    double prec_max = 0, rec_max = 0;
    for (int k = 0; k < n_refs; k++) {
        int nr = split_single_space(refs[k], &r, &rc);
        int* row = malloc((size_t)(nc + 1) * sizeof *row);
        if (!row) abort();
        int l = lcs(r, nr, c, nc, row);
        free(row);
        double prec = (double)l / nc, rec = (double)l / nr;
        if (k == 0 || prec > prec_max) prec_max = prec;
        if (k == 0 || rec > rec_max) rec_max = rec;
    }
    free(c);
    free(r);
    if (prec_max != 0 && rec_max != 0)
        return ((1 + beta * beta) * prec_max * rec_max) / (rec_max + beta * beta * prec_max);
    return 0.0;
}

double rouge_l_score(const EvalImage* images, size_t n, double* per_image) {
    double* scores = malloc((n ? n : 1) * sizeof *scores);
    if (!scores) abort();
    #pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < n; i++) scores[i] = rouge_l_image(images[i].hyp, images[i].refs, images[i].n_refs);
    double mean = n ? np_pairwise_sum(scores, n) / (double)n : 0.0;
    if (per_image) memcpy(per_image, scores, n * sizeof *scores);
    free(scores);
    return mean;
}
