// Finite-difference gradient checks of every CPU backward (kernels/<op>.c). Each op's reference
// is one body instantiated in fp32 and in double: a scalar loss L = sum(w * out) is
// differentiated by central differences of the double forward, and compared with
//   - the double backward (tight bound: checks the formulas), and
//   - the fp32 backward on the same inputs (the code the CPU backend runs).
// Accumulating outputs start from random values, so "+=" is checked too. Also: AdamW against a
// step computed by hand, cross-entropy against the direct formula with ignore-index and label
// smoothing, zero gradient on padded vocabulary columns, and the forwards against naive loops.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/adamw.h"
#include "kernels/bag_mean.h"
#include "kernels/crossentropy.h"
#include "kernels/embedding.h"
#include "kernels/gap_sample.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/matmul.h"
#include "kernels/philox.h"
#include "tests/harness.h"

#define TOL_F64 1e-7  // double backward vs central differences
#define TOL_F32 2e-4  // fp32 backward vs central differences
#define FD_STEP 1e-5

static uint64_t rng_state;
static double urand(void) {  // uniform in [-1, 1), splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}
static int irand(int n) { return (int)((urand() + 1.0) * 0.5 * n) % n; }

static double* drand_vec(size_t n, double scale) {
    double* x = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) x[i] = scale * urand();
    return x;
}
static double* dzeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }
static double* dcopy(const double* x, size_t n) {
    double* y = malloc((n ? n : 1) * sizeof(double));
    memcpy(y, x, n * sizeof(double));
    return y;
}
static float* to_f32(const double* x, size_t n) {
    float* y = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
static double dot(const double* a, const double* b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// Relative error of got (n values) against want, in double.
static double rel_err_d(const double* got, const double* want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) return INFINITY;
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1.0);
}
// Central differences of loss() with respect to every element of x [n].
typedef double (*LossFn)(void* ctx);
static double* fd_grad(double* x, size_t n, LossFn loss, void* ctx) {
    double* g = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + FD_STEP;
        double up = loss(ctx);
        x[i] = keep - FD_STEP;
        double down = loss(ctx);
        x[i] = keep;
        g[i] = (up - down) / (2 * FD_STEP);
    }
    return g;
}

// Compares an accumulated gradient (after - before) against the finite differences.
static void check_grad_f64(const char* what, const double* after, const double* before, const double* fd, size_t n) {
    double* d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = after[i] - (before ? before[i] : 0);
    double e = rel_err_d(d, fd, n);
    CHECK(e < TOL_F64, "%s (double): rel err %.3g vs finite differences (bound %g)", what, e, TOL_F64);
    free(d);
}
static void check_grad_f32(const char* what, const float* after, const double* before, const double* fd, size_t n) {
    double* d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = (double)after[i] - (before ? (double)(float)before[i] : 0);
    double e = rel_err_d(d, fd, n);
    CHECK(e < TOL_F32, "%s (fp32): rel err %.3g vs finite differences (bound %g)", what, e, TOL_F32);
    free(d);
}

// ------------------------------------------------------------------------------- embedding
typedef struct {
    int B, T, K, C, V, P, prefix_T;
    int *tokens, *pos_ids;
    double *prefix, *table, *pos_table, *w, *out;
} EmbCtx;

static double emb_loss(void* p) {
    EmbCtx* c = p;
    embedding_forward_cpu_f64(c->out, c->prefix, c->prefix_T, c->tokens, c->table, c->pos_table, c->pos_ids, c->B,
                              c->T, c->K, c->C);
    return dot(c->out, c->w, (size_t)c->B * c->T * c->C);
}

