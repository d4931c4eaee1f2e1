// SPICE-approx: a native stand-in for SPICE when its Java pipeline (Stanford CoreNLP 3.6.0 and
// spice-1.0.jar) is not available. It is NOT SPICE and is always reported as SPICE-approx.
//
// SPICE parses each caption into a scene graph and scores F1 over its tuples (objects,
// attribute-object pairs, subject-relation-object triples) against the union of the
// references' graphs, matching tuples exactly or through WordNet synonyms. Without a
// dependency parser this approximation takes:
//   objects     content words (not in METEOR's function-word list, not a verb form ending in -ing)
//   attributes  (modifier, object) for adjacent content words
//   relations   (object, function word, object) for content words around one function word
// and matches a tuple when each element is equal or shares a WordNet synset (METEOR's synsets).
// docs/EVAL.md gives how far the numbers land from SPICE's published ones.
#include <stdlib.h>
#include <string.h>

#include "eval/meteor_internal.h"

typedef struct {
    int kind;        // 1 object, 2 attribute pair, 3 relation triple
    int w[3];        // word ids
} Tuple;

typedef struct {
    Tuple* t;
    int n, cap;
} Tuples;

static void add_tuple(Tuples* ts, int kind, int a, int b, int c) {
    for (int i = 0; i < ts->n; i++)
        if (ts->t[i].kind == kind && ts->t[i].w[0] == a && ts->t[i].w[1] == b && ts->t[i].w[2] == c) return;
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? 2 * ts->cap : 32;
        ts->t = realloc(ts->t, (size_t)ts->cap * sizeof *ts->t);
        if (!ts->t) abort();
    }
    ts->t[ts->n++] = (Tuple){kind, {a, b, c}};
}

typedef struct {
    const Meteor* m;
    Vocab words;
    int** syn;
    int* n_syn;
    unsigned char* content;
    size_t cap;
} Lexicon;

static int word_id(Lexicon* lx, const char* w, size_t n) {
    long id = vocab_lookup(&lx->words, w, n);
    if (id >= 0) return (int)id;
    id = vocab_add(&lx->words, w, n);
    if ((size_t)id >= lx->cap) {
        lx->cap = lx->cap ? 2 * lx->cap : 1024;
        lx->syn = realloc(lx->syn, lx->cap * sizeof *lx->syn);
        lx->n_syn = realloc(lx->n_syn, lx->cap * sizeof *lx->n_syn);
        lx->content = realloc(lx->content, lx->cap);
        if (!lx->syn || !lx->n_syn || !lx->content) abort();
    }
    const char* word = lx->words.words[id];
    long sid = lx->m ? vocab_lookup(&lx->m->syn_words, word, n) : -1;
    lx->syn[id] = sid >= 0 ? lx->m->synsets[sid] : NULL;
    lx->n_syn[id] = sid >= 0 ? lx->m->n_synsets[sid] : 0;
    int function = lx->m && vocab_lookup(&lx->m->function_words, word, n) >= 0;
    int gerund = n > 4 && !strcmp(word + n - 3, "ing");
    lx->content[id] = (unsigned char)(!function && !gerund);
    return (int)id;
}

static void caption_tuples(Lexicon* lx, const char* s, Tuples* out) {
    int ids[256], n = 0;
    const char* p = s;
    while (*p && n < 256) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char* e = p;
        while (*e && *e != ' ') e++;
        ids[n++] = word_id(lx, p, (size_t)(e - p));
        p = e;
    }
    for (int i = 0; i < n; i++) {
        if (!lx->content[ids[i]]) continue;
        add_tuple(out, 1, ids[i], -1, -1);
        if (i + 1 < n && lx->content[ids[i + 1]]) add_tuple(out, 2, ids[i], ids[i + 1], -1);
        if (i + 2 < n && !lx->content[ids[i + 1]] && lx->content[ids[i + 2]]) add_tuple(out, 3, ids[i], ids[i + 1], ids[i + 2]);
    }
}

static int words_match(const Lexicon* lx, int a, int b) {
    if (a == b) return 1;
    if (a < 0 || b < 0) return 0;
    const int *x = lx->syn[a], *y = lx->syn[b];
    int i = 0, j = 0;
    while (i < lx->n_syn[a] && j < lx->n_syn[b]) {
        if (x[i] == y[j]) return 1;
        if (x[i] < y[j]) i++;
        else j++;
    }
    return 0;
}

static int tuple_in(const Lexicon* lx, const Tuple* t, const Tuples* set) {
    for (int i = 0; i < set->n; i++) {
        const Tuple* u = &set->t[i];
        if (u->kind == t->kind && words_match(lx, t->w[0], u->w[0]) && words_match(lx, t->w[1], u->w[1]) &&
            words_match(lx, t->w[2], u->w[2]))
            return 1;
    }
    return 0;
}

double spice_approx_score(const Meteor* m, const EvalImage* images, size_t n, double* per_image) {
    Lexicon lx;
    memset(&lx, 0, sizeof lx);
    lx.m = m;
    vocab_init(&lx.words);
    double* f = malloc((n ? n : 1) * sizeof *f);
    if (!f) abort();
    for (size_t i = 0; i < n; i++) {
        Tuples cand = {NULL, 0, 0}, refs = {NULL, 0, 0};
        caption_tuples(&lx, images[i].hyp, &cand);
        for (int r = 0; r < images[i].n_refs; r++) caption_tuples(&lx, images[i].refs[r], &refs);
        int tp_c = 0, tp_r = 0;
        for (int k = 0; k < cand.n; k++) tp_c += tuple_in(&lx, &cand.t[k], &refs);
        for (int k = 0; k < refs.n; k++) tp_r += tuple_in(&lx, &refs.t[k], &cand);
        double prec = cand.n ? (double)tp_c / cand.n : 0, rec = refs.n ? (double)tp_r / refs.n : 0;
        f[i] = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0;
        free(cand.t);
        free(refs.t);
    }
    double mean = n ? np_pairwise_sum(f, n) / (double)n : 0;
    if (per_image) memcpy(per_image, f, n * sizeof *f);
    free(f);
    free(lx.syn);
    free(lx.n_syn);
    free(lx.content);
    vocab_free(&lx.words);
    return mean;
}
