// tipcap-train and tipcap-infer as a user runs them, on simulated features of real captions:
// the loss falls, a run killed with SIGKILL and resumed gives bit-identical losses and weights,
// two MPI ranks give the losses of one process with the same global batch, a damaged checkpoint is
// a clear error and is left as it is, bad input is a clear error, prompts steer captions, and
// Hugging Face generate on the same checkpoint writes the same captions.
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/check.h"
#include "data/features.h"
#include "tests/harness.h"
#include "tests/train_fixture.h"
#include "train/safetensors.h"

// The columns of metrics.csv that must not depend on timing: step,epoch,loss,val_loss,lr,grad_norm.
static char* deterministic_metrics(const char* run) {
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    char* text = slurp(path);
    size_t cap = strlen(text) + 1, len = 0;
    char* out = mallocCheck(cap);
    out[0] = '\0';
    char* save;
    for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int commas = 0;
        for (char* p = line; *p; p++)
            if (*p == ',' && ++commas == 6) { *p = '\0'; break; }
        len += (size_t)snprintf(out + len, cap - len, "%s\n", line);
    }
    free(text);
    return out;
}

static void test_config_doc_in_sync(void) {
    char log[128], doc[128];
    snprintf(log, sizeof log, "%s/doc.md", dir);
    REQUIRE(sh(log, "bin/tipcap-train --print-config-doc") == 0, "--print-config-doc failed");
    char* generated = slurp(log);
    snprintf(doc, sizeof doc, "docs/CONFIG.md");
    char* documented = slurp(doc);
    CHECK(strstr(documented, generated) != NULL,
          "docs/CONFIG.md does not hold the current key table: regenerate it with bin/tipcap-train --print-config-doc");
    free(generated);
    free(documented);
}

static void test_loss_falls(void) {
    char log[128], run[128];
    snprintf(run, sizeof run, "%s/falls", dir);
    snprintf(log, sizeof log, "%s/falls.log", dir);
    int rc = sh(log, "bin/tipcap-train --config %s --set run.dir=%s --set train.steps=60 --set train.checkpoint_every=60",
                config, run);
    REQUIRE(rc == 0, "training failed (see %s)", log);
    double first = metric_loss(run, 1), last = metric_loss(run, 60);
    printf("  loss %.3f at step 1, %.3f at step 60\n", first, last);
    CHECK(last < first - 1.0, "the loss did not fall: %.3f -> %.3f", first, last);
    char svg[160];
    snprintf(svg, sizeof svg, "%s/loss.svg", run);
    char* s = slurp(svg);
    CHECK(strstr(s, "<svg") && strstr(s, "<polyline"), "no loss curve in %s", svg);
    free(s);
}

static void test_kill_and_resume_bit_identical(void) {
    char log[128], whole[128], killed[128];
    snprintf(log, sizeof log, "%s/resume.log", dir);
    snprintf(whole, sizeof whole, "%s/whole", dir);
    snprintf(killed, sizeof killed, "%s/killed", dir);
    REQUIRE(sh(log, "bin/tipcap-train --config %s --set run.dir=%s", config, whole) == 0, "uninterrupted run failed");
    // the same run, killed with SIGKILL once its 5th checkpoint exists, then resumed
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log, "a", stderr);
        char set_dir[160];
        snprintf(set_dir, sizeof set_dir, "run.dir=%s", killed);
        execl("bin/tipcap-train", "tipcap-train", "--config", config, "--set", set_dir, (char*)NULL);
        _exit(127);
    }
    char marker[200];
    snprintf(marker, sizeof marker, "%s/checkpoints/step_00000005", killed);
    int waited = 0;
    while (access(marker, F_OK) != 0 && waited++ < 1200) usleep(50000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status), "the run finished before it could be killed");
    REQUIRE(sh(log, "bin/tipcap-train --resume %s", killed) == 0, "resume failed (see %s)", log);
    char* a = deterministic_metrics(whole);
    char* b = deterministic_metrics(killed);
    CHECK(!strcmp(a, b), "metrics differ after kill -9 and resume:\n--- uninterrupted\n%s--- resumed\n%s", a, b);
    free(a);
    free(b);
    char pa[200], pb[200];
    snprintf(pa, sizeof pa, "%s/checkpoints/step_00000012/model.safetensors", whole);
    snprintf(pb, sizeof pb, "%s/checkpoints/step_00000012/model.safetensors", killed);
    size_t la, lb;
    char* wa = readFileCheck(pa, &la);
    char* wb = readFileCheck(pb, &lb);
    CHECK(la == lb && !memcmp(wa, wb, la), "the final weights differ");
    free(wa);
    free(wb);
    snprintf(pa, sizeof pa, "%s/checkpoints/step_00000012/state.safetensors", whole);
    snprintf(pb, sizeof pb, "%s/checkpoints/step_00000012/state.safetensors", killed);
    SafeTensors sa, sb;
    char err[256];
    REQUIRE(safetensors_read(pa, &sa, err, sizeof err) == 0, "%s", err);
    REQUIRE(safetensors_read(pb, &sb, err, sizeof err) == 0, "%s", err);
    const char* names[] = {"adam.m", "adam.v"};
    for (int i = 0; i < 2; i++) {  // the metadata differs: it holds each run's run.dir
        const StTensor* ta = safetensors_find(&sa, names[i]);
        const StTensor* tb = safetensors_find(&sb, names[i]);
        CHECK(ta && tb && ta->nbytes == tb->nbytes && !memcmp(sa.data + ta->offset, sb.data + tb->offset, ta->nbytes),
              "the final %s differs", names[i]);
    }
    CHECK(!strcmp(safetensors_meta(&sa, "step"), safetensors_meta(&sb, "step")) &&
          !strcmp(safetensors_meta(&sa, "data_cursor"), safetensors_meta(&sb, "data_cursor")), "the final state differs");
    safetensors_free(&sa);
    safetensors_free(&sb);
}