static void test_embedding_grad(void) {
    EmbCtx c = {.B = 3, .T = 6, .K = 2, .C = 5, .V = 7, .P = 9, .prefix_T = 4};
    int L = c.T - c.K;
    size_t n_out = (size_t)c.B * c.T * c.C, n_pre = (size_t)c.B * c.prefix_T * c.C;
    size_t n_tab = (size_t)c.V * c.C, n_pos = (size_t)c.P * c.C;
    c.tokens = malloc(sizeof(int) * c.B * L);
    for (int i = 0; i < c.B * L; i++) c.tokens[i] = irand(c.V + 1) - 1;  // -1 padding and repeats
    c.tokens[1] = c.tokens[0] = 3;
    c.pos_ids = malloc(sizeof(int) * c.T);
    for (int t = 0; t < c.T; t++) c.pos_ids[t] = irand(c.P);
    c.pos_ids[c.T - 1] = c.pos_ids[0];  // a repeated position
    c.prefix = drand_vec(n_pre, 1);
    c.table = drand_vec(n_tab, 1);
    c.pos_table = drand_vec(n_pos, 1);
    c.w = drand_vec(n_out, 1);
    c.out = dzeros(n_out);

    double* g_pre = fd_grad(c.prefix, n_pre, emb_loss, &c);
    double* g_tab = fd_grad(c.table, n_tab, emb_loss, &c);
    double* g_pos = fd_grad(c.pos_table, n_pos, emb_loss, &c);

    // dprefix starts as a sentinel: rows t < K are overwritten, rows t >= K stay as they were
    double* sentinel = drand_vec(n_pre, 1);
    double* dpre = dcopy(sentinel, n_pre);
    double* tab0 = drand_vec(n_tab, 1);
    double* pos0 = drand_vec(n_pos, 1);
    double* dtab = dcopy(tab0, n_tab);
    double* dpos = dcopy(pos0, n_pos);
    embedding_backward_cpu_f64(dpre, c.prefix_T, dtab, dpos, c.w, c.tokens, c.pos_ids, c.B, c.T, c.K, c.C, c.V, c.P);
    double* want_pre = dcopy(sentinel, n_pre);
    for (int b = 0; b < c.B; b++)
        for (int t = 0; t < c.K; t++)
            memcpy(want_pre + ((size_t)b * c.prefix_T + t) * c.C, g_pre + ((size_t)b * c.prefix_T + t) * c.C,
                   sizeof(double) * c.C);
    check_grad_f64("dprefix", dpre, NULL, want_pre, n_pre);
    check_grad_f64("dtable", dtab, tab0, g_tab, n_tab);
    check_grad_f64("dpos_table", dpos, pos0, g_pos, n_pos);

    float *fpre = to_f32(sentinel, n_pre), *ftab = to_f32(tab0, n_tab), *fpos = to_f32(pos0, n_pos);
    float* fw = to_f32(c.w, n_out);
    embedding_backward_cpu(fpre, c.prefix_T, ftab, fpos, fw, c.tokens, c.pos_ids, c.B, c.T, c.K, c.C, c.V, c.P);
    check_grad_f32("dprefix", fpre, NULL, want_pre, n_pre);
    check_grad_f32("dtable", ftab, tab0, g_tab, n_tab);
    check_grad_f32("dpos_table", fpos, pos0, g_pos, n_pos);

    free(c.tokens); free(c.pos_ids); free(c.prefix); free(c.table); free(c.pos_table); free(c.w); free(c.out);
    free(g_pre); free(g_tab); free(g_pos); free(sentinel); free(dpre); free(tab0); free(pos0); free(dtab); free(dpos);
    free(want_pre); free(fpre); free(ftab); free(fpos); free(fw);
}

// ------------------------------------------------------------------------------- bag mean
typedef struct {
    int n_bags, C, V;
    int *ids, *offsets;
    double *table, *w, *out;
} BagCtx;

static double bag_loss(void* p) {
    BagCtx* c = p;
    bag_mean_forward_cpu_f64(c->out, c->table, c->ids, c->offsets, c->n_bags, c->C);
    return dot(c->out, c->w, (size_t)c->n_bags * c->C);
}

