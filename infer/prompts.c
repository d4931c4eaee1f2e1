#include "infer/prompts.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/config.h"
#include "infer/results.h"

static void alloc_prompts(ImagePrompts* p, int n_images) {
    p->n_images = n_images;
    p->offsets = callocCheck((size_t)n_images + 1, sizeof(int));
    p->words = NULL;
}

void prompts_none(const FeatureStore* fs, ImagePrompts* out) { alloc_prompts(out, fs->n_images); }

typedef struct {
    double p;
    int word;
} Scored;

static int cmp_scored(const void* a, const void* b) {
    const Scored* x = a;
    const Scored* y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->word - y->word;
}

int prompts_auto(const FeatureStore* fs, int max_words, double temperature, double threshold, ImagePrompts* out,
                 char* err, size_t err_size) {
    if (fs->n_vocab == 0) {
        snprintf(err, err_size, "automatic prompts need /vocab/words and /vocab/embeddings in the feature file");
        return -1;
    }
    int D = fs->dim, V = fs->n_vocab;
    alloc_prompts(out, fs->n_images);
    double* vocab_norm = mallocCheck(sizeof(double) * (size_t)V);
    for (int w = 0; w < V; w++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)fs->vocab_emb[(size_t)w * D + d] * fs->vocab_emb[(size_t)w * D + d];
        vocab_norm[w] = sqrt(s);
    }
    Scored* scored = mallocCheck(sizeof(Scored) * (size_t)V);
    size_t cap = 0, n_words = 0;
    for (int i = 0; i < fs->n_images; i++) {
        const float* v = fs->image_emb + (size_t)i * D;
        double vn = 0, max_logit = -INFINITY;
        for (int d = 0; d < D; d++) vn += (double)v[d] * v[d];
        vn = sqrt(vn);
        for (int w = 0; w < V; w++) {
            double dot = 0;
            for (int d = 0; d < D; d++) dot += (double)v[d] * fs->vocab_emb[(size_t)w * D + d];
            scored[w] = (Scored){dot / (vn * vocab_norm[w]) / temperature, w};
            max_logit = fmax(max_logit, scored[w].p);
        }
        double z = 0;
        for (int w = 0; w < V; w++) z += exp(scored[w].p - max_logit);
        for (int w = 0; w < V; w++) scored[w].p = exp(scored[w].p - max_logit) / z;
        qsort(scored, (size_t)V, sizeof(Scored), cmp_scored);
        for (int j = 0; j < max_words && j < V && scored[j].p >= threshold; j++) {
            if (n_words == cap) out->words = reallocCheck(out->words, sizeof(char*) * (cap = cap ? 2 * cap : 256));
            out->words[n_words++] = strdupCheck(fs->vocab_words[scored[j].word]);
        }
        out->offsets[i + 1] = (int)n_words;
    }
    free(scored);
    free(vocab_norm);
    return 0;
}

void image_lookup_init(ImageLookup* l, const FeatureStore* fs) {
    strmap_init(&l->by_key, (size_t)fs->n_images);
    strmap_init(&l->by_id, (size_t)fs->n_images);
    for (int i = 0; i < fs->n_images; i++) {
        strmap_put(&l->by_key, fs->image_keys[i], strlen(fs->image_keys[i]), i);
        long long id = coco_image_id(fs->image_keys[i]);
        char buf[32];
        if (id >= 0) strmap_put(&l->by_id, buf, (size_t)snprintf(buf, sizeof buf, "%lld", id), i);
    }
}

int image_lookup_find(const ImageLookup* l, const char* name) {
    int i = (int)strmap_get(&l->by_key, name, strlen(name), -1);
    if (i >= 0 || !isdigit((unsigned char)name[0])) return i;
    char* end;
    errno = 0;
    long long id = strtoll(name, &end, 10);
    if (*end || errno) return -1;
    char buf[32];
    return (int)strmap_get(&l->by_id, buf, (size_t)snprintf(buf, sizeof buf, "%lld", id), -1);
}

void image_lookup_free(ImageLookup* l) {
    strmap_free(&l->by_key);
    strmap_free(&l->by_id);
}

