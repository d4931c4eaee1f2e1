// Entity vocabulary and extraction: the shipped VinVL vocabulary, plural and irregular folding,
// multi-word entries, order and de-duplication, random entries found in random captions, the
// " word" GPT-2 tokens, and bad vocabulary files.
#include "common/check.h"
#include "data/entities.h"
#include "kernels/philox.h"
#include "tests/harness.h"

#include <ctype.h>

static Tokenizer* tok;
static EntityVocab vocab;

// The names of the entities extracted from caption, joined by '|'.
static void extract_names(const char* caption, char* out, size_t cap) {
    int32_t ids[32];
    int n = entities_extract(&vocab, caption, ids, 32);
    out[0] = '\0';
    for (int i = 0; i < n && i < 32; i++) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", i ? "|" : "", vocab.words[ids[i]]);
    }
}

static void test_shipped_vocabulary(void) {
    CHECK(vocab.n == 1848, "%d entries", vocab.n);
    CHECK(!strcmp(vocab.words[0], "ad") && !strcmp(vocab.words[1847], "yak"), "ordered by the file's index");
    int dog = entity_vocab_find(&vocab, "Dog");
    REQUIRE(dog >= 0, "dog");
    int32_t* ids = NULL;
    size_t cap = 0;
    char err[128];
    long n = tokenizer_encode(tok, " dog", 4, &ids, &cap, err, sizeof err);
    CHECK(n == 1 && vocab.token_offsets[dog + 1] - vocab.token_offsets[dog] == 1 && vocab.tokens[vocab.token_offsets[dog]] == ids[0],
          "\" dog\" is one GPT-2 token (%d)", ids[0]);
    int fh = entity_vocab_find(&vocab, "fire  HYDRANT");
    REQUIRE(fh >= 0, "fire hydrant");
    n = tokenizer_encode(tok, " fire hydrant", 13, &ids, &cap, err, sizeof err);
    int same = n == vocab.token_offsets[fh + 1] - vocab.token_offsets[fh];
    for (long k = 0; same && k < n; k++) same = vocab.tokens[vocab.token_offsets[fh] + k] == ids[k];
    CHECK(same, "tokens of \" fire hydrant\"");
    CHECK(entity_vocab_find(&vocab, "hydrant") == -1, "hydrant alone is not an entry");
    free(ids);
}

static void test_extraction_cases(void) {
    static const struct { const char* caption; const char* want; } cases[] = {
        {"Two dogs playing with a frisbee.", "dog|frisbee"},
        {"A fire hydrant on the sidewalk", "fire hydrant|sidewalk"},
        {"Three FIRE HYDRANTS painted red", "fire hydrant"},
        {"Some men and children near the buses", "man|child|bus"},
        {"mice, knives and leaves on boxes", "mouse|knife|leaf|box"},
        {"A bus next to a bus stop", "bus|bus stop"},
        {"a dog chasing another dog", "dog"},
        {"A man wearing glasses holds a glass", "man|glasses|glass"},
        {"a teddy bear and a bear", "teddy bear|bear"},
        {"Two cell phones; one phone", "cell phone|phone"},
        {"a wood-burning stove", "wood-burning stove"},
        {"nothing here at all", ""},
        {"", ""},
        {"caf\xC3\xA9 dog\xF0\x9F\x90\xB6 cats", "dog|cat"},
    };
    char got[512];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        extract_names(cases[i].caption, got, sizeof got);
        CHECK(!strcmp(got, cases[i].want), "\"%s\": got \"%s\", want \"%s\"", cases[i].caption, got, cases[i].want);
    }
    char buf[64];
    entity_fold_word(&vocab, "buses", buf, sizeof buf);
    CHECK(!strcmp(buf, "bus"), "buses -> %s", buf);
    entity_fold_word(&vocab, "bus", buf, sizeof buf);
    CHECK(!strcmp(buf, "bus"), "bus stays: %s", buf);
    entity_fold_word(&vocab, "geese", buf, sizeof buf);
    CHECK(!strcmp(buf, "goose") || entity_vocab_find(&vocab, "goose") < 0, "geese -> %s", buf);
    // cap smaller than the number found: the count is still returned, only cap written.
    int32_t two[2] = {-7, -7};
    int32_t guard = -7;
    int n = entities_extract(&vocab, "a dog, a cat, a horse and a sheep", two, 1);
    CHECK(n == 4 && two[0] >= 0 && two[1] == -7 && guard == -7, "cap: n %d", n);
}

