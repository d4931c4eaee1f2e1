// tools/extract_clip_features.py: its HDF5 writer (needs h5py and numpy) read back by our C
// reader, its refusal of NaN with nothing left behind, and the whole script with a tiny randomly
// initialised open_clip model on generated images (needs torch, open_clip and Pillow). Each part
// is skipped when its packages are missing.
#include "common/check.h"
#include "data/features.h"
#include "tests/harness.h"

static char dir[64];

static int run(const char* cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_writer(void) {
    if (run("python3 -c 'import h5py, numpy' 2>/dev/null") != 0) SKIP("python3 h5py or numpy not installed");
    char out[128], cmd[1500];
    snprintf(out, sizeof out, "%s/w.h5", dir);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import sys, numpy as np; sys.path.insert(0, 'tools'); import extract_clip_features as x; "
             "rng = np.random.default_rng(%llu); u = lambda n: (lambda a: a / np.linalg.norm(a, axis=1, keepdims=True))(rng.standard_normal((n, 24))); "
             "x.write_features('%s', ['a.jpg', 'b.jpg'], u(2), ['one', 'two', 'caf\\u00e9'], [0, 1, 1], u(3), ['dog', 'fire hydrant'], u(2), "
             "'ViT-B-32 (openai)', 'test', float16=True)\"",
             (unsigned long long)test_seed(), out);
    REQUIRE(run(cmd) == 0, "the writer failed");
    FeatureStore fs;
    char err[512];
    REQUIRE(features_read(out, &fs, err, sizeof err) == 0, "%s", err);
    CHECK(fs.dim == 24 && fs.n_images == 2 && fs.n_texts == 3 && fs.n_vocab == 2 && fs.normalized == 1, "shapes");
    CHECK(!strcmp(fs.image_keys[1], "b.jpg") && !strcmp(fs.captions[2], "caf\xC3\xA9") && fs.image_index[2] == 1 &&
              !strcmp(fs.vocab_words[1], "fire hydrant") && !strcmp(fs.clip_model, "ViT-B-32 (openai)"),
          "contents");
    features_free(&fs);
    // NaN: an error naming the dataset and row, and no file.
    snprintf(out, sizeof out, "%s/nan.h5", dir);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import sys, numpy as np; sys.path.insert(0, 'tools'); import extract_clip_features as x; "
             "t = np.ones((3, 4), np.float32); t[2, 1] = np.nan; x.write_features('%s', ['a'], np.ones((1, 4)), ['a', 'b', 'c'], "
             "[0, 0, 0], t, [], None, 'm', 's')\" 2>&1 | grep -q '/texts/embeddings: row 2 is not finite'",
             out);
    CHECK(run(cmd) == 0, "NaN must be refused with the dataset and row named");
    snprintf(cmd, sizeof cmd, "ls -A %s | grep -q nan", dir);
    CHECK(run(cmd) != 0, "no file left behind");
}

static void test_tiny_model_end_to_end(void) {
    if (run("python3 -c 'import torch, open_clip, PIL, h5py' 2>/dev/null") != 0)
        SKIP("python3 torch, open_clip, Pillow or h5py not installed");
    char cmd[1500], out[128];
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import numpy as np; from PIL import Image; rng = np.random.default_rng(%llu); "
             "[Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save('%s/img%%d.png' %% i) for i in range(3)]\"",
             (unsigned long long)test_seed(), dir);
    REQUIRE(run(cmd) == 0, "could not make the images");
    snprintf(out, sizeof out, "%s/c.json", dir);
    FILE* f = fopen(out, "w");
    REQUIRE(f, "cannot write %s", out);
    fputs("{\"img0.png\": [\"a dog\", \"two dogs\"], \"img1.png\": [\"a cat\"], \"img2.png\": [\"a red car\"]}", f);
    fclose(f);
    snprintf(out, sizeof out, "%s/tiny.h5", dir);
    snprintf(cmd, sizeof cmd, "python3 tools/extract_clip_features.py --tiny-random-model --device cpu --captions %s/c.json "
             "--images %s --out %s --templates 'a photo of a {}.' 'a picture of a {}.' > /dev/null", dir, dir, out);
    REQUIRE(run(cmd) == 0, "the script failed");
    FeatureStore fs;
    char err[512];
    REQUIRE(features_read(out, &fs, err, sizeof err) == 0, "%s", err);
    CHECK(fs.dim == 32 && fs.n_images == 3 && fs.n_texts == 4 && fs.n_vocab == 1848 && fs.normalized == 1, "shapes: D %d, %d images, %d texts, %d vocab",
          fs.dim, fs.n_images, fs.n_texts, fs.n_vocab);
    CHECK(fs.image_index[1] == 0 && fs.image_index[3] == 2 && !strcmp(fs.captions[1], "two dogs"), "layout");
    features_free(&fs);
    snprintf(cmd, sizeof cmd, "python3 tools/extract_clip_features.py --tiny-random-model --captions %s/c.json --images /nonexistent "
             "--out %s/missing.h5 2>/dev/null", dir, dir);
    CHECK(run(cmd) != 0, "missing images are an error");
    snprintf(cmd, sizeof cmd, "test ! -e %s/missing.h5", dir);
    CHECK(run(cmd) == 0, "no output left behind");
}

int main(void) {
    test_seed();
    snprintf(dir, sizeof dir, "/tmp/tipcap_extract_XXXXXX");
    if (!mkdtemp(dir)) FATAL("mkdtemp");
    RUN(test_writer);
    RUN(test_tiny_model_end_to_end);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    return test_summary();
}
