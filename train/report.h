// What a training run shows and leaves behind: a progress bar on a terminal (plain log lines
// otherwise), RUN_DIR/metrics.csv (one row per logged step) and RUN_DIR/loss.svg (the loss curves).
#pragma once
#include <stdio.h>

typedef struct {
    long step;
    int epoch;
    double loss;       // mean token loss of the step
    double val_loss;   // NAN when not evaluated at this step
    double lr;
    double grad_norm;
    double tokens_per_s;
    double elapsed_s;
    double kl;         // KL of the learnable Gaussian to its prior; NAN when it is fixed
} MetricsRow;

typedef struct {
    char path[4200];   // metrics.csv
    FILE* f;
    int tty;           // stderr is a terminal
    long total_steps;
    double start_time;
    long start_step;
} Report;

// Opens RUN_DIR/metrics.csv. On resume (resume_step > 0) rows after resume_step are dropped,
// so a killed and resumed run leaves the same file as an uninterrupted one.
void report_open(Report* r, const char* run_dir, long total_steps, long resume_step);
void report_row(Report* r, const MetricsRow* row);
// One line (terminal: redrawn in place) with step, it/s, tokens/s, loss, lr and ETA.
void report_progress(Report* r, const MetricsRow* row, int force_line);
void report_close(Report* r);

// Reads the metrics.csv of n runs and writes one SVG with each run's training loss (a line) and
// validation loss (dots) against step, labelled. Returns 0, or -1 with a message.
int report_plot_svg(const char* const* metrics_csv, const char* const* labels, int n, const char* svg_path,
                    const char* title, char* err, size_t err_size);
