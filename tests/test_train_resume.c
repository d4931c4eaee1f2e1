// tipcap-train stopped and resumed as a researcher does it, on the tiny config of
// tests/train_fixture.h (seconds, not minutes: tests/test_train.c has the slow cases): SIGTERM
// mid-run writes a checkpoint and exits 75, and --resume gives the losses and weights of an
// uninterrupted run bit for bit; under a local Slurm, a sweep task so signalled requeues itself;
// --resume --set records what the run now uses, and a finished run says so.
#include <cJSON.h>
#include <errno.h>
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
#include "train/trainer.h"

#define STEPS "300"

// The columns of metrics.csv that do not depend on timing: step,epoch,loss,val_loss,lr,grad_norm.
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

static int same_file(const char* a, const char* b) {
    size_t la, lb;
    char* x = readFileCheck(a, &la);
    char* y = readFileCheck(b, &lb);
    int same = la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

// Starts `bin/tipcap-train --config config --set run.dir=RUN` for STEPS steps with a checkpoint
// only at the end, stderr into log.
static pid_t start_training(const char* run, const char* log) {
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "a", stderr)) _exit(127);
        char set_dir[200];
        snprintf(set_dir, sizeof set_dir, "run.dir=%s", run);
        execl("bin/tipcap-train", "tipcap-train", "--config", config, "--set", set_dir, "--set", "train.steps=" STEPS, "--set",
              "train.checkpoint_every=1000", (char*)NULL);
        _exit(127);
    }
    return pid;
}

// kill -TERM mid-run: the step under way finishes, a checkpoint is written (checkpoint_every is
// beyond the signal), the exit status is 75; --resume ends with the metrics and the weights of the
// run that was never stopped.
static void test_sigterm_checkpoints_and_resumes(void) {
    char log[128], whole[128], stopped[128];
    snprintf(log, sizeof log, "%s/sigterm.log", dir);
    snprintf(whole, sizeof whole, "%s/whole", dir);
    snprintf(stopped, sizeof stopped, "%s/stopped", dir);
    const char* steps = "train.steps=" STEPS " --set train.checkpoint_every=1000";
    REQUIRE(sh(log, "bin/tipcap-train --config %s --set run.dir=%s --set %s", config, whole, steps) == 0,
            "the uninterrupted run failed (see %s)", log);
    pid_t pid = start_training(stopped, log);
    for (int i = 0; i < 4000 && isnan(metric_loss(stopped, 5)); i++) usleep(2000);
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == TRAIN_EXIT_PREEMPTED,
            "SIGTERM: expected exit status %d, got %s %d (see %s)", TRAIN_EXIT_PREEMPTED,
            WIFEXITED(status) ? "status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log);
    char* text = slurp(log);
    CHECK(strstr(text, "stopped by SIGTERM after step") && strstr(text, "exit status 75"), "no stop line in %s", log);
    free(text);
    long at = -1;
    for (long s = 5; s < 300; s++) {
        char ckpt[256];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_%08ld/model.safetensors", stopped, s);
        if (access(ckpt, F_OK) == 0) at = s;
    }
    REQUIRE(at > 0, "no checkpoint between step 5 and the end after SIGTERM");
    printf("  stopped after step %ld of " STEPS "\n", at);
    REQUIRE(sh(log, "bin/tipcap-train --resume %s", stopped) == 0, "resume failed (see %s)", log);
    char* a = deterministic_metrics(whole);
    char* b = deterministic_metrics(stopped);
    CHECK(!strcmp(a, b), "metrics differ after SIGTERM and --resume (see %s and %s)", whole, stopped);
    free(a);
    free(b);
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s/checkpoints/step_%08d/model.safetensors", whole, atoi(STEPS));
    snprintf(pb, sizeof pb, "%s/checkpoints/step_%08d/model.safetensors", stopped, atoi(STEPS));
    CHECK(same_file(pa, pb), "the final weights differ");
}

// metrics.csv's elapsed_s (column 8) at a step.
static double metric_elapsed(const char* run, long step) {
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    char* text = slurp(path);
    double elapsed = NAN;
    char* save;
    for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long s;
        double e;
        if (sscanf(line, "%ld,%*d,%*f,%*f,%*f,%*f,%*f,%lf", &s, &e) == 2 && s == step) elapsed = e;
    }
    free(text);
    return elapsed;
}

