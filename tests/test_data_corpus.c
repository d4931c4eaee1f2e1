// Caption corpus readers: the shipped Karpathy val/test corpora with their counts, generated
// Karpathy and COCO-annotation files (splits, restval, grouping), and every kind of bad input.
#include "common/check.h"
#include "data/corpus.h"
#include "kernels/philox.h"
#include "tests/harness.h"

static void check_shipped(const char* path, int want_images, int want_captions) {
    Corpus c;
    char err[512];
    int rc = corpus_load(path, SPLIT_TEST, &c, err, sizeof err);
    CHECK(rc == 0, "%s", err);
    if (rc) return;
    int ni, nc;
    corpus_count(&c, SPLIT_TEST, &ni, &nc);
    CHECK(c.n_images == want_images && ni == want_images, "%s: %d images, want %d", path, c.n_images, want_images);
    CHECK(c.n_captions == want_captions && nc == want_captions, "%s: %d captions, want %d", path, c.n_captions, want_captions);
    for (int i = 0; i < c.n_images; i++) {
        const CorpusImage* im = &c.images[i];
        for (int k = 0; k < im->n_captions; k++)
            if (c.caption_image[im->first_caption + k] != i) {
                CHECK(0, "%s: caption %d is not grouped under image %d", path, im->first_caption + k, i);
                corpus_free(&c);
                return;
            }
    }
    corpus_free(&c);
}

