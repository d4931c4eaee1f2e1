// The CLIP-like simulator. See synth.h for the model.
#include "data/synth.h"

#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "data/strmap.h"
#include "kernels/philox.h"

// Philox streams of the world's random vectors (word vectors use their hash, top bit clear).
#define STREAM_TEXT_MEAN 1ull
#define STREAM_GAP_DIR 2ull
#define STREAM_ROTATION 3ull
#define STREAM_CAPTION_NOISE (1ull << 63)
#define STREAM_IMAGE_DETAIL ((1ull << 63) | (1ull << 62))
#define STREAM_GAP_DRAW ((1ull << 63) | (1ull << 61))
#define STREAM_PROMPT_NOISE ((1ull << 63) | (1ull << 60))

static void set_err(char* err, size_t n, const char* fmt, ...) {
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

SynthOptions synth_default_options(void) {
    // Calibrated on the COCO Karpathy val captions at D = 512 against real CLIP ViT-B/32
    // (docs/DATA.md: text-text 0.568, image-image 0.510, unpaired image-text 0.180, matched about 0.3).
    SynthOptions o = {
        .dim = 512,
        .seed = 1234,
        .text_mean = 0.74,
        .text_content = 0.62,
        .text_noise = 0.22,
        .image_detail = 0.25,
        .gap_along = -0.26,
        .gap_across = 1.45,
        .gap_trace = 1.9,
        .gap_decay = 1.0,
    };
    return o;
}

static uint64_t word_hash(const char* s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (h ^ (h >> 31)) & ~(1ull << 63);  // the top bit marks the non-word streams
}

// A unit vector from `stream` (D standard normals, normalised), in double.
static void unit_vector(uint64_t seed, uint64_t stream, int D, double* out) {
    double sq = 0;
    for (int j = 0; j < D; j++) {
        out[j] = philox_normal(seed, stream, (uint64_t)j);
        sq += out[j] * out[j];
    }
    double inv = 1.0 / sqrt(sq);
    for (int j = 0; j < D; j++) out[j] *= inv;
}

static void normalize(double* x, int D) {
    double sq = 0;
    for (int j = 0; j < D; j++) sq += x[j] * x[j];
    double inv = sq > 0 ? 1.0 / sqrt(sq) : 0;
    for (int j = 0; j < D; j++) x[j] *= inv;
}

static const char* const stop_words[] = {
    "a", "an", "the", "of", "on", "in", "at", "to", "with", "and", "or", "is", "are", "was", "were", "be", "being",
    "been", "it", "its", "this", "that", "these", "those", "there", "their", "his", "her", "he", "she", "they", "them",
    "some", "for", "from", "by", "as", "into", "onto", "up", "down", "out", "over", "while", "has", "have", "had",
    "who", "which", "what", "very", "next", "near", "s", "one", "two", "other", "another", "each", "just", "can",
    "shown", "seen",
};

// Content words of a caption (lower-cased ASCII letters and digits; stop words dropped; plurals
// folded to vocabulary entries), as indices into the word table; all words if none is content.
typedef struct {
    StrMap index;     // word -> row of the word table
    char** words;     // [n]
    int n, cap;
    StrMap stops;
} WordTable;

static int word_id(WordTable* t, const char* w) {
    int64_t id = strmap_put(&t->index, w, strlen(w), t->n);
    if (id == t->n) {
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 4096;
            t->words = reallocCheck(t->words, (size_t)t->cap * sizeof(char*));
        }
        t->words[t->n++] = strdupCheck(w);
    }
    return (int)id;
}

// Appends the caption's word ids to *ids (grown), returns the count.
static int caption_words(WordTable* t, const EntityVocab* vocab, const char* caption, int** ids, int* cap) {
    int n = 0, n_all = 0;
    int pass_all = 0;
    for (;;) {
        const unsigned char* p = (const unsigned char*)caption;
        n = 0;
        while (*p) {
            while (*p && !isalnum(*p)) p++;
            if (!*p) break;
            char w[64];
            int len = 0;
            while (*p && isalnum(*p)) {
                if (len < 63) w[len++] = (char)tolower(*p);
                p++;
            }
            w[len] = '\0';
            n_all++;
            if (!pass_all && strmap_get(&t->stops, w, (size_t)len, -1) >= 0) continue;
            char folded[80];
            if (vocab) entity_fold_word(vocab, w, folded, sizeof folded);
            else snprintf(folded, sizeof folded, "%s", w);
            if (n == *cap) {
                *cap = *cap ? *cap * 2 : 64;
                *ids = reallocCheck(*ids, (size_t)*cap * sizeof(int));
            }
            (*ids)[n++] = word_id(t, folded);
        }
        if (n > 0 || pass_all || n_all == 0) return n;
        pass_all = 1;  // only stop words: use them all
    }
}

