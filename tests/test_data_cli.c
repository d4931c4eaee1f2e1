// tipcap-prep tokens and entities: outputs on a small corpus, counts, L, and bad input (exit
// status, message, no output left behind).
#include <cjson/cJSON.h>

#include "common/check.h"
#include "tests/harness.h"

static char dir[64];

static int run(const char* cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char* slurp(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fclose(f);
    size_t n;
    return readFileCheck(path, &n);
}

static void write_file(const char* path, const char* text) {
    FILE* f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_tokens(void) {
    if (access("bin/tipcap-prep", X_OK) != 0) SKIP("bin/tipcap-prep not built");
    char corpus[128], out[128], log[128], cmd[600];
    snprintf(corpus, sizeof corpus, "%s/k.json", dir);
    snprintf(out, sizeof out, "%s/t.jsonl", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    write_file(corpus,
               "{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"train\", \"sentences\": [{\"raw\": \" Hello world \"}, {\"raw\": \"a dog\"}]},"
               " {\"filename\": \"b.jpg\", \"split\": \"restval\", \"sentences\": [{\"raw\": \"one two three four five six\"}]},"
               " {\"filename\": \"c.jpg\", \"split\": \"test\", \"sentences\": [{\"raw\": \"test only\"}]}]}");
    snprintf(cmd, sizeof cmd, "bin/tipcap-prep tokens --captions %s --max-len 4 --out %s > %s", corpus, out, log);
    REQUIRE(run(cmd) == 0, "tokens failed");
    char* text = slurp(out);
    REQUIRE(text, "no output");
    CHECK(strstr(text, "{\"image\": \"a.jpg\", \"caption\": \" Hello world \", \"ids\": [15496,995]}") != NULL,
          "trimmed caption tokens: %s", text);
    CHECK(strstr(text, "\"b.jpg\"") && !strstr(text, "c.jpg"), "restval is train, test is not");
    CHECK(strstr(text, "\"ids\": [505,734,1115,1440]}") != NULL, "truncated to L = 4: %s", text);
    free(text);
    text = slurp(log);
    CHECK(text && strstr(text, "train       2 images        3 captions") && strstr(text, "L = 4 (--max-len): 1 captions"),
          "statistics: %s", text);
    free(text);
    // Bad corpus: exit 1, a message naming the file and field, no output file.
    write_file(corpus, "{\"images\": [{\"filename\": \"a.jpg\", \"split\": \"train\", \"sentences\": [{\"raw\": \"\"}]}]}");
    snprintf(cmd, sizeof cmd, "rm -f %s; bin/tipcap-prep tokens --captions %s --out %s 2> %s", out, corpus, out, log);
    CHECK(run(cmd) == 1, "an empty caption must fail");
    text = slurp(log);
    CHECK(text && strstr(text, corpus) && strstr(text, "sentences[0].raw: empty caption"), "message: %s", text);
    free(text);
    CHECK(access(out, F_OK) != 0, "no output left behind");
    snprintf(cmd, sizeof cmd, "bin/tipcap-prep tokens --captions %s --percentile 0 2>/dev/null", corpus);
    CHECK(run(cmd) == 2, "a bad percentile is a usage error");
}

static void test_entities(void) {
    if (access("bin/tipcap-prep", X_OK) != 0) SKIP("bin/tipcap-prep not built");
    char corpus[128], out[128], cmd[600];
    snprintf(corpus, sizeof corpus, "%s/s.json", dir);
    snprintf(out, sizeof out, "%s/e.json", dir);
    write_file(corpus, "{\"x.jpg\": [\"Two dogs and a frisbee\", \"a dog in a park\", \"a fire hydrant\"], \"y.jpg\": [\"nothing\"]}");
    snprintf(cmd, sizeof cmd, "bin/tipcap-prep entities --captions %s --out %s > /dev/null", corpus, out);
    REQUIRE(run(cmd) == 0, "entities failed");
    char* text = slurp(out);
    cJSON* root = cJSON_Parse(text);
    const cJSON* x = cJSON_GetObjectItemCaseSensitive(root, "x.jpg");
    CHECK(cJSON_GetArraySize(x) == 4 && !strcmp(cJSON_GetArrayItem(x, 0)->valuestring, "dog") &&
              !strcmp(cJSON_GetArrayItem(x, 3)->valuestring, "fire hydrant"), "x.jpg: %s", text);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "y.jpg")) == 0, "y.jpg has none");
    cJSON_Delete(root);
    free(text);
    snprintf(cmd, sizeof cmd, "bin/tipcap-prep entities --captions %s --out %s --min-count 2 > /dev/null", corpus, out);
    REQUIRE(run(cmd) == 0, "entities --min-count failed");
    text = slurp(out);
    root = cJSON_Parse(text);
    x = cJSON_GetObjectItemCaseSensitive(root, "x.jpg");
    CHECK(cJSON_GetArraySize(x) == 1 && !strcmp(cJSON_GetArrayItem(x, 0)->valuestring, "dog"), "min-count 2: %s", text);
    cJSON_Delete(root);
    free(text);
    snprintf(cmd, sizeof cmd, "rm -f %s; bin/tipcap-prep entities --captions %s --vocab /nonexistent.json --out %s 2>/dev/null",
             out, corpus, out);
    CHECK(run(cmd) == 1 && access(out, F_OK) != 0, "a missing vocabulary fails with no output");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/tipcap_prep_XXXXXX");
    if (!mkdtemp(dir)) FATAL("mkdtemp");
    RUN(test_tokens);
    RUN(test_entities);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
    return test_summary();
}