// --resume --set train.steps=42 of a run of 40: config.json records 42 (the log has 40 -> 42), the
// "done" line counts 2 steps now and 42 in the run, elapsed_s goes on from where it was; a --resume
// of the finished run says so and changes nothing.
static void test_resume_with_set(void) {
    char log[128], run[128], path[200];
    snprintf(log, sizeof log, "%s/set.log", dir);
    snprintf(run, sizeof run, "%s/set", dir);
    snprintf(path, sizeof path, "%s/config.json", run);
    REQUIRE(sh(log, "bin/tipcap-train --config %s --set run.dir=%s --set train.steps=40 --set train.checkpoint_every=40",
               config, run) == 0, "training failed (see %s)", log);
    char resumed[160];
    snprintf(resumed, sizeof resumed, "%s/set_resumed.log", dir);
    REQUIRE(sh(resumed, "bin/tipcap-train --resume %s --set train.steps=42", run) == 0, "resume failed (see %s)", resumed);
    char* text = slurp(resumed);
    CHECK(strstr(text, "config.json: train.steps: 40 -> 42"), "the log does not record the earlier value:\n%s", text);
    CHECK(strstr(text, "done: 2 steps in") && strstr(text, "(steps 41 to 42); the run: 42 steps in"),
          "the done line does not count this invocation's steps and the run's:\n%s", text);
    free(text);
    char* cfg = slurp(path);
    cJSON* root = cJSON_Parse(cfg);
    cJSON* steps = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "train"), "steps");
    CHECK(cJSON_IsNumber(steps) && steps->valuedouble == 42, "config.json does not record train.steps = 42:\n%s", cfg);
    cJSON_Delete(root);
    double before = metric_elapsed(run, 40), after = metric_elapsed(run, 41);
    printf("  elapsed_s %.1f at step 40, %.1f at step 41 (resumed)\n", before, after);
    CHECK(after >= before, "elapsed_s starts again on --resume: %.1f at step 40, %.1f at step 41", before, after);
    // the finished run: said so, nothing touched
    char* metrics = slurp((snprintf(path, sizeof path, "%s/metrics.csv", run), path));
    char finished[160];
    snprintf(finished, sizeof finished, "%s/set_finished.log", dir);
    CHECK(sh(finished, "bin/tipcap-train --resume %s", run) == 0, "--resume of a finished run failed (see %s)", finished);
    text = slurp(finished);
    CHECK(strstr(text, "the run is finished: it has done 42 steps of 42; nothing to train"), "not said:\n%s", text);
    CHECK(!strstr(text, "done:"), "a finished run claims to be done again:\n%s", text);
    free(text);
    char* metrics_after = slurp(path);
    snprintf(path, sizeof path, "%s/config.json", run);
    char* cfg_after = slurp(path);
    CHECK(!strcmp(metrics, metrics_after) && !strcmp(cfg, cfg_after), "--resume of a finished run changed %s", run);
    free(metrics), free(metrics_after), free(cfg), free(cfg_after);
}

// --resume with another model (here --set model.width=64 on a run of width 32): the error names the
// keys that differ with both values, and does not advise removing the checkpoint, which is fine.
static void test_resume_model_mismatch(void) {
    char run[128], log[160];
    snprintf(run, sizeof run, "%s/set", dir);  // 42 steps of width 32 and 2 decoder layers (test_resume_with_set)
    snprintf(log, sizeof log, "%s/mismatch.err", dir);
    int rc = sh(log, "bin/tipcap-train --resume %s --set model.width=64 --set model.dec_layers=3 --set train.steps=50", run);
    char* err = slurp(log);
    CHECK(rc == 1, "exit status %d", rc);
    CHECK(strstr(err, "model.width is 32 in the checkpoint, 64 in the config") &&
          strstr(err, "model.dec_layers is 2 in the checkpoint, 3 in the config"), "the keys are not named:\n%s", err);
    CHECK(!strstr(err, "remove"), "advises removing a checkpoint that is fine:\n%s", err);
    CHECK(!strstr(err, "model.prefix_len") && !strstr(err, "vocabulary"), "names keys that agree:\n%s", err);
    free(err);
    char ckpt[200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoints/step_00000042/model.safetensors", run);
    CHECK(access(ckpt, F_OK) == 0, "the checkpoint is gone");
}

// tipcap-infer on image features of another CLIP model than the checkpoint's training features
// (tipcap-synth's): an error naming both, unless --allow-clip-model-mismatch; a file without images
// is an error saying so. Nothing is written.
static void test_infer_checks_clip_model(void) {
    char run[128], other[160], none[160], out[160], log[160], err[512];
    snprintf(run, sizeof run, "%s/whole", dir);  // test_sigterm_checkpoints_and_resumes
    snprintf(other, sizeof other, "%s/other_clip.h5", dir);
    snprintf(none, sizeof none, "%s/texts_only.h5", dir);
    snprintf(out, sizeof out, "%s/clip.json", dir);
    FeatureStore fs;
    REQUIRE(features_read(features, &fs, err, sizeof err) == 0, "%s", err);
    snprintf(fs.clip_model, sizeof fs.clip_model, "ViT-L-14 (openai)");
    REQUIRE(features_write(other, &fs, 0, err, sizeof err) == 0, "%s", err);
    int n_images = fs.n_images;
    fs.n_images = 0;  // the captions alone, naming no image
    for (int i = 0; i < fs.n_texts; i++) fs.image_index[i] = -1;
    REQUIRE(features_write(none, &fs, 0, err, sizeof err) == 0, "%s", err);
    fs.n_images = n_images;
    features_free(&fs);
    snprintf(log, sizeof log, "%s/clip.err", dir);
    int rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --limit 3 --beam 1 --out %s", run, other, out);
    char* text = slurp(log);
    CHECK(rc == 1 && strstr(text, "clip_model \"ViT-L-14 (openai)\"") && strstr(text, "\"tipcap-synth\"") &&
          strstr(text, "--allow-clip-model-mismatch"), "another CLIP model: exit %d:\n%s", rc, text);
    free(text);
    CHECK(access(out, F_OK) != 0, "a refused inference wrote %s", out);
    rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --limit 3 --beam 1 --out %s --allow-clip-model-mismatch",
            run, other, out);
    CHECK(rc == 0 && access(out, F_OK) == 0, "--allow-clip-model-mismatch: exit %d (see %s)", rc, log);
    unlink(out);
    snprintf(log, sizeof log, "%s/noimages.err", dir);
    rc = sh(log, "bin/tipcap-infer --checkpoint %s --features %s --out %s", run, none, out);
    text = slurp(log);
    CHECK(rc == 1 && strstr(text, "no images: /images is absent or empty"), "no images: exit %d:\n%s", rc, text);
    free(text);
    CHECK(access(out, F_OK) != 0, "a refused inference wrote %s", out);
}

