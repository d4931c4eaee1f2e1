// Modality-gap estimators, the gap file and the KL term of the learnable Gaussian (gap.h;
// formulas and choices in docs/GAP.md). Moments are accumulated in double precision in chunks
// of rows with BLAS (dsyrk), so that the rows are never copied whole.
#include "data/gap.h"

#include <cblas.h>
#include <errno.h>
#include <hdf5.h>
#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/check.h"
#include "common/log.h"

#define CHUNK_ROWS 256

static const char* const setting_names[] = {"paired", "web", "unpaired", "text"};

const char* gap_setting_name(GapSetting s) { return (unsigned)s < 4 ? setting_names[s] : "?"; }

int gap_setting_parse(const char* name, GapSetting* out) {
    for (int s = 0; s < 4; s++)
        if (!strcmp(name, setting_names[s])) {
            *out = (GapSetting)s;
            return 0;
        }
    return -1;
}

GapOptions gap_options_default(void) {
    GapOptions o;
    o.psd_floor_rel = 1e-3;
    o.web_start_keep = 0.5;
    o.web_separation = 2.0;
    o.web_tail_p = 0.999;
    o.web_max_iter = 20;
    o.chol = CHOLESKY_POLICY_DEFAULT;
    return o;
}

__attribute__((format(printf, 3, 4))) static int fail(char* err, size_t err_size, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
    return -1;
}

// ---------------------------------------------------------------- moments

// Row k of the set (k in [0, rows->n)) into out [D] as double.
static void get_row(const GapRows* rows, int64_t k, int D, double* out) {
    const float* a = rows->emb + (size_t)(rows->idx ? rows->idx[k] : k) * D;
    if (rows->sub) {
        const float* b = rows->sub + (size_t)(rows->sub_idx ? rows->sub_idx[k] : k) * D;
        for (int i = 0; i < D; i++) out[i] = (double)a[i] - (double)b[i];
    } else {
        for (int i = 0; i < D; i++) out[i] = a[i];
    }
}

// Mean [D] and scatter [D,D] = sum_k (x_k - mean)(x_k - mean)^T (full symmetric) of the rows with
// keep[k] != 0 (keep NULL: all); sum_norm4 (may be NULL) gets sum_k ||x_k - mean||^4.
// Returns the number of rows used.
static int64_t moments(const GapRows* rows, const uint8_t* keep, int D, double* mean, double* scatter,
                       double* sum_norm4) {
    double* chunk = mallocCheck(sizeof(double) * CHUNK_ROWS * D);
    int64_t used = 0;
    memset(mean, 0, sizeof(double) * D);
    for (int64_t k = 0; k < rows->n; k++) {
        if (keep && !keep[k]) continue;
        get_row(rows, k, D, chunk);
        for (int i = 0; i < D; i++) mean[i] += chunk[i];
        used++;
    }
    for (int i = 0; i < D; i++) mean[i] /= used > 0 ? (double)used : 1.0;
    memset(scatter, 0, sizeof(double) * D * D);
    double norm4 = 0;
    int filled = 0;
    for (int64_t k = 0; k <= rows->n; k++) {
        if (k < rows->n && (keep && !keep[k])) continue;
        if (k < rows->n) {
            double* x = chunk + (size_t)filled * D;
            get_row(rows, k, D, x);
            double sq = 0;
            for (int i = 0; i < D; i++) {
                x[i] -= mean[i];
                sq += x[i] * x[i];
            }
            norm4 += sq * sq;
            filled++;
        }
        if (filled == CHUNK_ROWS || (k == rows->n && filled > 0)) {
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, D, filled, 1.0, chunk, D, 1.0, scatter, D);
            filled = 0;
        }
    }
    for (int i = 0; i < D; i++)
        for (int j = 0; j < i; j++) scatter[j * D + i] = scatter[i * D + j];
    if (sum_norm4) *sum_norm4 = norm4;
    free(chunk);
    return used;
}

// Ledoit-Wolf shrinkage toward (tr S / D) I of the covariance S = scatter / n, in place (as
// sklearn.covariance.ledoit_wolf). Returns the shrinkage intensity.
static double ledoit_wolf(double* S, int64_t n, int D, double sum_norm4) {
    double trace = 0, frob2 = 0;
    for (int i = 0; i < D; i++) trace += S[i * D + i];
    for (size_t k = 0; k < (size_t)D * D; k++) frob2 += S[k] * S[k];
    double m = trace / D;
    double delta = (frob2 - 2 * m * trace + D * m * m) / D;  // ||S - m I||_F^2 / D
    double beta = (sum_norm4 / n - frob2) / ((double)D * n);
    if (beta > delta) beta = delta;
    double shrinkage = delta > 0 ? beta / delta : 0.0;
    if (shrinkage < 0) shrinkage = 0;
    for (size_t k = 0; k < (size_t)D * D; k++) S[k] *= 1 - shrinkage;
    for (int i = 0; i < D; i++) S[i * D + i] += shrinkage * m;
    return shrinkage;
}

// ---------------------------------------------------------------- results

