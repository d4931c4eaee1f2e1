// tipcap-infer as a user runs it, on a tiny checkpoint trained here on simulated features of 60 COCO
// val images: strict option values (an error naming the option and the value, nothing written),
// the --interactive protocol (one JSON line per input line, errors as lines, the session goes on),
// prompt files (errors naming the file and the image, COCO ids, entries for other images skipped),
// and the progress line with an ETA.
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check.h"
#include "tests/harness.h"
#include "tests/shell.h"

static char dir[64];          // the test's scratch directory
static char corpus[128];      // 60 COCO val images with their captions
static char features[128];    // their simulated features (D = 64)
static char run_dir[128];     // a tiny model trained on them (max_prompts 3, vocabulary of the corpus)
static char keys[4][64];      // the first images' keys
static long long ids[4];      // and their COCO ids

static void write_text(const char* path, const char* text) {
    FILE* f = fopenCheck(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int setup(void) {
    snprintf(dir, sizeof dir, "/tmp/tipcap_infer_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char* text = readFileCheck("data/captions/coco_karpathy_val.json", NULL);
    cJSON* all = cJSON_Parse(text);
    free(text);
    cJSON* subset = cJSON_CreateObject();
    int n = 0;
    for (cJSON* img = all->child; img && n < 60; img = img->next, n++) {
        if (n < 4) {
            snprintf(keys[n], sizeof keys[n], "%s", img->string);
            ids[n] = atoll(strrchr(img->string, '_') + 1);
        }
        cJSON_AddItemToObject(subset, img->string, cJSON_Duplicate(img, 1));
    }
    char* out = cJSON_Print(subset);
    snprintf(corpus, sizeof corpus, "%s/corpus.json", dir);
    write_text(corpus, out);
    free(out);
    cJSON_Delete(subset);
    cJSON_Delete(all);
    snprintf(features, sizeof features, "%s/features.h5", dir);
    char log[128], config[128];
    snprintf(log, sizeof log, "%s/setup.log", dir);
    if (sh(log, "bin/tipcap-synth --captions %s --out %s --dim 64 --seed 7", corpus, features)) return -1;
    snprintf(config, sizeof config, "%s/tiny.json", dir);
    FILE* f = fopenCheck(config, "wb");
    fprintf(f,
            "{\"run\": {\"name\": \"tiny\", \"device\": \"cpu\", \"seed\": 5},\n"
            " \"data\": {\"corpus\": \"%s\", \"features\": \"%s\", \"val_split\": \"none\", \"max_len\": 16},\n"
            " \"mapping\": {\"setting\": \"text\", \"sigma2\": 0.016},\n"
            " \"model\": {\"prefix_len\": 2, \"width\": 32, \"dec_layers\": 1, \"dec_heads\": 2, \"int_layers\": 1,\n"
            "           \"int_heads\": 2, \"proj_hidden\": 32, \"max_prompts\": 3, \"max_len\": 20, \"vocab\": \"corpus\"},\n"
            " \"train\": {\"batch_size\": 8, \"steps\": 4, \"lr\": 3e-3, \"warmup_steps\": 1, \"log_every\": 4,\n"
            "           \"checkpoint_every\": 4}}\n",
            corpus, features);
    fclose(f);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    return sh(log, "bin/tipcap-train --config %s --set run.dir=%s", config, run_dir) ? -1 : 0;
}

// A failing tipcap-infer run: non-zero exit, every `want` in its messages, no results file.
static void expect_failure(const char* name, const char* const* want, int n_want, const char* args) {
    char log[160], out[160];
    snprintf(log, sizeof log, "%s/%s.err", dir, name);
    snprintf(out, sizeof out, "%s/%s.json", dir, name);
    int rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --out %s %s", run_dir, features, out, args);
    char* err = slurp(log);
    CHECK(rc != 0, "%s: exited 0", args);
    for (int i = 0; i < n_want; i++) CHECK(strstr(err, want[i]) != NULL, "%s: the error does not say \"%s\":\n%s", args, want[i], err);
    CHECK(access(out, F_OK) != 0, "%s: a failed run left %s behind", args, out);
    free(err);
}

static void test_strict_numbers(void) {
    const char* bad[][2] = {
        {"--beam", "abc"}, {"--beam", "0"}, {"--beam", "11"}, {"--beam", "3x"}, {"--beam", ""},
        {"--length-penalty", "abc"}, {"--length-penalty", "nan"}, {"--max-len", "abc"}, {"--max-len", "0"},
        {"--limit", "-3"}, {"--limit", "0"}, {"--limit", "1.5"}, {"--threshold", "1.5"}, {"--threshold", "-0.1"},
        {"--threshold", "x"}, {"--temperature", "0"}, {"--temperature", "-1"}, {"--temperature", "abc"},
        {"--precision", "fp16"}, {"--batch", "0"}, {"--batch", "8k"}, {"--no-repeat-ngram", "-1"},
        {"--no-repeat-ngram", "two"}, {"--device", "gpu"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[128], name[32];
        snprintf(args, sizeof args, "%s '%s'", bad[i][0], bad[i][1]);
        snprintf(name, sizeof name, "strict%zu", i);
        const char* want[] = {bad[i][0], bad[i][1]};
        expect_failure(name, want, 2, args);
    }
}

// Every input line gets one JSON line; parses them into an array (NULL where a line is not JSON).
static cJSON* interactive(const char* name, const char* input, const char* args, int* rc) {
    char log[160], in[160], out[160];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    snprintf(in, sizeof in, "%s/%s.in", dir, name);
    snprintf(out, sizeof out, "%s/%s.out", dir, name);
    write_text(in, input);
    *rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --interactive --beam 2 %s < %s > %s", run_dir, features,
             args, in, out);
    char* text = slurp(out);
    cJSON* lines = cJSON_CreateArray();
    char* save;
    for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON* o = cJSON_Parse(line);
        cJSON_AddItemToArray(lines, o ? o : cJSON_CreateNull());
    }
    free(text);
    return lines;
}

static const char* str_field(const cJSON* o, const char* key) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

// "a,b" when the answer's prompts are ["a", "b"]
static void prompts_of(const cJSON* o, char* buf, size_t cap) {
    buf[0] = '\0';
    const cJSON* p = cJSON_GetObjectItemCaseSensitive(o, "prompts");
    const cJSON* w;
    size_t len = 0;
    cJSON_ArrayForEach(w, p) len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? "," : "", cJSON_GetStringValue(w));
}

static void test_interactive_protocol(void) {
    char input[2048];
    snprintf(input, sizeof input,
             "%s Dog, frisbee\n"       // 0: lower-cased like training entities
             "no_such_image.jpg dog\n" // 1: unknown key
             "%s\n"                    // 2: no prompts
             "%lld  dog  \n"           // 3: the COCO id, words split by spaces
             "%s a, b, c, d\n"         // 4: too many words
             "%s 漢字\n"               // 5: a word the model cannot spell
             "\n"                      // 6: no key
             "%s dog, frisbee\n",      // 7: the session went on; the same caption as line 0
             keys[0], keys[1], ids[2], keys[0], keys[0], keys[0]);
    int rc;
    cJSON* lines = interactive("interactive", input, "--with-scores", &rc);
    CHECK(rc == 0, "the interactive session exited with %d", rc);
    REQUIRE(cJSON_GetArraySize(lines) == 8, "8 input lines, %d output lines", cJSON_GetArraySize(lines));
    const char* want_image[] = {keys[0], "no_such_image.jpg", keys[1], NULL, keys[0], keys[0], "", keys[0]};
    char id[32];
    snprintf(id, sizeof id, "%lld", ids[2]);
    want_image[3] = id;
    const int is_error[] = {0, 1, 0, 0, 1, 1, 1, 0};
    const char* want_prompts[] = {"dog,frisbee", "", "", "dog", "", "", "", "dog,frisbee"};
    const char* want_error[] = {NULL, "no_such_image.jpg", NULL, NULL, "at most 3", "cannot spell", "no image key", NULL};
    for (int i = 0; i < 8; i++) {
        cJSON* o = cJSON_GetArrayItem(lines, i);
        REQUIRE(cJSON_IsObject(o), "line %d is not a JSON object", i);
        const char* image = str_field(o, "image");
        CHECK(image && !strcmp(image, want_image[i]), "line %d: image %s, expected %s", i, image, want_image[i]);
        const char* error = str_field(o, "error");
        if (is_error[i]) {
            CHECK(error && strstr(error, want_error[i]), "line %d: expected an error saying \"%s\", got %s", i,
                  want_error[i], error ? error : cJSON_PrintUnformatted(o));
            CHECK(!cJSON_GetObjectItemCaseSensitive(o, "caption"), "line %d: an error line with a caption", i);
        } else {
            char p[256];
            prompts_of(o, p, sizeof p);
            CHECK(!error, "line %d: unexpected error %s", i, error);
            CHECK(str_field(o, "caption") && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "prompts")),
                  "line %d: no caption or prompts", i);
            CHECK(!strcmp(p, want_prompts[i]), "line %d: prompts [%s], expected [%s]", i, p, want_prompts[i]);
            CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "score")), "line %d: no score with --with-scores", i);
        }
    }
    const char* c0 = str_field(cJSON_GetArrayItem(lines, 0), "caption");
    const char* c7 = str_field(cJSON_GetArrayItem(lines, 7), "caption");
    CHECK(c0 && c7 && !strcmp(c0, c7), "\"Dog, frisbee\" and \"dog, frisbee\" gave different captions: %s / %s", c0, c7);
    cJSON_Delete(lines);
    // without --with-scores: no score
    snprintf(input, sizeof input, "%s dog\n", keys[0]);
    lines = interactive("interactive_noscore", input, "", &rc);
    REQUIRE(cJSON_GetArraySize(lines) == 1, "1 input line, %d output lines", cJSON_GetArraySize(lines));
    CHECK(!cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(lines, 0), "score"), "a score without --with-scores");
    cJSON_Delete(lines);
}