// scripts/sweep on a one-node Slurm started here (scripts/slurm-local.sh): the warning Slurm sends
// before a time limit (sbatch --signal=B:USR1, here by scancel --batch --signal=USR1) reaches the
// trainer through the task's shell; the trainer checkpoints and exits 75, the task requeues itself,
// resumes from that checkpoint and finishes (trained, captioned, scored).
static void test_slurm_signal_requeues(void) {
    if (geteuid() != 0) SKIP("starting slurmctld and slurmd needs root");
    if (system("command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null") != 0)
        SKIP("Slurm is not installed (scripts/install-deps.sh installs slurmctld, slurmd, slurm-client, munge)");
    char log[160], slurm[128], spec[160], out[160], task_log[200];
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
            "{\"name\": \"test-preempt\", \"out\": \"%s\", \"configs\": {\"tiny\": \"%s\"}, \"seeds\": [1],\n"
            " \"set\": {\"train.steps\": " STEPS ", \"train.checkpoint_every\": 1000},\n"
            " \"infer\": {\"features\": \"%s\", \"beam\": 1, \"prompts\": \"none\", \"args\": [\"--limit\", \"5\"]},\n"
            " \"eval\": {\"refs\": \"%s\", \"args\": [\"--metrics\", \"bleu\"]},\n"
            " \"slurm\": {\"cpus_per_task\": 1, \"time\": \"00:10:00\"}}\n",
            out, config, features, corpus);
    fclose(f);
    char run[200];
    snprintf(run, sizeof run, "%s/tasks/0000/run", out);
    int rc = sh(log, "scripts/sweep %s", spec);
    if (rc == 0) {
        for (int i = 0; i < 30000 && isnan(metric_loss(run, 5)); i++) usleep(2000);  // at most a minute
        // the signal; then the requeued job is made eligible at once (Slurm holds it back two minutes)
        rc = sh(log, "scancel --batch --signal=USR1 --name test-preempt && "
                     "for i in $(seq 1 600); do squeue -h -n test-preempt -o %%r | grep -q BeginTime && break; sleep 0.1; done && "
                     "scontrol update JobId=$(squeue -h -n test-preempt -o %%i) StartTime=now && "
                     "for i in $(seq 1 1200); do [ -z \"$(squeue -h -n test-preempt)\" ] && exit 0; sleep 0.25; done; exit 1");
        CHECK(rc == 0, "the signalled job was not requeued and finished in 5 minutes (see %s and %s/logs)", log, out);
        snprintf(task_log, sizeof task_log, "%s/logs/*_0.out", out);
        CHECK(sh(log, "grep -q 'stopped by SIGUSR1 after step' %s && grep -q 'exit 75): requeueing job' %s && "
                      "grep -q 'resumed from .*checkpoints/step_' %s && test -f %s/tasks/0000/DONE",
                 task_log, task_log, task_log, out) == 0,
              "the task was not stopped, requeued, resumed and finished (see %s)", task_log);
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
    if (fixture_setup("train_resume")) {
        printf("FAIL setup: could not simulate the test data in %s\n0 passed, 1 failed, 0 skipped\n", dir);
        return 1;
    }
    RUN(test_sigterm_checkpoints_and_resumes);
    RUN(test_resume_with_set);
    RUN(test_resume_model_mismatch);
    RUN(test_infer_checks_clip_model);
    RUN(test_slurm_signal_requeues);
    int rc = test_summary();
    if (rc == 0) fixture_remove();
    return rc;
}
