// scripts/sweep and scripts/sweep-collect as a user runs them, on a tiny config of simulated
// features: every spec key is checked before anything is written, a folder holding another spec
// (or runs of another config) is refused naming what differs, the same spec resumes and skips the
// tasks that are done, each result is labelled by its run's own config.json, and summary.csv holds
// numbers. The sweep on a local Slurm is in test_train (test_slurm_sweep).
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check.h"
#include "tests/harness.h"
#include "tests/shell.h"

static char dir[64];        // the test's scratch directory
static char corpus[128];    // 400 COCO val images with their captions
static char features[128];  // their simulated features (D = 64)
static char config[128];    // a tiny model
static char out[8192], err[8192];

// Runs a shell command; stdout and stderr land in `out` and `err`. Returns the exit status.
static int run(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char* fmt, ...) {
    char cmd[4096], full[4400], o[128], e[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(o, sizeof o, "%s/stdout", dir);
    snprintf(e, sizeof e, "%s/stderr", dir);
    snprintf(full, sizeof full, "(%s) > %s 2> %s", cmd, o, e);
    int rc = system(full);
    char* text = readFileCheck(o, NULL);
    snprintf(out, sizeof out, "%s", text);
    free(text);
    text = readFileCheck(e, NULL);
    snprintf(err, sizeof err, "%s", text);
    free(text);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void write_text(const char* path, const char* text) {
    FILE* f = fopenCheck(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int exists(const char* path) { return access(path, F_OK) == 0; }

// A spec of the tiny config at `path` writing to `out_dir`; each fragment is JSON text (the
// members of infer and eval added to theirs).
static void write_spec(const char* path, const char* out_dir, const char* cfg, const char* seeds, const char* grid,
                       const char* set, const char* per_config, const char* infer_extra, const char* eval_extra) {
    char text[4096];
    snprintf(text, sizeof text,
             "{\"name\": \"t\", \"out\": \"%s\", \"configs\": {\"tiny\": \"%s\"}, \"seeds\": %s,\n"
             " \"grid\": %s, \"set\": %s, \"set_per_config\": %s,\n"
             " \"infer\": {\"features\": \"%s\", \"beam\": 2, \"args\": [\"--limit\", \"20\"]%s},\n"
             " \"eval\": {\"refs\": \"%s\", \"args\": [\"--metrics\", \"bleu,cider\"]%s}}\n",
             out_dir, cfg, seeds, grid, set, per_config, features, infer_extra, corpus, eval_extra);
    write_text(path, text);
}

static int setup(void) {
    snprintf(dir, sizeof dir, "/tmp/tipcap_sweep_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char* text = readFileCheck("data/captions/coco_karpathy_val.json", NULL);
    cJSON* all = cJSON_Parse(text);
    free(text);
    cJSON* subset = cJSON_CreateObject();
    int n = 0;
    for (cJSON* img = all->child; img && n < 400; img = img->next, n++)
        cJSON_AddItemToObject(subset, img->string, cJSON_Duplicate(img, 1));
    char* json = cJSON_Print(subset);
    snprintf(corpus, sizeof corpus, "%s/corpus.json", dir);
    write_text(corpus, json);
    free(json);
    cJSON_Delete(subset);
    cJSON_Delete(all);
    snprintf(features, sizeof features, "%s/features.h5", dir);
    if (run("bin/tipcap-synth --captions %s --out %s --dim 64 --seed 7", corpus, features)) return -1;
    snprintf(config, sizeof config, "%s/tiny.json", dir);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"run\": {\"name\": \"tiny\", \"device\": \"cpu\", \"seed\": 5},\n"
             " \"data\": {\"corpus\": \"%s\", \"features\": \"%s\", \"val_split\": \"none\", \"max_len\": 16},\n"
             " \"mapping\": {\"setting\": \"text\", \"sigma2\": 0.016},\n"
             " \"model\": {\"prefix_len\": 2, \"width\": 32, \"dec_layers\": 2, \"dec_heads\": 2, \"int_layers\": 1,\n"
             "           \"int_heads\": 2, \"proj_hidden\": 32, \"max_prompts\": 3, \"max_len\": 20, \"vocab\": \"corpus\"},\n"
             " \"train\": {\"batch_size\": 8, \"steps\": 4, \"lr\": 3e-3, \"warmup_steps\": 2, \"log_every\": 1}}\n",
             corpus, features);
    write_text(config, cfg);
    return 0;
}

// tipcap-train --check, which the sweep's checks rest on: the resolved config on stdout, nothing
// written (not even run.dir); a bad override or a cross-key conflict is an error naming the key.
static void test_train_check(void) {
    char run_dir[128];
    snprintf(run_dir, sizeof run_dir, "%s/never", dir);
    int rc = run("bin/tipcap-train --check --config %s --set train.lr=1e-4 --set run.dir=%s", config, run_dir);
    cJSON* j = cJSON_Parse(out);
    const cJSON* lr = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "train"), "lr");
    const cJSON* sched = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "train"), "schedule");
    CHECK(rc == 0 && cJSON_IsNumber(lr) && lr->valuedouble == 1e-4 && cJSON_IsString(sched) && !strcmp(sched->valuestring, "linear"),
          "--check: exit %d, not the resolved config: %s%s", rc, out, err);
    cJSON_Delete(j);
    CHECK(!exists(run_dir), "--check created %s", run_dir);
    rc = run("bin/tipcap-train --check --config %s --set train.lr=fast", config);
    CHECK(rc == 1 && strstr(err, "--set train.lr: expected number, got \"fast\""), "--set train.lr=fast: exit %d: %s", rc, err);
    rc = run("bin/tipcap-train --check --config %s --set model.width=33", config);
    CHECK(rc == 1 && strstr(err, "model.width: 33 is not a multiple of model.dec_heads"), "model.width=33: exit %d: %s", rc, err);
}