static void estimate_alloc(GapEstimate* g, GapSetting setting, int D) {
    memset(g, 0, sizeof *g);
    g->setting = setting;
    g->dim = D;
    g->mu = mallocCheck(sizeof(float) * D);
    g->cov = mallocCheck(sizeof(float) * D * D);
    g->chol = mallocCheck(sizeof(float) * D * D);
}

void gap_free(GapEstimate* g) {
    free(g->mu);
    free(g->cov);
    free(g->chol);
    memset(g, 0, sizeof *g);
}

// mu, Sigma (double) -> the float estimate with its Cholesky factor under the jitter policy.
static int finish(GapEstimate* g, GapSetting setting, int D, const double* mu, const double* sigma,
                  const CholeskyPolicy* policy, char* err, size_t err_size) {
    for (int i = 0; i < D; i++)
        if (!isfinite(mu[i])) return fail(err, err_size, "%s gap: mu[%d] is not finite", gap_setting_name(setting), i);
    double* L = mallocCheck(sizeof(double) * D * D);
    char chol_err[400];
    CholeskyReport rep;
    int rc = cholesky_f64_cpu(L, sigma, D, policy, &rep, chol_err, sizeof chol_err);
    if (rc == 0) {
        estimate_alloc(g, setting, D);
        for (int i = 0; i < D; i++) g->mu[i] = (float)mu[i];
        for (size_t k = 0; k < (size_t)D * D; k++) {
            g->cov[k] = (float)sigma[k];
            g->chol[k] = (float)L[k];
        }
        g->jitter = rep.jitter;
    } else {
        snprintf(err, err_size, "%s gap covariance: %s", gap_setting_name(setting), chol_err);
    }
    free(L);
    return rc;
}

// ---------------------------------------------------------------- paired and web

// mu and the Ledoit-Wolf covariance of the kept pair differences.
static double paired_moments(const GapRows* pairs, const uint8_t* keep, int D, double* mu, double* sigma,
                             int64_t* used) {
    double norm4;
    *used = moments(pairs, keep, D, mu, sigma, &norm4);
    for (size_t k = 0; k < (size_t)D * D; k++) sigma[k] /= (double)*used;
    return ledoit_wolf(sigma, *used, D, norm4);
}

int gap_estimate_paired(GapEstimate* out, const GapRows* pairs, int D, const GapOptions* opt_in, char* err,
                        size_t err_size) {
    GapOptions opt = opt_in ? *opt_in : gap_options_default();
    memset(out, 0, sizeof *out);
    if (D <= 0) return fail(err, err_size, "paired gap: dimension %d is not positive", D);
    if (pairs->n < 2) return fail(err, err_size, "paired gap: %lld pairs; the covariance needs at least 2", (long long)pairs->n);
    double* mu = mallocCheck(sizeof(double) * D);
    double* sigma = mallocCheck(sizeof(double) * D * D);
    int64_t used;
    double shrinkage = paired_moments(pairs, NULL, D, mu, sigma, &used);
    int rc = finish(out, GAP_PAIRED, D, mu, sigma, &opt.chol, err, err_size);
    if (rc == 0) {
        out->n_used = used;
        out->shrinkage = shrinkage;
    }
    free(mu);
    free(sigma);
    return rc;
}

// Standard normal quantile (bisection on erfc: exact to double precision, cheap enough here).
static double normal_quantile(double p) {
    double lo = -40, hi = 40;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

static int cmp_double(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

typedef struct {
    double cosine;
    int64_t k;
} CosineRank;

static int cmp_cosine_desc(const void* a, const void* b) {
    const CosineRank *x = a, *y = b;
    if (x->cosine != y->cosine) return x->cosine < y->cosine ? 1 : -1;
    return (x->k > y->k) - (x->k < y->k);
}

// Squared Mahalanobis distances m2[k] = ||L^-1 (d_k - mu)||^2 of the pairs k with k % 2 == parity.
static void mahalanobis(const GapRows* pairs, int parity, int D, const double* mu, const double* L, double* m2) {
    double* chunk = mallocCheck(sizeof(double) * CHUNK_ROWS * D);
    int64_t* which = mallocCheck(sizeof(int64_t) * CHUNK_ROWS);
    for (int64_t k0 = parity; k0 < pairs->n;) {
        int rows = 0;
        for (; rows < CHUNK_ROWS && k0 < pairs->n; k0 += 2, rows++) {
            double* x = chunk + (size_t)rows * D;
            get_row(pairs, k0, D, x);
            for (int i = 0; i < D; i++) x[i] -= mu[i];
            which[rows] = k0;
        }
        // rows y with L y = x: Y = X L^-T
        cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, rows, D, 1.0, L, D, chunk, D);
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int i = 0; i < D; i++) s += chunk[(size_t)r * D + i] * chunk[(size_t)r * D + i];
            m2[which[r]] = s;
        }
    }
    free(chunk);
    free(which);
}

