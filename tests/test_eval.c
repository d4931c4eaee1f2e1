// tipcap-eval against the toolkit's published numbers (../shared/data/README.md, copied into
// tests/data/eval): BLEU statistics exactly, scores to full precision where given and to the
// printed precision otherwise. METEOR goldens need the paraphrase table, which make test fetches
// into data/meteor (scripts/install-deps.sh); they are skipped only where that file is absent
// (the fetch failed, e.g. offline), and fail where it is there but METEOR ran without it. No
// Python or Java is needed.
#include <cJSON.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "eval/eval.h"
#include "eval/evaluate.h"
#include "tests/harness.h"

static char repo[PATH_MAX / 2];
static char tmp_dir[] = "/tmp/tipcap-test-eval-XXXXXX";  // this run's scratch folder

// A path in the scratch folder (a static buffer per call site is enough here).
static const char* scratch(const char* name) {
    static char buf[4][PATH_MAX];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

static void find_repo(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    // build/tests/test_eval -> repository root
    snprintf(repo, sizeof repo, "%s/../..", dirname(exe));
}

static EvalImage image(const char* id, const char* hyp, int n_refs, const char** refs) {
    EvalImage im;
    im.id = strdup(id);
    im.id_is_number = 0;
    im.hyp = strdup(hyp);
    im.n_refs = n_refs;
    im.refs = malloc((size_t)n_refs * sizeof *im.refs);
    for (int k = 0; k < n_refs; k++) im.refs[k] = strdup(refs[k]);
    return im;
}

static void free_images(EvalImage* v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].hyp);
        for (int k = 0; k < v[i].n_refs; k++) free(v[i].refs[k]);
        free(v[i].refs);
    }
}

static int same(double a, double b) { return a == b || fabs(a - b) <= 4e-16 * fabs(b); }
static int printed(double a, double golden) { return fabs(round(a * 1000) / 1000 - golden) < 1e-9; }

// ---------------------------------------------------------------- the scorers' own test cases
static void test_bleu_toolkit_cases(void) {
    const char* r1[] = {"here is a test of bleu", "here is a test of blue"};
    const char* r2[] = {"please worry it probably wont pass", "dont worry it will probably pass"};
    EvalImage v[2] = {image("1", "this is a test of bleu", 2, r1), image("2", "dont worry it will probably pass", 2, r2)};
    double b[4];
    BleuStats s;
    bleu_score(v, 2, b, NULL, &s);
    const double want[4] = {0.9166666665138891, 0.9082951060702961, 0.8970582964112459, 0.8806841673159312};
    for (int k = 0; k < 4; k++) CHECK(same(b[k], want[k]), "Bleu_%d %.17g, toolkit %.17g", k + 1, b[k], want[k]);
    free_images(v, 2);

    const char* c0[] = {"the cat in the hat is black ."};
    const char* c1[] = {"unsurprisingly it was discovered out that most humans are insensitive to different shades of gray"};
    EvalImage w[2] = {image("0", "the black cat is hat is hat", 1, c0), image("1", "humans are mostly insensitive to different colors except gray", 1, c1)};
    bleu_score(w, 2, b, NULL, &s);
    const double want2[4] = {0.44388336186369043, 0.28615312506956214, 0.16393460357431763, 2.309415185245007e-05};
    for (int k = 0; k < 4; k++) CHECK(same(b[k], want2[k]), "Bleu_%d %.17g, toolkit %.17g", k + 1, b[k], want2[k]);
    double rouge = rouge_l_score(w, 2, NULL);
    CHECK(same(rouge, 0.5027146063609029), "ROUGE_L %.17g", rouge);
    double cider = cider_d_score(w, 2, NULL);
    CHECK(same(cider, 1.5558781001758049), "CIDEr %.17g", cider);
    free_images(w, 2);
}

