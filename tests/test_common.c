// Host helpers: the config loader's errors and overrides, the checked I/O wrappers, atomic writes,
// strict command-line numbers.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "common/atomic_file.h"
#include "common/check.h"
#include "common/cli.h"
#include "common/config.h"
#include "tests/harness.h"

static const ConfigField schema[] = {
    {"name", CFG_STRING, NULL, NULL, "run name (required)"},
    {"train.lr", CFG_NUMBER, "3e-4", NULL, "learning rate"},
    {"train.steps", CFG_INT, "100", NULL, "steps"},
    {"train.schedule", CFG_STRING, "\"cosine\"", "cosine|linear", "lr decay"},
    {"model.frozen", CFG_BOOL, "false", NULL, "freeze decoder"},
};
#define N_FIELDS ((int)(sizeof schema / sizeof *schema))

static Config* parse(const char* text, const char* const* sets, int n_sets, char* err) {
    return config_parse(text, "configs/x.json", schema, N_FIELDS, sets, n_sets, err, 512);
}

static void test_config_defaults_and_values(void) {
    char err[512] = "";
    Config* c = parse("{\"name\": \"a\", \"train\": {\"lr\": 0.001}}", NULL, 0, err);
    REQUIRE(c, "parse failed: %s", err);
    CHECK(!strcmp(config_string(c, "name"), "a"), "name");
    CHECK(config_number(c, "train.lr") == 0.001, "lr %g", config_number(c, "train.lr"));
    CHECK(config_int(c, "train.steps") == 100, "default steps");
    CHECK(!strcmp(config_string(c, "train.schedule"), "cosine"), "default schedule");
    CHECK(config_bool(c, "model.frozen") == 0, "default bool");
    char* json = config_to_json(c);
    CHECK(strstr(json, "\"schedule\":\t\"cosine\"") != NULL, "resolved json: %s", json);
    free(json);
    config_free(c);
}

static void expect_error(const char* text, const char* const* sets, int n_sets, const char* want) {
    char err[512] = "";
    Config* c = parse(text, sets, n_sets, err);
    CHECK(c == NULL, "accepted bad config %s", text);
    CHECK(strstr(err, want) != NULL, "error \"%s\" does not contain \"%s\"", err, want);
    config_free(c);
}

static void test_config_errors(void) {
    expect_error("{\"name\": \"a\", \"train\": {\"lr\": \"fast\"}}", NULL, 0,
                 "configs/x.json: train.lr: expected number, got string");
    expect_error("{\"name\": \"a\", \"train\": {\"lrr\": 1}}", NULL, 0, "configs/x.json: train.lrr: unknown key");
    expect_error("{\"name\": \"a\", \"optim\": {}}", NULL, 0, "configs/x.json: optim: unknown key");
    expect_error("{\"train\": {}}", NULL, 0, "configs/x.json: name: required key is missing");
    expect_error("{\"name\": \"a\", \"train\": {\"steps\": 2.5}}", NULL, 0, "train.steps: expected integer");
    expect_error("{\"name\": \"a\", \"train\": 3}", NULL, 0, "train: expected object, got number");
    expect_error("{\"name\": \"a\", \"train\": {\"schedule\": \"step\"}}", NULL, 0,
                 "train.schedule: \"step\" is not one of cosine|linear");
    expect_error("{\"name\": \"a\", \"model\": {\"frozen\": 1}}", NULL, 0, "model.frozen: expected boolean, got number");
    expect_error("{\n  \"name\": \"a\",\n  \"train\": {\"lr\": 1,}\n}", NULL, 0, "configs/x.json:3:");
    expect_error("{\"name\": \"a\"} trailing", NULL, 0, "configs/x.json:1:");
    expect_error("[1, 2]", NULL, 0, "expected a JSON object at the top level");
    // invalid UTF-8 anywhere: a Latin-1 byte in a value, an overlong encoding in a key, a cut sequence
    expect_error("{\n  \"name\": \"caf\xE9\"\n}", NULL, 0, "configs/x.json:2:15: invalid UTF-8 (byte offset 16 is 0xE9)");
    expect_error("{\"name\": \"a\", \"tr\xC0\xAFin\": {}}", NULL, 0, "configs/x.json:1:18: invalid UTF-8 (byte offset 17 is 0xC0)");
    expect_error("{\"name\": \"a\xF0\x9F\x90\"}", NULL, 0, "configs/x.json:1:12: invalid UTF-8 (byte offset 11 is 0xF0)");
    char err[512];
    Config* ok = parse("{\"name\": \"caf\xC3\xA9 \xF0\x9F\x90\xB6\"}", NULL, 0, err);  // valid UTF-8 is taken
    CHECK(ok != NULL, "valid UTF-8 refused: %s", err);
    config_free(ok);
}

static void test_config_overrides(void) {
    char err[512] = "";
    const char* sets[] = {"train.lr=0.5", "model.frozen=true", "name=b", "train.steps=7"};
    Config* c = parse("{\"name\": \"a\"}", sets, 4, err);
    REQUIRE(c, "parse failed: %s", err);
    CHECK(config_number(c, "train.lr") == 0.5, "lr override");
    CHECK(config_bool(c, "model.frozen") == 1, "bool override");
    CHECK(!strcmp(config_string(c, "name"), "b"), "string override");
    CHECK(config_int(c, "train.steps") == 7, "int override");
    config_free(c);
    // --set may supply a required key
    const char* name_only[] = {"name=c"};
    c = parse("{}", name_only, 1, err);
    CHECK(c != NULL, "required key from --set: %s", err);
    config_free(c);
    const char* bad1[] = {"train.lr=fast"};
    expect_error("{\"name\": \"a\"}", bad1, 1, "--set train.lr: expected number, got \"fast\"");
    const char* bad2[] = {"train.nope=1"};
    expect_error("{\"name\": \"a\"}", bad2, 1, "--set train.nope: unknown key");
    const char* bad3[] = {"train.lr"};
    expect_error("{\"name\": \"a\"}", bad3, 1, "expected key=value");
    const char* bad4[] = {"model.frozen=maybe"};
    expect_error("{\"name\": \"a\"}", bad4, 1, "expected boolean");
    const char* bad5[] = {"name=caf\xE9"};
    expect_error("{\"name\": \"a\"}", bad5, 1, "--set name: the value is not valid UTF-8 (byte 3 of it is 0xE9)");
}

