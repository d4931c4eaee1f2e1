// HDF5 feature store: round trips (float32 exact, float16 within half precision), h5py reading
// our files and us reading h5py's (skipped without h5py), every validation failure with the
// dataset and row named, and the writer leaving nothing behind on failure.
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <sys/stat.h>

#include "common/check.h"
#include "data/features.h"
#include "kernels/philox.h"
#include "tests/harness.h"

static char dir[64];

static void make_store(FeatureStore* fs, int n_img, int n_txt, int n_voc, int dim, uint64_t seed, int normalize) {
    memset(fs, 0, sizeof *fs);
    fs->dim = dim;
    fs->n_images = n_img;
    fs->n_texts = n_txt;
    fs->n_vocab = n_voc;
    fs->image_emb = mallocCheck((size_t)(n_img ? n_img : 1) * dim * sizeof(float));
    fs->text_emb = mallocCheck((size_t)(n_txt ? n_txt : 1) * dim * sizeof(float));
    fs->vocab_emb = n_voc ? mallocCheck((size_t)n_voc * dim * sizeof(float)) : NULL;
    float* sets[3] = {fs->image_emb, fs->text_emb, fs->vocab_emb};
    int counts[3] = {n_img, n_txt, n_voc};
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < counts[s]; i++) {
            double sq = 0;
            float* row = sets[s] + (size_t)i * dim;
            for (int j = 0; j < dim; j++) {
                row[j] = philox_normal(seed, (uint64_t)s, (uint64_t)i * dim + j);
                sq += (double)row[j] * row[j];
            }
            if (normalize)
                for (int j = 0; j < dim; j++) row[j] = (float)(row[j] / sqrt(sq));
        }
    fs->image_keys = mallocCheck((size_t)(n_img ? n_img : 1) * sizeof(char*));
    for (int i = 0; i < n_img; i++) {
        char k[32];
        snprintf(k, sizeof k, "img_%d.jpg", i);
        fs->image_keys[i] = strdupCheck(k);
    }
    fs->captions = mallocCheck((size_t)(n_txt ? n_txt : 1) * sizeof(char*));
    fs->image_index = mallocCheck((size_t)(n_txt ? n_txt : 1) * sizeof(int64_t));
    for (int i = 0; i < n_txt; i++) {
        char c[64];
        snprintf(c, sizeof c, "caption %d of a caf\xC3\xA9 \xF0\x9F\x90\xB6", i);
        fs->captions[i] = strdupCheck(c);
        fs->image_index[i] = n_img ? (i % 4 == 3 ? -1 : i % n_img) : -1;
    }
    fs->vocab_words = n_voc ? mallocCheck((size_t)n_voc * sizeof(char*)) : NULL;
    for (int i = 0; i < n_voc; i++) {
        char w[32];
        snprintf(w, sizeof w, "word %d", i);
        fs->vocab_words[i] = strdupCheck(w);
    }
    snprintf(fs->clip_model, sizeof fs->clip_model, "ViT-B/32");
    snprintf(fs->source, sizeof fs->source, "test_data_features");
    fs->normalized = normalize;
}