// normalize(a m + b u + e noise) into out (float), where u = normalize(sum of word vectors).
static void text_embedding(const SynthOptions* o, const double* m, const float* word_vecs, const int* ids, int n,
                           uint64_t noise_stream, double* u, double* tmp, float* out) {
    const int D = o->dim;
    for (int j = 0; j < D; j++) u[j] = 0;
    for (int k = 0; k < n; k++)
        for (int j = 0; j < D; j++) u[j] += word_vecs[(size_t)ids[k] * D + j];
    if (n == 0) unit_vector(o->seed, noise_stream ^ 0x5555ull, D, u);  // a caption without words
    normalize(u, D);
    unit_vector(o->seed, noise_stream, D, tmp);
    for (int j = 0; j < D; j++) tmp[j] = o->text_mean * m[j] + o->text_content * u[j] + o->text_noise * tmp[j];
    normalize(tmp, D);
    for (int j = 0; j < D; j++) out[j] = (float)tmp[j];
}

// Q: a random rotation (rows orthonormal), by modified Gram-Schmidt of a Gaussian matrix.
static void random_rotation(uint64_t seed, int D, double* Q) {
    for (size_t i = 0; i < (size_t)D * D; i++) Q[i] = philox_normal(seed, STREAM_ROTATION, i);
    for (int r = 0; r < D; r++) {
        double* q = Q + (size_t)r * D;
        for (int pass = 0; pass < 2; pass++)  // twice, for orthogonality to rounding
            for (int s = 0; s < r; s++) {
                const double* p = Q + (size_t)s * D;
                double dot = 0;
                for (int j = 0; j < D; j++) dot += q[j] * p[j];
                for (int j = 0; j < D; j++) q[j] -= dot * p[j];
            }
        normalize(q, D);
    }
}

// Mean and covariance (1/N) of d = v - t over every (image, caption) pair, in double, in chunks.
static void pair_moments(const FeatureStore* fs, float* mu_out, float* cov_out) {
    const int D = fs->dim, CHUNK = 4096;
    double* sum = callocCheck((size_t)D, sizeof(double));
    double* C = callocCheck((size_t)D * D, sizeof(double));
    double* A = mallocCheck((size_t)CHUNK * D * sizeof(double));
    long n = 0;
    for (int start = 0; start < fs->n_texts; start += CHUNK) {
        int rows = 0;
        for (int t = start; t < fs->n_texts && t < start + CHUNK; t++) {
            if (fs->image_index[t] < 0) continue;
            const float* v = fs->image_emb + (size_t)fs->image_index[t] * D;
            const float* x = fs->text_emb + (size_t)t * D;
            for (int j = 0; j < D; j++) {
                double d = (double)v[j] - (double)x[j];
                A[(size_t)rows * D + j] = d;
                sum[j] += d;
            }
            rows++;
        }
        if (rows) cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, rows, 1.0, A, D, 1.0, C, D);
        n += rows;
    }
    for (int a = 0; a < D; a++) mu_out[a] = (float)(sum[a] / (double)n);
    for (int a = 0; a < D; a++)
        for (int b = a; b < D; b++) {
            float c = (float)(C[(size_t)a * D + b] / (double)n - (sum[a] / (double)n) * (sum[b] / (double)n));
            cov_out[(size_t)a * D + b] = c;
            cov_out[(size_t)b * D + a] = c;
        }
    free(sum);
    free(C);
    free(A);
}