static void test_bag_mean_grad(void) {
    static int offsets[] = {0, 3, 4, 4, 6};  // bag sizes 3, 1, 0 (empty), 2
    BagCtx c = {.n_bags = 4, .C = 6, .V = 5, .offsets = offsets};
    int n_ids = offsets[c.n_bags];
    c.ids = malloc(sizeof(int) * n_ids);
    for (int j = 0; j < n_ids; j++) c.ids[j] = irand(c.V);
    c.ids[1] = c.ids[0];  // the same id twice in one bag
    size_t n_tab = (size_t)c.V * c.C, n_out = (size_t)c.n_bags * c.C;
    c.table = drand_vec(n_tab, 1);
    c.w = drand_vec(n_out, 1);
    c.out = dzeros(n_out);
    double* g = fd_grad(c.table, n_tab, bag_loss, &c);
    // the empty bag's mean is zero
    int zero_ok = 1;
    for (int k = 0; k < c.C; k++) zero_ok &= c.out[2 * c.C + k] == 0;
    CHECK(zero_ok, "the empty bag's mean is not zero");
    double* tab0 = drand_vec(n_tab, 1);
    double* dtab = dcopy(tab0, n_tab);
    bag_mean_backward_cpu_f64(dtab, c.w, c.ids, c.offsets, c.n_bags, c.C, c.V);
    check_grad_f64("dtable", dtab, tab0, g, n_tab);
    float *ftab = to_f32(tab0, n_tab), *fw = to_f32(c.w, n_out);
    bag_mean_backward_cpu(ftab, fw, c.ids, c.offsets, c.n_bags, c.C, c.V);
    check_grad_f32("dtable", ftab, tab0, g, n_tab);
    free(c.ids); free(c.table); free(c.w); free(c.out); free(g); free(tab0); free(dtab); free(ftab); free(fw);
}

// ------------------------------------------------------------------------------- layer norm
typedef struct {
    int N, C, fused;
    double *a, *b, *weight, *bias, *w_out, *w_res;  // fused: residual = a + b, loss also sees residual
    double *out, *res, *mean, *rstd;
} LnCtx;

static double ln_loss(void* p) {
    LnCtx* c = p;
    size_t n = (size_t)c->N * c->C;
    if (!c->fused) {
        layernorm_forward_cpu_f64(c->out, c->mean, c->rstd, c->a, c->weight, c->bias, c->N, c->C);
        return dot(c->out, c->w_out, n);
    }
    residual_layernorm_forward_cpu_f64(c->res, c->out, c->mean, c->rstd, c->a, c->b, c->weight, c->bias, c->N, c->C);
    return dot(c->out, c->w_out, n) + dot(c->res, c->w_res, n);
}