static double max_abs_diff(const float* a, const float* b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = fabs((double)a[i] - b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void path_in_dir(char* out, size_t cap, const char* name) { snprintf(out, cap, "%s/%s", dir, name); }

static void test_round_trip(void) {
    uint64_t seed = test_seed();
    for (int f16 = 0; f16 <= 1; f16++) {
        FeatureStore a, b;
        make_store(&a, 7, 23, 5, 24, seed + (uint64_t)f16, 1);
        a.true_gap_mu = mallocCheck(24 * sizeof(float));
        a.true_gap_cov = mallocCheck(24 * 24 * sizeof(float));
        for (int i = 0; i < 24; i++) a.true_gap_mu[i] = 0.01f * (float)i;
        for (int i = 0; i < 24 * 24; i++) a.true_gap_cov[i] = (i % 25 == 0) ? 1.0f : 0.001f * (float)(i % 7);
        a.pair_gap_mu = mallocCheck(24 * sizeof(float));
        a.pair_gap_cov = mallocCheck(24 * 24 * sizeof(float));
        for (int i = 0; i < 24; i++) a.pair_gap_mu[i] = -0.02f * (float)i;
        for (int i = 0; i < 24 * 24; i++) a.pair_gap_cov[i] = (i % 25 == 0) ? 0.5f : 0.002f * (float)(i % 5);
        char path[128], err[512];
        path_in_dir(path, sizeof path, f16 ? "rt16.h5" : "rt32.h5");
        REQUIRE(features_write(path, &a, f16, err, sizeof err) == 0, "write: %s", err);
        REQUIRE(features_read(path, &b, err, sizeof err) == 0, "read: %s", err);
        CHECK(b.dim == 24 && b.n_images == 7 && b.n_texts == 23 && b.n_vocab == 5, "counts");
        double tol = f16 ? 1e-3 : 0;  // |x| <= 1: half precision's spacing is at most 2^-11
        CHECK(max_abs_diff(b.image_emb, a.image_emb, 7 * 24) <= tol, "images differ by %g (float16 %d)",
              max_abs_diff(b.image_emb, a.image_emb, 7 * 24), f16);
        CHECK(max_abs_diff(b.text_emb, a.text_emb, 23 * 24) <= tol, "texts differ (float16 %d)", f16);
        CHECK(max_abs_diff(b.vocab_emb, a.vocab_emb, 5 * 24) == 0, "the vocabulary is always float32");
        CHECK(max_abs_diff(b.true_gap_cov, a.true_gap_cov, 24 * 24) == 0 && max_abs_diff(b.true_gap_mu, a.true_gap_mu, 24) == 0 &&
                  max_abs_diff(b.pair_gap_cov, a.pair_gap_cov, 24 * 24) == 0 && max_abs_diff(b.pair_gap_mu, a.pair_gap_mu, 24) == 0,
              "synth truth");
        int same = 1;
        for (int i = 0; i < 23; i++) same &= !strcmp(a.captions[i], b.captions[i]) && a.image_index[i] == b.image_index[i];
        for (int i = 0; i < 7; i++) same &= !strcmp(a.image_keys[i], b.image_keys[i]);
        for (int i = 0; i < 5; i++) same &= !strcmp(a.vocab_words[i], b.vocab_words[i]);
        CHECK(same, "strings or index differ");
        CHECK(!strcmp(b.clip_model, "ViT-B/32") && !strcmp(b.source, "test_data_features") && b.normalized == 1, "attributes");
        features_free(&a);
        features_free(&b);
    }
    // A text-only store (no images) round-trips too.
    FeatureStore a, b;
    make_store(&a, 0, 6, 0, 8, seed, 0);
    char path[128], err[512];
    path_in_dir(path, sizeof path, "textonly.h5");
    REQUIRE(features_write(path, &a, 0, err, sizeof err) == 0, "write: %s", err);
    REQUIRE(features_read(path, &b, err, sizeof err) == 0, "read: %s", err);
    CHECK(b.n_images == 0 && b.n_texts == 6 && b.n_vocab == 0 && b.true_gap_mu == NULL, "text-only store");
    features_free(&a);
    features_free(&b);
}

// The float16 nearest to x (round half to even), computed in double: the reference for the
// writer's own conversion (HDF5 1.10 rounds 0.2499 to 0.125, so the store converts by itself).
static float nearest_half(float x) {
    double a = fabs((double)x);
    int e = a > 0 ? (int)floor(log2(a)) : -30;
    if (e < -14) e = -14;  // subnormal spacing 2^-24
    double ulp = ldexp(1.0, e - 10);
    double r = nearbyint(a / ulp) * ulp;
    return (float)(x < 0 ? -r : r);
}

static void test_float16_rounding(void) {
    uint64_t seed = test_seed();
    enum { N = 4096, D = 16 };
    FeatureStore a, b;
    make_store(&a, 1, N / D, 0, D, seed, 0);
    const float edges[] = {0.24998629f, 0.4999f, 0.99999f, 1.0f, 65504.0f, 65519.0f, 6.1e-5f, 6.0e-8f, 2.9e-8f, 3.0e-8f,
                           -0.1234567f, 0.33325195f, 1e-3f, -7.5e-6f};
    for (int i = 0; i < N; i++) {
        float x;
        if (i < (int)(sizeof edges / sizeof *edges)) x = edges[i];
        else {
            double mag = ldexp(1.0 + philox_uniform(seed, 40, (uint64_t)i), (int)(philox_uniform(seed, 41, (uint64_t)i) * 40) - 25);
            x = (float)(philox_uniform(seed, 42, (uint64_t)i) < 0.5 ? -mag : mag);
            if (fabsf(x) > 65504.0f) x = 1.0f;
        }
        a.text_emb[i] = x;
    }
    for (int r = 0; r < N / D; r++) a.text_emb[r * D + D - 1] = 0.5f;  // no zero-norm rows
    char path[128], err[512];
    path_in_dir(path, sizeof path, "half.h5");
    REQUIRE(features_write(path, &a, 1, err, sizeof err) == 0, "%s", err);
    REQUIRE(features_read(path, &b, err, sizeof err) == 0, "%s", err);
    int bad = 0;
    for (int i = 0; i < N; i++)
        if (b.text_emb[i] != nearest_half(a.text_emb[i]) && bad++ < 5)
            CHECK(0, "%.9g -> %.9g, nearest half %.9g", a.text_emb[i], b.text_emb[i], nearest_half(a.text_emb[i]));
    CHECK(bad == 0, "%d of %d values not rounded to the nearest float16", bad, N);
    a.text_emb[3] = 70000.0f;
    CHECK(features_write(path, &a, 1, err, sizeof err) == -1 && strstr(err, "too large for float16"), "overflow: %s", err);
    features_free(&a);
    features_free(&b);
}

static char* run_python(const char* args, int* status) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 tests/h5py_features.py %s", args);
    FILE* p = popen(cmd, "r");
    size_t cap = 1 << 20, len = 0, got;
    char* out = mallocCheck(cap);
    while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0) len += got;
    out[len] = '\0';
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static double json_sum(const cJSON* root, const char* name) {
    const cJSON* e = cJSON_GetObjectItemCaseSensitive(root, name);
    const cJSON* s = cJSON_GetObjectItemCaseSensitive(e, "sum");
    return cJSON_IsNumber(s) ? s->valuedouble : NAN;
}

static void test_h5py_reads_ours(void) {
    FeatureStore a;
    make_store(&a, 4, 9, 3, 16, test_seed(), 1);
    char path[128], err[512], args[256];
    path_in_dir(path, sizeof path, "for_h5py.h5");
    REQUIRE(features_write(path, &a, 1, err, sizeof err) == 0, "write: %s", err);
    snprintf(args, sizeof args, "summarize %s", path);
    int status;
    char* out = run_python(args, &status);
    if (status == 3) {
        free(out);
        features_free(&a);
        SKIP("python3 h5py or numpy not installed");
    }
    cJSON* root = cJSON_Parse(out);
    REQUIRE(status == 0 && root, "h5py could not read our file (status %d): %.300s", status, out);
    const cJSON* te = cJSON_GetObjectItemCaseSensitive(root, "texts/embeddings");
    const cJSON* ve = cJSON_GetObjectItemCaseSensitive(root, "vocab/embeddings");
    const cJSON* ix = cJSON_GetObjectItemCaseSensitive(root, "texts/image_index");
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(te, "dtype")->valuestring, "float16") &&
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(te, "chunked")), "texts: float16, chunked");
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(ve, "dtype")->valuestring, "float32"), "vocab float32");
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(ix, "dtype")->valuestring, "int64"), "image_index int64");
    double sum = 0;
    for (int i = 0; i < 9 * 16; i++) sum += a.text_emb[i];
    CHECK(fabs(json_sum(root, "texts/embeddings") - sum) < 9 * 16 * 1e-3, "texts sum %g vs %g", json_sum(root, "texts/embeddings"), sum);
    sum = 0;
    for (int i = 0; i < 3 * 16; i++) sum += a.vocab_emb[i];
    CHECK(fabs(json_sum(root, "vocab/embeddings") - sum) < 1e-4, "vocab sum");
    const cJSON* caps = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "texts/captions"), "values");
    CHECK(cJSON_GetArraySize(caps) == 9 && !strcmp(cJSON_GetArrayItem(caps, 2)->valuestring, a.captions[2]),
          "captions as h5py decodes them");
    const cJSON* attrs = cJSON_GetObjectItemCaseSensitive(root, "attrs");
    CHECK(!strcmp(cJSON_GetObjectItemCaseSensitive(attrs, "clip_model")->valuestring, "ViT-B/32") &&
              cJSON_GetObjectItemCaseSensitive(attrs, "dim")->valueint == 16 &&
              cJSON_GetObjectItemCaseSensitive(attrs, "normalized")->valueint == 1, "attributes");
    cJSON_Delete(root);
    free(out);
    features_free(&a);
}