// The prompts tipcap-infer --with-scores wrote for an image ("a,b"), or "?" when it wrote no result for it.
static void result_prompts(const char* results, const char* key, char* buf, size_t cap) {
    snprintf(buf, cap, "?");
    char* text = slurp(results);
    cJSON* all = cJSON_Parse(text);
    free(text);
    long long id = atoll(strrchr(key, '_') + 1);
    const cJSON* r;
    cJSON_ArrayForEach(r, all) if (cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "image_id")) == (double)id)
        prompts_of(r, buf, cap);
    cJSON_Delete(all);
}

static void test_prompt_files(void) {
    char path[160], args[400];
    snprintf(path, sizeof path, "%s/p.json", dir);
    snprintf(args, sizeof args, "--limit 10 --prompts %s", path);
    char text[4096];
    // malformed JSON: line and column
    snprintf(text, sizeof text, "{\n  \"%s\": [\"dog\"\n   \"cat\"]\n}\n", keys[0]);
    write_text(path, text);
    char where[200];
    snprintf(where, sizeof where, "%s:3:4: malformed JSON", path);
    expect_failure("pf_malformed", (const char*[]){where}, 1, args);
    // errors name the file and the image
    const char* bodies[][2] = {
        {"\"dog\"", "expected an array of words"},
        {"[\"a\", \"b\", \"c\", \"d\"]", "4 words, the model takes at most 3"},
        {"[\"dog\", \"漢字\"]", "\"漢字\": the model cannot spell it"},
        {"[\"dog\", 3]", "every word must be a non-empty string"},
        {"[\"  \"]", "every word must be a non-empty string"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        snprintf(text, sizeof text, "{\"%s\": [\"dog\"], \"%s\": %s}", keys[0], keys[1], bodies[i][0]);
        write_text(path, text);
        char image[100], name[32];
        snprintf(image, sizeof image, "image \"%s\"", keys[1]);
        snprintf(name, sizeof name, "pf_bad%zu", i);
        expect_failure(name, (const char*[]){path, image, bodies[i][1]}, 3, args);
    }
    // an image given by its key and by its COCO id
    snprintf(text, sizeof text, "{\"%s\": [\"dog\"], \"%lld\": [\"cat\"]}", keys[0], ids[0]);
    write_text(path, text);
    expect_failure("pf_twice", (const char*[]){path, "given twice"}, 2, args);
    // a file for the whole split on 10 images: COCO ids as keys, words lower-cased, other images skipped and counted
    cJSON* p = cJSON_CreateObject();
    char* corpus_text = readFileCheck(corpus, NULL);
    cJSON* all = cJSON_Parse(corpus_text);
    free(corpus_text);
    int n = 0;
    for (cJSON* img = all->child; img; img = img->next, n++) {
        cJSON* words = cJSON_CreateArray();
        cJSON_AddItemToArray(words, cJSON_CreateString(n == 0 ? "Dog" : "dog"));
        if (n == 2) {  // by its COCO id
            char id[32];
            snprintf(id, sizeof id, "%lld", ids[2]);
            cJSON_AddItemToObject(p, id, words);
        } else if (n == 1) {
            cJSON_Delete(words);  // no entry: no prompts
        } else {
            cJSON_AddItemToObject(p, img->string, words);
        }
    }
    cJSON_AddItemToObject(p, "not_in_the_split.jpg", cJSON_CreateStringArray((const char*[]){"dog"}, 1));
    cJSON_Delete(all);
    char* json = cJSON_Print(p);
    write_text(path, json);
    free(json);
    cJSON_Delete(p);
    char log[160], out[160];
    snprintf(log, sizeof log, "%s/pf_subset.log", dir);
    snprintf(out, sizeof out, "%s/pf_subset.json", dir);
    int rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --out %s --with-scores --beam 2 %s", run_dir, features,
                out, args);
    char* err = slurp(log);
    CHECK(rc == 0, "a prompt file for the whole split on 10 images failed:\n%s", err);
    CHECK(strstr(err, "51 entries for images not in") && strstr(err, "skipped"),
          "no count of the 51 skipped entries (50 beyond --limit, 1 not in the file):\n%s", err);
    free(err);
    const char* want[] = {"dog", "", "dog", "dog"};
    for (int i = 0; i < 4; i++) {
        char got[128];
        result_prompts(out, keys[i], got, sizeof got);
        CHECK(!strcmp(got, want[i]), "image %s: prompts [%s], expected [%s]", keys[i], got, want[i]);
    }
}