static void test_damaged_checkpoint(void) {
    char log[128], run[128], path[256];
    snprintf(log, sizeof log, "%s/damaged.log", dir);
    snprintf(run, sizeof run, "%s/damaged", dir);
    REQUIRE(sh(log, "bin/tipcap-train --config %s --set run.dir=%s --set train.steps=3", config, run) == 0, "training failed");
    snprintf(path, sizeof path, "%s/checkpoints/step_00000003/model.safetensors", run);
    size_t len;
    char* bytes = readFileCheck(path, &len);
    bytes[len - 5] ^= 0x40;
    FILE* f = fopenCheck(path, "wb");
    fwriteCheck(bytes, 1, len, f, path);
    fclose(f);
    char errlog[160];
    snprintf(errlog, sizeof errlog, "%s/damaged.err", dir);
    int rc = sh(errlog, "bin/tipcap-train --resume %s --set train.steps=6", run);
    char* err = slurp(errlog);
    CHECK(rc == 1, "resume from a damaged checkpoint exited with %d", rc);
    CHECK(strstr(err, path) && strstr(err, "checksum mismatch"), "unclear error: %s", err);
    size_t len2;
    char* after = readFileCheck(path, &len2);
    CHECK(len2 == len && !memcmp(after, bytes, len), "the damaged checkpoint was modified");
    free(after);
    free(bytes);
    free(err);
}

static void test_mpi_two_ranks_equal_one(void) {
    if (system("command -v mpirun >/dev/null 2>&1") != 0) SKIP("mpirun not installed");
    char log[128], one[128], two[128];
    snprintf(log, sizeof log, "%s/mpi.log", dir);
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(two, sizeof two, "%s/two", dir);
    const char* common = "--set train.steps=6 --set train.checkpoint_every=6";
    REQUIRE(sh(log, "bin/tipcap-train --config %s --set run.dir=%s %s", config, one, common) == 0, "1-process run failed");
    int rc = sh(log, "OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 bin/tipcap-train --config %s "
                     "--set run.dir=%s %s", config, two, common);
    REQUIRE(rc == 0, "mpirun -np 2 failed (see %s)", log);
    double worst = 0;
    for (long s = 1; s <= 6; s++) {
        double a = metric_loss(one, s), b = metric_loss(two, s);
        worst = fmax(worst, fabs(a - b) / fabs(a));
        CHECK(fabs(a - b) <= 1e-4 * fabs(a), "step %ld: loss %.7f with one process, %.7f with two", s, a, b);
    }
    printf("  2 ranks vs 1: worst relative loss difference %.2e over 6 steps\n", worst);
}