static void layernorm_grad_case(int fused) {
    LnCtx c = {.N = 4, .C = 13, .fused = fused};
    size_t n = (size_t)c.N * c.C;
    c.a = drand_vec(n, 2);
    c.b = drand_vec(n, 1);
    c.weight = drand_vec(c.C, 1);
    c.bias = drand_vec(c.C, 1);
    c.w_out = drand_vec(n, 1);
    c.w_res = drand_vec(n, 1);
    c.out = dzeros(n);
    c.res = dzeros(n);
    c.mean = dzeros(c.N);
    c.rstd = dzeros(c.N);
    double* g_a = fd_grad(c.a, n, ln_loss, &c);
    double* g_b = fused ? fd_grad(c.b, n, ln_loss, &c) : NULL;
    double* g_w = fd_grad(c.weight, c.C, ln_loss, &c);
    double* g_bias = fd_grad(c.bias, c.C, ln_loss, &c);
    ln_loss(&c);  // mean, rstd, residual at the point

    // The backward of the fused op: dresidual starts as the gradient reaching the residual
    // output directly (w_res), layernorm_backward adds the path through the norm; a and b both
    // receive dresidual.
    double* din0 = fused ? dcopy(c.w_res, n) : drand_vec(n, 1);
    double* dw0 = drand_vec(c.C, 1);
    double* db0 = drand_vec(c.C, 1);
    double *din = dcopy(din0, n), *dw = dcopy(dw0, c.C), *db = dcopy(db0, c.C);
    const double* x = fused ? c.res : c.a;
    layernorm_backward_cpu_f64(din, dw, db, c.w_out, x, c.weight, c.mean, c.rstd, c.N, c.C);
    check_grad_f64("dinp", din, fused ? NULL : din0, g_a, n);
    if (fused) check_grad_f64("db (residual)", din, NULL, g_b, n);
    check_grad_f64("dweight", dw, dw0, g_w, c.C);
    check_grad_f64("dbias", db, db0, g_bias, c.C);

    float *fx = to_f32(x, n), *fweight = to_f32(c.weight, c.C), *fwout = to_f32(c.w_out, n);
    float *fmean = to_f32(c.mean, c.N), *frstd = to_f32(c.rstd, c.N);
    float *fdin = to_f32(din0, n), *fdw = to_f32(dw0, c.C), *fdb = to_f32(db0, c.C);
    layernorm_backward_cpu(fdin, fdw, fdb, fwout, fx, fweight, fmean, frstd, c.N, c.C);
    check_grad_f32("dinp", fdin, fused ? NULL : din0, g_a, n);
    check_grad_f32("dweight", fdw, dw0, g_w, c.C);
    check_grad_f32("dbias", fdb, db0, g_bias, c.C);

    // the statistics against the direct formula
    for (int r = 0; r < c.N; r++) {
        double m = 0, v = 0;
        for (int k = 0; k < c.C; k++) m += x[r * c.C + k];
        m /= c.C;
        for (int k = 0; k < c.C; k++) v += (x[r * c.C + k] - m) * (x[r * c.C + k] - m);
        v /= c.C;
        CHECK(fabs(c.mean[r] - m) < 1e-12 && fabs(c.rstd[r] - 1 / sqrt(v + 1e-5)) < 1e-9 * c.rstd[r],
              "row %d: mean %.17g rstd %.17g, want %.17g %.17g", r, c.mean[r], c.rstd[r], m, 1 / sqrt(v + 1e-5));
    }
    free(c.a); free(c.b); free(c.weight); free(c.bias); free(c.w_out); free(c.w_res); free(c.out); free(c.res);
    free(c.mean); free(c.rstd); free(g_a); free(g_b); free(g_w); free(g_bias); free(din0); free(dw0); free(db0);
    free(din); free(dw); free(db); free(fx); free(fweight); free(fwout); free(fmean); free(frstd); free(fdin);
    free(fdw); free(fdb);
}
static void test_layernorm_grad(void) { layernorm_grad_case(0); }
static void test_residual_layernorm_grad(void) { layernorm_grad_case(1); }

// ------------------------------------------------------------------------------- matmul
typedef struct {
    int N, C, OC, gelu;
    double *inp, *weight, *bias, *w, *out, *pre;
} MmCtx;

static double mm_loss(void* p) {
    MmCtx* c = p;
    matmul_forward_cpu_f64(c->out, c->gelu ? c->pre : NULL, c->inp, c->weight, c->bias, c->N, c->C, c->OC);
    return dot(c->out, c->w, (size_t)c->N * c->OC);
}

