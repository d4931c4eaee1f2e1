// The scratch data of the tests that run the programs as a user does (tests/test_train.c,
// tests/test_dist.c): the first 400 images of the shipped COCO val captions, their simulated
// features (D = 64) and a tiny model's config, in a fresh directory under /tmp; shell commands
// with their output in a log; a run's losses from its metrics.csv.
#pragma once
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/check.h"
#include "tests/shell.h"

static char dir[64];          // the test's scratch directory
static char corpus[128];      // 400 COCO val images with their captions
static char features[128];    // their simulated features (D = 64)
static char config[128];      // a tiny model

// Fills dir (/tmp/tipcap_NAME_XXXXXX) and the files above; returns 0, or -1 if anything failed.
static int fixture_setup(const char* name) {
    snprintf(dir, sizeof dir, "/tmp/tipcap_%s_XXXXXX", name);
    if (!mkdtemp(dir)) return -1;
    // the first 400 images of the shipped COCO val captions
    char* text = readFileCheck("data/captions/coco_karpathy_val.json", NULL);
    cJSON* all = cJSON_Parse(text);
    free(text);
    cJSON* subset = cJSON_CreateObject();
    int n = 0;
    for (cJSON* img = all->child; img && n < 400; img = img->next, n++)
        cJSON_AddItemToObject(subset, img->string, cJSON_Duplicate(img, 1));
    char* out = cJSON_Print(subset);
    snprintf(corpus, sizeof corpus, "%s/corpus.json", dir);
    FILE* f = fopenCheck(corpus, "wb");
    fputs(out, f);
    fclose(f);
    free(out);
    cJSON_Delete(subset);
    cJSON_Delete(all);
    snprintf(features, sizeof features, "%s/features.h5", dir);
    char log[128];
    snprintf(log, sizeof log, "%s/setup.log", dir);
    if (sh(log, "bin/tipcap-synth --captions %s --out %s --dim 64 --seed 7", corpus, features)) return -1;
    snprintf(config, sizeof config, "%s/tiny.json", dir);
    f = fopenCheck(config, "wb");
    fprintf(f,
            "{\"run\": {\"name\": \"tiny\", \"device\": \"cpu\", \"seed\": 5},\n"
            " \"data\": {\"corpus\": \"%s\", \"features\": \"%s\", \"val_split\": \"none\", \"max_len\": 16},\n"
            " \"mapping\": {\"setting\": \"text\", \"sigma2\": 0.016},\n"
            " \"model\": {\"prefix_len\": 2, \"width\": 32, \"dec_layers\": 2, \"dec_heads\": 2, \"int_layers\": 1,\n"
            "           \"int_heads\": 2, \"proj_hidden\": 32, \"max_prompts\": 3, \"max_len\": 20, \"vocab\": \"corpus\"},\n"
            " \"train\": {\"batch_size\": 8, \"steps\": 12, \"lr\": 3e-3, \"warmup_steps\": 2, \"log_every\": 1,\n"
            "           \"checkpoint_every\": 1, \"keep_checkpoints\": 20}}\n",
            corpus, features);
    fclose(f);
    return 0;
}

static double metric_loss(const char* run, long step) {
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    char* text = slurp(path);
    double loss = NAN;
    char* save;
    for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long s;
        int e;
        double l;
        if (sscanf(line, "%ld,%d,%lf", &s, &e, &l) == 3 && s == step) loss = l;
    }
    free(text);
    return loss;
}

// Removes dir (after a run that passed: a failed one leaves it to look at).
static void fixture_remove(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}
