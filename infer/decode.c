#include "infer/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

typedef struct {
    int* tokens;   // [max_len]
    int len;
    double score;  // sum of log-probabilities
} Hyp;

typedef struct {
    Hyp* live;     // [beam]
    int n_live;
    Hyp* done;     // [beam] best closed hypotheses, by normalised score descending
    double* done_score;
    int n_done;
    int finished;
} ImageSearch;

static double normalised(double score, int len, double alpha) { return score / pow((double)len, alpha); }

// The best normalised score any continuation of a live hypothesis can reach (log-probabilities
// only fall, so the bound is the current score at the most favourable length).
static double best_possible(const Hyp* h, const DecodeOptions* opt) {
    if (h->score >= 0) return 0;
    int len = opt->length_penalty > 0 ? opt->max_len : h->len + 1;
    return normalised(h->score, len, opt->length_penalty);
}

static void add_done(ImageSearch* s, const Hyp* h, int beam, double alpha) {
    double ns = normalised(h->score, h->len, alpha);
    if (s->n_done == beam && ns <= s->done_score[beam - 1]) return;
    int pos = s->n_done < beam ? s->n_done++ : beam - 1;
    while (pos > 0 && s->done_score[pos - 1] < ns) {  // keep sorted, stable for equal scores
        s->done[pos].len = s->done[pos - 1].len;
        s->done[pos].score = s->done[pos - 1].score;
        memcpy(s->done[pos].tokens, s->done[pos - 1].tokens, sizeof(int) * (size_t)s->done[pos - 1].len);
        s->done_score[pos] = s->done_score[pos - 1];
        pos--;
    }
    s->done[pos].len = h->len;
    s->done[pos].score = h->score;
    memcpy(s->done[pos].tokens, h->tokens, sizeof(int) * (size_t)h->len);
    s->done_score[pos] = ns;
}

static int is_terminal(int token, const DecodeOptions* opt) {
    return token == opt->eot || (opt->stop_at_period && token == opt->period);
}

// Would appending `token` to h repeat an n-gram already in h?
static int repeats_ngram(const Hyp* h, int token, int n) {
    if (n <= 0 || h->len < n - 1) return 0;
    const int* t = h->tokens;
    int tail = h->len - (n - 1);  // the new n-gram is t[tail .. len) + token
    for (int start = 0; start + n - 1 < h->len; start++) {
        if (start == tail) break;
        int match = t[start + n - 1] == token;
        for (int j = 0; match && j < n - 1; j++) match = t[start + j] == t[tail + j];
        if (match) return 1;
    }
    return 0;
}

typedef struct {
    double score;
    int beam;
    int token;
    float logp;
} Candidate;

static int cmp_candidate(const void* a, const void* b) {
    const Candidate* x = a;
    const Candidate* y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->beam != y->beam) return x->beam - y->beam;
    return x->token - y->token;
}

int decode_topk_needed(const DecodeOptions* opt) { return 2 * opt->beam + 16; }  // + room for banned n-grams