static void expect_failure(const char* name, const char* want, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect_failure(const char* name, const char* want, const char* fmt, ...) {
    char cmd[2048], log[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/%s.err", dir, name);
    int rc = sh(log, "%s", cmd);
    char* err = slurp(log);
    CHECK(rc != 0, "%s: exited 0", name);
    CHECK(strstr(err, want) != NULL, "%s: the error does not say \"%s\":\n%s", name, want, err);
    free(err);
}

static void test_bad_input(void) {
    char run[128];
    snprintf(run, sizeof run, "%s/bad", dir);
    expect_failure("unknown_key", "train.lrate: unknown key", "bin/tipcap-train --config %s --set run.dir=%s --set train.lrate=1",
                   config, run);
    expect_failure("missing_features", "/nonexistent.h5", "bin/tipcap-train --config %s --set run.dir=%s "
                   "--set data.features=/nonexistent.h5", config, run);
    expect_failure("missing_config", "/nonexistent.json", "bin/tipcap-train --config /nonexistent.json");
    // a gap file of another dimension
    char gap[160], log[160];
    snprintf(gap, sizeof gap, "%s/gap32.h5", dir);
    snprintf(log, sizeof log, "%s/gap.log", dir);
    REQUIRE(sh(log, "bin/tipcap-prep gap --setting text --dim 32 --out %s", gap) == 0, "gap file");
    expect_failure("gap_dim", "D = 32", "bin/tipcap-train --config %s --set run.dir=%s --set mapping.gap=%s", config, run, gap);
    // a NaN loss at step 4 (the fault hook): the step is named, the checkpoint of step 3 is kept, nothing later
    char nan_run[160], ckpt3[256], ckpt4[256];
    snprintf(nan_run, sizeof nan_run, "%s/nan", dir);
    expect_failure("nan_loss", "loss is nan at step 4", "TIPCAP_FAULT_NAN_STEP=4 bin/tipcap-train --config %s "
                   "--set run.dir=%s", config, nan_run);
    snprintf(ckpt3, sizeof ckpt3, "%s/checkpoints/step_00000003/model.safetensors", nan_run);
    snprintf(ckpt4, sizeof ckpt4, "%s/checkpoints/step_00000004", nan_run);
    SafeTensors st;
    char err[256];
    CHECK(safetensors_read(ckpt3, &st, err, sizeof err) == 0, "the last good checkpoint is not intact: %s", err);
    safetensors_free(&st);
    CHECK(access(ckpt4, F_OK) != 0, "a checkpoint was written after the NaN loss");
    // a new run into the directory of a finished one: refused before anything is written
    char whole_config[200], before[200];
    snprintf(whole_config, sizeof whole_config, "%s/whole/config.json", dir);
    char* config_before = slurp(whole_config);
    snprintf(before, sizeof before, "%s/whole", dir);
    char* metrics_before = deterministic_metrics(before);
    expect_failure("run_dir_taken", "--resume", "bin/tipcap-train --config %s --set run.dir=%s --set train.lr=1e-3", config,
                   before);
    char* config_after = slurp(whole_config);
    char* metrics_after = deterministic_metrics(before);
    CHECK(!strcmp(config_before, config_after) && !strcmp(metrics_before, metrics_after),
          "the refused run changed %s", before);
    free(config_before), free(config_after), free(metrics_before), free(metrics_after);
    // inference: features of another dimension, an empty feature file, an unknown image in a prompt file
    char ckpt[160], other[160], prompts[160];
    snprintf(ckpt, sizeof ckpt, "%s/whole", dir);
    snprintf(other, sizeof other, "%s/other.h5", dir);
    REQUIRE(sh(log, "bin/tipcap-synth --captions %s --out %s --dim 48 --max-images 5", corpus, other) == 0, "features");
    expect_failure("infer_dim", "D = 48", "bin/tipcap-infer --checkpoint %s --features %s --out %s/r.json", ckpt, other, dir);
    snprintf(prompts, sizeof prompts, "%s/prompts.json", dir);
    FILE* f = fopenCheck(prompts, "wb");
    fputs("{\"no_such_image.jpg\": [\"dog\"]}", f);
    fclose(f);
    expect_failure("infer_key", "no_such_image.jpg", "bin/tipcap-infer --checkpoint %s --features %s --out %s/r.json "
                   "--prompts %s", ckpt, features, dir, prompts);
    // an empty feature file
    char empty[160];
    snprintf(empty, sizeof empty, "%s/empty.h5", dir);
    FeatureStore none = {.dim = 64, .normalized = 1};
    snprintf(none.clip_model, sizeof none.clip_model, "none");
    REQUIRE(features_write(empty, &none, 0, err, sizeof err) == 0, "%s", err);
    expect_failure("infer_empty", "no images", "bin/tipcap-infer --checkpoint %s --features %s --out %s/r.json", ckpt, empty,
                   dir);
    // a GPT-2 checkpoint for a decoder with another vocabulary (model.vocab = corpus)
    char gpt2dir[160];
    snprintf(gpt2dir, sizeof gpt2dir, "%s/gpt2", dir);
    mkdir(gpt2dir, 0755);
    if (sh(log, "python3 tests/gpt2_oracle.py make %s", gpt2dir) == 0)
        expect_failure("gpt2_vocab", "model.vocab = \"gpt2\"", "bin/tipcap-train --config %s --set run.dir=%s "
                       "--set model.decoder_init=%s/model.safetensors", config, run, gpt2dir);
    char out[200];
    snprintf(out, sizeof out, "%s/r.json", dir);
    CHECK(access(out, F_OK) != 0, "a failed inference left %s behind", out);
}

// --interactive: an image key and prompt words per line in, one caption per line out; an unknown
// key is reported and the session goes on.
static void test_interactive(void) {
    char log[128], in[160], out[160], ckpt[160];
    snprintf(log, sizeof log, "%s/interactive.log", dir);
    snprintf(in, sizeof in, "%s/interactive.in", dir);
    snprintf(out, sizeof out, "%s/interactive.out", dir);
    snprintf(ckpt, sizeof ckpt, "%s/whole", dir);
    char* text = readFileCheck(corpus, NULL);
    cJSON* all = cJSON_Parse(text);
    free(text);
    FILE* f = fopenCheck(in, "wb");
    fprintf(f, "%s dog, frisbee\nno_such_image.jpg dog\n%s\n", all->child->string, all->child->next->string);
    fclose(f);
    cJSON_Delete(all);
    int rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --interactive --beam 2 < %s > %s", ckpt, features, in,
                out);
    CHECK(rc == 0, "interactive session exited with %d", rc);
    char* lines = slurp(out);
    int n = 0;
    for (char* p = lines; *p; p++) n += *p == '\n';
    CHECK(n == 2, "expected 2 captions, got %d lines:\n%s", n, lines);
    free(lines);
    char* err = slurp(log);
    CHECK(strstr(err, "unknown image key \"no_such_image.jpg\"") != NULL, "the unknown key was not reported:\n%s", err);
    free(err);
}

// Prompts steer captions: a small model trained on the simulator writes "dog" far more often for
// images prompted with ["dog"] than for the same images without prompts.
static int count_word(const char* path, const char* word) {
    char* text = slurp(path);
    int n = 0;
    for (char* p = strstr(text, "\"caption\""); p; p = strstr(p + 1, "\"caption\"")) {
        char* end = strchr(p + 11, '\n');
        if (end) *end = '\0';
        for (char* c = p; *c; c++) *c = (char)tolower((unsigned char)*c);
        char* w = strstr(p, word);
        n += w && !isalpha((unsigned char)w[-1]);
        if (end) *end = '\n';
    }
    free(text);
    return n;
}

static void test_prompts_steer_captions(void) {
    char log[128], run[128], prompts[160], with[160], without[160];
    snprintf(log, sizeof log, "%s/prompts.log", dir);
    snprintf(run, sizeof run, "%s/prompted", dir);
    snprintf(prompts, sizeof prompts, "%s/dog.json", dir);
    snprintf(with, sizeof with, "%s/with.json", dir);
    snprintf(without, sizeof without, "%s/without.json", dir);
    int rc = sh(log, "bin/tipcap-train --config %s --set run.dir=%s --set model.width=128 --set model.dec_heads=4 "
                     "--set model.int_heads=4 --set model.prefix_len=4 --set model.proj_hidden=256 --set model.max_len=24 "
                     "--set train.batch_size=32 --set train.steps=800 --set train.lr=2e-3 --set train.schedule=cosine "
                     "--set train.min_lr_ratio=0.1 --set train.warmup_steps=50 --set train.log_every=100 "
                     "--set train.checkpoint_every=800", config, run);
    REQUIRE(rc == 0, "training failed (see %s)", log);
    // the first 100 images, each prompted with "dog"
    char* text = readFileCheck(corpus, NULL);
    cJSON* all = cJSON_Parse(text);
    free(text);
    cJSON* p = cJSON_CreateObject();
    int n = 0;
    for (cJSON* img = all->child; img && n < 100; img = img->next, n++) {
        cJSON* words = cJSON_AddArrayToObject(p, img->string);
        cJSON_AddItemToArray(words, cJSON_CreateString("dog"));
    }
    char* out = cJSON_Print(p);
    FILE* f = fopenCheck(prompts, "wb");
    fputs(out, f);
    fclose(f);
    free(out);
    cJSON_Delete(p);
    cJSON_Delete(all);
    REQUIRE(sh(log, "bin/tipcap-infer --checkpoint %s --features %s --limit 100 --beam 3 --prompts %s --out %s", run,
               features, prompts, with) == 0, "inference with prompts failed");
    REQUIRE(sh(log, "bin/tipcap-infer --checkpoint %s --features %s --limit 100 --beam 3 --out %s", run, features,
               without) == 0, "inference without prompts failed");
    int a = count_word(with, "dog"), b = count_word(without, "dog");
    printf("  \"dog\" in %d of 100 captions prompted with it, in %d of the same 100 without prompts\n", a, b);
    CHECK(a >= 30 && a >= 3 * b + 10, "the prompt does not steer the captions: %d with, %d without", a, b);
}

// Hugging Face generate on the same checkpoint (bench/tipcap_torch.py: the model ported to PyTorch,
// its decoder transformers' GPT2LMHeadModel) writes the captions tipcap-infer writes: greedy; beam 3
// with prompts, a length penalty and no repeated bigrams; beam 5 to EOT. A caption may differ only in
// a tie (both scores within 1e-4): then neither search found a better caption than the other.
static int compare_results(const char* ours_path, const char* hf_path, int* n_same, double* worst) {
    char* a_text = slurp(ours_path);
    char* b_text = slurp(hf_path);
    cJSON* a = cJSON_Parse(a_text);
    cJSON* b = cJSON_Parse(b_text);
    free(a_text);
    free(b_text);
    int n = a && b && cJSON_GetArraySize(a) == cJSON_GetArraySize(b) ? cJSON_GetArraySize(a) : -1;
    *n_same = 0;
    *worst = 0;
    for (int i = 0; i < n; i++) {
        cJSON* x = cJSON_GetArrayItem(a, i);
        cJSON* y = cJSON_GetArrayItem(b, i);
        const char* cx = cJSON_GetStringValue(cJSON_GetObjectItem(x, "caption"));
        const char* cy = cJSON_GetStringValue(cJSON_GetObjectItem(y, "caption"));
        double d = fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(x, "score")) -
                        cJSON_GetNumberValue(cJSON_GetObjectItem(y, "score")));
        if (!cx || !cy || isnan(d)) { n = -1; break; }
        *n_same += !strcmp(cx, cy);
        if (d > *worst) *worst = d;
        if (strcmp(cx, cy)) printf("  differs: \"%s\" vs \"%s\" (scores %.3g apart)\n", cx, cy, d);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return n;
}