static void test_cider_toolkit_cases(void) {
    const char* a1[] = {"dog runs"};
    const char* a2[] = {"dog will hunt"};
    EvalImage v[2] = {image("1", "dog walks", 1, a1), image("2", "dog will hunt", 1, a2)};
    double c = cider_d_score(v, 2, NULL);
    CHECK(same(c, 3.7500000000000004), "CIDEr %.17g, toolkit 3.7500000000000004", c);
    free_images(v, 2);
    const char* b1[] = {"i did a test"};
    const char* b3[] = {"strain pot after waiting eight minutes for the pasta"};
    const char* b2[] = {"cooking is a fun activity, so give it a try."};
    EvalImage w[3] = {image("1", "this is a test", 1, b1), image("3", "wait eight minutes, and then strain the contents of the pot.", 1, b3),
                      image("2", "cooking can be quite fun, if you give it a chance.", 1, b2)};
    c = cider_d_score(w, 3, NULL);
    CHECK(same(c, 1.3574123557085114), "CIDEr %.17g, toolkit 1.3574123557085114", c);
    free_images(w, 3);
}

static void test_rouge_toolkit_case(void) {
    // raw strings split on single spaces: the doubled spaces give empty tokens, as in the toolkit
    const char* k1[] = {"this is a strange key", "one more, to throw you off"};
    const char* k2[] = {"THIS.              is     !a dog     ,at the PaRK."};
    EvalImage v[2] = {image("string_key", "this is a strange key", 2, k1), image("1", " this. is! a doG, at the parK .", 1, k2)};
    double r = rouge_l_score(v, 2, NULL);
    CHECK(same(r, 0.5494728304947283), "ROUGE_L %.17g, toolkit 0.5494728304947283", r);
    free_images(v, 2);
}

static void test_one_image_toolkit_case(void) {
    const char* refs[] = {"this is a test", "this is also a test"};
    EvalImage v[1] = {image("0", "this is a good test", 2, refs)};
    double b[4], per[4];
    bleu_score(v, 1, b, per, NULL);
    const double want[4] = {0.7999999996800004, 0.6324555317648827, 0.5108729546934666, 9.036020031392194e-05};
    for (int k = 0; k < 4; k++) CHECK(same(b[k], want[k]) && b[k] == per[k], "Bleu_%d %.17g", k + 1, b[k]);
    double r = rouge_l_score(v, 1, NULL);
    CHECK(same(r, 0.9070631970260222), "ROUGE_L %.17g", r);
    double c = cider_d_score(v, 1, NULL);
    CHECK(c == 0.0, "CIDEr %.17g: one image makes every idf weight zero", c);
    free_images(v, 1);
}

// ---------------------------------------------------------------- the tokenizer
static void test_ptb_tokenizer(void) {
    // expected outputs are the Stanford 3.4.1 jar's, then the toolkit's filter
    const char* in[] = {
        "I cannot go. He's gonna do it, don't you?",
        "A (small) [boxed] {brace} item.",
        "Texas A&amp;M blocks AT&T; 50% off #1 at 6:30 p.m.",
        "a t-shirt... fork.a st. ave. etc. e.g. u.s.a t.v.",
        "Dash -- and --- and - a-b-c. Ellipsis... and .. and ....",
        "watching the t.v.",
        "A man.",
        "o'neil j'ai y'all rock'n'roll '90s 'tis",
        "",
        "She said \"hello\" to 'them'.",
    };
    const char* want[] = {
        "i can not go he 's gon na do it do n't you",
        "a -lrb- small -rrb- -lsb- boxed -rsb- -lcb- brace -rcb- item",  // the filter misses lower-cased brackets
        "texas a&m blocks at&t 50 % off # 1 at 6:30 p.m.",
        "a t-shirt fork.a st. ave. etc. e.g. u.s.a t.v.",
        "dash and and a-b-c ellipsis and and",
        "watching the t.v.",  // the next caption starts with "A": the jar adds a period, filtered
        "a man",
        "o'neil j' ai y' all rock 'n' roll '90s 't is",
        "",
        "she said hello to them",
    };
    size_t n = sizeof in / sizeof *in;
    char** out = malloc(n * sizeof *out);
    ptb_tokenize_captions(in, n, out);
    // line separators inside a caption never shift the captions that follow
    const char* seps[] = {"a\rb", "c\nd", "e\xc2\x85" "f", "g\xe2\x80\xa8h", "i\vj", "k"};
    char* sep_out[6];
    ptb_tokenize_captions(seps, 6, sep_out);
    const char* sep_want[] = {"a b", "c d", "e f", "g h", "i j", "k"};
    for (int k = 0; k < 6; k++) {
        CHECK(!strcmp(sep_out[k], sep_want[k]), "separator case %d: \"%s\"", k, sep_out[k]);
        free(sep_out[k]);
    }
    for (size_t i = 0; i < n; i++) {
        CHECK(!strcmp(out[i], want[i]), "caption %zu: \"%s\" -> \"%s\", jar gives \"%s\"", i, in[i], out[i], want[i]);
        free(out[i]);
    }
    free(out);
}