// Two-component Gaussian mixture in 2-D, fitted by EM from initial responsibilities r (of the
// first component) and left in r. Returns the separation d' of the two components (Mahalanobis
// distance between the means under their average covariance), or -1 when the fit degenerates
// (a component without weight, a singular covariance). w1 and m1, m0 receive the first
// component's weight and both means.
static double mixture2(const double* X, int64_t n, double* r, double* w1, double m1[2], double m0[2]) {
    double C1[3], C0[3];  // xx, xy, yy
    for (int iter = 0; iter < 300; iter++) {
        double s1 = 0, s0 = 0;
        m1[0] = m1[1] = m0[0] = m0[1] = 0;
        for (int64_t k = 0; k < n; k++) {
            s1 += r[k], s0 += 1 - r[k];
            m1[0] += r[k] * X[2 * k], m1[1] += r[k] * X[2 * k + 1];
            m0[0] += (1 - r[k]) * X[2 * k], m0[1] += (1 - r[k]) * X[2 * k + 1];
        }
        if (s1 < 2 || s0 < 2) return -1;
        m1[0] /= s1, m1[1] /= s1, m0[0] /= s0, m0[1] /= s0;
        memset(C1, 0, sizeof C1);
        memset(C0, 0, sizeof C0);
        for (int64_t k = 0; k < n; k++) {
            double a = X[2 * k] - m1[0], b = X[2 * k + 1] - m1[1], c = X[2 * k] - m0[0], d = X[2 * k + 1] - m0[1];
            C1[0] += r[k] * a * a, C1[1] += r[k] * a * b, C1[2] += r[k] * b * b;
            C0[0] += (1 - r[k]) * c * c, C0[1] += (1 - r[k]) * c * d, C0[2] += (1 - r[k]) * d * d;
        }
        for (int e = 0; e < 3; e++) C1[e] /= s1, C0[e] /= s0;
        double det1 = C1[0] * C1[2] - C1[1] * C1[1], det0 = C0[0] * C0[2] - C0[1] * C0[1];
        if (!(det1 > 0) || !(det0 > 0)) return -1;
        *w1 = s1 / n;
        double change = 0;
        for (int64_t k = 0; k < n; k++) {
            double a = X[2 * k] - m1[0], b = X[2 * k + 1] - m1[1], c = X[2 * k] - m0[0], d = X[2 * k + 1] - m0[1];
            double q1 = (C1[2] * a * a - 2 * C1[1] * a * b + C1[0] * b * b) / det1;
            double q0 = (C0[2] * c * c - 2 * C0[1] * c * d + C0[0] * d * d) / det0;
            double l1 = log(*w1) - 0.5 * (q1 + log(det1)), l0 = log(1 - *w1) - 0.5 * (q0 + log(det0));
            double next = 1 / (1 + exp(l0 - l1));
            change = fmax(change, fabs(next - r[k]));
            r[k] = next;
        }
        if (change < 1e-6) break;
    }
    double C[3] = {0.5 * (C1[0] + C0[0]), 0.5 * (C1[1] + C0[1]), 0.5 * (C1[2] + C0[2])};
    double det = C[0] * C[2] - C[1] * C[1], a = m1[0] - m0[0], b = m1[1] - m0[1];
    return sqrt((C[2] * a * a - 2 * C[1] * a * b + C[0] * b * b) / det);
}

