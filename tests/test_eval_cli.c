// tipcap-eval's machinery around the scorers: the parallel PTB step, the paraphrase index
// (built, cached, rebuilt when stale or damaged), the command line's errors, and the --spice-jar
// path against a stand-in for spice-1.0.jar (compiled here with javac). tests/test_eval.c holds
// the scores against the toolkit's.
#include <cJSON.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "eval/eval.h"
#include "eval/paraphrase_index.h"
#include "tests/harness.h"

static char repo[PATH_MAX / 2];
static char tmp_dir[] = "/tmp/tipcap-test-eval-cli-XXXXXX";

// A path in the scratch folder; the last 32 stay valid.
static const char* scratch(const char* name) {
    static char buf[32][PATH_MAX];
    static int k;
    k = (k + 1) % 32;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

static char* slurp(const char* path, size_t* len) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    if (len) *len = got;
    return buf;
}

static void write_text(const char* path, const char* text) {
    FILE* f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static cJSON* load_json(const char* path) {
    char* text = slurp(path, NULL);
    cJSON* j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

// Runs a shell command line; returns its exit status, with its stderr in err and stdout in out.
static int run(const char* cmd, char* out, size_t out_cap, char* err, size_t err_cap) {
    char full[8 * PATH_MAX];
    snprintf(full, sizeof full, "%s >'%s' 2>'%s'", cmd, scratch("stdout"), scratch("stderr"));
    int rc = system(full);
    char* o = slurp(scratch("stdout"), NULL);
    char* e = slurp(scratch("stderr"), NULL);
    snprintf(out, out_cap, "%s", o ? o : "");
    snprintf(err, err_cap, "%s", e ? e : "");
    free(o);
    free(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// ---------------------------------------------------------------- the parallel PTB step
static void add_caption(const char*** v, size_t* n, size_t* cap, const char* s) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 4096;
        *v = realloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = s;
}

static void test_parallel_tokenizer_same_output(void) {
    // every reference of the shipped COCO and Flickr30k test splits and the tricky fragments,
    // each batch through the chunked tokenizer and as one batch
    const char** captions = NULL;
    size_t n = 0, cap = 0;
    char path[PATH_MAX];
    const char* splits[] = {"coco_karpathy_test.json", "flickr30k_karpathy_test.json"};
    cJSON* docs[2];
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/tests/data/eval/%s", repo, splits[s]);
        docs[s] = load_json(path);
        REQUIRE(docs[s], "cannot read %s", path);
        const cJSON* image;
        cJSON_ArrayForEach(image, docs[s]) {
            const cJSON* ref;
            cJSON_ArrayForEach(ref, image) add_caption(&captions, &n, &cap, ref->valuestring);
        }
    }
    snprintf(path, sizeof path, "%s/tests/data/eval/ptb_cases.txt", repo);
    char* cases = slurp(path, NULL);
    REQUIRE(cases, "cannot read %s", path);
    for (char* line = strtok(cases, "\n"); line; line = strtok(NULL, "\n")) add_caption(&captions, &n, &cap, line);
    // a letter and its period at the end of a chunk (512 captions): split when the next caption
    // with text, past blank ones in the next chunk, starts with a capital ("x b" / "x b.")
    size_t boundary = (n / 512 + 1) * 512;
    while (n < boundary - 1) add_caption(&captions, &n, &cap, "a dog");
    add_caption(&captions, &n, &cap, "x b.");
    add_caption(&captions, &n, &cap, "");
    add_caption(&captions, &n, &cap, " \t ");
    add_caption(&captions, &n, &cap, "The end");
    char** one = malloc(n * sizeof *one);
    char** chunked = malloc(n * sizeof *chunked);
    ptb_tokenize_captions(captions, n, one);
    ptb_tokenize_batch(captions, n, chunked);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(one[i], chunked[i]) && bad++ < 5) CHECK(0, "caption %zu \"%s\": \"%s\" in one batch, \"%s\" chunked", i, captions[i], one[i], chunked[i]);
        free(one[i]);
        free(chunked[i]);
    }
    CHECK(bad == 0, "%d of %zu captions differ", bad, n);
    free(one);
    free(chunked);
    free(captions);
    free(cases);
    cJSON_Delete(docs[0]);
    cJSON_Delete(docs[1]);
}