void decode_batch(Model* m, ModelDecoder* d, const ModelBatch* batch, const DecodeOptions* opt, Caption* out) {
    int n = batch->B, beam = opt->beam, k = decode_topk_needed(opt);
    if (k > model_config(m)->vocab_size) k = model_config(m)->vocab_size;
    int rows = n * beam;
    float* values = mallocCheck(sizeof(float) * (size_t)rows * k);
    int* ids = mallocCheck(sizeof(int) * (size_t)rows * k);
    int* src = mallocCheck(sizeof(int) * (size_t)rows);
    int* feed = mallocCheck(sizeof(int) * (size_t)rows);
    Candidate* cands = mallocCheck(sizeof(Candidate) * (size_t)beam * k);
    ImageSearch* search = callocCheck((size_t)n, sizeof(ImageSearch));
    Hyp* next = callocCheck((size_t)beam, sizeof(Hyp));
    for (int j = 0; j < beam; j++) next[j].tokens = mallocCheck(sizeof(int) * (size_t)opt->max_len);
    for (int i = 0; i < n; i++) {
        ImageSearch* s = &search[i];
        s->live = callocCheck((size_t)beam, sizeof(Hyp));
        s->done = callocCheck((size_t)beam, sizeof(Hyp));
        s->done_score = callocCheck((size_t)beam, sizeof(double));
        for (int j = 0; j < beam; j++) {
            s->live[j].tokens = mallocCheck(sizeof(int) * (size_t)opt->max_len);
            s->done[j].tokens = mallocCheck(sizeof(int) * (size_t)opt->max_len);
        }
        s->n_live = 1;  // one empty hypothesis: the prefix
    }

    model_decode_prefix(m, d, batch, k, values, ids);
    int row_stride = 1;  // before the first selection row i holds image i's only hypothesis
    for (int step = 0;; step++) {
        int all_finished = 1;
        for (int i = 0; i < n; i++) {
            ImageSearch* s = &search[i];
            if (s->finished) continue;
            int nc = 0;
            for (int j = 0; j < s->n_live; j++) {
                const Hyp* h = &s->live[j];
                int row = i * row_stride + j;
                for (int c = 0; c < k; c++) {
                    int token = ids[(size_t)row * k + c];
                    if (repeats_ngram(h, token, opt->no_repeat_ngram)) continue;
                    cands[nc++] = (Candidate){h->score + values[(size_t)row * k + c], j, token, values[(size_t)row * k + c]};
                }
            }
            qsort(cands, (size_t)nc, sizeof(Candidate), cmp_candidate);
            int n_next = 0;
            for (int c = 0; c < nc && n_next < beam; c++) {
                const Hyp* h = &s->live[cands[c].beam];
                Hyp* g = &next[n_next];
                memcpy(g->tokens, h->tokens, sizeof(int) * (size_t)h->len);
                g->tokens[h->len] = cands[c].token;
                g->len = h->len + 1;
                g->score = cands[c].score;
                if (is_terminal(cands[c].token, opt) || g->len == opt->max_len) {
                    add_done(s, g, beam, opt->length_penalty);
                    continue;
                }
                src[i * beam + n_next] = i * row_stride + cands[c].beam;
                n_next++;
            }
            for (int j = 0; j < n_next; j++) {  // swap the new live set in
                Hyp t = s->live[j];
                s->live[j] = next[j];
                next[j] = t;
            }
            s->n_live = n_next;
            double best = -INFINITY;
            for (int j = 0; j < n_next; j++) best = fmax(best, best_possible(&s->live[j], opt));
            if (n_next == 0 || (s->n_done == beam && best <= s->done_score[beam - 1])) s->finished = 1;
            all_finished &= s->finished;
        }
        if (all_finished) break;
        // rows of the next step: image i's live hypotheses at i*beam + j; the rest repeat a valid row
        for (int i = 0; i < n; i++) {
            ImageSearch* s = &search[i];
            for (int j = 0; j < beam; j++) {
                if (s->finished || j >= s->n_live) {
                    src[i * beam + j] = i * row_stride;
                    feed[i * beam + j] = opt->eot;
                } else {
                    feed[i * beam + j] = s->live[j].tokens[s->live[j].len - 1];
                }
            }
        }
        int identity = row_stride == beam;  // greedy, or no beam moved: the caches stay as they are
        for (int r = 0; r < rows && identity; r++) identity = src[r] == r;
        if (!identity) model_decode_select(m, d, src, rows);
        row_stride = beam;
        model_decode_step(m, d, feed, k, values, ids);
    }

    for (int i = 0; i < n; i++) {
        ImageSearch* s = &search[i];
        const Hyp* best = &s->done[0];
        int len = best->len;
        while (len > 0 && best->tokens[len - 1] == opt->eot) len--;  // EOT is not part of the caption
        out[i].tokens = mallocCheck(sizeof(int) * (size_t)(len + 1));
        memcpy(out[i].tokens, best->tokens, sizeof(int) * (size_t)len);
        out[i].len = len;
        out[i].score = s->n_done ? s->done_score[0] : -INFINITY;
        for (int j = 0; j < beam; j++) {
            free(s->live[j].tokens);
            free(s->done[j].tokens);
        }
        free(s->live);
        free(s->done);
        free(s->done_score);
    }
    for (int j = 0; j < beam; j++) free(next[j].tokens);
    free(next);
    free(search);
    free(cands);
    free(feed);
    free(src);
    free(ids);
    free(values);
}

void caption_free(Caption* c) {
    free(c->tokens);
    c->tokens = NULL;
    c->len = 0;
}
