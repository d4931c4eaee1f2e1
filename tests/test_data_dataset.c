// Dataset assembly: pairing captions with feature-store rows (shuffled store, duplicates,
// text-only rows), tokens and L from the length percentile, the batch layout (tokens, targets
// with EOT and -1, embeddings, entities), the seeded shuffle, sharding (1 x G == 2 x G/2),
// resuming from a saved position, validation order, and errors.
#include "common/check.h"
#include "data/dataset.h"
#include "kernels/philox.h"
#include "tests/harness.h"

static Tokenizer* tok;
static EntityVocab vocab;
static Corpus corpus;  // Flickr30k Karpathy test: 1,000 images, 5,000 captions

// A feature store holding every caption of the corpus, rows in a random order, with random
// embeddings; row r's first value encodes r so pairing can be checked.
static void make_store(FeatureStore* fs, uint64_t seed, int dim) {
    memset(fs, 0, sizeof *fs);
    fs->dim = dim;
    fs->n_images = corpus.n_images;
    fs->n_texts = corpus.n_captions;
    fs->image_keys = mallocCheck((size_t)fs->n_images * sizeof(char*));
    for (int i = 0; i < fs->n_images; i++) fs->image_keys[i] = strdupCheck(corpus.images[i].key);
    int64_t order[5000];
    REQUIRE(corpus.n_captions == 5000, "corpus size");
    dataset_epoch_order(5000, seed, 77, order);
    fs->captions = mallocCheck(5000 * sizeof(char*));
    fs->image_index = mallocCheck(5000 * sizeof(int64_t));
    fs->text_emb = mallocCheck((size_t)5000 * dim * sizeof(float));
    for (int r = 0; r < 5000; r++) {
        int c = (int)order[r];
        fs->captions[r] = strdupCheck(corpus.captions[c]);
        fs->image_index[r] = corpus.caption_image[c];
        fs->text_emb[(size_t)r * dim] = (float)r;
        for (int j = 1; j < dim; j++) fs->text_emb[(size_t)r * dim + j] = philox_normal(seed, 5, (uint64_t)r * dim + j);
    }
}

static void test_build_and_pairing(void) {
    uint64_t seed = test_seed();
    FeatureStore fs;
    make_store(&fs, seed, 8);
    Dataset ds;
    char err[512];
    REQUIRE(dataset_build(&corpus, SPLIT_ALL, &fs, tok, &vocab, NULL, &ds, err, sizeof err) == 0, "%s", err);
    CHECK(ds.n == 5000 && ds.dim == 8, "n %d", ds.n);
    int bad_pair = 0, bad_tokens = 0, full[5000];
    int32_t* ids = NULL;
    size_t cap = 0;
    for (int i = 0; i < ds.n; i++) {
        int c = ds.corpus_caption[i];
        int64_t r = ds.text_rows[i];
        bad_pair += strcmp(fs.captions[r], corpus.captions[c]) != 0 || fs.image_index[r] != corpus.caption_image[c] ||
                    fs.text_emb[(size_t)r * 8] != (float)r;
        // Tokens: the trimmed caption's GPT-2 ids, truncated to L, -1 after.
        const char* s = corpus.captions[c];
        while (*s == ' ') s++;
        size_t len = strlen(s);
        while (len && s[len - 1] == ' ') len--;
        long n = tokenizer_encode(tok, s, len, &ids, &cap, err, sizeof err);
        full[i] = (int)n;
        int keep = n < ds.max_len ? (int)n : ds.max_len;
        int ok = ds.lengths[i] == keep;
        for (int j = 0; j < ds.max_len && ok; j++) ok = ds.tokens[(size_t)i * ds.max_len + j] == (j < keep ? ids[j] : -1);
        bad_tokens += !ok;
    }
    CHECK(bad_pair == 0, "%d captions paired with the wrong row", bad_pair);
    CHECK(bad_tokens == 0, "%d token rows differ", bad_tokens);
    // Each row used once: the store holds each caption once (duplicates resolve in order).
    unsigned char* seen = callocCheck(5000, 1);
    int reused = 0;
    for (int i = 0; i < ds.n; i++) reused += seen[ds.text_rows[i]]++ > 0;
    CHECK(reused == 0, "%d rows used twice", reused);
    free(seen);
    int want_L = length_percentile(full, 5000, 99.0);
    int truncated = 0;
    for (int i = 0; i < 5000; i++) truncated += full[i] > want_L;
    CHECK(ds.max_len == want_L && ds.n_truncated == truncated, "L %d (want %d), truncated %d (want %d)", ds.max_len, want_L,
          ds.n_truncated, truncated);
    CHECK(truncated <= 50, "at most 1%% truncated at the 99th percentile: %d", truncated);
    printf("  Flickr30k test: %d captions, L = %d (99th percentile), %d truncated\n", ds.n, ds.max_len, ds.n_truncated);
    // Entities agree with entities_extract.
    int bad_ent = 0;
    for (int i = 0; i < ds.n; i++) {
        int32_t e[64];
        int n = entities_extract(&vocab, corpus.captions[ds.corpus_caption[i]], e, 64);
        bad_ent += n != ds.entity_offsets[i + 1] - ds.entity_offsets[i] ||
                   (n && memcmp(e, ds.entities + ds.entity_offsets[i], (size_t)n * sizeof(int32_t)) != 0);
    }
    CHECK(bad_ent == 0, "%d entity lists differ", bad_ent);
    dataset_free(&ds);
    // An explicit L overrides the statistics.
    DatasetOptions o = {.max_len = 5, .len_percentile = 99};
    REQUIRE(dataset_build(&corpus, SPLIT_ALL, &fs, tok, NULL, &o, &ds, err, sizeof err) == 0, "%s", err);
    CHECK(ds.max_len == 5 && ds.entity_offsets[ds.n] == 0, "max_len override, no vocabulary");
    dataset_free(&ds);
    free(ids);
    features_free(&fs);
}