static void test_same_captions_as_hf_generate(void) {
    if (system("python3 -c 'import torch, transformers, h5py, safetensors' 2>/dev/null") != 0)
        SKIP("python3 has no torch, transformers, h5py or safetensors (make check-torch-oracle installs them)");
    char log[128], run[128], prompts[160], ours[160], hf[160];
    snprintf(log, sizeof log, "%s/hf.log", dir);
    snprintf(run, sizeof run, "%s/prompted", dir);  // trained by test_prompts_steer_captions
    snprintf(prompts, sizeof prompts, "%s/dog.json", dir);
    snprintf(ours, sizeof ours, "%s/ours.json", dir);
    snprintf(hf, sizeof hf, "%s/hf.json", dir);
    char with_prompts[256];
    snprintf(with_prompts, sizeof with_prompts, "--beam 3 --prompts %s --length-penalty 0.8 --no-repeat-ngram 2", prompts);
    const char* settings[] = {"--beam 1", with_prompts, "--beam 5 --no-stop-at-period"};
    for (int s = 0; s < 3; s++) {
        REQUIRE(sh(log, "bin/tipcap-infer --checkpoint %s --features %s --limit 100 --with-scores --device cpu %s --out %s",
                   run, features, settings[s], ours) == 0, "tipcap-infer %s failed (see %s)", settings[s], log);
        REQUIRE(sh(log, "python3 bench/tipcap_torch.py caption --checkpoint %s --features %s --limit 100 --with-scores %s "
                        "--out %s", run, features, settings[s], hf) == 0, "tipcap_torch.py %s failed (see %s)", settings[s], log);
        int same;
        double worst;
        int n = compare_results(ours, hf, &same, &worst);
        REQUIRE(n == 100, "the results of %s and %s do not pair up", ours, hf);
        printf("  %s: %d of 100 captions identical, scores at most %.2g apart\n", settings[s], same, worst);
        CHECK(worst <= 1e-4, "%s: a caption's score differs by %.3g from Hugging Face generate's", settings[s], worst);
    }
}