static void test_we_read_h5py(void) {
    char path[128], args[256], err[512];
    path_in_dir(path, sizeof path, "from_h5py.h5");
    snprintf(args, sizeof args, "write %s", path);
    int status;
    char* out = run_python(args, &status);
    free(out);
    if (status == 3) SKIP("python3 h5py or numpy not installed");
    REQUIRE(status == 0, "h5py failed to write");
    FeatureStore fs;
    REQUIRE(features_read(path, &fs, err, sizeof err) == 0, "%s", err);
    CHECK(fs.dim == 16 && fs.n_images == 3 && fs.n_texts == 5 && fs.n_vocab == 2, "shapes");
    double worst32 = 0, worst16 = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 16; j++)
            worst32 = fmax(worst32, fabs(fs.image_emb[i * 16 + j] - (sin(0.1 * (7 * i + j + 1)) + 0.05 * (i + 1))));
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 16; j++)
            worst16 = fmax(worst16, fabs(fs.text_emb[i * 16 + j] - (sin(0.1 * (7 * i + j + 101)) + 0.05 * (i + 1))));
    CHECK(worst32 < 1e-6 && worst16 < 2e-3, "values: float32 off by %g, float16 by %g", worst32, worst16);
    CHECK(!strcmp(fs.image_keys[2], "c\xC3\xA9.jpg") && !strcmp(fs.captions[3], "\xF0\x9F\x90\xB6 dog") &&
              !strcmp(fs.vocab_words[1], "fire hydrant"), "strings");
    CHECK(fs.image_index[4] == -1 && fs.image_index[2] == 1, "image_index");
    CHECK(!strcmp(fs.clip_model, "ViT-B/32") && !strcmp(fs.source, "h5py test") && fs.normalized == 0, "attributes");
    features_free(&fs);
}