int gap_estimate_web(GapEstimate* out, const GapRows* pairs, int D, const GapOptions* opt_in, uint8_t* rejected,
                     char* err, size_t err_size) {
    GapOptions opt = opt_in ? *opt_in : gap_options_default();
    memset(out, 0, sizeof *out);
    int64_t n = pairs->n;
    if (D <= 0) return fail(err, err_size, "web gap: dimension %d is not positive", D);
    if (!pairs->sub) return fail(err, err_size, "web gap: the rows must be pairs (image and text)");
    if (!(opt.web_start_keep > 0 && opt.web_start_keep <= 1) || !(opt.web_tail_p > 0.5 && opt.web_tail_p < 1) ||
        !(opt.web_separation > 0))
        return fail(err, err_size,
                    "web gap: start fraction %g must be in (0, 1], tail quantile %g in (0.5, 1), separation %g positive",
                    opt.web_start_keep, opt.web_tail_p, opt.web_separation);
    int64_t n_start = (int64_t)ceil(opt.web_start_keep * (double)n);
    if (n_start < 2 || n < 2)
        return fail(err, err_size, "web gap: %lld pairs; the first estimate takes %.0f%% of them and needs at least 2",
                    (long long)n, 100 * opt.web_start_keep);

    // 1. start from the pairs with the highest CLIP cosine; X[k] = (log m2, cosine) per pair
    double* X = mallocCheck(sizeof(double) * 2 * n);
    CosineRank* rank = mallocCheck(sizeof(CosineRank) * n);
    double* v = mallocCheck(sizeof(double) * D);
    double* t = mallocCheck(sizeof(double) * D);
    GapRows images = {pairs->emb, pairs->idx, NULL, NULL, n}, texts = {pairs->sub, pairs->sub_idx, NULL, NULL, n};
    for (int64_t k = 0; k < n; k++) {
        get_row(&images, k, D, v);
        get_row(&texts, k, D, t);
        double vt = 0, vv = 0, tt = 0;
        for (int i = 0; i < D; i++) vt += v[i] * t[i], vv += v[i] * v[i], tt += t[i] * t[i];
        rank[k].cosine = X[2 * k + 1] = vv > 0 && tt > 0 ? vt / sqrt(vv * tt) : 0.0;
        rank[k].k = k;
    }
    qsort(rank, n, sizeof *rank, cmp_cosine_desc);
    uint8_t* keep = callocCheck(n, 1);
    for (int64_t r = 0; r < n_start; r++) keep[rank[r].k] = 1;
    free(rank);
    free(v);
    free(t);

    // 2. rounds: estimate from the kept pairs; fit two populations to (log m2, cosine) of all
    //    pairs and keep the genuine one when they are separated; otherwise reject only the tail.
    //    m2 is cross-fitted: the pairs of each parity (k % 2) are measured under the estimate from
    //    the kept pairs of the other, so that kept and rejected pairs are equally out of sample.
    double* mu = mallocCheck(sizeof(double) * D);
    double* sigma = mallocCheck(sizeof(double) * D * D);
    double* L = mallocCheck(sizeof(double) * D * D);
    double* m2 = mallocCheck(sizeof(double) * n);
    double* resp = mallocCheck(sizeof(double) * n);
    double* sorted = mallocCheck(sizeof(double) * n);
    uint8_t* half = mallocCheck(n);
    double z_tail = normal_quantile(opt.web_tail_p);
    int64_t used = n_start;
    int rc = 0;
    for (int round = 0; round < opt.web_max_iter && rc == 0; round++) {
        for (int h = 0; h < 2 && rc == 0; h++) {
            for (int64_t k = 0; k < n; k++) half[k] = keep[k] && k % 2 == h;
            paired_moments(pairs, half, D, mu, sigma, &used);
            char chol_err[400];
            if (used < 2)
                rc = fail(err, err_size, "web gap: rejection round %d: %lld kept pairs of parity %d; each half needs at least 2",
                          round + 1, (long long)used, h);
            else if (cholesky_f64_cpu(L, sigma, D, &opt.chol, NULL, chol_err, sizeof chol_err))
                rc = fail(err, err_size, "web gap: rejection round %d: %s", round + 1, chol_err);
            else
                mahalanobis(pairs, 1 - h, D, mu, L, m2);
        }
        if (rc) break;
        for (int64_t k = 0; k < n; k++) {
            X[2 * k] = log(fmax(m2[k], 1e-300));
            resp[k] = keep[k] ? 0.9 : 0.1;
        }
        double w1 = 0, m1[2] = {0, 0}, m0[2] = {0, 0};
        double sep = mixture2(X, n, resp, &w1, m1, m0);
        int mixture = sep >= opt.web_separation && w1 >= 0.5 && m1[0] < m0[0];
        double cutoff = 0;
        if (!mixture) {  // robust normal fit to log m2 from its lower half: median and quartile
            for (int64_t k = 0; k < n; k++) sorted[k] = X[2 * k];
            qsort(sorted, n, sizeof(double), cmp_double);
            double median = sorted[n / 2], q25 = sorted[n / 4];
            cutoff = median + z_tail * (median - q25) / 0.6744897501960817;
        }
        int64_t changed = 0, now_kept = 0;
        for (int64_t k = 0; k < n; k++) {
            uint8_t in = mixture ? resp[k] >= 0.5 : X[2 * k] <= cutoff;
            changed += in != keep[k];
            now_kept += in;
            keep[k] = in;
        }
        if (mixture)
            LOG_DEBUG("web gap: round %d: two populations, separation %.2f, %.1f%% genuine; %lld of %lld pairs kept",
                      round + 1, sep, 100 * w1, (long long)now_kept, (long long)n);
        else
            LOG_DEBUG("web gap: round %d: no second population (separation %.2f); tail beyond log m2 = %.4g rejected; "
                      "%lld of %lld pairs kept", round + 1, sep, cutoff, (long long)now_kept, (long long)n);
        if (now_kept < 2) {
            rc = fail(err, err_size, "web gap: only %lld of %lld pairs survive the rejection; the covariance needs at least 2",
                      (long long)now_kept, (long long)n);
            break;
        }
        if (changed * 1000 <= n) break;  // stable to 0.1% of the pairs
    }
    if (rc == 0) {
        double shrinkage = paired_moments(pairs, keep, D, mu, sigma, &used);
        rc = finish(out, GAP_WEB, D, mu, sigma, &opt.chol, err, err_size);
        if (rc == 0) {
            out->n_used = used;
            out->n_rejected = n - used;
            out->shrinkage = shrinkage;
            if (rejected)
                for (int64_t k = 0; k < n; k++) rejected[k] = !keep[k];
        }
    }
    free(X);
    free(keep);
    free(mu);
    free(sigma);
    free(L);
    free(m2);
    free(resp);
    free(sorted);
    free(half);
    return rc;
}

// ---------------------------------------------------------------- unpaired