// ---------------------------------------------------------------- the command line
static void test_usage_errors(void) {
    char out[4096], err[4096], cmd[4 * PATH_MAX];
    const char* refs = scratch("refs.json");
    const char* res = scratch("res.json");
    write_text(refs, "{\"1\": [\"a dog runs\"]}");
    write_text(res, "[{\"image_id\": \"1\", \"caption\": \"a dog\"}]");
    snprintf(cmd, sizeof cmd, "'%s/bin/tipcap-eval' --refs '%s' --results '%s' --metrics ''", repo, refs, res);
    int rc = run(cmd, out, sizeof out, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "--metrics: no metric named"), "--metrics '': exit %d, \"%s\"", rc, err);
    snprintf(cmd, sizeof cmd, "'%s/bin/tipcap-eval' --refs '%s' --results '%s' --metrics ,", repo, refs, res);
    rc = run(cmd, out, sizeof out, err, sizeof err);
    CHECK(rc == 2 && strstr(err, "--metrics: no metric named"), "--metrics ,: exit %d, \"%s\"", rc, err);
    const char* json = scratch("out.json");
    remove(json);
    snprintf(cmd, sizeof cmd, "'%s/bin/tipcap-eval' --refs '%s' --results '%s' --spice-jar '%s/no-such.jar' --json '%s'", repo, refs, res,
             tmp_dir, json);
    rc = run(cmd, out, sizeof out, err, sizeof err);
    struct stat st;
    CHECK(rc == 1 && strstr(err, "--spice-jar") && strstr(err, "no-such.jar: No such file"), "a missing --spice-jar: exit %d, \"%s\"", rc, err);
    CHECK(stat(json, &st) != 0 && !strstr(out, "SPICE"), "a missing --spice-jar still scored");
}

// ---------------------------------------------------------------- the paraphrase index
// A METEOR run on one image whose only match beyond exact words is the paraphrase
// "zorp" -> "blick fen"; returns the exit status, the score and whether paraphrases ran.
static int meteor_run(const char* table, const char* env, double* meteor, int* para, char* out, char* err, size_t cap) {
    const char* refs = scratch("mrefs.json");
    const char* res = scratch("mres.json");
    const char* json = scratch("mout.json");
    write_text(refs, "{\"1\": [\"the blick fen sat on a mat\"]}");
    write_text(res, "[{\"image_id\": \"1\", \"caption\": \"the zorp sat on a mat\"}]");
    remove(json);
    char cmd[6 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "%s TIPCAP_METEOR_PARAPHRASE='%s' '%s/bin/tipcap-eval' --refs '%s' --results '%s' --metrics meteor --no-tokenize --json '%s'",
             env ? env : "", table, repo, refs, res, json);
    int rc = run(cmd, out, cap, err, cap);
    cJSON* j = load_json(json);
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "scores"), "METEOR");
    *meteor = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    *para = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "meteor_paraphrase"));
    cJSON_Delete(j);
    return rc;
}

static void write_table(const char* path, const char* text) {
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "gzip -c > '%s'", path);
    FILE* f = popen(cmd, "w");
    fputs(text, f);
    pclose(f);
}