// Rewrites dataset `name` of an existing file with the given type, rank, dims and data.
static void replace_dataset(const char* path, const char* name, hid_t type, int rank, const hsize_t* dims, const void* data) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (H5Lexists(f, name, H5P_DEFAULT) > 0) H5Ldelete(f, name, H5P_DEFAULT);
    if (rank >= 0) {
        hid_t sp = H5Screate_simple(rank, dims, NULL);
        hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    H5Fclose(f);
}

static void expect_read_error(const char* path, const char* want1, const char* want2, const char* what) {
    FeatureStore fs;
    char err[512] = "";
    int rc = features_read(path, &fs, err, sizeof err);
    CHECK(rc == -1 && strstr(err, path) && strstr(err, want1) && (!want2 || strstr(err, want2)),
          "%s: rc %d, message '%s' should name '%s' and '%s'", what, rc, err, want1, want2 ? want2 : "");
    if (rc == 0) features_free(&fs);
}

static void test_bad_files(void) {
    FeatureStore a;
    make_store(&a, 4, 10, 2, 8, test_seed(), 0);
    char good[128], bad[128], err[512], cmd[400];
    path_in_dir(good, sizeof good, "good.h5");
    path_in_dir(bad, sizeof bad, "bad.h5");
    REQUIRE(features_write(good, &a, 0, err, sizeof err) == 0, "%s", err);
#define FRESH() do { snprintf(cmd, sizeof cmd, "cp %s %s", good, bad); REQUIRE(system(cmd) == 0, "cp"); } while (0)
    float x[10 * 8];
    memcpy(x, a.text_emb, sizeof x);
    hsize_t d2[2] = {10, 8}, d1[1] = {80};

    FRESH();
    replace_dataset(bad, "/texts/embeddings", H5T_NATIVE_FLOAT, 1, d1, x);
    expect_read_error(bad, "/texts/embeddings", "expected rank 2, got rank 1", "wrong rank");
    FRESH();
    double xd[80];
    for (int i = 0; i < 80; i++) xd[i] = x[i];
    replace_dataset(bad, "/texts/embeddings", H5T_NATIVE_DOUBLE, 2, d2, xd);
    expect_read_error(bad, "/texts/embeddings", "expected float32 or float16, got float64", "float64");
    FRESH();
    int xi[80] = {0};
    replace_dataset(bad, "/images/embeddings", H5T_NATIVE_INT, 2, (hsize_t[2]){4, 8}, xi);
    expect_read_error(bad, "/images/embeddings", "got an integer type", "integer embeddings");
    FRESH();
    x[5 * 8 + 3] = NAN;
    replace_dataset(bad, "/texts/embeddings", H5T_NATIVE_FLOAT, 2, d2, x);
    expect_read_error(bad, "/texts/embeddings", "row 5, column 3 is NaN", "NaN");
    x[5 * 8 + 3] = INFINITY;
    FRESH();
    replace_dataset(bad, "/texts/embeddings", H5T_NATIVE_FLOAT, 2, d2, x);
    expect_read_error(bad, "row 5, column 3 is infinite", NULL, "Inf");
    memcpy(x, a.text_emb, sizeof x);
    memset(x + 7 * 8, 0, 8 * sizeof(float));
    FRESH();
    replace_dataset(bad, "/texts/embeddings", H5T_NATIVE_FLOAT, 2, d2, x);
    expect_read_error(bad, "/texts/embeddings", "row 7 has zero norm", "zero norm");
    FRESH();
    replace_dataset(bad, "/images/embeddings", H5T_NATIVE_FLOAT, 2, (hsize_t[2]){4, 7}, x);
    expect_read_error(bad, "/images/embeddings", "[4, 7] does not match D = 8", "D mismatch");
    FRESH();
    int64_t idx[10] = {0, 1, 2, 3, -1, 0, 1, 4, 0, 0};
    replace_dataset(bad, "/texts/image_index", H5T_NATIVE_INT64, 1, (hsize_t[1]){10}, idx);
    expect_read_error(bad, "/texts/image_index", "row 7 is 4, outside [-1, 4)", "index out of range");
    FRESH();
    replace_dataset(bad, "/texts/image_index", H5T_NATIVE_INT64, 1, (hsize_t[1]){9}, idx);
    expect_read_error(bad, "/texts/image_index", "9 rows, but /texts/embeddings has 10", "row count mismatch");
    // an image key twice; a file without /images whose captions name images
    FRESH();
    hid_t str_t = H5Tcopy(H5T_C_S1);
    H5Tset_size(str_t, H5T_VARIABLE);
    H5Tset_cset(str_t, H5T_CSET_UTF8);
    const char* keys[4] = {a.image_keys[0], a.image_keys[1], a.image_keys[0], a.image_keys[3]};
    replace_dataset(bad, "/images/keys", str_t, 1, (hsize_t[1]){4}, keys);
    H5Tclose(str_t);
    char dup[160];
    snprintf(dup, sizeof dup, "\"%s\" is in rows 0 and 2", a.image_keys[0]);
    expect_read_error(bad, "/images/keys", dup, "duplicate image key");
    char* second = a.image_keys[2];
    a.image_keys[2] = a.image_keys[0];
    CHECK(features_write(bad, &a, 0, err, sizeof err) == -1 && strstr(err, dup), "the writer takes a key twice: %s", err);
    a.image_keys[2] = second;
    FRESH();
    replace_dataset(bad, "/images", 0, -1, NULL, NULL);
    expect_read_error(bad, "/texts/image_index", "row 0 names image 0, but the file has no /images group", "no /images");
    FRESH();
    replace_dataset(bad, "/texts/captions", 0, -1, NULL, NULL);
    expect_read_error(bad, "/texts/captions", "missing dataset", "missing dataset");
    FRESH();
    replace_dataset(bad, "/texts/captions", H5T_NATIVE_FLOAT, 1, (hsize_t[1]){10}, x);
    expect_read_error(bad, "/texts/captions", "expected strings", "numbers as captions");
    FRESH();
    replace_dataset(bad, "/vocab/embeddings", H5T_NATIVE_FLOAT, 2, (hsize_t[2]){2, 9}, x);
    expect_read_error(bad, "/vocab/embeddings", "does not match D = 8", "vocab D");
    // normalized = 1 but rows are not unit length.
    FRESH();
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t at = H5Aopen(f, "normalized", H5P_DEFAULT);
    long long one = 1;
    H5Awrite(at, H5T_NATIVE_LLONG, &one);
    H5Aclose(at);
    H5Fclose(f);
    expect_read_error(bad, "/images/embeddings", "row 0 has norm", "normalized flag");
    // Not HDF5 at all.
    FILE* t = fopen(bad, "w");
    fputs("{\"not\": \"hdf5\"}\n", t);
    fclose(t);
    expect_read_error(bad, "not an HDF5 file", NULL, "text file");
    unlink(bad);
    expect_read_error(bad, "cannot open", NULL, "missing file");
#undef FRESH
    features_free(&a);
}

