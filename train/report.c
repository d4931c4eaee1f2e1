#include "train/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/check.h"
#include "common/log.h"
#include "common/timer.h"

static const char* header = "step,epoch,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s,kl\n";

// Keeps the header and the rows with step <= keep_until (rewritten atomically).
static void truncate_metrics(const char* path, long keep_until) {
    FILE* f = fopen(path, "rb");
    if (!f) return;
    fclose(f);
    size_t len;
    char* text = readFileCheck(path, &len);
    AtomicFile af = atomic_file_open(path);
    char* save;
    int first = 1;
    for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!first && strtol(line, NULL, 10) > keep_until) continue;
        fprintf(af.f, "%s\n", line);
        first = 0;
    }
    atomic_file_commit(&af);
    free(text);
}

void report_open(Report* r, const char* run_dir, long total_steps, long resume_step) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s/metrics.csv", run_dir);
    if (resume_step > 0) truncate_metrics(r->path, resume_step);
    else unlink(r->path);
    r->f = fopen(r->path, "ab");
    if (!r->f) FATAL("%s: cannot open for writing: %s", r->path, strerror(errno));
    if (ftell(r->f) == 0) fputs(header, r->f);
    fflush(r->f);
    r->tty = isatty(2);
    r->total_steps = total_steps;
    r->start_time = timer_now();
    r->start_step = resume_step;
}

void report_row(Report* r, const MetricsRow* row) {
    fprintf(r->f, "%ld,%d,%.9g,%.9g,%.9g,%.9g,%.1f,%.1f,%.9g\n", row->step, row->epoch, row->loss, row->val_loss, row->lr,
            row->grad_norm, row->tokens_per_s, row->elapsed_s, row->kl);
    fflush(r->f);
}

void report_progress(Report* r, const MetricsRow* row, int force_line) {
    double elapsed = timer_now() - r->start_time;
    long done = row->step - r->start_step;
    double its = done > 0 ? (double)done / elapsed : 0;
    char eta[32];
    timer_format_hms(its > 0 ? (double)(r->total_steps - row->step) / its : 0, eta, sizeof eta);
    char val[32] = "";
    if (!isnan(row->val_loss)) snprintf(val, sizeof val, " val %.4f", row->val_loss);
    if (r->tty && !force_line) {
        int width = 24, filled = r->total_steps ? (int)((double)width * (double)row->step / (double)r->total_steps) : 0;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] step %ld/%ld  %.2f it/s  %.0f tok/s  loss %.4f%s  lr %.2e  ETA %s   ", bar, row->step,
                r->total_steps, its, row->tokens_per_s, row->loss, val, row->lr, eta);
        if (row->step == r->total_steps) fputc('\n', stderr);
    } else {
        if (r->tty) fputc('\n', stderr);
        LOG_INFO("step %ld/%ld  %.2f it/s  %.0f tok/s  loss %.4f%s  lr %.2e  grad norm %.3f  ETA %s", row->step,
                 r->total_steps, its, row->tokens_per_s, row->loss, val, row->lr, row->grad_norm, eta);
    }
    fflush(stderr);
}

void report_close(Report* r) {
    if (r->f) fclose(r->f);
    r->f = NULL;
}

// ---------------------------------------------------------------- SVG loss curves
typedef struct { double x, y; } Point;
typedef struct { Point* train; int n_train; Point* val; int n_val; } Series;

enum { W = 720, H = 400, LEFT = 60, TOP = 30, RIGHT = 170, BOTTOM = 40 };

