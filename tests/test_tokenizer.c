// GPT-2 tokenizer: the 30,033 golden encodings (ids and round trip), random Unicode text against
// the Python reference of GPT-2's encoder.py (skipped without the `regex` package), decoding of
// cut UTF-8, invalid input, and the tipcap-tokenize program.
#include <cjson/cJSON.h>

#include "common/check.h"
#include "data/tokenizer.h"
#include "kernels/philox.h"
#include "tests/harness.h"

static Tokenizer* tok;

static int ids_equal(const int32_t* a, long na, const cJSON* arr) {
    if (na != cJSON_GetArraySize(arr)) return 0;
    long k = 0;
    for (const cJSON* it = arr->child; it; it = it->next, k++)
        if (!cJSON_IsNumber(it) || it->valueint != a[k]) return 0;
    return 1;
}

static void test_golden_encodings(void) {
    FILE* f = popen("gzip -dc tests/data/gpt2_golden_encodings.jsonl.gz", "r");
    REQUIRE(f, "cannot run gzip");
    char* line = NULL;
    size_t cap = 0;
    int32_t* ids = NULL;
    size_t ids_cap = 0;
    long lines = 0, encode_bad = 0, roundtrip_bad = 0;
    char err[256];
    while (getline(&line, &cap, f) > 0) {
        lines++;
        cJSON* obj = cJSON_Parse(line);
        const cJSON* text = cJSON_GetObjectItemCaseSensitive(obj, "text");
        const cJSON* want = cJSON_GetObjectItemCaseSensitive(obj, "ids");
        if (!cJSON_IsString(text) || !cJSON_IsArray(want)) {
            CHECK(0, "golden line %ld is malformed", lines);
            cJSON_Delete(obj);
            continue;
        }
        const char* s = text->valuestring;
        long n = tokenizer_encode(tok, s, strlen(s), &ids, &ids_cap, err, sizeof err);
        if (n < 0 || !ids_equal(ids, n, want)) {
            if (encode_bad++ < 5) CHECK(0, "line %ld: encoding of \"%.80s\" differs", lines, s);
        } else {
            size_t len;
            char* back = tokenizer_decode(tok, ids, (size_t)n, &len, err, sizeof err);
            if (!back || len != strlen(s) || memcmp(back, s, len) != 0)
                if (roundtrip_bad++ < 5) CHECK(0, "line %ld: decode(encode(\"%.80s\")) differs", lines, s);
            free(back);
        }
        cJSON_Delete(obj);
    }
    pclose(f);
    free(line);
    free(ids);
    printf("  golden: %ld texts, %ld encodings differ, %ld round trips differ\n", lines, encode_bad, roundtrip_bad);
    CHECK(lines == 30033, "expected 30,033 golden texts, read %ld", lines);
    CHECK(encode_bad == 0 && roundtrip_bad == 0, "golden mismatches");
}

// Random text from pieces that stress the pre-tokeniser: every whitespace kind, contractions,
// letters and numbers of several scripts, combining marks, symbols, emoji.
static const char* pieces[] = {
    " ", " ", "  ", "\t", "\n", "\r\n", "\xC2\xA0" /* NBSP */, "\xC2\x85" /* NEL */, "\xE3\x80\x80" /* ideographic space */,
    "\xE2\x80\xA8", "\x0B", "\x0C", "\x1C", "'s", "'S", "'ll", "'re", "'ve", "'m", "'d", "'t", "'", "\"", "a", "dog",
    "The", "running", "x", "1", "42", "3.14", "\xC2\xB2" /* superscript two */, "\xD9\xA3" /* Arabic-Indic 3 */,
    "\xE2\x85\xA7" /* roman numeral eight */, "caf\xC3\xA9", "e\xCC\x81" /* e + combining acute */,
    "\xE6\x97\xA5\xE6\x9C\xAC" /* CJK */, "\xF0\x9F\x90\xB6" /* dog emoji */, "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "!", "!!", "...", "-", "--", ",", "$5", "\xE2\x80\x94", "@", "#tag", "<|endoftext|>", "\xEF\xBF\xBD", "\xEF\xBB\xBF",
    "\xD0\x9C\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0", "\xCE\xB1\xCE\xB2", "_", "\x01", "\x7F",
};

static char* random_text(uint64_t seed, uint64_t stream, size_t* len_out) {
    int n_pieces = 1 + (int)(philox_uniform(seed, stream, 0) * 24);
    char* s = mallocCheck(1024);
    size_t len = 0;
    for (int k = 0; k < n_pieces; k++) {
        const char* p = pieces[(size_t)(philox_uniform(seed, stream, 1 + (uint64_t)k) * (sizeof pieces / sizeof *pieces))];
        size_t pl = strlen(p);
        memcpy(s + len, p, pl);
        len += pl;
    }
    s[len] = '\0';
    *len_out = len;
    return s;
}