static void test_paraphrase_index(void) {
    char out[4096], err[4096];
    char table[PATH_MAX];
    snprintf(table, sizeof table, "%s", scratch("paraphrase-en.gz"));
    // probability, phrase, paraphrase; an entry with a word the captions lack and one of 65 words
    // are never kept
    char text[4096] = "0.5\nzorp\nblick fen\n0.1\nzorp\nnever seen\n0.2\nmat\n";
    for (int k = 0; k < 65; k++) strcat(text, "the ");
    strcat(text, "\n0.3\nsat\non\n");
    write_table(table, text);
    char index[PATH_MAX + 32];
    snprintf(index, sizeof index, "%s.tipcap-index", table);
    remove(index);
    double without, first, second, again;
    int para;
    int rc = meteor_run("/nonexistent/paraphrase-en.gz", NULL, &without, &para, out, err, sizeof out);
    REQUIRE(rc == 0 && !para, "without a table: exit %d, paraphrase %d: %s", rc, para, err);
    CHECK(strstr(out, "METEOR: ") && strstr(out, "without the paraphrase module"), "the table line does not say the paraphrases are missing: %s", out);
    rc = meteor_run(table, NULL, &first, &para, out, err, sizeof out);
    REQUIRE(rc == 0 && para, "with the table: exit %d, paraphrase %d: %s", rc, para, err);
    CHECK(strstr(err, "indexing the paraphrase table") != NULL, "no note on building the index: %s", err);
    CHECK(first > without, "METEOR %.17g with the paraphrase, %.17g without: the paraphrase did not match", first, without);
    CHECK(!strstr(out, "without the paraphrase"), "the table line says no paraphrases: %s", out);
    struct stat st;
    REQUIRE(stat(index, &st) == 0, "no index written beside the table (%s)", index);
    rc = meteor_run(table, NULL, &second, &para, out, err, sizeof out);
    CHECK(rc == 0 && para && second == first && !strstr(err, "index"), "from the cached index: exit %d, %.17g vs %.17g, \"%s\"", rc, second, first, err);
    // a damaged index (one byte of its contents changed) is rebuilt, not used
    FILE* f = fopen(index, "r+b");
    REQUIRE(f, "cannot open %s", index);
    fseek(f, -8, SEEK_END);
    int c = fgetc(f);
    fseek(f, -8, SEEK_END);
    fputc(c ^ 0x40, f);
    fclose(f);
    rc = meteor_run(table, NULL, &again, &para, out, err, sizeof out);
    CHECK(rc == 0 && para && again == first && strstr(err, "stale or damaged"), "damaged index: exit %d, %.17g vs %.17g, \"%s\"", rc, again, first, err);
    // another table under the same name: the index is stale, and the new table's entries count
    write_table(table, "0.5\nzorp\nsat on\n");
    rc = meteor_run(table, NULL, &again, &para, out, err, sizeof out);
    CHECK(rc == 0 && para && again == without && strstr(err, "stale or damaged"), "stale index: exit %d, %.17g (want %.17g), \"%s\"", rc, again, without, err);
    // where the index cannot be written beside the table, it goes to the cache folder
    write_table(table, text);
    remove(index);
    mkdir(index, 0755);  // a folder in the way: neither read nor replaced
    char env[PATH_MAX + 32], cached[PATH_MAX + 64];
    snprintf(env, sizeof env, "XDG_CACHE_HOME='%s/xdg'", tmp_dir);
    rc = meteor_run(table, env, &again, &para, out, err, sizeof out);
    CHECK(rc == 0 && para && again == first, "index in the cache folder: exit %d, %.17g vs %.17g, \"%s\"", rc, again, first, err);
    char* paths[2];
    setenv("XDG_CACHE_HOME", scratch("xdg"), 1);
    para_index_paths(table, paths);
    unsetenv("XDG_CACHE_HOME");
    snprintf(cached, sizeof cached, "%s", paths[1] ? paths[1] : "");
    free(paths[0]);
    free(paths[1]);
    CHECK(strstr(cached, "/xdg/tipcap/paraphrase-") && stat(cached, &st) == 0 && S_ISREG(st.st_mode), "no index at %s", cached);
    rmdir(index);
    // a table that is not gzip: a warning, and METEOR without paraphrases, labelled so
    write_text(table, "not a gzip file\n");
    rc = meteor_run(table, NULL, &again, &para, out, err, sizeof out);
    CHECK(rc == 0 && !para && again == without && strstr(err, "not a complete gzip file") && strstr(out, "without the paraphrase module"),
          "damaged table: exit %d, paraphrase %d, \"%s\" \"%s\"", rc, para, err, out);
}

// ---------------------------------------------------------------- --spice-jar
// The stand-in's score (tests/eval_spice_standin): precision over the test's words, recall over
// the references' distinct words, their harmonic mean.
static double standin_f(const char* test, const cJSON* refs) {
    char seen[64][64];
    int n_ref = 0, recalled[64] = {0};
    const cJSON* r;
    cJSON_ArrayForEach(r, refs) {
        char* copy = strdup(r->valuestring);
        for (char* w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
            int k = 0;
            while (k < n_ref && strcmp(seen[k], w)) k++;
            if (k == n_ref && n_ref < 64) snprintf(seen[n_ref++], sizeof seen[0], "%s", w);
        }
        free(copy);
    }
    int words = 0, found = 0;
    char* copy = strdup(test);
    for (char* w = strtok(copy, " "); w; w = strtok(NULL, " ")) {
        words++;
        for (int k = 0; k < n_ref; k++)
            if (!strcmp(seen[k], w)) { found++, recalled[k] = 1; break; }
    }
    free(copy);
    int n_recalled = 0;
    for (int k = 0; k < n_ref; k++) n_recalled += recalled[k];
    double pr = (double)found / words, re = (double)n_recalled / n_ref;
    return 2 * pr * re / (pr + re);
}