static void test_length_percentile(void) {
    int32_t v[10] = {5, 1, 9, 3, 7, 2, 8, 4, 6, 10};
    CHECK(length_percentile(v, 10, 99) == 10 && length_percentile(v, 10, 90) == 9 && length_percentile(v, 10, 50) == 5 &&
              length_percentile(v, 10, 0) == 1, "nearest rank");
}

static void test_pairing_rules_and_errors(void) {
    // Store: two rows for a duplicated caption of one image, one text-only row.
    const char* json = "{\"a.jpg\": [\"a dog\", \"a dog\", \"a cat\"], \"b.jpg\": [\"a cat\", \"free text\"]}";
    Corpus c;
    char err[512];
    REQUIRE(corpus_parse(json, strlen(json), "small.json", SPLIT_TRAIN, &c, err, sizeof err) == 0, "%s", err);
    FeatureStore fs = {0};
    fs.dim = 2;
    fs.n_images = 2;
    fs.n_texts = 5;
    char* keys[] = {"b.jpg", "a.jpg"};
    char* caps[] = {"a cat", "a dog", "a cat", "free text", "a dog"};
    int64_t index[] = {1, 1, 0, -1, 1};
    float emb[10] = {0, 1, 1, 1, 2, 1, 3, 1, 4, 1};
    fs.image_keys = keys;
    fs.captions = caps;
    fs.image_index = index;
    fs.text_emb = emb;
    Dataset ds;
    REQUIRE(dataset_build(&c, SPLIT_TRAIN, &fs, tok, NULL, NULL, &ds, err, sizeof err) == 0, "%s", err);
    // a.jpg: "a dog" -> rows 1 then 4; "a cat" -> row 0; b.jpg: "a cat" -> row 2; "free text" -> row 3.
    CHECK(ds.text_rows[0] == 1 && ds.text_rows[1] == 4 && ds.text_rows[2] == 0 && ds.text_rows[3] == 2 && ds.text_rows[4] == 3,
          "rows %lld %lld %lld %lld %lld", (long long)ds.text_rows[0], (long long)ds.text_rows[1], (long long)ds.text_rows[2],
          (long long)ds.text_rows[3], (long long)ds.text_rows[4]);
    dataset_free(&ds);
    Dataset none;
    CHECK(dataset_build(&c, SPLIT_VAL, &fs, tok, NULL, NULL, &none, err, sizeof err) == 0 && none.n == 0,
          "an empty split gives an empty dataset: %s", err);
    TrainIterator it;
    CHECK(train_iter_init(&it, &none, 1, 1, 0, 1, err, sizeof err) == -1 && strstr(err, "0 training samples"),
          "which cannot train: %s", err);
    dataset_free(&none);
    caps[3] = "other text";
    CHECK(dataset_build(&c, SPLIT_TRAIN, &fs, tok, NULL, NULL, &none, err, sizeof err) == -1 && strstr(err, "\"b.jpg\"") &&
              strstr(err, "free text"), "a caption without a row is named: %s", err);
    corpus_free(&c);
}