static void json_escape_line(FILE* f, const char* s) {
    cJSON* str = cJSON_CreateString(s);
    char* json = cJSON_PrintUnformatted(str);
    fprintf(f, "%s\n", json);
    free(json);
    cJSON_Delete(str);
}

static void test_random_text_matches_reference(void) {
    if (system("python3 -c 'import regex' 2>/dev/null") != 0) SKIP("python3 regex package not installed");
    uint64_t seed = test_seed();
    enum { N = 3000 };
    char in_path[] = "/tmp/tipcap_tok_in_XXXXXX";
    int fd = mkstemp(in_path);
    REQUIRE(fd >= 0, "mkstemp");
    FILE* f = fdopen(fd, "w");
    char* texts[N];
    for (int i = 0; i < N; i++) {
        size_t len;
        texts[i] = random_text(seed, 1000 + (uint64_t)i, &len);
        json_escape_line(f, texts[i]);
    }
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 tests/gpt2_reference.py data/gpt2/encoder.json data/gpt2/vocab.bpe < %s", in_path);
    FILE* p = popen(cmd, "r");
    REQUIRE(p, "cannot run the reference");
    char* line = NULL;
    size_t cap = 0;
    int32_t* ids = NULL;
    size_t ids_cap = 0;
    int bad = 0, i = 0;
    char err[256];
    for (; i < N && getline(&line, &cap, p) > 0; i++) {
        cJSON* want = cJSON_Parse(line);
        long n = tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids, &ids_cap, err, sizeof err);
        if (n < 0 || !ids_equal(ids, n, want)) {
            if (bad++ < 5) {
                CHECK(0, "text %d differs from GPT-2's encoder.py:", i);
                json_escape_line(stdout, texts[i]);
                printf("    want %s", line);
            }
        }
        cJSON_Delete(want);
    }
    int rc = pclose(p);
    CHECK(i == N && rc == 0, "the reference answered %d of %d texts (status %d)", i, N, rc);
    for (int k = 0; k < N; k++) free(texts[k]);
    free(line);
    free(ids);
    unlink(in_path);
}

static void test_random_round_trip(void) {
    uint64_t seed = test_seed();
    int32_t* ids = NULL;
    size_t ids_cap = 0;
    char err[256];
    for (int i = 0; i < 2000; i++) {
        size_t len;
        char* s = random_text(seed, 50000 + (uint64_t)i, &len);
        long n = tokenizer_encode(tok, s, len, &ids, &ids_cap, err, sizeof err);
        REQUIRE(n > 0, "encode failed: %s", err);
        size_t back_len;
        char* back = tokenizer_decode(tok, ids, (size_t)n, &back_len, err, sizeof err);
        CHECK(back && back_len == len && memcmp(back, s, len) == 0, "round trip %d differs", i);
        free(back);
        free(s);
    }
    free(ids);
}

static void test_decode_cut_utf8(void) {
    // The dog emoji F0 9F 90 B6 is two tokens: 8582 (F0 9F) and 238 (90)... check with our encoder.
    int32_t* ids = NULL;
    size_t cap = 0;
    char err[256];
    long n = tokenizer_encode(tok, "\xF0\x9F\x90\xB6", 4, &ids, &cap, err, sizeof err);
    REQUIRE(n >= 2, "the emoji should take several tokens, got %ld", n);
    // Decoding all but the last token leaves a truncated 4-byte sequence: one U+FFFD.
    size_t len;
    char* s = tokenizer_decode(tok, ids, (size_t)n - 1, &len, err, sizeof err);
    REQUIRE(s, "decode failed: %s", err);
    CHECK(len == 3 && !memcmp(s, "\xEF\xBF\xBD", 3), "a cut emoji should decode to one U+FFFD, got %zu bytes", len);
    free(s);
    // Only the continuation bytes: each is its own ill-formed subpart.
    int32_t last = ids[n - 1];
    int32_t two[2] = {last, last};
    s = tokenizer_decode(tok, two, 2, &len, err, sizeof err);
    REQUIRE(s, "decode failed: %s", err);
    int bytes_of_last;
    tokenizer_token_bytes(tok, last, &bytes_of_last);
    CHECK(len == (size_t)(6 * bytes_of_last), "lone continuation bytes: %d U+FFFD expected, got %zu bytes",
          2 * bytes_of_last, len);
    free(s);
    int32_t bad_id = GPT2_VOCAB_SIZE;
    CHECK(tokenizer_decode(tok, &bad_id, 1, &len, err, sizeof err) == NULL && strstr(err, "50257"),
          "an id outside the vocabulary must be refused: %s", err);
    free(ids);
}