static void test_spice_jar(void) {
    char out[8192], err[8192], cmd[8 * PATH_MAX];
    if (system("command -v javac >/dev/null && command -v jar >/dev/null && command -v java >/dev/null") != 0)
        SKIP("needs javac, jar and java (a JDK) to build the SPICE stand-in");
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", scratch("spice"));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/lib' && cd '%s' && javac -d . '%s/tests/eval_spice_standin/SpiceStandIn.java' && printf 'Main-Class: SpiceStandIn\\n' > m.txt && jar cfm spice-1.0.jar m.txt *.class",
             dir, dir, repo);
    REQUIRE(run(cmd, out, sizeof out, err, sizeof err) == 0, "cannot build the stand-in: %s", err);
    // integer ids whose numeric order (9, 10, 100) is not the references' order nor the string order
    const char* refs = scratch("srefs.json");
    const char* res = scratch("sres.json");
    write_text(refs, "{\"images\": [{\"id\": 10}, {\"id\": 9}, {\"id\": 100}], \"annotations\": ["
                     "{\"image_id\": 10, \"caption\": \"A dog runs on the grass.\"}, {\"image_id\": 10, \"caption\": \"A brown dog running.\"},"
                     "{\"image_id\": 9, \"caption\": \"Two cats sleep on a sofa.\"},"
                     "{\"image_id\": 100, \"caption\": \"A man rides a red bike.\"}, {\"image_id\": 100, \"caption\": \"Someone cycling.\"}]}");
    write_text(res, "[{\"image_id\": 100, \"caption\": \"A man on a bike.\"}, {\"image_id\": 9, \"caption\": \"A cat on a sofa.\"},"
                    "{\"image_id\": 10, \"caption\": \"A dog on grass.\"}]");
    const char* json = scratch("sout.json");
    const char* tokens = scratch("stokens.json");
    // a relative jar path, from another folder: it runs in the jar's folder
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s/bin/tipcap-eval' --refs '%s' --results '%s' --metrics spice --spice-jar spice/spice-1.0.jar --json '%s' --tokens '%s'",
             tmp_dir, repo, refs, res, json, tokens);
    int rc = run(cmd, out, sizeof out, err, sizeof err);
    REQUIRE(rc == 0, "tipcap-eval with the stand-in exited %d: %s", rc, err);
    CHECK(strstr(out, "SPICE: ") && !strstr(out, "approx"), "the table line is not SPICE: %s", out);
    // the invocation, as pycocoevalcap's spice.py makes it
    char path[PATH_MAX + 32], real_dir[PATH_MAX];
    snprintf(path, sizeof path, "%s/standin-invocation.txt", dir);
    char* log = slurp(path, NULL);
    REQUIRE(log, "the stand-in wrote no %s", path);
    REQUIRE(realpath(dir, real_dir), "realpath %s", dir);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "cwd %s\n", real_dir);
    CHECK(strstr(log, want) != NULL, "not run in the jar's folder: %s", log);
    CHECK(strstr(log, "jvm -Xmx8G\n") != NULL, "JVM options: %s", log);
    snprintf(want, sizeof want, " -cache %s/cache -out /tmp/tipcap-spice-out-", real_dir);
    CHECK(strstr(log, "args /tmp/tipcap-spice-in-") && strstr(log, want) && strstr(log, " -subset -silent\n"), "arguments: %s", log);
    CHECK(strstr(log, "image 9\nimage 10\nimage 100\n") != NULL, "images not in the toolkit's sorted order: %s", log);
    free(log);
    // per image: the stand-in's F-score of the tokenised captions; the mean over the sorted order
    cJSON* j = load_json(json);
    cJSON* t = load_json(tokens);
    REQUIRE(j && t, "no JSON or tokens written");
    CHECK(!cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "scores"), "SPICE-approx"), "SPICE-approx reported");
    const cJSON* images = cJSON_GetObjectItemCaseSensitive(j, "images");
    double sorted[3];
    int ids[3] = {0};
    for (int k = 0; k < 3; k++) {
        const cJSON* im = cJSON_GetArrayItem(images, k);
        const cJSON* tk = cJSON_GetArrayItem(t, k);
        double want_f = standin_f(cJSON_GetObjectItemCaseSensitive(tk, "caption")->valuestring, cJSON_GetObjectItemCaseSensitive(tk, "refs"));
        double got = cJSON_GetObjectItemCaseSensitive(im, "SPICE")->valuedouble;
        ids[k] = (int)cJSON_GetObjectItemCaseSensitive(im, "image_id")->valuedouble;
        CHECK(got == want_f, "image %d: SPICE %.17g, the stand-in's %.17g", ids[k], got, want_f);
        sorted[ids[k] == 9 ? 0 : ids[k] == 10 ? 1 : 2] = want_f;
    }
    CHECK(ids[0] == 10 && ids[1] == 9 && ids[2] == 100, "images not in the references' order");
    double mean = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "scores"), "SPICE")->valuedouble;
    CHECK(mean == ((sorted[0] + sorted[1]) + sorted[2]) / 3, "SPICE %.17g, the mean in sorted order %.17g", mean, ((sorted[0] + sorted[1]) + sorted[2]) / 3);
    cJSON_Delete(j);
    cJSON_Delete(t);
    // a failing jar, or output that does not fit, is an error, never SPICE-approx
    snprintf(cmd, sizeof cmd, "SPICE_STANDIN_EXIT=3 '%s/bin/tipcap-eval' --refs '%s' --results '%s' --metrics spice --spice-jar '%s/spice-1.0.jar'", repo, refs,
             res, dir);
    rc = run(cmd, out, sizeof out, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "SPICE failed (java exited with status 3") && !strstr(out, "SPICE"), "failing jar: exit %d, \"%s\"", rc, err);
    snprintf(cmd, sizeof cmd, "SPICE_STANDIN_REVERSE=1 '%s/bin/tipcap-eval' --refs '%s' --results '%s' --metrics spice --spice-jar '%s/spice-1.0.jar'", repo,
             refs, res, dir);
    rc = run(cmd, out, sizeof out, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "out of order"), "reordered output: exit %d, \"%s\"", rc, err);
}