static char* slurp_text(const char* path, size_t* len) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* buf = malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

static void test_ptb_tokenizer_jar_cases(void) {
    // 17,104 lines of tricky fragments and the Stanford 3.4.1 jar's output for the whole file
    char in_path[PATH_MAX + 64], want_path[PATH_MAX + 64];
    snprintf(in_path, sizeof in_path, "%s/tests/data/eval/ptb_cases.txt", repo);
    snprintf(want_path, sizeof want_path, "%s/tests/data/eval/ptb_cases.jar.txt", repo);
    size_t n_in, n_want;
    char* in = slurp_text(in_path, &n_in);
    char* want = slurp_text(want_path, &n_want);
    REQUIRE(in && want, "cannot read %s or %s", in_path, want_path);
    char* got = ptb_tokenize_raw(in, n_in);
    int line = 1, bad = 0;
    char *g = got, *w = want;
    while (*g || *w) {
        char* ge = strchr(g, '\n');
        char* we = strchr(w, '\n');
        size_t gl = ge ? (size_t)(ge - g) : strlen(g), wl = we ? (size_t)(we - w) : strlen(w);
        if (gl != wl || memcmp(g, w, gl)) {
            if (bad < 5) CHECK(0, "line %d: \"%.*s\", the jar gives \"%.*s\"", line, (int)gl, g, (int)wl, w);
            bad++;
        }
        g = ge ? ge + 1 : g + gl;
        w = we ? we + 1 : w + wl;
        line++;
    }
    CHECK(bad == 0, "%d of %d lines differ from the jar", bad, line - 1);
    free(got);
    free(in);
    free(want);
}

// Valid UTF-8 but for C0 80, which stands for a NUL inside a token (as input.c keeps "\u0000").
static int valid_utf8_or_nul(const char* s) {
    size_t len = strlen(s);
    for (;;) {
        long bad = utf8_invalid_offset(s, len);
        if (bad < 0) return 1;
        if ((unsigned char)s[bad] != 0xC0 || (unsigned char)s[bad + 1] != 0x80) return 0;
        s += bad + 2;
        len -= (size_t)bad + 2;
    }
}

static void test_tokenizer_random_bytes(void) {
    // any bytes: no crash, one output line per caption, output valid UTF-8 (C0 80 for a NUL)
    uint64_t seed = test_seed();
    srand((unsigned)seed);
    const char alphabet[] = "aZ9 .,'\"-&;()[]{}<>/\\|_#$%*+=!?`~@\t\xc3\xa9\xe2\x80\x99\xff\xc0";
    for (int round = 0; round < 200; round++) {
        char* caps[4];
        for (int k = 0; k < 4; k++) {
            int len = rand() % 40;
            caps[k] = malloc((size_t)len + 1);
            for (int j = 0; j < len; j++) caps[k][j] = alphabet[rand() % (int)(sizeof alphabet - 1)];
            caps[k][len] = 0;
        }
        char* out[4];
        ptb_tokenize_captions((const char* const*)caps, 4, out);
        for (int k = 0; k < 4; k++) {
            CHECK(!strchr(out[k], '\n'), "round %d caption %d: a newline in the output", round, k);
            CHECK(valid_utf8_or_nul(out[k]), "round %d caption %d: invalid UTF-8 out", round, k);
            free(out[k]);
            free(caps[k]);
        }
    }
}