static void test_batch_layout(void) {
    FeatureStore fs;
    make_store(&fs, test_seed(), 6);
    Dataset ds;
    char err[512];
    REQUIRE(dataset_build(&corpus, SPLIT_ALL, &fs, tok, &vocab, NULL, &ds, err, sizeof err) == 0, "%s", err);
    const int K = 3, B = 7;
    Batch b;
    batch_alloc(&b, B, K, &ds);
    // Poison, then fill with samples including a truncated one.
    memset(b.targets, 0x7F, (size_t)B * (K + ds.max_len) * sizeof(int32_t));
    int64_t samples[7] = {0, 17, 4999, 123, 2500, 3, 42};
    for (int i = 0; i < ds.n; i++)
        if (ds.lengths[i] == ds.max_len) {
            samples[6] = i;
            break;
        }
    dataset_fill_batch(&ds, samples, B, &b);
    const int L = ds.max_len, T = K + L;
    int bad = 0;
    for (int i = 0; i < B; i++) {
        int64_t s = samples[i];
        int n = ds.lengths[s];
        for (int p = 0; p < T; p++) {
            int32_t want = p >= K - 1 && p < K - 1 + n ? ds.tokens[(size_t)s * L + (p - K + 1)] : p == K - 1 + n ? GPT2_EOT : -1;
            bad += b.targets[(size_t)i * T + p] != want;
        }
        bad += memcmp(b.tokens + (size_t)i * L, ds.tokens + (size_t)s * L, (size_t)L * sizeof(int32_t)) != 0;
        bad += memcmp(b.text_emb + (size_t)i * 6, fs.text_emb + (size_t)ds.text_rows[s] * 6, 6 * sizeof(float)) != 0;
        int ne = ds.entity_offsets[s + 1] - ds.entity_offsets[s];
        bad += b.entity_offsets[i + 1] - b.entity_offsets[i] != ne ||
               memcmp(b.entities + b.entity_offsets[i], ds.entities + ds.entity_offsets[s], (size_t)ne * sizeof(int32_t)) != 0;
        bad += b.lengths[i] != n || b.samples[i] != s;
    }
    CHECK(bad == 0 && b.B == B, "%d mismatches in the batch", bad);
    CHECK(b.targets[(size_t)6 * T + T - 1] == GPT2_EOT, "a caption of L tokens ends with EOT in the last position");
    batch_free(&b);
    dataset_free(&ds);
    features_free(&fs);
}

static void test_epoch_order(void) {
    uint64_t seed = test_seed();
    int64_t a[1001], b[1001];
    dataset_epoch_order(1001, seed, 3, a);
    dataset_epoch_order(1001, seed, 3, b);
    CHECK(!memcmp(a, b, sizeof a), "same seed and epoch, same order");
    unsigned char seen[1001] = {0};
    int fixed = 0;
    for (int i = 0; i < 1001; i++) {
        seen[a[i]]++;
        fixed += a[i] == i;
    }
    int perm = 1;
    for (int i = 0; i < 1001; i++) perm &= seen[i] == 1;
    CHECK(perm, "a permutation");
    CHECK(fixed < 10, "%d fixed points: not shuffled", fixed);
    dataset_epoch_order(1001, seed, 4, b);
    CHECK(memcmp(a, b, sizeof a) != 0, "another epoch, another order");
    dataset_epoch_order(1001, seed + 1, 3, b);
    CHECK(memcmp(a, b, sizeof a) != 0, "another seed, another order");
    // Uniformity: where element 0 lands, over many epochs, is spread evenly over 4 quarters.
    int quarter[4] = {0};
    for (int e = 0; e < 800; e++) {
        int64_t o[40];
        dataset_epoch_order(40, seed, e, o);
        for (int i = 0; i < 40; i++)
            if (o[i] == 0) quarter[i / 10]++;
    }
    for (int q = 0; q < 4; q++) CHECK(quarter[q] > 140 && quarter[q] < 260, "quarter %d got %d of 800", q, quarter[q]);
}