// scripts/sweep on a one-node Slurm started here (scripts/slurm-local.sh): a 2-task array (two
// seeds) of the tiny config trains, captions and scores to completion; scripts/sweep-collect
// gathers it into one row with the mean and standard deviation over the seeds.
static void test_slurm_sweep(void) {
    if (geteuid() != 0) SKIP("starting slurmctld and slurmd needs root");
    if (system("command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null") != 0)
        SKIP("Slurm is not installed (scripts/install-deps.sh installs slurmctld, slurmd, slurm-client, munge)");
    char log[160], slurm[128], spec[160], out[160];
    snprintf(log, sizeof log, "%s/slurm.log", dir);
    snprintf(slurm, sizeof slurm, "%s/slurm", dir);
    snprintf(spec, sizeof spec, "%s/sweep.json", dir);
    snprintf(out, sizeof out, "%s/sweep", dir);
    REQUIRE(sh(log, "scripts/slurm-local.sh start %s", slurm) == 0, "could not start a local Slurm (see %s)", log);
    char conf[200];
    snprintf(conf, sizeof conf, "%s/slurm.conf", slurm);
    setenv("SLURM_CONF", conf, 1);
    FILE* f = fopenCheck(spec, "wb");
    fprintf(f,
            "{\"name\": \"test-sweep\", \"out\": \"%s\", \"configs\": {\"tiny\": \"%s\"}, \"seeds\": [1, 2],\n"
            " \"set\": {\"train.steps\": 4, \"train.checkpoint_every\": 4},\n"
            " \"infer\": {\"features\": \"%s\", \"beam\": 2, \"prompts\": \"auto\", \"args\": [\"--limit\", \"20\"]},\n"
            " \"eval\": {\"refs\": \"%s\", \"args\": [\"--metrics\", \"bleu,rouge,cider\"]},\n"
            " \"slurm\": {\"cpus_per_task\": 1, \"time\": \"00:10:00\"}}\n",
            out, config, features, corpus);
    fclose(f);
    int rc = sh(log, "scripts/sweep %s", spec);
    if (rc == 0) {
        // wait for the array to leave the queue (at most 5 minutes)
        rc = sh(log, "for i in $(seq 1 600); do [ -z \"$(squeue -h -n test-sweep)\" ] && exit 0; sleep 0.5; done; exit 1");
        CHECK(rc == 0, "the job array did not finish in 5 minutes (see %s and %s/logs)", log, out);
        char summary[200];
        snprintf(summary, sizeof summary, "%s/summary.txt", dir);
        rc = sh(summary, "scripts/sweep-collect %s", out);
        char* table = slurp(summary);
        CHECK(rc == 0, "sweep-collect: not every task finished:\n%s", table);
        CHECK(strstr(table, "| tiny | {} | 2 |") && strstr(table, " ± ") && strstr(table, "2 of 2 tasks done"),
              "the summary lacks the row of two seeds:\n%s", table);
        printf("%s", table);
        free(table);
    } else {
        CHECK(0, "scripts/sweep failed (see %s)", log);
    }
    sh(log, "scripts/slurm-local.sh stop %s", slurm);
    unsetenv("SLURM_CONF");
}

int main(void) {
    if (access("bin/tipcap-train", X_OK) != 0) {
        printf("run from the repository root after make\n0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    if (fixture_setup("train")) {
        printf("FAIL setup: could not simulate the test data in %s\n0 passed, 1 failed, 0 skipped\n", dir);
        return 1;
    }
    RUN(test_config_doc_in_sync);
    RUN(test_loss_falls);
    RUN(test_kill_and_resume_bit_identical);
    RUN(test_damaged_checkpoint);
    RUN(test_mpi_two_ranks_equal_one);
    RUN(test_bad_input);
    RUN(test_interactive);
    RUN(test_prompts_steer_captions);
    RUN(test_same_captions_as_hf_generate);
    RUN(test_slurm_sweep);
    int rc = test_summary();
    if (rc == 0) fixture_remove();
    return rc;
}