static void test_pairwise_sum(void) {
    // numpy's summation order: for these values a sequential sum differs in the last bits
    double v[300];
    for (int i = 0; i < 300; i++) v[i] = 1.0 / (i + 1) + (i % 7) * 1e-3;
    double seq = 0;
    for (int i = 0; i < 300; i++) seq += v[i];
    double pw = np_pairwise_sum(v, 300);
    CHECK(fabs(pw - seq) < 1e-12, "pairwise %.17g vs sequential %.17g", pw, seq);
    CHECK(np_pairwise_sum(v, 5) == (((v[0] + v[1]) + v[2]) + v[3]) + v[4], "short arrays sum left to right");
}

// ---------------------------------------------------------------- the program
// Runs bin/tipcap-eval; returns its exit status with its stderr in err.
static int run_eval(const char* args, const char* json_out, char* err, size_t cap) {
    char err_path[] = "/tmp/tipcap-test-eval-err-XXXXXX";
    int fd = mkstemp(err_path);
    if (fd < 0) return -1;
    close(fd);
    char cmd[8 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "'%s/bin/tipcap-eval' %s %s%s%s 2>'%s' >/dev/null", repo, args,
             json_out ? "--json '" : "", json_out ? json_out : "", json_out ? "'" : "", err_path);
    int rc = system(cmd);
    FILE* f = fopen(err_path, "r");
    size_t n = f ? fread(err, 1, cap - 1, f) : 0;
    err[n] = 0;
    if (f) fclose(f);
    remove(err_path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static cJSON* load_json(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char* buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = 0;
    fclose(f);
    cJSON* j = cJSON_Parse(buf);
    free(buf);
    return j;
}

static double score(const cJSON* j, const char* name) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "scores"), name);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int has_paraphrase(const cJSON* j) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "meteor_paraphrase")); }

// A METEOR golden that ran without paraphrases: skipped where the table was never fetched,
// a failure where it is there.
#define REQUIRE_PARAPHRASE(para)                                                                                   \
    do {                                                                                                           \
        char table_[PATH_MAX + 64];                                                                                \
        snprintf(table_, sizeof table_, "%s/data/meteor/paraphrase-en.gz", repo);                                 \
        if (!(para) && access(table_, R_OK) == 0) REQUIRE(0, "METEOR ran without %s, which is there", table_);     \
        if (!(para)) SKIP("METEOR golden needs %s (scripts/install-deps.sh fetches it; offline?)", table_);       \
    } while (0)

static void check_bleu_stats(const cJSON* j, double testlen, double reflen, const double guess[4], const double correct[4]) {
    const cJSON* s = cJSON_GetObjectItemCaseSensitive(j, "bleu_stats");
    REQUIRE(s, "no bleu_stats");
    CHECK(cJSON_GetObjectItemCaseSensitive(s, "testlen")->valuedouble == testlen, "testlen %g, toolkit %g",
          cJSON_GetObjectItemCaseSensitive(s, "testlen")->valuedouble, testlen);
    CHECK(cJSON_GetObjectItemCaseSensitive(s, "reflen")->valuedouble == reflen, "reflen %g, toolkit %g",
          cJSON_GetObjectItemCaseSensitive(s, "reflen")->valuedouble, reflen);
    for (int k = 0; k < 4; k++) {
        double g = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "guess"), k)->valuedouble;
        double c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "correct"), k)->valuedouble;
        CHECK(g == guess[k] && c == correct[k], "n=%d: guess %g correct %g, toolkit %g %g", k + 1, g, c, guess[k], correct[k]);
    }
}