int synth_generate(const SynthOptions* o, const Corpus* corpus, Split split, const EntityVocab* vocab, FeatureStore* fs,
                   char* err, size_t err_size) {
    memset(fs, 0, sizeof *fs);
    const int D = o->dim;
    if (D < 8 || D > 8192) {
        set_err(err, err_size, "dim %d: expected 8..8192", D);
        return -1;
    }
    if (!(o->gap_trace >= 0) || !(o->gap_decay >= 0) || !(o->text_mean > 0) || !(o->text_content > 0) ||
        !(o->text_noise >= 0) || !(o->image_detail >= 0)) {
        set_err(err, err_size, "simulator weights must be finite and non-negative (text_mean, text_content positive)");
        return -1;
    }
    int n_img = 0, n_txt = 0;
    corpus_count(corpus, split, &n_img, &n_txt);
    if (n_txt == 0) {
        set_err(err, err_size, "the corpus has no captions in split %s", split_name(split));
        return -1;
    }
    fs->dim = D;
    fs->n_images = n_img;
    fs->n_texts = n_txt;
    fs->normalized = 1;
    snprintf(fs->clip_model, sizeof fs->clip_model, "tipcap-synth");
    snprintf(fs->source, sizeof fs->source, "tipcap-synth seed %llu (simulated embeddings, not CLIP)", (unsigned long long)o->seed);
    fs->image_emb = mallocCheck((size_t)n_img * D * sizeof(float));
    fs->image_keys = mallocCheck((size_t)(n_img ? n_img : 1) * sizeof(char*));
    fs->text_emb = mallocCheck((size_t)n_txt * D * sizeof(float));
    fs->captions = mallocCheck((size_t)n_txt * sizeof(char*));
    fs->image_index = mallocCheck((size_t)n_txt * sizeof(int64_t));

    // Captions of the split, their images, and their content words.
    WordTable words = {0};
    strmap_init(&words.index, 1 << 14);
    strmap_init(&words.stops, 128);
    for (size_t i = 0; i < sizeof stop_words / sizeof *stop_words; i++) strmap_put(&words.stops, stop_words[i], strlen(stop_words[i]), 1);
    int* word_off = mallocCheck(((size_t)n_txt + 1) * sizeof(int));
    int* word_ids = NULL;
    int word_cap = 0, total_words = 0;
    int* scratch = NULL;
    int scratch_cap = 0;
    int* image_first = mallocCheck(((size_t)n_img + 1) * sizeof(int));
    int img = 0, txt = 0;
    for (int i = 0; i < corpus->n_images; i++) {
        const CorpusImage* im = &corpus->images[i];
        if (split != SPLIT_ALL && im->split != split) continue;
        fs->image_keys[img] = strdupCheck(im->key);
        image_first[img] = txt;
        for (int c = im->first_caption; c < im->first_caption + im->n_captions; c++) {
            fs->captions[txt] = strdupCheck(corpus->captions[c]);
            fs->image_index[txt] = img;
            int n = caption_words(&words, vocab, corpus->captions[c], &scratch, &scratch_cap);
            if (total_words + n > word_cap) {
                word_cap = (total_words + n) * 2;
                word_ids = reallocCheck(word_ids, (size_t)word_cap * sizeof(int));
            }
            word_off[txt] = total_words;
            if (n) memcpy(word_ids + total_words, scratch, (size_t)n * sizeof(int));
            total_words += n;
            txt++;
        }
        img++;
    }
    word_off[txt] = total_words;
    image_first[img] = txt;
    // Prompts of the vocabulary: "a photo of a {word}".
    int n_voc = vocab ? vocab->n : 0;
    int* prompt_off = mallocCheck(((size_t)n_voc + 1) * sizeof(int));
    int* prompt_ids = NULL;
    int prompt_cap = 0, prompt_total = 0;
    for (int v = 0; v < n_voc; v++) {
        char prompt[512];
        snprintf(prompt, sizeof prompt, "a photo of a %s", vocab->words[v]);
        int n = caption_words(&words, vocab, prompt, &scratch, &scratch_cap);
        if (prompt_total + n > prompt_cap) {
            prompt_cap = (prompt_total + n) * 2;
            prompt_ids = reallocCheck(prompt_ids, (size_t)prompt_cap * sizeof(int));
        }
        prompt_off[v] = prompt_total;
        if (n) memcpy(prompt_ids + prompt_total, scratch, (size_t)n * sizeof(int));
        prompt_total += n;
    }
    prompt_off[n_voc] = prompt_total;
    free(scratch);

    // The world's vectors.
    float* word_vecs = mallocCheck((size_t)(words.n ? words.n : 1) * D * sizeof(float));
#pragma omp parallel
    {
        double* tmp = mallocCheck((size_t)D * sizeof(double));
#pragma omp for schedule(dynamic, 64)
        for (int w = 0; w < words.n; w++) {
            unit_vector(o->seed, word_hash(words.words[w], strlen(words.words[w])), D, tmp);
            for (int j = 0; j < D; j++) word_vecs[(size_t)w * D + j] = (float)tmp[j];
        }
        free(tmp);
    }
    double* m = mallocCheck((size_t)D * sizeof(double));
    double* p = mallocCheck((size_t)D * sizeof(double));
    unit_vector(o->seed, STREAM_TEXT_MEAN, D, m);
    unit_vector(o->seed, STREAM_GAP_DIR, D, p);
    double dot = 0;
    for (int j = 0; j < D; j++) dot += p[j] * m[j];
    for (int j = 0; j < D; j++) p[j] -= dot * m[j];
    normalize(p, D);
    double* Q = mallocCheck((size_t)D * D * sizeof(double));
    random_rotation(o->seed, D, Q);
    double* sqrt_lambda = mallocCheck((size_t)D * sizeof(double));
    double norm = 0;
    for (int k = 0; k < D; k++) norm += pow(k + 1.0, -o->gap_decay);
    for (int k = 0; k < D; k++) sqrt_lambda[k] = sqrt(o->gap_trace * pow(k + 1.0, -o->gap_decay) / norm);
    fs->true_gap_mu = mallocCheck((size_t)D * sizeof(float));
    fs->true_gap_cov = mallocCheck((size_t)D * D * sizeof(float));
    for (int j = 0; j < D; j++) fs->true_gap_mu[j] = (float)(o->gap_along * m[j] + o->gap_across * p[j]);
    {  // Sigma* = Q^T diag(lambda) Q = B^T B with B = diag(sqrt lambda) Q
        double* B = mallocCheck((size_t)D * D * sizeof(double));
        double* S = callocCheck((size_t)D * D, sizeof(double));
        for (int k = 0; k < D; k++)
            for (int j = 0; j < D; j++) B[(size_t)k * D + j] = sqrt_lambda[k] * Q[(size_t)k * D + j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, D, 1.0, B, D, 0.0, S, D);
        for (int a = 0; a < D; a++)
            for (int b = a; b < D; b++)
                fs->true_gap_cov[(size_t)a * D + b] = fs->true_gap_cov[(size_t)b * D + a] = (float)S[(size_t)a * D + b];
        free(B);
        free(S);
    }

    // Texts, then images from the consensus of their captions.
    float* content = mallocCheck((size_t)n_txt * D * sizeof(float));  // u of each caption
#pragma omp parallel
    {
        double* u = mallocCheck((size_t)D * sizeof(double));
        double* tmp = mallocCheck((size_t)D * sizeof(double));
#pragma omp for schedule(dynamic, 64)
        for (int t = 0; t < n_txt; t++) {
            text_embedding(o, m, word_vecs, word_ids + word_off[t], word_off[t + 1] - word_off[t],
                           STREAM_CAPTION_NOISE + (uint64_t)t, u, tmp, fs->text_emb + (size_t)t * D);
            for (int j = 0; j < D; j++) content[(size_t)t * D + j] = (float)u[j];
        }
        free(u);
        free(tmp);
    }
#pragma omp parallel
    {
        double* c = mallocCheck((size_t)D * sizeof(double));
        double* tmp = mallocCheck((size_t)D * sizeof(double));
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < n_img; i++) {
            double* U = tmp;
            for (int j = 0; j < D; j++) U[j] = 0;
            for (int t = image_first[i]; t < image_first[i + 1]; t++)
                for (int j = 0; j < D; j++) U[j] += content[(size_t)t * D + j];
            normalize(U, D);
            unit_vector(o->seed, STREAM_IMAGE_DETAIL + (uint64_t)i, D, c);
            for (int j = 0; j < D; j++) c[j] = o->text_mean * m[j] + o->text_content * U[j] + o->image_detail * c[j];
            normalize(c, D);
            // + g = mu* + Q^T diag(sqrt lambda) z
            for (int j = 0; j < D; j++) c[j] += fs->true_gap_mu[j];
            for (int k = 0; k < D; k++) {
                double zk = sqrt_lambda[k] * philox_normal(o->seed, STREAM_GAP_DRAW + (uint64_t)i, (uint64_t)k);
                const double* q = Q + (size_t)k * D;
                for (int j = 0; j < D; j++) c[j] += zk * q[j];
            }
            normalize(c, D);
            for (int j = 0; j < D; j++) fs->image_emb[(size_t)i * D + j] = (float)c[j];
        }
        free(c);
        free(tmp);
    }
    free(content);
    fs->pair_gap_mu = mallocCheck((size_t)D * sizeof(float));
    fs->pair_gap_cov = mallocCheck((size_t)D * D * sizeof(float));
    pair_moments(fs, fs->pair_gap_mu, fs->pair_gap_cov);
    if (n_voc) {
        fs->n_vocab = n_voc;
        fs->vocab_words = mallocCheck((size_t)n_voc * sizeof(char*));
        fs->vocab_emb = mallocCheck((size_t)n_voc * D * sizeof(float));
        double* u = mallocCheck((size_t)D * sizeof(double));
        double* tmp = mallocCheck((size_t)D * sizeof(double));
        for (int v = 0; v < n_voc; v++) {
            fs->vocab_words[v] = strdupCheck(vocab->words[v]);
            text_embedding(o, m, word_vecs, prompt_ids + prompt_off[v], prompt_off[v + 1] - prompt_off[v],
                           STREAM_PROMPT_NOISE + (uint64_t)v, u, tmp, fs->vocab_emb + (size_t)v * D);
        }
        free(u);
        free(tmp);
    }
    free(Q);
    free(sqrt_lambda);
    free(m);
    free(p);
    free(word_vecs);
    free(word_off);
    free(word_ids);
    free(prompt_off);
    free(prompt_ids);
    free(image_first);
    for (int w = 0; w < words.n; w++) free(words.words[w]);
    free(words.words);
    strmap_free(&words.index);
    strmap_free(&words.stops);
    return 0;
}

