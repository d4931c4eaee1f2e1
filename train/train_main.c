// tipcap-train: trains a TIPCap model from a JSON config.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/runtime.h"
#include "common/config.h"
#include "train/dist.h"
#include "train/report.h"
#include "train/train_config.h"
#include "train/trainer.h"

static void usage(FILE* out) {
    fprintf(out,
            "usage: tipcap-train --config FILE [--set key=value]... [--resume RUN_DIR] [--nccl-id-file PATH]\n"
            "       tipcap-train --resume RUN_DIR [--set key=value]...\n"
            "       tipcap-train --print-config-doc\n"
            "       tipcap-train --plot OUT.svg RUN_DIR...   (the loss curves of several runs in one image)\n\n"
            "Trains TIPCap: CLIP text embeddings -> Gaussian gap mapping -> prefix projector -> prompt\n"
            "interaction -> GPT-2 decoder. Writes RUN_DIR (run.dir) with config.json, metrics.csv, loss.svg\n"
            "and checkpoints/step_*/{model,state}.safetensors.\n\n"
            "  --config FILE        JSON config (configs/; every key in docs/CONFIG.md)\n"
            "  --set key=value      override one key, e.g. --set train.lr=1e-4 (repeatable)\n"
            "  --resume RUN_DIR     continue the run in RUN_DIR from its newest checkpoint, with its saved\n"
            "                       config.json unless --config is given; the losses continue exactly\n"
            "  --nccl-id-file PATH  several GPU processes without MPI (srun): a file on a filesystem all ranks\n"
            "                       share; rank 0 writes NCCL's id there for this job (SLURM_JOB_ID.SLURM_STEP_ID)\n"
            "  --print-config-doc   print every config key as a Markdown table\n"
            "Data parallel: mpirun -np N tipcap-train ... or srun -n N tipcap-train ... (one process per GPU,\n"
            "each on its local rank's GPU; docs/GUIDE.md). TIPCAP_NCCL_TIMEOUT=seconds (default 600): how long a\n"
            "rank waits for the others before it stops with an error.\n"
            "Environment: TIPCAP_ATTENTION=cudnn uses cuDNN's fused attention on the GPU in bf16 (builds\n"
            "with cudnn-frontend; docs/KERNELS.md); tipcap (the default) uses tipcap's own kernels.\n\n"
            "Config keys:\n");
    config_print_schema(train_config_schema, train_config_schema_size, 0);
}

// --plot OUT.svg RUN_DIR...: each run's metrics.csv, labelled with the run directory's name.
static int plot_runs(int n, char** dirs, const char* out) {
    const char** csvs = callocCheck((size_t)n, sizeof(char*));
    const char** labels = callocCheck((size_t)n, sizeof(char*));
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dirs[i]) + 16;
        char* csv = mallocCheck(len);
        snprintf(csv, len, "%s/metrics.csv", dirs[i]);
        csvs[i] = csv;
        const char* slash = strrchr(dirs[i], '/');
        labels[i] = slash && slash[1] ? slash + 1 : dirs[i];
    }
    char err[1024];
    int rc = report_plot_svg(csvs, labels, n, out, "training loss", err, sizeof err);
    if (rc) fprintf(stderr, "tipcap-train: %s\n", err);
    for (int i = 0; i < n; i++) free((char*)csvs[i]);
    free(csvs);
    free(labels);
    return rc ? 1 : 0;
}

int main(int argc, char** argv) {
    if (argc >= 4 && !strcmp(argv[1], "--plot")) return plot_runs(argc - 3, argv + 3, argv[2]);
    const char* config_path = NULL;
    const char* resume = NULL;
    const char* nccl_id_file = NULL;
    const char** sets = callocCheck((size_t)argc + 1, sizeof(char*));
    int n_sets = 0;
    runtime_init(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--print-config-doc")) {
            config_print_schema(train_config_schema, train_config_schema_size, 1);
            return 0;
        } else if (!strcmp(a, "--config") && has_value) {
            config_path = argv[++i];
        } else if (!strcmp(a, "--set") && has_value) {
            sets[n_sets++] = argv[++i];
        } else if (!strcmp(a, "--resume") && has_value) {
            resume = argv[++i];
        } else if (!strcmp(a, "--nccl-id-file") && has_value) {
            nccl_id_file = argv[++i];
        } else {
            fprintf(stderr, "tipcap-train: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    char resumed_config[1100];
    if (resume && !config_path) {
        snprintf(resumed_config, sizeof resumed_config, "%s/config.json", resume);
        config_path = resumed_config;
    }
    if (!config_path) {
        usage(stderr);
        return 2;
    }
    char dir_set[1100];
    if (resume) {  // the run directory is the one being resumed
        snprintf(dir_set, sizeof dir_set, "run.dir=%s", resume);
        sets[n_sets++] = dir_set;
    }
    char err[2048];
    Config* cfg = config_load(config_path, train_config_schema, train_config_schema_size, sets, n_sets, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "tipcap-train: %s\n", err);
        return 1;
    }
    TrainConfig tc;
    if (train_config_from(cfg, &tc, err, sizeof err)) {
        fprintf(stderr, "tipcap-train: %s: %s\n", config_path, err);
        return 1;
    }
    // After the config, which says the device: the GPU is selected before MPI_Init
    Dist dist;
    dist_init(&dist, &argc, &argv, tc.device, nccl_id_file);
    char* json = config_to_json(cfg);
    TrainOptions opt = {.resume_dir = resume, .config_json = json};
    int status = trainer_run(&tc, &opt, &dist);
    free(json);
    config_free(cfg);
    free(sets);
    dist_finalize(&dist);
    return status;
}