static void matmul_grad_case(int gelu) {
    MmCtx c = {.N = 5, .C = 7, .OC = 6, .gelu = gelu};
    size_t n_in = (size_t)c.N * c.C, n_w = (size_t)c.OC * c.C, n_out = (size_t)c.N * c.OC;
    c.inp = drand_vec(n_in, 1);
    c.weight = drand_vec(n_w, 1);
    c.bias = drand_vec(c.OC, 1);
    c.w = drand_vec(n_out, 1);
    c.out = dzeros(n_out);
    c.pre = dzeros(n_out);
    double* g_in = fd_grad(c.inp, n_in, mm_loss, &c);
    double* g_w = fd_grad(c.weight, n_w, mm_loss, &c);
    double* g_b = fd_grad(c.bias, c.OC, mm_loss, &c);
    mm_loss(&c);

    // the forward against a naive loop
    double worst = 0;
    for (int r = 0; r < c.N; r++)
        for (int o = 0; o < c.OC; o++) {
            double s = c.bias[o];
            for (int k = 0; k < c.C; k++) s += c.inp[r * c.C + k] * c.weight[o * c.C + k];
            if (gelu) s = 0.5 * s * (1 + tanh(sqrt(2 / M_PI) * (s + 0.044715 * s * s * s)));
            worst = fmax(worst, fabs(s - c.out[r * c.OC + o]));
        }
    CHECK(worst < 1e-12, "forward differs from the naive loop by %.3g", worst);

    double* din = drand_vec(n_in, 1);  // overwritten
    double* dw0 = drand_vec(n_w, 1);
    double* db0 = drand_vec(c.OC, 1);
    double *dw = dcopy(dw0, n_w), *db = dcopy(db0, c.OC), *scratch = dzeros(n_out);
    matmul_backward_cpu_f64(din, dw, db, c.w, gelu ? c.pre : NULL, scratch, c.inp, c.weight, c.N, c.C, c.OC);
    check_grad_f64("dinp", din, NULL, g_in, n_in);
    check_grad_f64("dweight", dw, dw0, g_w, n_w);
    check_grad_f64("dbias", db, db0, g_b, c.OC);

    float *fin = to_f32(c.inp, n_in), *fwt = to_f32(c.weight, n_w), *fw = to_f32(c.w, n_out);
    float* fpre = to_f32(c.pre, n_out);
    float *fdin = to_f32(din, n_in), *fdw = to_f32(dw0, n_w), *fdb = to_f32(db0, c.OC);
    // scratch aliasing dout, as the model uses it
    matmul_backward_cpu(fdin, fdw, fdb, fw, gelu ? fpre : NULL, gelu ? fw : NULL, fin, fwt, c.N, c.C, c.OC);
    check_grad_f32("dinp", fdin, NULL, g_in, n_in);
    check_grad_f32("dweight", fdw, dw0, g_w, n_w);
    check_grad_f32("dbias", fdb, db0, g_b, c.OC);

    free(c.inp); free(c.weight); free(c.bias); free(c.w); free(c.out); free(c.pre); free(g_in); free(g_w); free(g_b);
    free(din); free(dw0); free(db0); free(dw); free(db); free(scratch); free(fin); free(fwt); free(fw); free(fpre);
    free(fdin); free(fdw); free(fdb);
}
static void test_matmul_grad(void) { matmul_grad_case(0); }
static void test_matmul_gelu_grad(void) { matmul_grad_case(1); }

// ------------------------------------------------------------------------------- gelu
typedef struct {
    size_t n;
    double *x, *w, *out;
} GeluCtx;

static double gelu_loss(void* p) {
    GeluCtx* c = p;
    gelu_forward_cpu_f64(c->out, c->x, c->n);
    return dot(c->out, c->w, c->n);
}

static void test_gelu_grad(void) {
    GeluCtx c = {.n = 29};
    c.x = drand_vec(c.n, 5);
    c.x[0] = 0;
    c.w = drand_vec(c.n, 1);
    c.out = dzeros(c.n);
    double* g = fd_grad(c.x, c.n, gelu_loss, &c);
    double* d = dzeros(c.n);
    gelu_backward_cpu_f64(d, c.x, c.w, c.n);
    check_grad_f64("dinp", d, NULL, g, c.n);
    float *fx = to_f32(c.x, c.n), *fw = to_f32(c.w, c.n);
    float* fd = malloc(c.n * sizeof(float));
    gelu_backward_cpu(fd, fx, fw, c.n);
    check_grad_f32("dinp", fd, NULL, g, c.n);
    gelu_backward_cpu(fw, fx, fw, c.n);  // dinp aliasing dout
    CHECK(memcmp(fw, fd, c.n * sizeof(float)) == 0, "gelu_backward with dinp == dout differs");
    // known values: gelu(0) = 0, gelu(1) = 0.841191990..., gelu(-1) = -0.158808009...
    double xs[3] = {0, 1, -1}, ys[3];
    gelu_forward_cpu_f64(ys, xs, 3);
    CHECK(ys[0] == 0 && fabs(ys[1] - 0.8411919906082768) < 1e-15 && fabs(ys[2] + 0.15880800939172324) < 1e-15,
          "gelu(0, 1, -1) = %.17g %.17g %.17g", ys[0], ys[1], ys[2]);
    free(c.x); free(c.w); free(c.out); free(g); free(d); free(fx); free(fw); free(fd);
}