char* prompt_word_normalize(const char* word) {
    char* out = mallocCheck(strlen(word) + 1);
    size_t n = 0;
    for (const char* p = word; *p; p++) {
        if (isspace((unsigned char)*p)) {
            if (n && out[n - 1] != ' ') out[n++] = ' ';
        } else {
            out[n++] = (char)tolower((unsigned char)*p);
        }
    }
    if (n && out[n - 1] == ' ') n--;
    out[n] = '\0';
    return out;
}

// The model's ids of the GPT-2 tokens of " word" into *ids; their count, or -1 with err.
static long word_tokens(const char* word, Tokenizer* tok, const TokenVocab* vocab, int32_t** ids, size_t* ids_cap,
                        char* err, size_t err_size) {
    size_t len = strlen(word);
    char* spaced = mallocCheck(len + 2);
    spaced[0] = ' ';
    memcpy(spaced + 1, word, len + 1);
    char why[256];
    long n = tokenizer_encode(tok, spaced, len + 1, ids, ids_cap, why, sizeof why);
    free(spaced);
    if (n <= 0) {
        snprintf(err, err_size, "word \"%s\": %s", word, n < 0 ? why : "no tokens");
        return -1;
    }
    if (token_vocab_encode(vocab, *ids, (size_t)n) >= 0) {
        snprintf(err, err_size, "word \"%s\": the model cannot spell it (a token of it is not in its vocabulary: "
                 "trained with model.vocab = corpus on captions that never use it)", word);
        return -1;
    }
    return n;
}

int prompt_words_check(const char* const* words, int n_words, int max_words, Tokenizer* tok, const TokenVocab* vocab,
                       char* err, size_t err_size) {
    if (n_words > max_words) {
        snprintf(err, err_size, "%d words, the model takes at most %d", n_words, max_words);
        return -1;
    }
    int32_t* ids = NULL;
    size_t cap = 0;
    int rc = 0;
    for (int j = 0; j < n_words && !rc; j++)
        if (word_tokens(words[j], tok, vocab, &ids, &cap, err, err_size) < 0) rc = -1;
    free(ids);
    return rc;
}

int prompts_load(const char* path, const FeatureStore* fs, const ImageLookup* lookup, int max_words, Tokenizer* tok,
                 const TokenVocab* vocab, ImagePrompts* out, int* n_skipped, char* err, size_t err_size) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    fclose(f);
    char* text = readFileCheck(path, NULL);
    cJSON* root = cJSON_ParseWithOpts(text, NULL, 1);
    if (!root) {
        int line, col;
        json_line_col(text, cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : text, &line, &col);
        snprintf(err, err_size, "%s:%d:%d: malformed JSON", path, line, col);
        free(text);
        return -1;
    }
    free(text);
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_size, "%s: expected a JSON object {\"image key\": [\"word\", ...]}", path);
        cJSON_Delete(root);
        return -1;
    }
    // per image, its normalized words (an image given twice, by key or by id, is an error)
    char*** per_image = callocCheck((size_t)fs->n_images + 1, sizeof(char**));
    int* n_per_image = callocCheck((size_t)fs->n_images + 1, sizeof(int));
    int rc = 0, total = 0;
    *n_skipped = 0;
    char why[512];
    for (cJSON* item = root->child; item && !rc; item = item->next) {
        int i = image_lookup_find(lookup, item->string);
        int n = cJSON_GetArraySize(item);
        if (i < 0) {
            ++*n_skipped;
            continue;
        }
        rc = -1;
        if (per_image[i]) {
            snprintf(err, err_size, "%s: image \"%s\": given twice (as \"%s\" or its COCO id)", path, item->string,
                     fs->image_keys[i]);
        } else if (!cJSON_IsArray(item)) {
            snprintf(err, err_size, "%s: image \"%s\": expected an array of words", path, item->string);
        } else {
            per_image[i] = callocCheck((size_t)n + 1, sizeof(char*));
            rc = 0;
            for (cJSON* w = item->child; w && !rc; w = w->next) {
                char* word = cJSON_IsString(w) ? prompt_word_normalize(w->valuestring) : NULL;
                if (!word || !word[0]) {
                    snprintf(err, err_size, "%s: image \"%s\": every word must be a non-empty string", path, item->string);
                    rc = -1;
                    free(word);
                } else {
                    per_image[i][n_per_image[i]++] = word;
                }
            }
            if (!rc && prompt_words_check((const char* const*)per_image[i], n_per_image[i], max_words, tok, vocab, why,
                                          sizeof why)) {
                snprintf(err, err_size, "%s: image \"%s\": %s", path, item->string, why);
                rc = -1;
            }
            total += n_per_image[i];
        }
    }
    if (!rc) {
        alloc_prompts(out, fs->n_images);
        out->words = mallocCheck(sizeof(char*) * ((size_t)total + 1));
        int n_words = 0;
        for (int i = 0; i < fs->n_images; i++) {
            for (int j = 0; j < n_per_image[i]; j++) out->words[n_words++] = per_image[i][j];
            n_per_image[i] = 0;  // moved
            out->offsets[i + 1] = n_words;
        }
    }
    for (int i = 0; i < fs->n_images; i++) {
        for (int j = 0; j < n_per_image[i]; j++) free(per_image[i][j]);
        free(per_image[i]);
    }
    free(per_image);
    free(n_per_image);
    cJSON_Delete(root);
    return rc;
}