static int count_entries(const char* d) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", d);
    FILE* p = popen(cmd, "r");
    int n = -1;
    if (fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
    return n;
}

static void test_writer_leaves_nothing_on_failure(void) {
    FeatureStore a;
    make_store(&a, 3, 5, 0, 8, test_seed(), 0);
    char sub[128], path[160], err[512];
    path_in_dir(sub, sizeof sub, "atomic");
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/out.h5", sub);
    REQUIRE(features_write(path, &a, 0, err, sizeof err) == 0, "%s", err);
    a.text_emb[2 * 8 + 1] = NAN;
    CHECK(features_write(path, &a, 0, err, sizeof err) == -1 && strstr(err, "/texts/embeddings: row 2, column 1 is NaN"),
          "the writer must refuse NaN: %s", err);
    a.text_emb[2 * 8 + 1] = 0.5f;
    a.image_index[4] = 3;
    CHECK(features_write(path, &a, 0, err, sizeof err) == -1 && strstr(err, "/texts/image_index: row 4"), "bad index: %s", err);
    a.image_index[4] = 0;
    CHECK(count_entries(sub) == 1, "the old file and nothing else should remain");
    FeatureStore b;
    CHECK(features_read(path, &b, err, sizeof err) == 0 && b.n_texts == 5, "the old file is intact");
    features_free(&b);
    CHECK(features_write("/nonexistent_dir/x.h5", &a, 0, err, sizeof err) == -1 && strstr(err, "/nonexistent_dir/x.h5"),
          "unwritable directory: %s", err);
    features_free(&a);
}

int main(void) {
    test_seed();
    snprintf(dir, sizeof dir, "/tmp/tipcap_features_XXXXXX");
    if (!mkdtemp(dir)) FATAL("mkdtemp failed");
    RUN(test_round_trip);
    RUN(test_float16_rounding);
    RUN(test_h5py_reads_ours);
    RUN(test_we_read_h5py);
    RUN(test_bad_files);
    RUN(test_writer_leaves_nothing_on_failure);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    return test_summary();
}
