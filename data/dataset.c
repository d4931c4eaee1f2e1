// Training-side dataset assembly, batches, shuffling, sharding, positions. See dataset.h.
#include "data/dataset.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "data/strmap.h"
#include "kernels/philox.h"

static void set_err(char* err, size_t n, const char* fmt, ...) {
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

static int cmp_int32(const void* a, const void* b) {
    int32_t x = *(const int32_t*)a, y = *(const int32_t*)b;
    return (x > y) - (x < y);
}

int length_percentile(const int32_t* lengths, int n, double p) {
    if (n <= 0) return 0;
    int32_t* sorted = mallocCheck((size_t)n * sizeof(int32_t));
    memcpy(sorted, lengths, (size_t)n * sizeof(int32_t));
    qsort(sorted, (size_t)n, sizeof(int32_t), cmp_int32);
    long rank = (long)((p / 100.0) * n + 0.999999999);  // nearest rank: ceil(p/100 * n)
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    int v = sorted[rank - 1];
    free(sorted);
    return v;
}

// "key\x1Fcaption": the pairing key of a caption with its image (key "" for rows without image).
static char* pair_key(const char* image_key, const char* caption, size_t* len) {
    size_t a = strlen(image_key), b = strlen(caption);
    char* k = mallocCheck(a + b + 2);
    memcpy(k, image_key, a);
    k[a] = '\x1F';
    memcpy(k + a + 1, caption, b + 1);
    *len = a + b + 1;
    return k;
}

// Leading and trailing white space of a raw caption is not trained on ("road. " -> "road.").
static void trimmed(const char* s, const char** start, size_t* len) {
    size_t n = strlen(s), a = 0;
    while (a < n && (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r')) a++;
    while (n > a && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    *start = s + a;
    *len = n - a;
}

void dataset_free(Dataset* ds) {
    free(ds->tokens);
    free(ds->lengths);
    free(ds->text_rows);
    free(ds->entity_offsets);
    free(ds->entities);
    free(ds->corpus_caption);
    memset(ds, 0, sizeof *ds);
}

int dataset_build(const Corpus* corpus, Split split, const FeatureStore* fs, Tokenizer* tok, const EntityVocab* vocab,
                  const DatasetOptions* opt, Dataset* ds, char* err, size_t err_size) {
    memset(ds, 0, sizeof *ds);
    DatasetOptions o = opt ? *opt : DATASET_OPTIONS_DEFAULT;
    int n = 0;
    corpus_count(corpus, split, NULL, &n);
    // Rows of the feature store by (image key, caption); rows of one key chained in file order.
    StrMap rows;
    strmap_init(&rows, (size_t)fs->n_texts);
    int64_t* next = mallocCheck((size_t)(fs->n_texts ? fs->n_texts : 1) * sizeof(int64_t));
    int64_t* tail = mallocCheck((size_t)(fs->n_texts ? fs->n_texts : 1) * sizeof(int64_t));
    unsigned char* used = callocCheck((size_t)(fs->n_texts ? fs->n_texts : 1), 1);
    for (int r = 0; r < fs->n_texts; r++) {
        size_t kl;
        char* k = pair_key(fs->image_index[r] >= 0 ? fs->image_keys[fs->image_index[r]] : "", fs->captions[r], &kl);
        int64_t head = strmap_put(&rows, k, kl, r);
        next[r] = -1;
        if (head == r) tail[r] = r;
        else {
            next[tail[head]] = r;
            tail[head] = r;
        }
        free(k);
    }
    free(tail);

    ds->n = n;
    ds->dim = fs->dim;
    ds->text_emb = fs->text_emb;
    size_t n_rows = (size_t)(n ? n : 1);
    ds->text_rows = mallocCheck(n_rows * sizeof(int64_t));
    ds->corpus_caption = mallocCheck(n_rows * sizeof(int32_t));
    ds->lengths = mallocCheck(n_rows * sizeof(int32_t));
    ds->entity_offsets = callocCheck((size_t)n + 1, sizeof(int32_t));
    int32_t** caption_ids = mallocCheck((size_t)(n ? n : 1) * sizeof(int32_t*));
    int status = 0, k = 0;
    size_t ent_cap = 0;
    for (int i = 0; i < corpus->n_images && status == 0; i++) {
        const CorpusImage* im = &corpus->images[i];
        if (split != SPLIT_ALL && im->split != split) continue;
        for (int c = im->first_caption; c < im->first_caption + im->n_captions; c++) {
            const char* cap = corpus->captions[c];
            int64_t head = -1;
            for (int pass = 0; pass < 2 && head < 0; pass++) {
                size_t kl;
                char* key = pair_key(pass == 0 ? im->key : "", cap, &kl);
                head = strmap_get(&rows, key, kl, -1);
                free(key);
            }
            if (head < 0) {
                set_err(err, err_size, "the feature store has no /texts row for caption %d of image \"%s\" (\"%.200s\")",
                        c - im->first_caption, im->key, cap);
                status = -1;
                break;
            }
            int64_t r = head;  // the first row of this key not used yet, else the first one
            while (r >= 0 && used[r]) r = next[r];
            if (r < 0) r = head;
            used[r] = 1;
            ds->text_rows[k] = r;
            ds->corpus_caption[k] = c;
            const char* s;
            size_t len;
            trimmed(cap, &s, &len);
            int32_t* ids = NULL;
            size_t ids_cap = 0;
            long m = tokenizer_encode(tok, s, len, &ids, &ids_cap, err, err_size);
            if (m < 0) {
                char why[256];
                snprintf(why, sizeof why, "%s", err);
                set_err(err, err_size, "caption %d of image \"%s\": %s", c - im->first_caption, im->key, why);
                free(ids);
                status = -1;
                break;
            }
            caption_ids[k] = ids;
            ds->lengths[k] = (int32_t)m;
            int32_t found[64];
            int ne = vocab ? entities_extract(vocab, cap, found, 64) : 0;
            if (ne > 64) ne = 64;
            if ((size_t)ds->entity_offsets[k] + (size_t)ne > ent_cap) {
                ent_cap = ((size_t)ds->entity_offsets[k] + (size_t)ne) * 2 + 64;
                ds->entities = reallocCheck(ds->entities, ent_cap * sizeof(int32_t));
            }
            if (ne) memcpy(ds->entities + ds->entity_offsets[k], found, (size_t)ne * sizeof(int32_t));
            ds->entity_offsets[k + 1] = ds->entity_offsets[k] + ne;
            k++;
        }
    }
    strmap_free(&rows);
    free(next);
    free(used);
    if (status == 0) {
        int L = o.max_len > 0 ? o.max_len : length_percentile(ds->lengths, n, o.len_percentile);
        if (L < 1) L = 1;
        ds->max_len = L;
        ds->tokens = mallocCheck(n_rows * (size_t)L * sizeof(int32_t));
        for (int i = 0; i < n; i++) {
            int m = ds->lengths[i];
            if (m > L) {
                ds->n_truncated++;
                m = L;
                ds->lengths[i] = L;
            }
            int32_t* row = ds->tokens + (size_t)i * L;
            memcpy(row, caption_ids[i], (size_t)m * sizeof(int32_t));
            for (int j = m; j < L; j++) row[j] = -1;
        }
    }
    for (int i = 0; i < k; i++) free(caption_ids[i]);
    free(caption_ids);
    if (status != 0) dataset_free(ds);
    return status;
}

// ---------------------------------------------------------------- batches

void batch_alloc(Batch* b, int capacity, int K, const Dataset* ds) {
    if (K < 1 || capacity < 0) FATAL("a batch needs K >= 1 prefix slots (got %d) and capacity >= 0 (got %d)", K, capacity);
    memset(b, 0, sizeof *b);
    b->capacity = capacity;
    b->K = K;
    b->L = ds->max_len;
    b->D = ds->dim;
    size_t c = (size_t)(capacity ? capacity : 1);
    b->tokens = mallocCheck(c * (size_t)b->L * sizeof(int32_t));
    b->targets = mallocCheck(c * (size_t)(K + b->L) * sizeof(int32_t));
    b->text_emb = mallocCheck(c * (size_t)b->D * sizeof(float));
    b->lengths = mallocCheck(c * sizeof(int32_t));
    b->entity_offsets = mallocCheck((c + 1) * sizeof(int32_t));
    b->entity_capacity = (int)c * 8;
    b->entities = mallocCheck((size_t)b->entity_capacity * sizeof(int32_t));
    b->samples = mallocCheck(c * sizeof(int64_t));
}

void batch_free(Batch* b) {
    free(b->tokens);
    free(b->targets);
    free(b->text_emb);
    free(b->lengths);
    free(b->entity_offsets);
    free(b->entities);
    free(b->samples);
    memset(b, 0, sizeof *b);
}

void dataset_fill_batch(const Dataset* ds, const int64_t* samples, int B, Batch* b) {
    if (B > b->capacity) FATAL("batch of %d samples exceeds the batch capacity %d", B, b->capacity);
    if (b->L != ds->max_len || b->D != ds->dim) FATAL("batch allocated for L=%d D=%d, dataset has L=%d D=%d", b->L, b->D, ds->max_len, ds->dim);
    const int K = b->K, L = b->L, D = b->D, T = K + L;
    b->B = B;
    b->entity_offsets[0] = 0;
    for (int i = 0; i < B; i++) {
        int64_t s = samples[i];
        if (s < 0 || s >= ds->n) FATAL("sample %lld outside the dataset [0, %d)", (long long)s, ds->n);
        b->samples[i] = s;
        int n = ds->lengths[s];
        b->lengths[i] = n;
        memcpy(b->tokens + (size_t)i * L, ds->tokens + (size_t)s * L, (size_t)L * sizeof(int32_t));
        int32_t* tg = b->targets + (size_t)i * T;
        for (int p = 0; p < T; p++) tg[p] = -1;
        for (int j = 0; j < n; j++) tg[K - 1 + j] = ds->tokens[(size_t)s * L + j];
        tg[K - 1 + n] = GPT2_EOT;
        memcpy(b->text_emb + (size_t)i * D, ds->text_emb + (size_t)ds->text_rows[s] * D, (size_t)D * sizeof(float));
        int e0 = ds->entity_offsets[s], ne = ds->entity_offsets[s + 1] - e0;
        int at = b->entity_offsets[i];
        if (at + ne > b->entity_capacity) {
            b->entity_capacity = (at + ne) * 2;
            b->entities = reallocCheck(b->entities, (size_t)b->entity_capacity * sizeof(int32_t));
        }
        memcpy(b->entities + at, ds->entities + e0, (size_t)ne * sizeof(int32_t));
        b->entity_offsets[i + 1] = at + ne;
    }
}

// ---------------------------------------------------------------- shuffling and iteration

void dataset_epoch_order(int64_t n, uint64_t seed, int64_t epoch, int64_t* order) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
    // Fisher-Yates from the end; the swap partner of position i uses Philox word i.
    for (int64_t i = n - 1; i > 0; i--) {
        Philox4x32 r = philox_block(seed, (uint64_t)epoch, (uint64_t)i >> 2);
        uint64_t j = ((uint64_t)r.v[i & 3] * (uint64_t)(i + 1)) >> 32;  // uniform in [0, i]
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int train_iter_init(TrainIterator* it, const Dataset* ds, uint64_t seed, int global_batch, int rank, int world, char* err,
                    size_t err_size) {
    memset(it, 0, sizeof *it);
    if (global_batch < 1 || global_batch > ds->n) {
        set_err(err, err_size, "global batch %d must be between 1 and the %d training samples", global_batch, ds->n);
        return -1;
    }
    if (world < 1 || rank < 0 || rank >= world || world > global_batch) {
        set_err(err, err_size, "rank %d of %d: need 0 <= rank < world <= global batch (%d)", rank, world, global_batch);
        return -1;
    }
    it->ds = ds;
    it->seed = seed;
    it->global_batch = global_batch;
    it->rank = rank;
    it->world = world;
    it->order = mallocCheck((size_t)ds->n * sizeof(int64_t));
    it->order_epoch = 0;
    dataset_epoch_order(ds->n, seed, 0, it->order);
    return 0;
}

void train_iter_free(TrainIterator* it) {
    free(it->order);
    memset(it, 0, sizeof *it);
}

int64_t train_iter_steps_per_epoch(const TrainIterator* it) { return it->ds->n / it->global_batch; }

void train_iter_next(TrainIterator* it, Batch* b) {
    const int64_t G = it->global_batch;
    if (it->pos.cursor + G > it->ds->n) {
        it->pos.epoch++;
        it->pos.cursor = 0;
    }
    if (it->order_epoch != it->pos.epoch) {
        dataset_epoch_order(it->ds->n, it->seed, it->pos.epoch, it->order);
        it->order_epoch = it->pos.epoch;
    }
    int64_t lo = it->pos.cursor + it->rank * G / it->world;
    int64_t hi = it->pos.cursor + (it->rank + 1) * G / it->world;
    dataset_fill_batch(it->ds, it->order + lo, (int)(hi - lo), b);
    it->pos.cursor += G;
}

DataPosition train_iter_position(const TrainIterator* it) { return it->pos; }

int train_iter_seek(TrainIterator* it, DataPosition pos, char* err, size_t err_size) {
    if (pos.epoch < 0 || pos.cursor < 0 || pos.cursor % it->global_batch != 0 || pos.cursor > it->ds->n) {
        set_err(err, err_size, "data position (epoch %lld, cursor %lld) does not fit %d samples in global batches of %d",
                (long long)pos.epoch, (long long)pos.cursor, it->ds->n, it->global_batch);
        return -1;
    }
    it->pos = pos;
    return 0;
}

int64_t dataset_val_batches(const Dataset* ds, int global_batch) {
    return ((int64_t)ds->n + global_batch - 1) / global_batch;
}

void dataset_val_batch(const Dataset* ds, int64_t index, int global_batch, int rank, int world, Batch* b) {
    int64_t start = index * global_batch;
    int64_t g = ds->n - start < global_batch ? ds->n - start : global_batch;
    if (index < 0 || g <= 0) FATAL("validation batch %lld outside [0, %lld)", (long long)index, (long long)dataset_val_batches(ds, global_batch));
    int64_t lo = start + rank * g / world, hi = start + (rank + 1) * g / world;
    int64_t* samples = mallocCheck((size_t)(hi - lo + 1) * sizeof(int64_t));
    for (int64_t i = lo; i < hi; i++) samples[i - lo] = i;
    dataset_fill_batch(ds, samples, (int)(hi - lo), b);
    free(samples);
}