static void test_config_missing_file(void) {
    char err[512] = "";
    Config* c = config_load("/nonexistent/cfg.json", schema, N_FIELDS, NULL, 0, err, sizeof err);
    CHECK(c == NULL, "loaded a missing file");
    CHECK(strstr(err, "/nonexistent/cfg.json: cannot open") != NULL, "error: %s", err);
}

static void open_missing(void* arg) { fopenCheck((const char*)arg, "rb"); }

static void read_past_end(void* arg) {
    const char* path = arg;
    FILE* f = fopenCheck(path, "rb");
    char buf[64];
    freadCheck(buf, 1, sizeof buf, f, path);
}

static void test_checked_io(void) {
    char err[1024];
    int rc = run_captured(open_missing, (void*)"/nonexistent/file.bin", err, sizeof err);
    CHECK(rc == 1, "exit status %d", rc);
    CHECK(strstr(err, "tests/test_common.c:") && strstr(err, "cannot open '/nonexistent/file.bin'"), "message: %s", err);

    char path[] = "/tmp/tipcap_test_short_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp");
    REQUIRE(write(fd, "0123456789", 10) == 10, "write");
    close(fd);
    rc = run_captured(read_past_end, path, err, sizeof err);
    CHECK(rc == 1, "exit status %d", rc);
    CHECK(strstr(err, path) && strstr(err, "unexpected end of file (read 10 of 64"), "message: %s", err);
    size_t len = 0;
    char* text = readFileCheck(path, &len);
    CHECK(len == 10 && !strcmp(text, "0123456789"), "readFileCheck");
    free(text);
    unlink(path);
}

static int count_temporaries(const char* dir) {
    DIR* d = opendir(dir);
    int n = 0;
    struct dirent* e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static void test_atomic_file(void) {
    char dir[] = "/tmp/tipcap_test_atomic_XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    atomic_write_file(path, "old", 3);
    AtomicFile af = atomic_file_open(path);
    fputs("new but abandoned", af.f);
    atomic_file_abort(&af);
    char* text = readFileCheck(path, NULL);
    CHECK(!strcmp(text, "old"), "abort changed the target: %s", text);
    free(text);
    CHECK(count_temporaries(dir) == 0, "abort left a temporary");
    af = atomic_file_open(path);
    fputs("new", af.f);
    text = readFileCheck(path, NULL);
    CHECK(!strcmp(text, "old"), "target changed before commit");
    free(text);
    atomic_file_commit(&af);
    text = readFileCheck(path, NULL);
    CHECK(!strcmp(text, "new"), "commit: %s", text);
    free(text);
    CHECK(count_temporaries(dir) == 0, "commit left a temporary");
    unlink(path);
    rmdir(dir);
}

// The whole value is the number, in range; the message names the option and the value.
static void test_cli_numbers(void) {
    char err[256];
    long long i;
    double d;
    CHECK(cli_parse_int("--beam", "7", 1, 10, &i, err, sizeof err) == 0 && i == 7, "--beam 7");
    CHECK(cli_parse_int("--beam", "-3", -5, 10, &i, err, sizeof err) == 0 && i == -3, "--beam -3 in [-5, 10]");
    const char* not_int[] = {"abc", "", "3x", "1.5", "99999999999999999999"};
    for (int k = 0; k < 5; k++) {
        CHECK(cli_parse_int("--beam", not_int[k], 1, 10, &i, err, sizeof err) == -1, "'%s' parsed", not_int[k]);
        char want[64];
        snprintf(want, sizeof want, "--beam: '%s' is not an integer", not_int[k]);
        CHECK(!strcmp(err, want), "'%s': %s", not_int[k], err);
    }
    CHECK(cli_parse_int("--limit", "-3", 1, 100, &i, err, sizeof err) == -1 && !strcmp(err, "--limit: -3 is outside [1, 100]"),
          "--limit -3: %s", err);
    CHECK(cli_parse_double("--lp", "0.75", &d, err, sizeof err) == 0 && d == 0.75, "--lp 0.75");
    CHECK(cli_parse_double("--lp", "-1e-3", &d, err, sizeof err) == 0 && d == -1e-3, "--lp -1e-3");
    const char* not_number[] = {"abc", "", "1.5x", "nan", "inf", "1e999"};
    for (int k = 0; k < 6; k++) {
        CHECK(cli_parse_double("--lp", not_number[k], &d, err, sizeof err) == -1, "'%s' parsed", not_number[k]);
        char want[64];
        snprintf(want, sizeof want, "--lp: '%s' is not a number", not_number[k]);
        CHECK(!strcmp(err, want), "'%s': %s", not_number[k], err);
    }
}

int main(void) {
    RUN(test_config_defaults_and_values);
    RUN(test_config_errors);
    RUN(test_config_overrides);
    RUN(test_config_missing_file);
    RUN(test_checked_io);
    RUN(test_atomic_file);
    RUN(test_cli_numbers);
    return test_summary();
}
