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

static void format_duration(double s, char* buf, size_t n) {
    long t = s > 0 && s < 1e9 ? (long)s : 0;
    snprintf(buf, n, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

void report_progress(Report* r, const MetricsRow* row, int force_line) {
    double elapsed = timer_now() - r->start_time;
    long done = row->step - r->start_step;
    double its = done > 0 ? (double)done / elapsed : 0;
    char eta[32];
    format_duration(its > 0 ? (double)(r->total_steps - row->step) / its : 0, eta, sizeof eta);
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

static void polyline(FILE* f, const Point* p, int n, double x0, double x1, double y0, double y1, const char* color,
                     int dots) {
    const double W = 640, H = 360, L = 60, T = 30, R = 20, Bm = 40;
    if (n == 0) return;
    if (!dots) fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (int i = 0; i < n; i++) {
        double px = L + (p[i].x - x0) / (x1 - x0) * (W - L - R);
        double py = T + (1 - (p[i].y - y0) / (y1 - y0)) * (H - T - Bm);
        if (dots) fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py, color);
        else fprintf(f, "%.1f,%.1f ", px, py);
    }
    if (!dots) fprintf(f, "\"/>\n");
}

int report_plot_svg(const char* metrics_csv, const char* svg_path, const char* title, char* err, size_t err_size) {
    FILE* in = fopen(metrics_csv, "rb");
    if (!in) {
        snprintf(err, err_size, "%s: cannot open: %s", metrics_csv, strerror(errno));
        return -1;
    }
    fclose(in);
    char* text = readFileCheck(metrics_csv, NULL);
    int cap = 1024, n_train = 0, n_val = 0;
    Point* train = mallocCheck(sizeof(Point) * (size_t)cap);
    Point* val = mallocCheck(sizeof(Point) * (size_t)cap);
    char* save;
    int first = 1;
    for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (first) { first = 0; continue; }
        long step;
        int epoch;
        double loss, vloss;
        if (sscanf(line, "%ld,%d,%lf,%lf", &step, &epoch, &loss, &vloss) != 4) continue;
        if (n_train == cap || n_val == cap) {
            cap *= 2;
            train = reallocCheck(train, sizeof(Point) * (size_t)cap);
            val = reallocCheck(val, sizeof(Point) * (size_t)cap);
        }
        if (isfinite(loss)) train[n_train++] = (Point){(double)step, loss};
        if (isfinite(vloss)) val[n_val++] = (Point){(double)step, vloss};
    }
    free(text);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n_train; i++) {
        x0 = fmin(x0, train[i].x); x1 = fmax(x1, train[i].x); y0 = fmin(y0, train[i].y); y1 = fmax(y1, train[i].y);
    }
    for (int i = 0; i < n_val; i++) {
        x0 = fmin(x0, val[i].x); x1 = fmax(x1, val[i].x); y0 = fmin(y0, val[i].y); y1 = fmax(y1, val[i].y);
    }
    if (n_train + n_val == 0) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + 1;
    double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    AtomicFile af = atomic_file_open(svg_path);
    FILE* f = af.f;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"360\" font-family=\"sans-serif\" font-size=\"12\">\n");
    fprintf(f, "<rect width=\"640\" height=\"360\" fill=\"white\"/>\n<text x=\"320\" y=\"18\" text-anchor=\"middle\">%s</text>\n",
            title);
    fprintf(f, "<line x1=\"60\" y1=\"320\" x2=\"620\" y2=\"320\" stroke=\"black\"/>\n"
               "<line x1=\"60\" y1=\"30\" x2=\"60\" y2=\"320\" stroke=\"black\"/>\n");
    for (int i = 0; i <= 4; i++) {
        double y = y0 + (y1 - y0) * i / 4, py = 30 + (1 - (double)i / 4) * 290;
        double x = x0 + (x1 - x0) * i / 4, px = 60 + (double)i / 4 * 560;
        fprintf(f, "<text x=\"54\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", py + 4, y);
        fprintf(f, "<text x=\"%.1f\" y=\"336\" text-anchor=\"middle\">%.0f</text>\n", px, x);
    }
    fprintf(f, "<text x=\"340\" y=\"354\" text-anchor=\"middle\">step</text>\n");
    polyline(f, train, n_train, x0, x1, y0, y1, "#1f77b4", 0);
    polyline(f, val, n_val, x0, x1, y0, y1, "#d62728", 0);
    polyline(f, val, n_val, x0, x1, y0, y1, "#d62728", 1);
    fprintf(f, "<text x=\"520\" y=\"48\" fill=\"#1f77b4\">train loss</text>\n"
               "<text x=\"520\" y=\"64\" fill=\"#d62728\">validation loss</text>\n</svg>\n");
    atomic_file_commit(&af);
    free(train);
    free(val);
    return 0;
}