static int read_series(const char* path, Series* s, char* err, size_t err_size) {
    memset(s, 0, sizeof *s);
    FILE* in = fopen(path, "rb");
    if (!in) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    fclose(in);
    char* text = readFileCheck(path, NULL);
    int cap = 0;
    char* save;
    int first = 1;
    for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long step;
        int epoch;
        double loss, vloss;
        if (first) { first = 0; continue; }  // header
        if (sscanf(line, "%ld,%d,%lf,%lf", &step, &epoch, &loss, &vloss) != 4) continue;
        if (s->n_train == cap || s->n_val == cap) {
            cap = cap ? 2 * cap : 256;
            s->train = reallocCheck(s->train, sizeof(Point) * (size_t)cap);
            s->val = reallocCheck(s->val, sizeof(Point) * (size_t)cap);
        }
        if (isfinite(loss)) s->train[s->n_train++] = (Point){(double)step, loss};
        if (isfinite(vloss)) s->val[s->n_val++] = (Point){(double)step, vloss};
    }
    free(text);
    return 0;
}

static double px(double x, double x0, double x1) { return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT); }
static double py(double y, double y0, double y1) { return TOP + (1 - (y - y0) / (y1 - y0)) * (H - TOP - BOTTOM); }

int report_plot_svg(const char* const* metrics_csv, const char* const* labels, int n, const char* svg_path,
                    const char* title, char* err, size_t err_size) {
    static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    Series* series = callocCheck((size_t)n, sizeof(Series));
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = read_series(metrics_csv[i], &series[i], err, err_size);
        for (int k = 0; k < series[i].n_train + series[i].n_val; k++) {
            Point p = k < series[i].n_train ? series[i].train[k] : series[i].val[k - series[i].n_train];
            x0 = fmin(x0, p.x); x1 = fmax(x1, p.x); y0 = fmin(y0, p.y); y1 = fmax(y1, p.y);
        }
    }
    if (rc == 0) {
        if (!(x1 > x0)) { x0 = isfinite(x0) ? x0 : 0; x1 = x0 + 1; }
        if (!(y1 > y0)) { y0 = isfinite(y0) ? y0 : 0; y1 = y0 + 1; }
        double pad = 0.05 * (y1 - y0);
        y0 -= pad;
        y1 += pad;
        AtomicFile af = atomic_file_open(svg_path);
        FILE* f = af.f;
        fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
                   "font-size=\"12\">\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H, W, H);
        fprintf(f, "<text x=\"%d\" y=\"18\" text-anchor=\"middle\">%s</text>\n", (LEFT + W - RIGHT) / 2, title);
        fprintf(f, "<polyline fill=\"none\" stroke=\"black\" points=\"%d,%d %d,%d %d,%d\"/>\n", LEFT, TOP, LEFT,
                H - BOTTOM, W - RIGHT, H - BOTTOM);
        for (int t = 0; t <= 4; t++) {
            double y = y0 + (y1 - y0) * t / 4, x = x0 + (x1 - x0) * t / 4;
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", LEFT - 6, py(y, y0, y1) + 4, y);
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0f</text>\n", px(x, x0, x1), H - BOTTOM + 16, x);
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n"
                   "<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" text-anchor=\"middle\">loss</text>\n",
                (LEFT + W - RIGHT) / 2, H - 6, (TOP + H - BOTTOM) / 2, (TOP + H - BOTTOM) / 2);
        for (int i = 0; i < n; i++) {
            const char* color = colors[i % 8];
            if (series[i].n_train) {
                fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
                for (int k = 0; k < series[i].n_train; k++)
                    fprintf(f, "%.1f,%.1f ", px(series[i].train[k].x, x0, x1), py(series[i].train[k].y, y0, y1));
                fprintf(f, "\"/>\n");
            }
            for (int k = 0; k < series[i].n_val; k++)
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(series[i].val[k].x, x0, x1),
                        py(series[i].val[k].y, y0, y1), color);
            fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", W - RIGHT + 10, TOP + 16 * i + 10, color,
                    labels[i]);
        }
        fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"gray\">line: train, dots: validation</text>\n</svg>\n",
                W - RIGHT + 10, TOP + 16 * n + 16);
        atomic_file_commit(&af);
    }
    for (int i = 0; i < n; i++) {
        free(series[i].train);
        free(series[i].val);
    }
    free(series);
    return rc;
}