int gap_estimate_unpaired(GapEstimate* out, const GapRows* images, const GapRows* texts, int D,
                          const GapOptions* opt_in, char* err, size_t err_size) {
    GapOptions opt = opt_in ? *opt_in : gap_options_default();
    memset(out, 0, sizeof *out);
    if (D <= 0) return fail(err, err_size, "unpaired gap: dimension %d is not positive", D);
    if (images->n < 2 || texts->n < 2)
        return fail(err, err_size, "unpaired gap: %lld images and %lld texts; each covariance needs at least 2",
                    (long long)images->n, (long long)texts->n);
    size_t DD = (size_t)D * D;
    double* mean_v = mallocCheck(sizeof(double) * D);
    double* mean_t = mallocCheck(sizeof(double) * D);
    double* cov_v = mallocCheck(sizeof(double) * DD);
    double* cov_t = mallocCheck(sizeof(double) * DD);
    moments(images, NULL, D, mean_v, cov_v, NULL);
    moments(texts, NULL, D, mean_t, cov_t, NULL);
    // A = Cov V - Cov T (unbiased covariances); its eigenvectors Q and eigenvalues w
    double* A = cov_v;
    for (size_t k = 0; k < DD; k++) A[k] = cov_v[k] / (double)(images->n - 1) - cov_t[k] / (double)(texts->n - 1);
    for (int i = 0; i < D; i++) mean_v[i] -= mean_t[i];
    double* w = mallocCheck(sizeof(double) * D);
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'L', D, A, D, w);
    int rc = 0;
    if (info != 0) rc = fail(err, err_size, "unpaired gap: the eigendecomposition of Cov V - Cov T failed (dsyevd info %d)", (int)info);
    double positive = 0;
    for (int i = 0; i < D && rc == 0; i++) positive += w[i] > 0 ? w[i] : 0;
    if (rc == 0 && !(positive > 0))
        rc = fail(err, err_size,
                  "unpaired gap: Cov(images) - Cov(texts) has no positive eigenvalue (largest %.3g): the images "
                  "vary no more than the texts in any direction, so there is no gap covariance to estimate",
                  w[D - 1]);
    if (rc == 0) {
        // Sigma = Q max(w, floor) Q^T
        double floor_value = opt.psd_floor_rel * positive / D;
        long long clipped = 0;
        double* QW = cov_t;
        for (int i = 0; i < D; i++) {
            if (w[i] < floor_value) w[i] = floor_value, clipped++;
        }
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) QW[i * D + j] = A[i * D + j] * w[j];
        double* sigma = mallocCheck(sizeof(double) * DD);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, D, D, D, 1.0, QW, D, A, D, 0.0, sigma, D);
        for (int i = 0; i < D; i++)  // exact symmetry
            for (int j = 0; j < i; j++) sigma[j * D + i] = sigma[i * D + j] = 0.5 * (sigma[i * D + j] + sigma[j * D + i]);
        rc = finish(out, GAP_UNPAIRED, D, mean_v, sigma, &opt.chol, err, err_size);
        if (rc == 0) {
            out->n_images = images->n;
            out->n_texts = texts->n;
            out->n_used = images->n + texts->n;
            out->n_clipped = clipped;
            out->psd_floor = floor_value;
        }
        free(sigma);
    }
    free(mean_v);
    free(mean_t);
    free(cov_v);
    free(cov_t);
    free(w);
    return rc;
}

// ---------------------------------------------------------------- text

int gap_estimate_text(GapEstimate* out, int D, double sigma2, const GapEstimate* prior, const GapOptions* opt_in,
                      char* err, size_t err_size) {
    GapOptions opt = opt_in ? *opt_in : gap_options_default();
    memset(out, 0, sizeof *out);
    if (prior) {
        if (D != 0 && D != prior->dim)
            return fail(err, err_size, "text gap: the prior has dimension %d, the features %d", prior->dim, D);
        D = prior->dim;
    } else if (!(sigma2 > 0 && isfinite(sigma2))) {
        return fail(err, err_size, "text gap: sigma2 = %g must be positive and finite", sigma2);
    }
    if (D <= 0) return fail(err, err_size, "text gap: dimension %d is not positive", D);
    size_t DD = (size_t)D * D;
    double* mu = callocCheck(D, sizeof(double));
    double* sigma = callocCheck(DD, sizeof(double));
    if (prior) {
        for (int i = 0; i < D; i++) mu[i] = prior->mu[i];
        for (size_t k = 0; k < DD; k++) sigma[k] = prior->cov[k];
    } else {
        for (int i = 0; i < D; i++) sigma[(size_t)i * D + i] = sigma2;
    }
    int rc = finish(out, GAP_TEXT, D, mu, sigma, &opt.chol, err, err_size);
    if (rc == 0) {
        out->sigma2 = prior ? 0 : sigma2;
        if (prior) snprintf(out->source, sizeof out->source, "%s", prior->source);
    }
    free(mu);
    free(sigma);
    return rc;
}

// ---------------------------------------------------------------- the gap file

// HDF5 prints its own error stacks by default; the messages here say what went wrong instead.
typedef struct {
    H5E_auto2_t func;
    void* data;
} H5Quiet;
static H5Quiet h5_quiet(void) {
    H5Quiet q;
    H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return q;
}
static void h5_restore(H5Quiet q) { H5Eset_auto2(H5E_DEFAULT, q.func, q.data); }