// ------------------------------------------------------------------------------- cross-entropy
typedef struct {
    int N, V, Vp;
    int* targets;
    double eps;
    double *logits, *work, *losses;
} CeCtx;

static double ce_loss(void* p) {
    CeCtx* c = p;
    memcpy(c->work, c->logits, sizeof(double) * c->N * c->Vp);
    crossentropy_forward_backward_cpu_f64(c->losses, c->work, c->targets, c->N, c->V, c->Vp, c->eps, 0);
    double s = 0;
    for (int n = 0; n < c->N; n++) s += c->losses[n];
    return s;
}

// -sum_j q_j log p_j computed directly: p from an explicit softmax, q the smoothed one-hot.
static double ce_direct(const double* z, int V, int target, double eps) {
    if (target < 0) return 0;
    double m = -INFINITY, s = 0;
    for (int j = 0; j < V; j++) m = fmax(m, z[j]);
    for (int j = 0; j < V; j++) s += exp(z[j] - m);
    double loss = 0;
    for (int j = 0; j < V; j++) {
        double q = eps / V + (j == target ? 1 - eps : 0);
        loss -= q * log(exp(z[j] - m) / s);
    }
    return loss;
}

static void crossentropy_case(double eps) {
    CeCtx c = {.N = 6, .V = 11, .Vp = 16, .eps = eps};
    size_t n = (size_t)c.N * c.Vp;
    c.targets = malloc(sizeof(int) * c.N);
    for (int r = 0; r < c.N; r++) c.targets[r] = irand(c.V);
    c.targets[1] = -1;  // ignored (a prefix or padding position)
    c.targets[c.N - 1] = c.V - 1;
    c.logits = drand_vec(n, 4);
    for (int r = 0; r < c.N; r++)
        for (int j = c.V; j < c.Vp; j++) c.logits[r * c.Vp + j] = NAN;  // padded columns are never read
    c.work = dzeros(n);
    c.losses = dzeros(c.N);
    ce_loss(&c);
    for (int r = 0; r < c.N; r++) {
        double want = ce_direct(c.logits + r * c.Vp, c.V, c.targets[r], eps);
        CHECK(fabs(c.losses[r] - want) < 1e-12 * fmax(1, want), "row %d (target %d): loss %.17g, direct formula %.17g",
              r, c.targets[r], c.losses[r], want);
    }
    // finite differences over the real columns (the padded ones hold NaN: perturb only j < V)
    double* g = dzeros(n);
    for (int r = 0; r < c.N; r++)
        for (int j = 0; j < c.V; j++) {
            double* x = c.logits + r * c.Vp + j;
            double keep = *x;
            *x = keep + FD_STEP;
            double up = ce_loss(&c);
            *x = keep - FD_STEP;
            double down = ce_loss(&c);
            *x = keep;
            g[r * c.Vp + j] = (up - down) / (2 * FD_STEP);
        }
    double scale = 0.37;
    double* d = dcopy(c.logits, n);
    crossentropy_forward_backward_cpu_f64(c.losses, d, c.targets, c.N, c.V, c.Vp, eps, scale);
    float* fz = to_f32(c.logits, n);
    float* flosses = malloc(sizeof(float) * c.N);
    crossentropy_forward_backward_cpu(flosses, fz, c.targets, c.N, c.V, c.Vp, (float)eps, (float)scale);
    int pad_zero = 1, ignored_zero = 1;
    for (int r = 0; r < c.N; r++)
        for (int j = 0; j < c.Vp; j++) {
            if (j >= c.V) pad_zero &= d[r * c.Vp + j] == 0 && fz[r * c.Vp + j] == 0;
            if (c.targets[r] < 0) ignored_zero &= d[r * c.Vp + j] == 0 && fz[r * c.Vp + j] == 0;
            d[r * c.Vp + j] /= scale;
            fz[r * c.Vp + j] = (float)(fz[r * c.Vp + j] / scale);
        }
    CHECK(pad_zero, "a padded vocabulary column got a non-zero gradient");
    CHECK(ignored_zero, "an ignored row got a non-zero gradient");
    CHECK(flosses[1] == 0 && c.losses[1] == 0, "ignored row loss %g / %g", flosses[1], c.losses[1]);
    check_grad_f64("dlogits", d, NULL, g, n);
    check_grad_f32("dlogits", fz, NULL, g, n);
    for (int r = 0; r < c.N; r++)
        CHECK(fabs(flosses[r] - c.losses[r]) < 1e-5 * fmax(1, c.losses[r]), "row %d: fp32 loss %.9g, double %.17g", r,
              flosses[r], c.losses[r]);
    free(c.targets); free(c.logits); free(c.work); free(c.losses); free(g); free(d); free(fz); free(flosses);
}
static void test_crossentropy_grad(void) { crossentropy_case(0); }
static void test_crossentropy_label_smoothing_grad(void) { crossentropy_case(0.1); }

