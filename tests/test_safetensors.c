// safetensors: round trip, metadata, checksum, and every kind of damaged file.
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "tests/harness.h"
#include "train/safetensors.h"

static char dir[64];

static void write_sample(const char* path, float* a, int32_t* b) {
    SafeTensorsWriter* w = safetensors_writer_new();
    int64_t sa[2] = {3, 5}, sb[1] = {4};
    safetensors_writer_add(w, "layer.weight", ST_F32, 2, sa, a);
    safetensors_writer_add(w, "ids", ST_I32, 1, sb, b);
    safetensors_writer_meta(w, "step", "42");
    char err[256];
    if (safetensors_writer_write(w, path, err, sizeof err)) FATAL("%s", err);
    safetensors_writer_free(w);
}

static void test_round_trip(void) {
    float a[15];
    int32_t b[4] = {1, -2, 3, 1 << 30};
    srand((unsigned)test_seed());
    for (int i = 0; i < 15; i++) a[i] = (float)rand() / RAND_MAX - 0.5f;
    char path[128];
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    write_sample(path, a, b);
    SafeTensors st;
    char err[256];
    REQUIRE(safetensors_read(path, &st, err, sizeof err) == 0, "%s", err);
    const StTensor* t = safetensors_find(&st, "layer.weight");
    REQUIRE(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 5, "layer.weight header");
    float back[15];
    safetensors_to_f32(&st, t, back);
    CHECK(!memcmp(back, a, sizeof a), "layer.weight data differs");
    t = safetensors_find(&st, "ids");
    REQUIRE(t && t->dtype == ST_I32 && st_numel(t) == 4, "ids header");
    CHECK(!memcmp(st.data + t->offset, b, sizeof b), "ids data differs");
    CHECK(safetensors_meta(&st, "step") && !strcmp(safetensors_meta(&st, "step"), "42"), "metadata");
    CHECK(safetensors_meta(&st, "tipcap_crc32") != NULL, "checksum stored");
    CHECK(safetensors_find(&st, "nope") == NULL, "find of a missing tensor");
    // header length is a multiple of 8 (aligned data section)
    FILE* f = fopenCheck(path, "rb");
    unsigned char len[8];
    freadCheck(len, 1, 8, f, path);
    fclose(f);
    CHECK(len[0] % 8 == 0, "header not padded to 8 bytes");
    safetensors_free(&st);
}

// Python's safetensors (pip) must read what we write, bit for bit.
static void test_python_reads_ours(void) {
    if (system("python3 -c 'import safetensors.numpy' 2>/dev/null") != 0) SKIP("python3 safetensors not installed");
    float a[15];
    int32_t b[4] = {7, 8, 9, 10};
    for (int i = 0; i < 15; i++) a[i] = 0.25f * (float)i - 1.0f;
    char path[128], cmd[512];
    snprintf(path, sizeof path, "%s/py.safetensors", dir);
    write_sample(path, a, b);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"from safetensors.numpy import load_file; import numpy as np; t = load_file('%s'); "
             "assert t['layer.weight'].shape == (3, 5) and t['layer.weight'].dtype == np.float32; "
             "assert (t['layer.weight'].ravel() == 0.25 * np.arange(15, dtype=np.float32) - 1).all(); "
             "assert list(t['ids']) == [7, 8, 9, 10]\"", path);
    CHECK(system(cmd) == 0, "python safetensors could not read our file");
    // and we read Python's file
    snprintf(path, sizeof path, "%s/from_py.safetensors", dir);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"from safetensors.numpy import save_file; import numpy as np; "
             "save_file({'x': np.arange(6, dtype=np.float16).reshape(2, 3), 'y': np.array([1.5], dtype=np.float32)}, '%s')\"", path);
    REQUIRE(system(cmd) == 0, "python could not write");
    SafeTensors st;
    char err[256];
    REQUIRE(safetensors_read(path, &st, err, sizeof err) == 0, "%s", err);
    const StTensor* x = safetensors_find(&st, "x");
    REQUIRE(x && x->dtype == ST_F16 && x->shape[0] == 2 && x->shape[1] == 3, "x header");
    float xv[6];
    safetensors_to_f32(&st, x, xv);
    for (int i = 0; i < 6; i++) CHECK(xv[i] == (float)i, "x[%d] = %g", i, xv[i]);
    safetensors_free(&st);
}

static void expect_read_error(const char* path, const char* want) {
    SafeTensors st;
    char err[512] = "";
    int rc = safetensors_read(path, &st, err, sizeof err);
    CHECK(rc != 0, "read of a damaged file succeeded (%s)", want);
    CHECK(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    CHECK(strstr(err, path) != NULL, "error \"%s\" does not name the file", err);
}

static void test_damaged_files(void) {
    float a[15] = {0};
    int32_t b[4] = {0};
    char path[128];
    snprintf(path, sizeof path, "%s/damaged.safetensors", dir);
    write_sample(path, a, b);
    size_t len;
    char* good = readFileCheck(path, &len);

    // truncated data section
    FILE* f = fopenCheck(path, "wb");
    fwriteCheck(good, 1, len - 10, f, path);
    fclose(f);
    expect_read_error(path, "outside the");

    // one flipped bit in the data
    good[len - 3] ^= 0x10;
    f = fopenCheck(path, "wb");
    fwriteCheck(good, 1, len, f, path);
    fclose(f);
    expect_read_error(path, "checksum mismatch");
    good[len - 3] ^= 0x10;

    // truncated inside the header
    f = fopenCheck(path, "wb");
    fwriteCheck(good, 1, 20, f, path);
    fclose(f);
    expect_read_error(path, "does not fit");

    // not a safetensors file at all
    f = fopenCheck(path, "wb");
    fputs("hello", f);
    fclose(f);
    expect_read_error(path, "shorter than a safetensors header");

    expect_read_error("/nonexistent/x.safetensors", "cannot open");
    free(good);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/tipcap_st_XXXXXX");
    if (!mkdtemp(dir)) FATAL("mkdtemp");
    RUN(test_round_trip);
    RUN(test_python_reads_ours);
    RUN(test_damaged_files);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    return test_summary();
}