static double cosine(const float* a, const float* b, int D) {
    double ab = 0, aa = 0, bb = 0;
    for (int j = 0; j < D; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return ab / sqrt(aa * bb);
}

// Uniform integer in [0, n) from Philox word k of `stream`.
static int64_t pick(uint64_t seed, uint64_t stream, uint64_t k, int64_t n) {
    Philox4x32 r = philox_block(seed, stream, k >> 2);
    return (int64_t)(((uint64_t)r.v[k & 3] * (uint64_t)n) >> 32);
}

void synth_measure(const FeatureStore* fs, uint64_t seed, int n, SynthStats* out) {
    const int D = fs->dim;
    double tt = 0, ii = 0, it = 0, mt = 0, vv = 0;
    int ntt = 0, nii = 0, nit = 0, nmt = 0, nvv = 0;
    for (int k = 0; k < n; k++) {
        uint64_t base = (uint64_t)k * 8;
        if (fs->n_texts > 1) {
            int64_t a = pick(seed, 11, base, fs->n_texts), b = pick(seed, 11, base + 1, fs->n_texts);
            if (a != b) {
                tt += cosine(fs->text_emb + a * D, fs->text_emb + b * D, D);
                ntt++;
            }
        }
        if (fs->n_images > 1) {
            int64_t a = pick(seed, 12, base, fs->n_images), b = pick(seed, 12, base + 1, fs->n_images);
            if (a != b) {
                ii += cosine(fs->image_emb + a * D, fs->image_emb + b * D, D);
                nii++;
            }
            int64_t t = pick(seed, 13, base, fs->n_texts);
            if (fs->image_index[t] >= 0 && fs->image_index[t] != a) {
                it += cosine(fs->image_emb + a * D, fs->text_emb + t * D, D);
                nit++;
            }
        }
        if (fs->n_images > 0) {
            int64_t t = pick(seed, 14, base, fs->n_texts);
            if (fs->image_index[t] >= 0) {
                mt += cosine(fs->image_emb + fs->image_index[t] * D, fs->text_emb + t * D, D);
                nmt++;
            }
        }
        if (fs->n_vocab > 1) {
            int64_t a = pick(seed, 15, base, fs->n_vocab), b = pick(seed, 15, base + 1, fs->n_vocab);
            if (a != b) {
                vv += cosine(fs->vocab_emb + a * D, fs->vocab_emb + b * D, D);
                nvv++;
            }
        }
    }
    out->text_text = ntt ? tt / ntt : 0;
    out->image_image = nii ? ii / nii : 0;
    out->image_text = nit ? it / nit : 0;
    out->matched = nmt ? mt / nmt : 0;
    out->vocab_vocab = nvv ? vv / nvv : 0;
}