static void test_invalid_utf8_refused(void) {
    const char* bad[] = {"ab\xFF", "\xC0\xAF", "x\xED\xA0\x80", "\xF4\x90\x80\x80", "caf\xC3", "\x80"};
    const long at[] = {2, 0, 1, 0, 3, 0};
    int32_t* ids = NULL;
    size_t cap = 0;
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        long n = tokenizer_encode(tok, bad[i], strlen(bad[i]), &ids, &cap, err, sizeof err);
        char want[64];
        snprintf(want, sizeof want, "byte %ld", at[i]);
        CHECK(n == -1 && strstr(err, want), "case %zu: expected an invalid UTF-8 error at %s, got %ld (%s)", i, want, n, err);
    }
    free(ids);
}

static void test_bad_vocabulary_files(void) {
    char err[512];
    CHECK(!tokenizer_load("/nonexistent/encoder.json", "data/gpt2/vocab.bpe", err, sizeof err) &&
              strstr(err, "/nonexistent/encoder.json"), "missing file: %s", err);
    char path[] = "/tmp/tipcap_bad_enc_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp");
    const char* bad = "{\"a\": 0, \"b\": \"x\"}";
    REQUIRE(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad), "write");
    close(fd);
    CHECK(!tokenizer_load(path, "data/gpt2/vocab.bpe", err, sizeof err) && strstr(err, path) && strstr(err, "\"b\""),
          "a non-integer id must be named: %s", err);
    unlink(path);
    // A merge that names an unknown token: use a truncated copy of the merges with a bad line.
    char merges[] = "/tmp/tipcap_bad_bpe_XXXXXX";
    fd = mkstemp(merges);
    REQUIRE(fd >= 0, "mkstemp");
    const char* m = "#version: 0.2\n\xC4\xA0 t\nzzzzzzzzzz qqqqqqqqq\n";
    REQUIRE(write(fd, m, strlen(m)) == (ssize_t)strlen(m), "write");
    close(fd);
    CHECK(!tokenizer_load("data/gpt2/encoder.json", merges, err, sizeof err) && strstr(err, ":3:"),
          "the bad merge line must be named: %s", err);
    unlink(merges);
}

// Runs bin/tipcap-tokenize with `input` on stdin; returns its status and its stdout in out.
static int run_tokenize(const char* args, const char* input, char* out, size_t cap) {
    char in_path[] = "/tmp/tipcap_tok_cli_XXXXXX";
    int fd = mkstemp(in_path);
    if (fd < 0 || write(fd, input, strlen(input)) != (ssize_t)strlen(input)) return -1;
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bin/tipcap-tokenize %s < %s 2>/dev/null", args, in_path);
    FILE* p = popen(cmd, "r");
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(in_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_program(void) {
    if (access("bin/tipcap-tokenize", X_OK) != 0) SKIP("bin/tipcap-tokenize not built");
    char out[4096];
    CHECK(run_tokenize("", "\"Hello world\"\n\"a\\n\\nb\"\n", out, sizeof out) == 0 &&
              !strcmp(out, "[15496,995]\n[64,198,198,65]\n"), "encode: got '%s'", out);
    CHECK(run_tokenize("--decode", "[15496,995]\n[64,198,198,65]\n[]\n", out, sizeof out) == 0 &&
              !strcmp(out, "\"Hello world\"\n\"a\\n\\nb\"\n\"\"\n"), "decode: got '%s'", out);
    CHECK(run_tokenize("", "\"fine\"\nnot json\n", out, sizeof out) == 1 && out[0] == '\0',
          "a bad line must fail with no output, got '%s'", out);
    CHECK(run_tokenize("", "\"bad \\ud800 surrogate\"\n", out, sizeof out) == 1 && out[0] == '\0',
          "a lone surrogate must fail, got '%s'", out);
    CHECK(run_tokenize("--decode", "[1, 99999]\n", out, sizeof out) == 1 && out[0] == '\0',
          "an id out of range must fail, got '%s'", out);
    CHECK(run_tokenize("--decode", "[1.5]\n", out, sizeof out) == 1, "a fractional id must fail");
    CHECK(run_tokenize("--decode", "[1e300]\n", out, sizeof out) == 1 && out[0] == '\0', "a huge id must fail");
    CHECK(run_tokenize("--help", "", out, sizeof out) == 0 && strstr(out, "usage"), "--help");
}

int main(void) {
    test_seed();
    tok = tokenizer_load_default();
    RUN(test_golden_encodings);
    RUN(test_random_text_matches_reference);
    RUN(test_random_round_trip);
    RUN(test_decode_cut_utf8);
    RUN(test_invalid_utf8_refused);
    RUN(test_bad_vocabulary_files);
    RUN(test_program);
    tokenizer_free(tok);
    return test_summary();
}