static void test_nlgeval_golden(void) {
    char args[3 * PATH_MAX], err[4096];
    snprintf(args, sizeof args, "--refs '%s/tests/data/eval/nlgeval_refs.json' --results '%s/tests/data/eval/nlgeval_results.json' --no-tokenize --metrics bleu,meteor,rouge,cider",
             repo, repo);
    const char* out = scratch("nlgeval.json");
    int rc = run_eval(args, out, err, sizeof err);
    REQUIRE(rc == 0, "tipcap-eval exited %d: %s", rc, err);
    cJSON* j = load_json(out);
    REQUIRE(j, "no JSON written");
    const double bleu[4] = {0.5499999999725, 0.4281744192662396, 0.28404282012721094, 0.20114343061802883};
    const char* names[4] = {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"};
    for (int k = 0; k < 4; k++) CHECK(same(score(j, names[k]), bleu[k]), "%s %.17g, toolkit %.17g", names[k], score(j, names[k]), bleu[k]);
    CHECK(same(score(j, "ROUGE_L"), 0.5221037854154413), "ROUGE_L %.17g", score(j, "ROUGE_L"));
    CHECK(same(score(j, "CIDEr"), 1.2421919556558583), "CIDEr %.17g", score(j, "CIDEr"));
    int para = has_paraphrase(j);
    double meteor = score(j, "METEOR");
    cJSON_Delete(j);
    remove(out);
    REQUIRE_PARAPHRASE(para);
    CHECK(same(meteor, 0.2957971080379661), "METEOR %.17g, toolkit 0.2957971080379661", meteor);
}

static void test_one_image_meteor_golden(void) {
    char dir[] = "/tmp/tipcap-test-eval-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char refs[PATH_MAX], res[PATH_MAX], out[PATH_MAX], args[4 * PATH_MAX], err[4096];
    snprintf(refs, sizeof refs, "%s/refs.json", dir);
    snprintf(res, sizeof res, "%s/res.json", dir);
    snprintf(out, sizeof out, "%s/out.json", dir);
    FILE* f = fopen(refs, "w");
    fputs("{\"0\": [\"this is a test\", \"this is also a test\"]}", f);
    fclose(f);
    f = fopen(res, "w");
    fputs("[{\"image_id\": 0, \"caption\": \"this is a good test\"}]", f);
    fclose(f);
    snprintf(args, sizeof args, "--refs '%s' --results '%s' --no-tokenize --metrics meteor", refs, res);
    int rc = run_eval(args, out, err, sizeof err);
    cJSON* j = load_json(out);
    int para = j && has_paraphrase(j);
    double meteor = j ? score(j, "METEOR") : NAN;
    cJSON_Delete(j);
    remove(refs);
    remove(res);
    remove(out);
    rmdir(dir);
    REQUIRE(rc == 0, "tipcap-eval exited %d: %s", rc, err);
    REQUIRE_PARAPHRASE(para);
    CHECK(same(meteor, 0.4443438716486749), "METEOR %.17g, toolkit 0.4443438716486749", meteor);
}

static void test_fakecap_golden(void) {
    char args[3 * PATH_MAX], err[4096];
    snprintf(args, sizeof args, "--refs '%s/tests/data/eval/fakecap_refs.json' --results '%s/tests/data/eval/fakecap_results.json'", repo, repo);
    const char* out = scratch("fakecap.json");
    int rc = run_eval(args, out, err, sizeof err);
    REQUIRE(rc == 0, "tipcap-eval exited %d: %s", rc, err);
    cJSON* j = load_json(out);
    REQUIRE(j, "no JSON written");
    const double guess[4] = {9893, 8893, 7893, 6893}, correct[4] = {5732, 2510, 1043, 423};
    check_bleu_stats(j, 9893, 9855, guess, correct);
    const char* names[] = {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"};
    const double want[] = {0.579, 0.404, 0.279, 0.191, 0.396, 0.600};
    for (int k = 0; k < 6; k++) CHECK(printed(score(j, names[k]), want[k]), "%s %.6f, toolkit prints %.3f", names[k], score(j, names[k]), want[k]);
    CHECK(!isnan(score(j, "SPICE-approx")) && isnan(score(j, "SPICE")), "SPICE-approx must be labelled as such");
    const cJSON* images = cJSON_GetObjectItemCaseSensitive(j, "images");
    CHECK(cJSON_GetArraySize(images) == 1000, "%d per-image rows", cJSON_GetArraySize(images));
    int para = has_paraphrase(j);
    double meteor = score(j, "METEOR");
    cJSON_Delete(j);
    remove(out);
    REQUIRE_PARAPHRASE(para);
    CHECK(printed(meteor, 0.195), "METEOR %.6f, toolkit prints 0.195", meteor);
}

static void test_fakecap_token_count(void) {
    // The jar reports 10,892 tokens for the 1,000 fakecap results: its count includes one
    // newline token between captions.
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/tests/data/eval/fakecap_results.json", repo);
    cJSON* j = load_json(path);
    REQUIRE(j, "cannot read %s", path);
    size_t n = (size_t)cJSON_GetArraySize(j), len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(j, (int)i), "caption")->valuestring) + 1;
    char* all = malloc(len + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char* c = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(j, (int)i), "caption")->valuestring;
        if (i) all[k++] = '\n';
        memcpy(all + k, c, strlen(c));
        k += strlen(c);
    }
    all[k] = 0;
    char* raw = ptb_tokenize_raw(all, k);
    size_t tokens = 0;
    for (char* p = raw; *p;) {
        if (*p == ' ') { p++; continue; }
        tokens++;
        if (*p == '\n') { p++; continue; }
        while (*p && *p != ' ' && *p != '\n') p++;
    }
    CHECK(tokens == 10892, "%zu result tokens, the jar counts 10892", tokens);
    free(raw);
    free(all);
    cJSON_Delete(j);
}