// Two ranks with G/2 see exactly the samples one process with G sees; a resumed iterator
// continues with the same batches, across epoch boundaries.
static void test_sharding_and_resume(void) {
    uint64_t seed = test_seed();
    FeatureStore fs;
    make_store(&fs, seed, 4);
    Dataset ds;
    char err[512];
    REQUIRE(dataset_build(&corpus, SPLIT_ALL, &fs, tok, NULL, NULL, &ds, err, sizeof err) == 0, "%s", err);
    const int G = 384;  // 5000 / 384 = 13 steps per epoch, 8 samples left over
    TrainIterator one, r0, r1;
    REQUIRE(train_iter_init(&one, &ds, seed, G, 0, 1, err, sizeof err) == 0, "%s", err);
    REQUIRE(train_iter_init(&r0, &ds, seed, G, 0, 2, err, sizeof err) == 0, "%s", err);
    REQUIRE(train_iter_init(&r1, &ds, seed, G, 1, 2, err, sizeof err) == 0, "%s", err);
    CHECK(train_iter_steps_per_epoch(&one) == 13, "steps per epoch");
    Batch bg, b0, b1;
    batch_alloc(&bg, G, 2, &ds);
    batch_alloc(&b0, G / 2, 2, &ds);
    batch_alloc(&b1, G / 2, 2, &ds);
    int bad = 0, dup_in_epoch = 0;
    unsigned char* seen = callocCheck((size_t)ds.n, 1);
    DataPosition saved = {0, 0};
    int64_t saved_samples[3][384];
    for (int step = 0; step < 30; step++) {
        train_iter_next(&one, &bg);
        train_iter_next(&r0, &b0);
        train_iter_next(&r1, &b1);
        bad += bg.B != G || b0.B != G / 2 || b1.B != G / 2;
        bad += memcmp(bg.samples, b0.samples, (size_t)(G / 2) * sizeof(int64_t)) != 0;
        bad += memcmp(bg.samples + G / 2, b1.samples, (size_t)(G / 2) * sizeof(int64_t)) != 0;
        bad += memcmp(bg.targets, b0.targets, (size_t)(G / 2) * (2 + ds.max_len) * sizeof(int32_t)) != 0;
        if (step < 13)
            for (int i = 0; i < G; i++) dup_in_epoch += seen[bg.samples[i]]++ > 0;
        if (step == 11) saved = train_iter_position(&one);
        if (step >= 12 && step < 15) memcpy(saved_samples[step - 12], bg.samples, sizeof saved_samples[0]);
    }
    CHECK(bad == 0, "sharded batches differ from the global batch in %d places", bad);
    CHECK(dup_in_epoch == 0, "%d samples repeated within an epoch", dup_in_epoch);
    CHECK(one.pos.epoch == 2, "30 steps of 13 per epoch end in epoch 2 (at %lld)", (long long)one.pos.epoch);
    // Resume after step 11 (epoch 0, cursor 12 * G): steps 12, 13 (new epoch), 14 must repeat.
    TrainIterator resumed;
    REQUIRE(train_iter_init(&resumed, &ds, seed, G, 0, 1, err, sizeof err) == 0, "%s", err);
    REQUIRE(train_iter_seek(&resumed, saved, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 3; k++) {
        train_iter_next(&resumed, &bg);
        CHECK(!memcmp(bg.samples, saved_samples[k], sizeof saved_samples[0]), "resumed step %d differs", 12 + k);
    }
    DataPosition bad_pos = {0, 5};
    CHECK(train_iter_seek(&resumed, bad_pos, err, sizeof err) == -1 && strstr(err, "cursor 5"), "misaligned position: %s", err);
    CHECK(train_iter_init(&resumed, &ds, seed, 0, 0, 1, err, sizeof err) == -1, "G = 0 refused");
    CHECK(train_iter_init(&resumed, &ds, seed, 4, 2, 2, err, sizeof err) == -1 && strstr(err, "rank 2 of 2"), "bad rank: %s", err);
    train_iter_free(&one);
    train_iter_free(&r0);
    train_iter_free(&r1);
    batch_free(&bg);
    batch_free(&b0);
    batch_free(&b1);
    free(seen);
    dataset_free(&ds);
    features_free(&fs);
}

static void test_validation_order(void) {
    FeatureStore fs;
    make_store(&fs, test_seed(), 4);
    Dataset ds;
    char err[512];
    REQUIRE(dataset_build(&corpus, SPLIT_ALL, &fs, tok, NULL, NULL, &ds, err, sizeof err) == 0, "%s", err);
    const int G = 333, W = 3;
    int64_t nb = dataset_val_batches(&ds, G);
    CHECK(nb == 16, "5000 / 333 -> 16 batches, got %lld", (long long)nb);
    Batch b;
    batch_alloc(&b, G, 1, &ds);
    int64_t expect = 0;
    int bad = 0;
    for (int64_t k = 0; k < nb; k++)
        for (int r = 0; r < W; r++) {
            dataset_val_batch(&ds, k, G, r, W, &b);
            for (int i = 0; i < b.B; i++) bad += b.samples[i] != expect++;
        }
    CHECK(bad == 0 && expect == ds.n, "every sample once, in order: %lld seen, %d out of order", (long long)expect, bad);
    batch_free(&b);
    dataset_free(&ds);
    features_free(&fs);
}

int main(void) {
    test_seed();
    tok = tokenizer_load_default();
    char err[512];
    char* vpath = entity_vocab_default_path();
    if (entity_vocab_load(vpath, NULL, tok, &vocab, err, sizeof err) != 0) FATAL("%s", err);
    free(vpath);
    if (corpus_load("data/captions/flickr30k_karpathy_test.json", SPLIT_TRAIN, &corpus, err, sizeof err) != 0) FATAL("%s", err);
    RUN(test_length_percentile);
    RUN(test_build_and_pairing);
    RUN(test_pairing_rules_and_errors);
    RUN(test_batch_layout);
    RUN(test_epoch_order);
    RUN(test_sharding_and_resume);
    RUN(test_validation_order);
    corpus_free(&corpus);
    entity_vocab_free(&vocab);
    tokenizer_free(tok);
    return test_summary();
}