// Each spec error names the spec file and the key, at --dry-run, and writes nothing.
static void test_spec_checked_before_writing(void) {
    struct { const char *grid, *set, *per_config, *infer, *eval, *want; } cases[] = {
        {"{}", "{}", "{}", ", \"beem\": 3", "", "infer.beem: unknown key"},
        {"{}", "{}", "{}", "", ", \"metric\": \"cider\"", "eval.metric: unknown key"},
        {"{}", "{}", "{\"nope\": {\"train.lr\": 1e-3}}", "", "", "set_per_config.nope: not a config of this sweep"},
        {"{\"train.lrr\": [1e-3]}", "{}", "{}", "", "", "grid.train.lrr: --set train.lrr: unknown key"},
        {"{}", "{\"model.widht\": 64}", "{}", "", "", "set.model.widht: --set model.widht: unknown key"},
        {"{}", "{\"train.steps\": \"4\"}", "{}", "", "", "set.train.steps: expected number"},
        {"{\"train.lr\": [1e-3, \"fast\"]}", "{}", "{}", "", "", "grid.train.lr: --set train.lr: expected number, got \"fast\""},
        {"{\"mapping.noise\": [1]}", "{}", "{}", "", "", "grid.mapping.noise: expected boolean"},
        {"{}", "{\"train.steps\": 1.5}", "{}", "", "", "set.train.steps: --set train.steps: expected integer"},
        {"{}", "{\"train.schedule\": \"cos\"}", "{}", "", "", "set.train.schedule: --set train.schedule: \"cos\" is not one of"},
        {"{}", "{}", "{\"tiny\": {\"model.width\": 33}}", "", "", "set_per_config.tiny.model.width: "},
        {"{}", "{\"run.seed\": 3}", "{}", "", "", "set.run.seed: set by the sweep"},
        {"{\"train.lr\": [1e-3]}", "{\"train.lr\": 2e-3}", "{}", "", "", "grid.train.lr: also in set"},
        {"{}", "{}", "{}", ", \"beam\": 1.5", "", "infer.beam: expected an integer >= 1"},
    };
    char spec[128], out_dir[128];
    snprintf(spec, sizeof spec, "%s/bad.json", dir);
    snprintf(out_dir, sizeof out_dir, "%s/bad", dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_spec(spec, out_dir, config, "[1]", cases[i].grid, cases[i].set, cases[i].per_config, cases[i].infer, cases[i].eval);
        char want[256];
        snprintf(want, sizeof want, "%s: %s", spec, cases[i].want);
        int rc = run("scripts/sweep %s --dry-run", spec);
        CHECK(rc != 0 && strstr(err, want), "case %zu: exit %d, wanted \"%s\", got \"%s\"", i, rc, want, err);
        CHECK(!exists(out_dir), "case %zu (%s): %s was written", i, cases[i].want, out_dir);
    }
    write_spec(spec, out_dir, config, "[1]", "{\"train.lr\": [1e-3]}", "{}", "{\"tiny\": {\"model.width\": 64}}", "", "");
    int rc = run("scripts/sweep %s --dry-run", spec);
    CHECK(rc == 0 && strstr(out, "would run: sbatch"), "the good spec: exit %d: %s%s", rc, out, err);
}

