#include "infer/prompts.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

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

int prompts_load(const char* path, const FeatureStore* fs, int max_words, ImagePrompts* out, char* err,
                 size_t err_size) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: cannot open", path);
        return -1;
    }
    fclose(f);
    char* text = readFileCheck(path, NULL);
    cJSON* root = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(root)) {
        snprintf(err, err_size, "%s: expected a JSON object {\"image key\": [\"word\", ...]}", path);
        cJSON_Delete(root);
        return -1;
    }
    // per image, the words in file order (an image given twice is an error)
    cJSON** per_image = callocCheck((size_t)fs->n_images + 1, sizeof(cJSON*));
    int rc = 0;
    for (cJSON* item = root->child; item && !rc; item = item->next) {
        int i = features_find_image(fs, item->string);
        if (i < 0) {
            snprintf(err, err_size, "%s: image \"%s\" is not in the feature file", path, item->string);
            rc = -1;
        } else if (per_image[i]) {
            snprintf(err, err_size, "%s: image \"%s\" is given twice", path, item->string);
            rc = -1;
        } else if (!cJSON_IsArray(item)) {
            snprintf(err, err_size, "%s: \"%s\": expected an array of words", path, item->string);
            rc = -1;
        } else if (cJSON_GetArraySize(item) > max_words) {
            snprintf(err, err_size, "%s: \"%s\": %d words, the model takes at most %d", path, item->string,
                     cJSON_GetArraySize(item), max_words);
            rc = -1;
        } else {
            for (cJSON* w = item->child; w && !rc; w = w->next)
                if (!cJSON_IsString(w) || !w->valuestring[0]) {
                    snprintf(err, err_size, "%s: \"%s\": every word must be a non-empty string", path, item->string);
                    rc = -1;
                }
            per_image[i] = item;
        }
    }
    if (!rc) {
        alloc_prompts(out, fs->n_images);
        size_t n_words = 0;
        for (int i = 0; i < fs->n_images; i++) {
            if (per_image[i]) {
                out->words = reallocCheck(out->words, sizeof(char*) * (n_words + (size_t)cJSON_GetArraySize(per_image[i]) + 1));
                for (cJSON* w = per_image[i]->child; w; w = w->next) out->words[n_words++] = strdupCheck(w->valuestring);
            }
            out->offsets[i + 1] = (int)n_words;
        }
    }
    free(per_image);
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
    char err[256];
    for (int r = 0; r < B; r++) {
        int image = first + r, used = 0;
        for (int j = p->offsets[image]; j < p->offsets[image + 1] && used < M; j++) {
            size_t len = strlen(p->words[j]);
            char* spaced = mallocCheck(len + 2);
            spaced[0] = ' ';
            memcpy(spaced + 1, p->words[j], len + 1);
            long n = tokenizer_encode(tok, spaced, len + 1, &ids, &ids_cap, err, sizeof err);
            free(spaced);
            if (n <= 0) FATAL("prompt word \"%s\": %s", p->words[j], n < 0 ? err : "no tokens");
            if (token_vocab_encode(vocab, ids, (size_t)n) >= 0)
                FATAL("prompt word \"%s\": a token of it is not in the model's vocabulary (trained with model.vocab = "
                      "corpus on captions that never use it)", p->words[j]);
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