// ------------------------------------------------------------------------------- gap sample
typedef struct {
    int B, D;
    uint64_t seed, stream, row0;
    double *t, *mu, *L, *w, *x, *z, *norm;
} GapCtx;

static double gap_loss(void* p) {
    GapCtx* c = p;
    gap_sample_forward_cpu_f64(c->x, c->z, c->norm, c->t, c->mu, c->L, c->B, c->D, c->seed, c->stream, c->row0);
    return dot(c->x, c->w, (size_t)c->B * c->D);
}

static void test_gap_sample_grad(void) {
    GapCtx c = {.B = 3, .D = 7, .seed = 1234, .stream = 5, .row0 = 17};
    size_t n = (size_t)c.B * c.D, nl = (size_t)c.D * c.D;
    c.t = drand_vec(n, 1);
    c.mu = drand_vec(c.D, 0.3);
    c.L = drand_vec(nl, 0.3);
    c.w = drand_vec(n, 1);
    c.x = dzeros(n);
    c.z = dzeros(n);
    c.norm = dzeros(c.B);
    double* g_t = fd_grad(c.t, n, gap_loss, &c);
    double* g_mu = fd_grad(c.mu, c.D, gap_loss, &c);
    double* g_L = fd_grad(c.L, nl, gap_loss, &c);  // the upper triangle is not read: zero
    gap_loss(&c);
    double* dt = drand_vec(n, 1);  // overwritten
    double* dmu0 = drand_vec(c.D, 1);
    double* dL0 = drand_vec(nl, 1);
    double *dmu = dcopy(dmu0, c.D), *dL = dcopy(dL0, nl);
    gap_sample_backward_cpu_f64(dt, dmu, dL, c.w, c.x, c.z, c.norm, c.B, c.D);
    check_grad_f64("dt", dt, NULL, g_t, n);
    check_grad_f64("dmu", dmu, dmu0, g_mu, c.D);
    check_grad_f64("dL", dL, dL0, g_L, nl);
    float *fx = to_f32(c.x, n), *fz = to_f32(c.z, n), *fnorm = to_f32(c.norm, c.B), *fw = to_f32(c.w, n);
    float *fdmu = to_f32(dmu0, c.D), *fdL = to_f32(dL0, nl);
    gap_sample_backward_cpu(NULL, fdmu, fdL, fw, fx, fz, fnorm, c.B, c.D);  // dt NULL: dy in a temporary
    check_grad_f32("dmu", fdmu, dmu0, g_mu, c.D);
    check_grad_f32("dL", fdL, dL0, g_L, nl);
    // z is the Philox stream at (row0 + b) * D + d
    int z_ok = 1;
    for (int b = 0; b < c.B; b++)
        for (int k = 0; k < c.D; k++)
            z_ok &= c.z[b * c.D + k] == (double)philox_normal(c.seed, c.stream, (c.row0 + b) * c.D + k);
    CHECK(z_ok, "z is not philox_normal(seed, stream, (row0 + b) * D + d)");
    free(c.t); free(c.mu); free(c.L); free(c.w); free(c.x); free(c.z); free(c.norm); free(g_t); free(g_mu); free(g_L);
    free(dt); free(dmu0); free(dL0); free(dmu); free(dL); free(fx); free(fz); free(fnorm); free(fw); free(fdmu); free(fdL);
}