// ---------------------------------------------------------------- sweep summaries
static void test_sweep_summary_labels_meteor(void) {
    // two seeds of one grid point, one scored without the paraphrase table: never averaged with
    // METEOR, a column of its own
    char dir[PATH_MAX], path[PATH_MAX + 64], out[8192], err[4096], cmd[3 * PATH_MAX];
    snprintf(dir, sizeof dir, "%s", scratch("sweep"));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/tasks/0000' '%s/tasks/0001'", dir, dir);
    REQUIRE(system(cmd) == 0, "mkdir");
    snprintf(path, sizeof path, "%s/sweep.json", dir);
    write_text(path, "{\"tasks\": [{\"id\": 0, \"config\": \"c\", \"grid\": {}, \"seed\": 1}, {\"id\": 1, \"config\": \"c\", \"grid\": {}, \"seed\": 2}]}");
    for (int t = 0; t < 2; t++) {
        snprintf(path, sizeof path, "%s/tasks/%04d/DONE", dir, t);
        write_text(path, "");
        snprintf(path, sizeof path, "%s/tasks/%04d/scores.json", dir, t);
        write_text(path, t ? "{\"scores\": {\"Bleu_4\": 0.2, \"METEOR\": 0.17}, \"meteor_paraphrase\": false}"
                           : "{\"scores\": {\"Bleu_4\": 0.2, \"METEOR\": 0.25}, \"meteor_paraphrase\": true}");
    }
    snprintf(cmd, sizeof cmd, "'%s/scripts/sweep-collect' '%s'", repo, dir);
    int rc = run(cmd, out, sizeof out, err, sizeof err);
    CHECK(rc == 0, "sweep-collect exited %d: %s", rc, err);
    CHECK(strstr(out, "| config | grid | seeds | Bleu_4 | METEOR | METEOR (without paraphrases) |") != NULL, "header: %s", out);
    CHECK(strstr(out, "| 25.0 | 17.0 |") != NULL, "METEOR with and without paraphrases mixed: %s", out);
}

int main(void) {
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = 0;
    snprintf(repo, sizeof repo, "%s/../..", dirname(exe));  // build/tests/NAME -> the repository
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_parallel_tokenizer_same_output);
    RUN(test_usage_errors);
    RUN(test_paraphrase_index);
    RUN(test_spice_jar);
    RUN(test_sweep_summary_labels_meteor);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp_dir);
    return test_summary();
}