static int write_dataset(hid_t file, const char* name, const float* data, int rank, const hsize_t* dims) {
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t set = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = set < 0 ? -1 : H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (set >= 0) H5Dclose(set);
    H5Sclose(space);
    return st < 0 ? -1 : 0;
}

static int write_attr_double(hid_t file, const char* name, double value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_DOUBLE, &value);
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return st < 0 ? -1 : 0;
}

static int write_attr_int(hid_t file, const char* name, long long value) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_LLONG, &value);
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    return st < 0 ? -1 : 0;
}

// Variable-length UTF-8 string attribute (h5py reads it as str).
static int write_attr_string(hid_t file, const char* name, const char* value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = attr < 0 ? -1 : H5Awrite(attr, type, &value);
    if (attr >= 0) H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return st < 0 ? -1 : 0;
}

int gap_write(const char* path, const GapEstimate* g, char* err, size_t err_size) {
    // HDF5 writes the temporary of an AtomicFile through its own handle (same inode: the
    // temporary is truncated, not replaced); commit then fsyncs and renames it into place.
    AtomicFile af = atomic_file_open(path);
    H5Quiet q = h5_quiet();
    hid_t file = H5Fcreate(af.tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int bad = file < 0;
    hsize_t d1[1] = {(hsize_t)g->dim}, d2[2] = {(hsize_t)g->dim, (hsize_t)g->dim};
    bad = bad || write_dataset(file, "mu", g->mu, 1, d1) || write_dataset(file, "cov", g->cov, 2, d2) ||
          write_dataset(file, "chol", g->chol, 2, d2) || write_attr_string(file, "setting", gap_setting_name(g->setting)) ||
          write_attr_int(file, "n_used", g->n_used) || write_attr_double(file, "shrinkage", g->shrinkage) ||
          write_attr_int(file, "n_rejected", g->n_rejected) || write_attr_double(file, "jitter", g->jitter) ||
          write_attr_int(file, "n_images", g->n_images) || write_attr_int(file, "n_texts", g->n_texts) ||
          write_attr_int(file, "n_clipped", g->n_clipped) || write_attr_double(file, "psd_floor", g->psd_floor) ||
          write_attr_double(file, "sigma2", g->sigma2) || write_attr_string(file, "source", g->source);
    if (file >= 0 && H5Fclose(file) < 0) bad = 1;
    h5_restore(q);
    if (bad) {
        atomic_file_abort(&af);
        free(af.path);
        return fail(err, err_size, "%s: writing the gap file failed (HDF5 error; disk full or not writable?)", path);
    }
    atomic_file_commit(&af);
    return 0;
}

// Reads dataset `name` as float with the expected shape (rank 1: [D]; rank 2: [D, D]).
static int read_dataset(hid_t file, const char* path, const char* name, int rank, int* D, float** out, char* err,
                        size_t err_size) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return fail(err, err_size, "%s: dataset /%s is missing", path, name);
    hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
    if (set < 0) return fail(err, err_size, "%s: /%s is not a dataset", path, name);
    hid_t space = H5Dget_space(set);
    hid_t type = H5Dget_type(set);
    int got_rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[2] = {0, 0};
    int rc = 0;
    if (H5Tget_class(type) != H5T_FLOAT) {
        rc = fail(err, err_size, "%s: /%s has a non-float type (want float32)", path, name);
    } else if (got_rank != rank) {
        rc = fail(err, err_size, "%s: /%s has rank %d, want %d", path, name, got_rank, rank);
    } else {
        H5Sget_simple_extent_dims(space, dims, NULL);
        if (*D == 0) *D = (int)dims[0];
        if (dims[0] != (hsize_t)*D || (rank == 2 && dims[1] != (hsize_t)*D) || *D <= 0)
            rc = rank == 1 ? fail(err, err_size, "%s: /%s has shape [%llu], want [%d]", path, name,
                                  (unsigned long long)dims[0], *D)
                           : fail(err, err_size, "%s: /%s has shape [%llu, %llu], want [%d, %d]", path, name,
                                  (unsigned long long)dims[0], (unsigned long long)dims[1], *D, *D);
    }
    if (rc == 0) {
        size_t n = rank == 1 ? (size_t)*D : (size_t)*D * *D;
        *out = mallocCheck(sizeof(float) * n);
        if (H5Dread(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
            rc = fail(err, err_size, "%s: reading /%s failed", path, name);
        } else {
            for (size_t k = 0; k < n && rc == 0; k++)
                if (!isfinite((*out)[k]))
                    rc = rank == 1 ? fail(err, err_size, "%s: /%s[%zu] is not finite", path, name, k)
                                   : fail(err, err_size, "%s: /%s[%zu][%zu] is not finite", path, name, k / *D, k % *D);
        }
        if (rc) {
            free(*out);
            *out = NULL;
        }
    }
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(set);
    return rc;
}

// Numeric attribute as double; required ones are an error when missing, the others default to 0.
static int read_attr_number(hid_t file, const char* path, const char* name, int required, double* out, char* err,
                            size_t err_size) {
    *out = 0;
    if (H5Aexists(file, name) <= 0)
        return required ? fail(err, err_size, "%s: attribute '%s' is missing", path, name) : 0;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(attr);
    H5T_class_t cls = H5Tget_class(type);
    int rc = 0;
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || H5Aread(attr, H5T_NATIVE_DOUBLE, out) < 0 || !isfinite(*out))
        rc = fail(err, err_size, "%s: attribute '%s' is not a finite number", path, name);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

// String attribute (variable or fixed length) into buf.
static int read_attr_string(hid_t file, const char* path, const char* name, int required, char* buf, size_t cap,
                            char* err, size_t err_size) {
    buf[0] = '\0';
    if (H5Aexists(file, name) <= 0)
        return required ? fail(err, err_size, "%s: attribute '%s' is missing", path, name) : 0;
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(attr);
    int rc = 0;
    if (H5Tget_class(type) != H5T_STRING) {
        rc = fail(err, err_size, "%s: attribute '%s' is not a string", path, name);
    } else if (H5Tis_variable_str(type) > 0) {
        char* s = NULL;
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        if (H5Aread(attr, mem, &s) < 0 || !s) rc = fail(err, err_size, "%s: attribute '%s' is unreadable", path, name);
        else snprintf(buf, cap, "%s", s);
        if (s) H5free_memory(s);
        H5Tclose(mem);
    } else {
        size_t size = H5Tget_size(type);
        char* s = callocCheck(size + 1, 1);
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, size + 1);
        if (H5Aread(attr, mem, s) < 0) rc = fail(err, err_size, "%s: attribute '%s' is unreadable", path, name);
        else snprintf(buf, cap, "%s", s);
        free(s);
        H5Tclose(mem);
    }
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

// The consistency of a read gap file: cov symmetric, chol lower-triangular with a positive
// diagonal, chol chol^T = cov + jitter I.
static int check_gap(const GapEstimate* g, const char* path, char* err, size_t err_size) {
    int D = g->dim;
    double max_abs = 0;
    for (size_t k = 0; k < (size_t)D * D; k++) max_abs = fmax(max_abs, fabs(g->cov[k]));
    for (int i = 0; i < D; i++) {
        if (!(g->chol[(size_t)i * D + i] > 0))
            return fail(err, err_size, "%s: /chol[%d][%d] = %g: the diagonal of a Cholesky factor must be positive", path,
                        i, i, g->chol[(size_t)i * D + i]);
        for (int j = i + 1; j < D; j++) {
            if (g->chol[(size_t)i * D + j] != 0)
                return fail(err, err_size, "%s: /chol[%d][%d] = %g: /chol must be lower-triangular", path, i, j,
                            g->chol[(size_t)i * D + j]);
            if (fabs(g->cov[(size_t)i * D + j] - g->cov[(size_t)j * D + i]) > 1e-5 * max_abs)
                return fail(err, err_size, "%s: /cov is not symmetric at [%d][%d]", path, i, j);
        }
    }
    double* L = mallocCheck(sizeof(double) * D * D);
    double* P = callocCheck((size_t)D * D, sizeof(double));
    for (size_t k = 0; k < (size_t)D * D; k++) L[k] = g->chol[k];
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, D, D, 1.0, L, D, 0.0, P, D);
    double num = 0, den = 0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j <= i; j++) {
            double c = g->cov[(size_t)i * D + j] + (i == j ? g->jitter : 0);
            double w = i == j ? 1 : 2;
            num += w * (P[(size_t)i * D + j] - c) * (P[(size_t)i * D + j] - c);
            den += w * c * c;
        }
    free(L);
    free(P);
    double rel = sqrt(num / den);
    if (!(rel < 1e-4))
        return fail(err, err_size,
                    "%s: /chol does not factor /cov: ||chol chol^T - (cov + jitter I)|| / ||cov|| = %.3g (want < 1e-4)",
                    path, rel);
    return 0;
}