// Captioning shows its progress with an ETA: log lines when stderr is not a terminal, a line redrawn
// in place on a terminal (script(1) gives it one).
static void test_progress(void) {
    char log[160], out[160];
    snprintf(log, sizeof log, "%s/progress.log", dir);
    snprintf(out, sizeof out, "%s/progress.json", dir);
    int rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --out %s --beam 1 --batch 1 --limit 20", run_dir,
                features, out);
    char* err = slurp(log);
    CHECK(rc == 0, "inference failed:\n%s", err);
    CHECK(strstr(err, "captioned 2/20 images") && strstr(err, "captioned 18/20 images") && strstr(err, "ETA "),
          "no progress lines with an ETA:\n%s", err);
    free(err);
    if (system("command -v script >/dev/null 2>&1") != 0) SKIP("script(1) is not installed: no terminal to test on");
    snprintf(log, sizeof log, "%s/progress_tty.log", dir);
    rc = sh(log, "script -qec 'bin/tipcap-infer --checkpoint %s --features %s --out %s --beam 1 --batch 5 --limit 20' "
                 "/dev/null", run_dir, features, out);
    err = slurp(log);
    CHECK(rc == 0, "inference on a terminal failed:\n%s", err);
    CHECK(strstr(err, "\rcaptioned 5/20 images") && strstr(err, "\rcaptioned 20/20 images") && strstr(err, "ETA "),
          "no progress line redrawn in place:\n%s", err);
    free(err);
}

int main(void) {
    if (access("bin/tipcap-infer", X_OK) != 0 || access("bin/tipcap-train", X_OK) != 0) {
        printf("run from the repository root after make\n0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    if (setup()) {
        printf("FAIL setup: could not train the test model in %s (see setup.log)\n0 passed, 1 failed, 0 skipped\n", dir);
        return 1;
    }
    RUN(test_strict_numbers);
    RUN(test_interactive_protocol);
    RUN(test_prompt_files);
    RUN(test_progress);
    int rc = test_summary();
    if (rc == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    return rc;
}