// Any entry, in any case, inside random filler, is found.
static void test_random_entries_found(void) {
    uint64_t seed = test_seed();
    for (int t = 0; t < 500; t++) {
        int e = (int)(philox_uniform(seed, 7, (uint64_t)t) * vocab.n);
        char caption[256];
        snprintf(caption, sizeof caption, "In the picture, %s%s!", philox_uniform(seed, 8, (uint64_t)t) < 0.5 ? "the " : "", vocab.words[e]);
        if (philox_uniform(seed, 9, (uint64_t)t) < 0.5)
            for (char* p = caption; *p; p++) *p = (char)toupper((unsigned char)*p);
        int32_t ids[16];
        int n = entities_extract(&vocab, caption, ids, 16);
        int found = 0;
        for (int k = 0; k < n && k < 16; k++) found |= ids[k] == e || strstr(vocab.words[ids[k]], vocab.words[e]) != NULL;
        CHECK(found, "entry \"%s\" not found in \"%s\"", vocab.words[e], caption);
    }
}

static void write_file(const char* path, const char* text) {
    FILE* f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_other_formats_and_bad_files(void) {
    char dir[] = "/tmp/tipcap_entities_XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char path[128], exc[128], err[512];
    snprintf(path, sizeof path, "%s/v.txt", dir);
    snprintf(exc, sizeof exc, "%s/exc", dir);
    write_file(exc, "goose\ngeese\nox\noxen\n");
    write_file(path, "cat,cats\n\nox\nsea goose\n");
    EntityVocab v;
    REQUIRE(entity_vocab_load(path, exc, tok, &v, err, sizeof err) == 0, "%s", err);
    CHECK(v.n == 3 && !strcmp(v.words[0], "cat") && !strcmp(v.words[2], "sea goose"), "text format");
    int32_t ids[8];
    int n = entities_extract(&v, "Oxen and sea geese, cats", ids, 8);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 2 && ids[2] == 0, "exceptions from the given file: n %d", n);
    entity_vocab_free(&v);
    snprintf(path, sizeof path, "%s/v.json", dir);
    write_file(path, "[\"Zebra\", \"apple\"]");
    REQUIRE(entity_vocab_load(path, exc, NULL, &v, err, sizeof err) == 0, "%s", err);
    CHECK(v.n == 2 && !strcmp(v.words[0], "zebra") && v.tokens == NULL, "array format, lower-cased, no tokenizer");
    entity_vocab_free(&v);
    static const struct { const char* text; const char* want; } bad[] = {
        {"{\"a\": 1, \"b\": \"x\"}", "entry 1"},
        {"[\"a\", 3]", "entry 1"},
        {"{\"a\": 1", "malformed JSON"},
        {"[]", "empty"},
        {"[\"!!!\"]", "entry 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(path, bad[i].text);
        CHECK(entity_vocab_load(path, exc, NULL, &v, err, sizeof err) == -1 && strstr(err, path) && strstr(err, bad[i].want),
              "case %zu: '%s'", i, err);
    }
    write_file(path, "[\"dog\"]");
    write_file(exc, "goose\ngeese\nox\n");
    CHECK(entity_vocab_load(path, exc, NULL, &v, err, sizeof err) == -1 && strstr(err, exc) && strstr(err, ":3:"),
          "odd exceptions file: '%s'", err);
    CHECK(entity_vocab_load("/nonexistent/v.json", exc, NULL, &v, err, sizeof err) == -1 && strstr(err, "/nonexistent/v.json"),
          "missing: %s", err);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
}

int main(void) {
    test_seed();
    tok = tokenizer_load_default();
    char* path = entity_vocab_default_path();
    char err[512];
    if (entity_vocab_load(path, NULL, tok, &vocab, err, sizeof err) != 0) FATAL("%s", err);
    free(path);
    RUN(test_shipped_vocabulary);
    RUN(test_extraction_cases);
    RUN(test_random_entries_found);
    RUN(test_other_formats_and_bad_files);
    entity_vocab_free(&vocab);
    tokenizer_free(tok);
    return test_summary();
}