int gap_read(const char* path, GapEstimate* g, char* err, size_t err_size) {
    memset(g, 0, sizeof *g);
    H5Quiet q = h5_quiet();
    int rc = 0;
    hid_t file = -1;
    FILE* probe = fopen(path, "rb");
    if (!probe) rc = fail(err, err_size, "%s: cannot open the gap file: %s", path, strerror(errno));
    else fclose(probe);
    if (rc == 0 && (file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
        rc = fail(err, err_size, "%s: not an HDF5 file", path);
    int D = 0;
    char setting[32];
    double v;
    if (rc == 0) rc = read_dataset(file, path, "mu", 1, &D, &g->mu, err, err_size);
    if (rc == 0) rc = read_dataset(file, path, "cov", 2, &D, &g->cov, err, err_size);
    if (rc == 0) rc = read_dataset(file, path, "chol", 2, &D, &g->chol, err, err_size);
    if (rc == 0) rc = read_attr_string(file, path, "setting", 1, setting, sizeof setting, err, err_size);
    if (rc == 0 && gap_setting_parse(setting, &g->setting))
        rc = fail(err, err_size, "%s: attribute 'setting' is '%s', not one of paired|web|unpaired|text", path, setting);
    g->dim = D;
#define ATTR(name, required, field)                                                    \
    if (rc == 0) {                                                                     \
        rc = read_attr_number(file, path, name, required, &v, err, err_size);           \
        g->field = v;                                                                  \
    }
    ATTR("n_used", 1, n_used)
    ATTR("shrinkage", 1, shrinkage)
    ATTR("n_rejected", 1, n_rejected)
    ATTR("jitter", 1, jitter)
    ATTR("n_images", 0, n_images)
    ATTR("n_texts", 0, n_texts)
    ATTR("n_clipped", 0, n_clipped)
    ATTR("psd_floor", 0, psd_floor)
    ATTR("sigma2", 0, sigma2)
#undef ATTR
    if (rc == 0) rc = read_attr_string(file, path, "source", 0, g->source, sizeof g->source, err, err_size);
    if (rc == 0 && (g->jitter < 0 || g->shrinkage < 0 || g->shrinkage > 1 || g->n_used < 0 || g->n_rejected < 0))
        rc = fail(err, err_size, "%s: attributes out of range (jitter %g, shrinkage %g, n_used %lld, n_rejected %lld)",
                  path, g->jitter, g->shrinkage, g->n_used, g->n_rejected);
    if (rc == 0) rc = check_gap(g, path, err, err_size);
    if (file >= 0) H5Fclose(file);
    h5_restore(q);
    if (rc) gap_free(g);
    return rc;
}

// ---------------------------------------------------------------- KL to the prior

int gap_prior_init(GapPrior* p, const GapEstimate* prior, char* err, size_t err_size) {
    int D = prior->dim;
    memset(p, 0, sizeof *p);
    double* P = mallocCheck(sizeof(double) * D * D);
    double logdet = 0;
    for (int i = 0; i < D; i++) {
        for (int j = 0; j < D; j++) P[i * D + j] = j <= i ? prior->chol[i * D + j] : 0.0;
        if (!(P[i * D + i] > 0)) {
            free(P);
            return fail(err, err_size, "gap prior: chol[%d][%d] = %g is not positive", i, i, P[i * D + i]);
        }
        logdet += 2 * log(P[i * D + i]);
    }
    // Sigma0^-1 from its factor: row-major lower L0 is column-major upper L0^T (as in cholesky.c)
    lapack_int info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'U', D, P, D);
    if (info != 0) {
        free(P);
        return fail(err, err_size, "gap prior: inverting the covariance failed (dpotri info %d)", (int)info);
    }
    for (int i = 0; i < D; i++)  // dpotri filled the lower triangle (row-major); mirror it
        for (int j = 0; j < i; j++) P[j * D + i] = P[i * D + j];
    p->dim = D;
    p->precision = P;
    p->logdet0 = logdet;
    p->mu0 = mallocCheck(sizeof(double) * D);
    for (int i = 0; i < D; i++) p->mu0[i] = prior->mu[i];
    return 0;
}

void gap_prior_free(GapPrior* p) {
    free(p->mu0);
    free(p->precision);
    memset(p, 0, sizeof *p);
}

double gap_kl(const GapPrior* p, const float* mu, const float* L, float weight, float* dmu, float* dL) {
    int D = p->dim;
    size_t DD = (size_t)D * D;
    double logdet = 0;
    for (int i = 0; i < D; i++) {
        double d = fabs((double)L[(size_t)i * D + i]);
        if (!(d > 0)) return INFINITY;
        logdet += 2 * log(d);
    }
    double* diff = mallocCheck(sizeof(double) * D);
    double* pdiff = mallocCheck(sizeof(double) * D);
    double* Ld = mallocCheck(sizeof(double) * DD);
    double* M = mallocCheck(sizeof(double) * DD);
    for (int i = 0; i < D; i++) diff[i] = (double)mu[i] - p->mu0[i];
    cblas_dsymv(CblasRowMajor, CblasLower, D, 1.0, p->precision, D, diff, 1, 0.0, pdiff, 1);
    double quad = 0;
    for (int i = 0; i < D; i++) quad += diff[i] * pdiff[i];
    for (size_t k = 0; k < DD; k++) Ld[k] = k % D <= k / D ? (double)L[k] : 0.0;
    memcpy(M, p->precision, sizeof(double) * DD);
    cblas_dtrmm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, D, D, 1.0, Ld, D, M, D);  // M = P L
    double trace = 0;  // tr(P L L^T) = sum_ij L_ij (P L)_ij
    for (size_t k = 0; k < DD; k++) trace += Ld[k] * M[k];
    double kl = 0.5 * (trace + quad - D + p->logdet0 - logdet);
    if (dmu)
        for (int i = 0; i < D; i++) dmu[i] += (float)(weight * pdiff[i]);
    if (dL)
        for (int i = 0; i < D; i++)
            for (int j = 0; j <= i; j++)
                dL[(size_t)i * D + j] += (float)(weight * (M[(size_t)i * D + j] - (i == j ? 1.0 / L[(size_t)i * D + i] : 0.0)));
    free(diff);
    free(pdiff);
    free(Ld);
    free(M);
    return kl;
}