// ------------------------------------------------------------------------------- AdamW
static void test_adamw_hand_computed(void) {
    // One element by hand: p = 1, g = 0.5, m = v = 0, t = 1, lr 0.1, betas (0.9, 0.999),
    // eps 1e-8, weight decay 0.01: m = 0.05, v = 0.00025, m^ = 0.5, v^ = 0.25,
    // p = 1 - 0.1 (0.5 / (0.5 + 1e-8) + 0.01) = 0.899000002
    float p = 1, g = 0.5f, m = 0, v = 0, act = NAN;
    adamw_update_cpu(&p, &act, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, 1);
    CHECK(fabsf(p - 0.899000002f) < 1e-7f && act == p, "p = %.9g (act copy %.9g), want 0.899000002", p, act);
    CHECK(fabsf(m - 0.05f) < 1e-6f * 0.05f && fabsf(v - 0.00025f) < 1e-4f * 0.00025f, "m = %.9g, v = %.9g", m, v);

    // Random elements over three steps, with clipping scale and weight decay, against the
    // formula evaluated in double.
    enum { n = 37 };
    float fp[n], fg[n], fm[n], fv[n];
    double dp[n], dm[n], dv[n];
    for (int i = 0; i < n; i++) {
        fp[i] = (float)urand();
        dp[i] = fp[i];
        fm[i] = fv[i] = 0;
        dm[i] = dv[i] = 0;
    }
    const float lr = 3e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.5f;
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < n; i++) fg[i] = (float)urand();
        adamw_update_cpu(fp, NULL, fg, fm, fv, n, lr, b1, b2, eps, wd, scale, t);
        for (int i = 0; i < n; i++) {
            double gg = (double)fg[i] * scale;
            dm[i] = b1 * dm[i] + (1 - (double)b1) * gg;
            dv[i] = b2 * dv[i] + (1 - (double)b2) * gg * gg;
            double mh = dm[i] / (1 - pow(b1, t)), vh = dv[i] / (1 - pow(b2, t));
            dp[i] -= lr * (mh / (sqrt(vh) + eps) + wd * dp[i]);
        }
    }
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(fp[i] - dp[i]));
    CHECK(worst < 1e-6, "AdamW after 3 steps differs from the formula in double by %.3g", worst);
}

int main(void) {
    rng_state = test_seed();
    RUN(test_embedding_grad);
    RUN(test_bag_mean_grad);
    RUN(test_layernorm_grad);
    RUN(test_residual_layernorm_grad);
    RUN(test_matmul_grad);
    RUN(test_matmul_gelu_grad);
    RUN(test_gelu_grad);
    RUN(test_crossentropy_grad);
    RUN(test_crossentropy_label_smoothing_grad);
    RUN(test_gap_sample_grad);
    RUN(test_adamw_hand_computed);
    return test_summary();
}