static void test_shipped_corpora(void) {
    check_shipped("data/captions/coco_karpathy_test.json", 5000, 25010);
    check_shipped("data/captions/coco_karpathy_val.json", 5000, 25010);
    check_shipped("data/captions/flickr30k_karpathy_test.json", 1000, 5000);
    check_shipped("data/captions/flickr30k_karpathy_val.json", 1014, 5070);
    Corpus c;
    char err[512];
    REQUIRE(corpus_load("data/captions/coco_karpathy_test.json", SPLIT_TEST, &c, err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(c.images[0].key, "COCO_val2014_000000391895.jpg"), "first key %s", c.images[0].key);
    CHECK(!strcmp(c.captions[0], "A man with a red helmet on a small moped on a dirt road. "), "first caption kept raw: '%s'",
          c.captions[0]);
    corpus_free(&c);
}

// A random Karpathy file: images with splits train/restval/val/test and 1..6 sentences each.
static void test_karpathy_format(void) {
    uint64_t seed = test_seed();
    const char* splits[] = {"train", "restval", "val", "test"};
    int n = 50 + (int)(philox_uniform(seed, 1, 0) * 100);
    size_t cap = 1 << 20, len = 0;
    char* json = mallocCheck(cap);
    int want_img[3] = {0}, want_cap[3] = {0};
    len += (size_t)snprintf(json + len, cap - len, "{\"dataset\": \"coco\", \"images\": [");
    for (int i = 0; i < n; i++) {
        int s = (int)(philox_uniform(seed, 2, (uint64_t)i) * 4);
        int k = 1 + (int)(philox_uniform(seed, 3, (uint64_t)i) * 6);
        int split = s <= 1 ? SPLIT_TRAIN : s == 2 ? SPLIT_VAL : SPLIT_TEST;
        want_img[split]++;
        want_cap[split] += k;
        len += (size_t)snprintf(json + len, cap - len, "%s{\"filepath\": \"val2014\", \"filename\": \"img%d.jpg\", \"imgid\": %d, "
                                "\"split\": \"%s\", \"sentences\": [", i ? ", " : "", i, i, splits[s]);
        for (int j = 0; j < k; j++)
            len += (size_t)snprintf(json + len, cap - len, "%s{\"tokens\": [\"a\"], \"raw\": \"caption %d of image %d\"}",
                                    j ? ", " : "", j, i);
        len += (size_t)snprintf(json + len, cap - len, "]}");
    }
    len += (size_t)snprintf(json + len, cap - len, "]}");
    Corpus c;
    char err[512];
    REQUIRE(corpus_parse(json, len, "dataset_test.json", SPLIT_TEST, &c, err, sizeof err) == 0, "%s", err);
    for (int s = 0; s < 3; s++) {
        int ni, nc;
        corpus_count(&c, (Split)s, &ni, &nc);
        CHECK(ni == want_img[s] && nc == want_cap[s], "split %s: %d/%d images/captions, want %d/%d", split_name((Split)s),
              ni, nc, want_img[s], want_cap[s]);
    }
    int ni, nc;
    corpus_count(&c, SPLIT_ALL, &ni, &nc);
    CHECK(ni == n && nc == c.n_captions, "all: %d images", ni);
    CHECK(!strcmp(c.images[7].key, "img7.jpg") && !strcmp(c.captions[c.images[7].first_caption], "caption 0 of image 7"),
          "keys and captions in file order");
    corpus_free(&c);
    free(json);
}

static void test_coco_annotations_format(void) {
    const char* json =
        "{\"info\": {}, \"images\": [{\"id\": 42, \"file_name\": \"a.jpg\"}, {\"id\": 7, \"file_name\": \"b.jpg\"}],"
        " \"annotations\": [{\"image_id\": 7, \"id\": 1, \"caption\": \"b one\"}, {\"image_id\": 42, \"id\": 2, \"caption\": \"a one\"},"
        " {\"image_id\": 7, \"id\": 3, \"caption\": \"b two\"}]}";
    Corpus c;
    char err[512];
    REQUIRE(corpus_parse(json, strlen(json), "captions_val2014.json", SPLIT_VAL, &c, err, sizeof err) == 0, "%s", err);
    CHECK(c.n_images == 2 && c.n_captions == 3, "%d images %d captions", c.n_images, c.n_captions);
    CHECK(!strcmp(c.images[0].key, "a.jpg") && c.images[0].n_captions == 1 && !strcmp(c.captions[0], "a one"), "image a");
    CHECK(!strcmp(c.images[1].key, "b.jpg") && c.images[1].n_captions == 2 && !strcmp(c.captions[1], "b one") &&
              !strcmp(c.captions[2], "b two") && c.caption_image[2] == 1, "image b grouped in annotation order");
    CHECK(c.images[1].split == SPLIT_VAL, "default split");
    corpus_free(&c);
    const char* no_images = "{\"annotations\": [{\"image_id\": 5, \"caption\": \"x\"}, {\"image_id\": 5, \"caption\": \"y\"}]}";
    REQUIRE(corpus_parse(no_images, strlen(no_images), "n.json", SPLIT_TRAIN, &c, err, sizeof err) == 0, "%s", err);
    CHECK(c.n_images == 1 && !strcmp(c.images[0].key, "5") && c.n_captions == 2, "ids as keys");
    corpus_free(&c);
}

static void test_bad_input(void) {
    static const struct {
        const char* json;
        const char* expect;  // substring of the message (besides the file name)
    } cases[] = {
        {"{\"a.jpg\": [\"ok\"], ", "malformed JSON near line 1"},
        {"{\n\"a.jpg\": [\"ok\"]\n\"b\"", "line 3"},
        {"[1, 2]", "expected a JSON object"},
        {"{\"a.jpg\": \"not a list\"}", "image 0 (\"a.jpg\"): expected an array"},
        {"{\"a.jpg\": [\"ok\", \"   \"]}", "image 0 (\"a.jpg\") caption 1: empty caption"},
        {"{\"a.jpg\": [\"ok\"], \"b.jpg\": [\"\"]}", "image 1 (\"b.jpg\") caption 0: empty caption"},
        {"{\"a.jpg\": [3]}", "caption 0: expected a string"},
        {"{\"a.jpg\": [\"caf\xC3\"]}", "invalid UTF-8 at byte 3"},
        {"{\"a.jpg\": [\"x\"], \"a.jpg\": [\"y\"]}", "appears twice"},
        {"{}", "no captions"},
        {"{\"images\": [{\"split\": \"train\", \"sentences\": []}]}", "images[0].filename: missing"},
        {"{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"dev\", \"sentences\": []}]}", "images[0] (\"x.jpg\").split"},
        {"{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"val\"}]}", ".sentences: missing"},
        {"{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"val\", \"sentences\": [{\"tokens\": []}]}]}", "sentences[0].raw: missing"},
        {"{\"images\": [{\"filename\": \"x.jpg\", \"split\": \"val\", \"sentences\": [{\"raw\": \"\"}]}]}", "sentences[0].raw: empty caption"},
        {"{\"images\": [{\"id\": 1, \"file_name\": \"a\"}], \"annotations\": [{\"image_id\": 2, \"caption\": \"x\"}]}",
         "annotations[0].image_id: 2 is not in \"images\""},
        {"{\"images\": [{\"id\": \"1\", \"file_name\": \"a\"}], \"annotations\": []}", "images[0].id: missing or not an integer"},
        {"{\"images\": [{\"id\": 1, \"file_name\": \"a\"}], \"annotations\": [{\"image_id\": 1}]}", "annotations[0].caption (image 1): missing"},
        {"{\"annotations\": {}}", "must be arrays"},
        {"{\"annotations\": [{\"image_id\": 111111111111111111110, \"caption\": \"x\"}]}", "annotations[0].image_id: missing or not an integer"},
        {"{\"images\": [{\"id\": 1e300, \"file_name\": \"a\"}], \"annotations\": []}", "images[0].id: missing or not an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Corpus c;
        char err[512] = "";
        int rc = corpus_parse(cases[i].json, strlen(cases[i].json), "bad.json", SPLIT_TRAIN, &c, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "bad.json") && strstr(err, cases[i].expect), "case %zu: rc %d, message '%s', want '%s'",
              i, rc, err, cases[i].expect);
        if (rc == 0) corpus_free(&c);
    }
    Corpus c;
    char err[512];
    CHECK(corpus_load("/nonexistent/corpus.json", SPLIT_TRAIN, &c, err, sizeof err) == -1 && strstr(err, "/nonexistent/corpus.json"),
          "missing file: %s", err);
}

int main(void) {
    test_seed();
    RUN(test_shipped_corpora);
    RUN(test_karpathy_format);
    RUN(test_coco_annotations_format);
    RUN(test_bad_input);
    return test_summary();
}