static long mtime_ns(const char* path) {
    struct stat st;
    if (stat(path, &st)) return -1;
    return st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

// --local runs 4 tasks; the same spec again skips them all; a changed grid, changed seeds or a
// changed config file is refused naming what differs, and the folder is left as it was;
// sweep-collect writes a summary.csv of numbers with a column per grid key.
static void test_refuses_other_spec_resumes_same(void) {
    char spec[128], other[128], out_dir[128], cfg[128], path[256];
    snprintf(spec, sizeof spec, "%s/lr.json", dir);
    snprintf(other, sizeof other, "%s/lr2.json", dir);
    snprintf(out_dir, sizeof out_dir, "%s/lr", dir);
    snprintf(cfg, sizeof cfg, "%s/tiny_copy.json", dir);
    char* text = readFileCheck(config, NULL);
    write_text(cfg, text);
    free(text);
    write_spec(spec, out_dir, cfg, "[1, 2]", "{\"train.lr\": [3e-3, 1e-3]}", "{\"train.checkpoint_every\": 4}", "{}", "", "");
    int rc = run("scripts/sweep %s --local", spec);
    REQUIRE(rc == 0 && strstr(out, "4 tasks"), "the first sweep: exit %d: %s%s", rc, out, err);
    snprintf(path, sizeof path, "%s/tasks/0003/scores.json", out_dir);
    long scored = mtime_ns(path);
    rc = run("scripts/sweep %s --local", spec);
    int skipped = 0;
    for (const char* p = out; (p = strstr(p, ": done, skipped")); p++) skipped++;
    CHECK(rc == 0 && skipped == 4, "the same spec again: exit %d, %d tasks skipped: %s%s", rc, skipped, out, err);
    CHECK(mtime_ns(path) == scored, "the same spec again scored task 3 again");

    snprintf(path, sizeof path, "%s/sweep.json", out_dir);
    char* held = slurp(path);
    write_spec(other, out_dir, cfg, "[1, 2]", "{\"train.lr\": [3e-3, 1e-4]}", "{\"train.checkpoint_every\": 4}", "{}", "", "");
    rc = run("scripts/sweep %s --dry-run", other);
    CHECK(rc != 0 && strstr(err, "grid.train.lr: [0.003, 0.001] there, [0.003, 0.0001] here"),
          "a changed grid: exit %d: %s", rc, err);
    rc = run("scripts/sweep %s --local", other);
    CHECK(rc != 0 && strstr(err, "grid.train.lr"), "a changed grid, --local: exit %d: %s", rc, err);
    write_spec(other, out_dir, cfg, "[1, 2, 3]", "{\"train.lr\": [3e-3, 1e-3]}", "{\"train.checkpoint_every\": 4}", "{}", "", "");
    rc = run("scripts/sweep %s --dry-run", other);
    CHECK(rc != 0 && strstr(err, "seeds: [1, 2] there, [1, 2, 3] here"), "changed seeds: exit %d: %s", rc, err);
    text = readFileCheck(config, NULL);  // the same spec, but the config file now says otherwise
    char* at = strstr(text, "\"warmup_steps\": 2");
    REQUIRE(at, "the tiny config has no warmup_steps");
    at[16] = '3';
    write_text(cfg, text);
    free(text);
    rc = run("scripts/sweep %s --dry-run", spec);
    CHECK(rc != 0 && strstr(err, "task 0: its run was trained with another config") && strstr(err, "train.warmup_steps: 2 there, 3 here"),
          "a changed config file: exit %d: %s", rc, err);
    char* now = slurp(path);
    CHECK(!strcmp(held, now), "a refused spec changed %s", path);
    free(held);
    free(now);

    rc = run("scripts/sweep-collect %s", out_dir);
    CHECK(rc == 0 && strstr(out, "| config | train.lr | seeds | Bleu_4 | CIDEr |") && strstr(out, "| tiny | 0.003 | 2 | ")
              && strstr(out, "4 of 4 tasks done"), "sweep-collect: exit %d: %s%s", rc, out, err);
    snprintf(path, sizeof path, "%s/summary.csv", out_dir);
    char* csv = slurp(path);
    const char* head = "config,train.lr,seeds,Bleu_4_mean,Bleu_4_std,CIDEr_mean,CIDEr_std\ntiny,0.003,2,";
    CHECK(!strncmp(csv, head, strlen(head)) && strstr(csv, "\ntiny,0.001,2,"), "summary.csv:\n%s", csv);
    int numbers = 0, bad = 0;  // every metric cell of each row is a number
    for (char* line = strchr(csv, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        char* cell = line + 1;
        for (int c = 0; c < 3; c++) cell = strchr(cell, ',') + 1;
        for (int c = 0; c < 4; c++) {
            char* end;
            strtod(cell, &end);
            numbers += end != cell;
            bad += end == cell || (*end != ',' && *end != '\n');
            cell = end + 1;
        }
    }
    CHECK(numbers == 8 && !bad, "summary.csv: %d numeric metric cells of 8, %d not numbers:\n%s", numbers, bad, csv);
    free(csv);
}

// A folder whose sweep.json plans other values than a run was trained with (written by an older
// scripts/sweep over a changed spec): the run's config.json labels it. No task done: no summary.
static void test_collect_labels_from_run_config(void) {
    char path[256], cmd[512];
    snprintf(cmd, sizeof cmd, "mkdir -p %s/old/tasks/0000/run %s/old/tasks/0001/run %s/none/tasks/0000", dir, dir, dir);
    REQUIRE(system(cmd) == 0, "mkdir");
    const char* plan = "{\"spec\": {\"name\": \"old\", \"configs\": {\"c\": \"c.json\"}, \"grid\": {\"train.lr\": [0.1, 0.2]}},\n"
                       " \"tasks\": [{\"id\": 0, \"config\": \"c\", \"grid\": {\"train.lr\": 0.1}, \"seed\": 1},\n"
                       "           {\"id\": 1, \"config\": \"c\", \"grid\": {\"train.lr\": 0.2}, \"seed\": 1}]}";
    snprintf(path, sizeof path, "%s/old/sweep.json", dir);
    write_text(path, plan);
    for (int t = 0; t < 2; t++) {
        snprintf(path, sizeof path, "%s/old/tasks/%04d/DONE", dir, t);
        write_text(path, "");
        snprintf(path, sizeof path, "%s/old/tasks/%04d/scores.json", dir, t);
        write_text(path, t ? "{\"scores\": {\"CIDEr\": 0.3}}" : "{\"scores\": {\"CIDEr\": 0.1}}");
        snprintf(path, sizeof path, "%s/old/tasks/%04d/run/config.json", dir, t);
        write_text(path, t ? "{\"run\": {\"seed\": 2}, \"train\": {\"lr\": 0.1}}" : "{\"run\": {\"seed\": 1}, \"train\": {\"lr\": 0.1}}");
    }
    int rc = run("scripts/sweep-collect %s/old", dir);
    CHECK(rc == 0 && strstr(out, "| c | 0.1 | 2 | 20.0 ± 14.1 |") && !strstr(out, "| 0.2 |"),
          "task 1 (trained with train.lr 0.1, seed 2) is not labelled by its config.json: %s", out);
    CHECK(strstr(err, "task 1: trained with {'train.lr': 0.1}, seed 2") != NULL, "no word that task 1 ran otherwise: %s", err);
    snprintf(path, sizeof path, "%s/old/summary.csv", dir);
    char* csv = slurp(path);
    CHECK(!strcmp(csv, "config,train.lr,seeds,CIDEr_mean,CIDEr_std\nc,0.1,2,20.0000,14.1421\n"), "summary.csv:\n%s", csv);
    free(csv);

    snprintf(path, sizeof path, "%s/none/sweep.json", dir);
    write_text(path, "{\"spec\": {\"name\": \"none\", \"configs\": {\"c\": \"c.json\"}},\n"
                     " \"tasks\": [{\"id\": 0, \"config\": \"c\", \"grid\": {}, \"seed\": 1}]}");
    rc = run("scripts/sweep-collect %s/none", dir);
    snprintf(path, sizeof path, "%s/none/summary.csv", dir);
    CHECK(rc != 0 && strstr(err, "no task of the 1 in") && !exists(path), "no task done: exit %d, %s%s", rc, out, err);
}

int main(void) {
    if (access("bin/tipcap-train", X_OK) != 0) {
        printf("run from the repository root after make\n0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    if (setup()) {
        printf("FAIL setup: could not simulate the test data in %s\n0 passed, 1 failed, 0 skipped\n", dir);
        return 1;
    }
    RUN(test_train_check);
    RUN(test_spec_checked_before_writing);
    RUN(test_refuses_other_spec_resumes_same);
    RUN(test_collect_labels_from_run_config);
    int rc = test_summary();
    if (rc == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    return rc;
}