void prompts_set(ImagePrompts* p, int image, const char* const* words, int n_words) {
    int total = p->offsets[p->n_images];
    int old = p->offsets[image + 1] - p->offsets[image];
    for (int j = p->offsets[image]; j < p->offsets[image + 1]; j++) free(p->words[j]);
    int new_total = total - old + n_words;
    char** w = mallocCheck(sizeof(char*) * (size_t)(new_total + 1));
    int at = 0;
    for (int i = 0; i < p->n_images; i++) {
        int begin = p->offsets[i], end = p->offsets[i + 1];
        p->offsets[i] = at;
        if (i == image)
            for (int j = 0; j < n_words; j++) w[at++] = strdupCheck(words[j]);
        else
            for (int j = begin; j < end; j++) w[at++] = p->words[j];
    }
    p->offsets[p->n_images] = at;
    free(p->words);
    p->words = w;
}

void prompts_free(ImagePrompts* p) {
    if (p->offsets)
        for (int j = 0; j < p->offsets[p->n_images]; j++) free(p->words[j]);
    free(p->words);
    free(p->offsets);
    memset(p, 0, sizeof *p);
}

static void* grow(void* ptr, size_t* cap, size_t need, size_t elem) {
    if (need <= *cap) return ptr;
    *cap = need * 2;
    return reallocCheck(ptr, *cap * elem);
}

void prompts_fill_batch(const ImagePrompts* p, int first, int B, int M, Tokenizer* tok, const TokenVocab* vocab,
                        PromptBuffers* buf, ModelBatch* mb) {
    buf->prompts = grow(buf->prompts, &buf->cap_prompts, (size_t)B * M + 1, sizeof(int));
    buf->bag_offsets = grow(buf->bag_offsets, &buf->cap_bags, (size_t)B * M + 1, sizeof(int));
    int n_bags = 0, n_ids = 0;
    buf->bag_offsets[0] = 0;
    int32_t* ids = NULL;
    size_t ids_cap = 0;
    char err[512];
    for (int r = 0; r < B; r++) {
        int image = first + r, used = 0;
        for (int j = p->offsets[image]; j < p->offsets[image + 1] && used < M; j++) {
            long n = word_tokens(p->words[j], tok, vocab, &ids, &ids_cap, err, sizeof err);
            if (n < 0) FATAL("prompt %s", err);
            buf->bag_ids = grow(buf->bag_ids, &buf->cap_ids, (size_t)(n_ids + n), sizeof(int));
            for (long t = 0; t < n; t++) buf->bag_ids[n_ids++] = ids[t];
            buf->prompts[r * M + used++] = n_bags;
            buf->bag_offsets[++n_bags] = n_ids;
        }
        for (int j = used; j < M; j++) buf->prompts[r * M + j] = -1;
    }
    free(ids);
    if (!buf->bag_ids) buf->bag_ids = grow(buf->bag_ids, &buf->cap_ids, 1, sizeof(int));
    mb->M = M;
    mb->prompts = buf->prompts;
    mb->n_bags = n_bags;
    mb->bag_offsets = buf->bag_offsets;
    mb->bag_ids = buf->bag_ids;
}

void prompt_buffers_free(PromptBuffers* buf) {
    free(buf->prompts);
    free(buf->bag_offsets);
    free(buf->bag_ids);
    memset(buf, 0, sizeof *buf);
}