static void test_visual_entities_golden(void) {
    char args[3 * PATH_MAX], err[4096];
    snprintf(args, sizeof args, "--refs '%s/tests/data/eval/coco_karpathy_test.json' --results '%s/tests/data/eval/visual_entities_coco_results.json'", repo, repo);
    const char* out = scratch("ve.json");
    int rc = run_eval(args, out, err, sizeof err);
    REQUIRE(rc == 0, "tipcap-eval exited %d: %s", rc, err);
    cJSON* j = load_json(out);
    REQUIRE(j, "no JSON written");
    const double guess[4] = {49703, 44703, 39703, 34703}, correct[4] = {34299, 16887, 7787, 3593};
    check_bleu_stats(j, 49703, 48828, guess, correct);
    const char* names[] = {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"};
    const double want[] = {0.690, 0.511, 0.371, 0.270, 0.511, 0.919};
    for (int k = 0; k < 6; k++) CHECK(printed(score(j, names[k]), want[k]), "%s %.6f, toolkit prints %.3f", names[k], score(j, names[k]), want[k]);
    int para = has_paraphrase(j);
    double meteor = score(j, "METEOR");
    cJSON_Delete(j);
    remove(out);
    REQUIRE_PARAPHRASE(para);
    CHECK(printed(meteor, 0.247), "METEOR %.6f, toolkit prints 0.247", meteor);
}

// ---------------------------------------------------------------- bad input
static void write_file(const char* path, const char* text, size_t len) {
    FILE* f = fopen(path, "wb");
    fwrite(text, 1, len, f);
    fclose(f);
}

static void test_bad_input(void) {
    char dir[] = "/tmp/tipcap-test-eval-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char refs[PATH_MAX], res[PATH_MAX], out[PATH_MAX], args[4 * PATH_MAX], err[4096];
    snprintf(refs, sizeof refs, "%s/refs.json", dir);
    snprintf(res, sizeof res, "%s/res.json", dir);
    snprintf(out, sizeof out, "%s/out.json", dir);
    const char* good_refs = "{\"annotations\": [{\"image_id\": 1, \"caption\": \"a dog\"}, {\"image_id\": 2, \"caption\": \"a cat\"}]}";
    struct {
        const char* refs;
        const char* res;
        const char* expect;  // in the message
    } cases[] = {
        {good_refs, "[{\"image_id\": 1, \"caption\": \"a dog\"},\n {\"image_id\": 2 \"caption\": \"x\"}]", "invalid JSON at line 2"},
        {good_refs, "[{\"image_id\": 1, \"caption\": \"a \xff dog\"}]", "invalid UTF-8 at line 1"},
        {good_refs, "[{\"image_id\": 1, \"caption\": \"a\"}, {\"image_id\": 1, \"caption\": \"b\"}, {\"image_id\": 2, \"caption\": \"c\"}]", "duplicate image (one result per image): 1"},
        {good_refs, "[{\"image_id\": 7, \"caption\": \"a\"}, {\"image_id\": 9, \"caption\": \"b\"}]", "2 results without references"},
        {good_refs, "[{\"image_id\": 1}]", "row 0: \"caption\" missing"},
        {"[1, 2", "[]", "invalid JSON"},
        {"{\"1\": \"not a list\"}", "[{\"image_id\": 1, \"caption\": \"a\"}]", "references must be a list"},
        {"{\"COCO_val2014_000000000042.jpg\": [\"a dog\"]}",
         "[{\"image_id\": 42, \"caption\": \"a\"}, {\"image_id\": \"COCO_val2014_000000000042.jpg\", \"caption\": \"b\"}]",
         "duplicate image (one result per image): COCO_val2014_000000000042.jpg"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        write_file(refs, cases[c].refs, strlen(cases[c].refs));
        write_file(res, cases[c].res, strlen(cases[c].res));
        remove(out);
        snprintf(args, sizeof args, "--refs '%s' --results '%s' --metrics bleu", refs, res);
        int rc = run_eval(args, out, err, sizeof err);
        struct stat st;
        CHECK(rc == 1, "case %zu: exit %d (want 1)", c, rc);
        CHECK(strstr(err, cases[c].expect) != NULL, "case %zu: message \"%s\" lacks \"%s\"", c, err, cases[c].expect);
        CHECK(stat(out, &st) != 0, "case %zu: a JSON file was left", c);
        CHECK(strstr(err, (c < 5 || c == 7) ? "res.json" : "refs.json") != NULL, "case %zu: message does not name the file: %s", c, err);
    }
    // an empty caption is scored (as the toolkit scores it), not an error
    write_file(refs, good_refs, strlen(good_refs));
    const char* empty = "[{\"image_id\": 1, \"caption\": \"\"}, {\"image_id\": 2, \"caption\": \"...\"}]";
    write_file(res, empty, strlen(empty));
    snprintf(args, sizeof args, "--refs '%s' --results '%s' --metrics bleu,rouge,cider", refs, res);
    int rc = run_eval(args, out, err, sizeof err);
    CHECK(rc == 0, "empty captions: exit %d: %s", rc, err);
    cJSON* j = load_json(out);
    CHECK(j && score(j, "ROUGE_L") == 0.0 && score(j, "CIDEr") == 0.0, "empty captions score 0");
    cJSON_Delete(j);
    // integer COCO ids find references keyed by COCO file names, and stay numbers in the output
    const char* file_refs = "{\"COCO_val2014_000000000042.jpg\": [\"a dog\"], \"COCO_val2014_000000000043.jpg\": [\"a cat\"]}";
    const char* int_res = "[{\"image_id\": 43, \"caption\": \"a cat\"}, {\"image_id\": 42, \"caption\": \"a dog\"}]";
    write_file(refs, file_refs, strlen(file_refs));
    write_file(res, int_res, strlen(int_res));
    rc = run_eval(args, out, err, sizeof err);
    CHECK(rc == 0, "integer ids against file names: exit %d: %s", rc, err);
    j = load_json(out);
    const cJSON* first = j ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "images"), 0) : NULL;
    const cJSON* first_id = first ? cJSON_GetObjectItemCaseSensitive(first, "image_id") : NULL;
    CHECK(cJSON_IsNumber(first_id) && first_id->valuedouble == 42, "the first image is 42 (the references' order), as a number");
    cJSON_Delete(j);
    remove(refs);
    remove(res);
    remove(out);
    rmdir(dir);
}

int main(void) {
    find_repo();
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_bleu_toolkit_cases);
    RUN(test_cider_toolkit_cases);
    RUN(test_rouge_toolkit_case);
    RUN(test_one_image_toolkit_case);
    RUN(test_ptb_tokenizer);
    RUN(test_ptb_tokenizer_jar_cases);
    RUN(test_tokenizer_random_bytes);
    RUN(test_pairwise_sum);
    RUN(test_fakecap_token_count);
    RUN(test_nlgeval_golden);
    RUN(test_one_image_meteor_golden);
    RUN(test_fakecap_golden);
    RUN(test_visual_entities_golden);
    RUN(test_bad_input);
    rmdir(tmp_dir);
    return test_summary();
}
