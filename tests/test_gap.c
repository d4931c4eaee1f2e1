// Gap estimators on synthetic draws with a known N(mu*, Sigma*): recovery within statistical
// tolerances, robust rejection of mismatched web pairs, the PSD projection, the text setting,
// the gap file (round trip, h5py, bad files) and the KL term of the learnable Gaussian.
//
// Tolerances. For N draws of a Gaussian with covariance C, the sample covariance S has
// E||S - C||_F^2 = (||C||_F^2 + (tr C)^2) / N and the sample mean E||m - mu||^2 = tr C / N. So
// the relative errors scale as sqrt((1 + r) / N), r = (tr C)^2 / ||C||_F^2 <= D (the effective
// rank): sqrt(D / N) at worst. Each check allows 3 times the expected error (or 4 for the
// mean), a bound that a correct estimator misses with negligible probability.
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/check.h"
#include "data/features.h"
#include "data/gap.h"
#include "data/gap_inputs.h"
#include "data/synth.h"
#include "data/prep.h"
#include "kernels/philox.h"
#include "tests/harness.h"

// ---------------------------------------------------------------- the truth

typedef struct {
    int D;
    double* mu;     // [D]
    double* sigma;  // [D,D]
    double* root;   // [D,D] Q diag(sqrt(lambda)): x = mu + root z has covariance sigma
} Gauss;

// Random orthogonal Q (QR of a Gaussian matrix) and eigenvalues lambda_i = scale (0.93^i + 0.05):
// anisotropic like a real modality gap, effective rank about 29 for D = 48.
static Gauss make_gauss(int D, double mean_scale, double scale, uint64_t stream) {
    Gauss g = {D, mallocCheck(sizeof(double) * D), mallocCheck(sizeof(double) * D * D), mallocCheck(sizeof(double) * D * D)};
    double* Q = mallocCheck(sizeof(double) * D * D);
    double* tau = mallocCheck(sizeof(double) * D);
    for (int k = 0; k < D * D; k++) Q[k] = philox_normal(test_seed(), stream, k);
    LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, D, D, Q, D, tau);
    LAPACKE_dorgqr(LAPACK_ROW_MAJOR, D, D, D, Q, D, tau);
    for (int j = 0; j < D; j++) {
        double s = sqrt(scale * (pow(0.93, j) + 0.05));
        for (int i = 0; i < D; i++) g.root[i * D + j] = Q[i * D + j] * s;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, D, D, D, 1.0, g.root, D, g.root, D, 0.0, g.sigma, D);
    for (int i = 0; i < D; i++) g.mu[i] = mean_scale * philox_normal(test_seed(), stream + 1, i);
    free(Q);
    free(tau);
    return g;
}

static void free_gauss(Gauss* g) {
    free(g->mu);
    free(g->sigma);
    free(g->root);
}

// n draws into out [n, D] (float), from Philox stream `stream`.
static void draw(const Gauss* g, int64_t n, uint64_t stream, float* out) {
    int D = g->D;
    double* z = mallocCheck(sizeof(double) * 1024 * D);
    double* x = mallocCheck(sizeof(double) * 1024 * D);
    for (int64_t k0 = 0; k0 < n; k0 += 1024) {
        int rows = (int)(n - k0 < 1024 ? n - k0 : 1024);
        for (size_t e = 0; e < (size_t)rows * D; e++) z[e] = philox_normal(test_seed(), stream, (uint64_t)k0 * D + e);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, D, D, 1.0, z, D, g->root, D, 0.0, x, D);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < D; i++) out[(size_t)(k0 + r) * D + i] = (float)(x[(size_t)r * D + i] + g->mu[i]);
    }
    free(z);
    free(x);
}

static double frob(const double* a, int D) {
    double s = 0;
    for (int k = 0; k < D * D; k++) s += a[k] * a[k];
    return sqrt(s);
}
static double trace(const double* a, int D) {
    double s = 0;
    for (int i = 0; i < D; i++) s += a[i * D + i];
    return s;
}
// Expected relative Frobenius error of a sample covariance of n draws: sqrt((||C||^2 + tr^2) / n) / ||C||
static double cov_error_scale(const double* C, int D, double n) {
    return sqrt((frob(C, D) * frob(C, D) + trace(C, D) * trace(C, D)) / n) / frob(C, D);
}

static double rel_cov_error(const float* est, const double* truth, int D) {
    double num = 0;
    for (int k = 0; k < D * D; k++) num += (est[k] - truth[k]) * (est[k] - truth[k]);
    return sqrt(num) / frob(truth, D);
}
static double mean_error(const float* est, const double* truth, int D) {
    double s = 0;
    for (int i = 0; i < D; i++) s += (est[i] - truth[i]) * (est[i] - truth[i]);
    return sqrt(s);
}

// The factor in the estimate factors its covariance (+ jitter).
static double chol_error(const GapEstimate* g) {
    int D = g->dim;
    double num = 0, den = 0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double p = 0;
            for (int k = 0; k <= (i < j ? i : j); k++) p += (double)g->chol[i * D + k] * g->chol[j * D + k];
            double c = g->cov[i * D + j] + (i == j ? g->jitter : 0);
            num += (p - c) * (p - c);
            den += c * c;
            if (j > i && g->chol[i * D + j] != 0) return INFINITY;
        }
    return sqrt(num / den);
}

// Text embeddings: clustered around a common direction like CLIP's (mean cosine about 0.6),
// unit norm.
static float* make_texts(int64_t n, int D, uint64_t stream) {
    float* t = mallocCheck(sizeof(float) * n * D);
    double* common = mallocCheck(sizeof(double) * D);
    for (int i = 0; i < D; i++) common[i] = philox_normal(test_seed(), stream, i) / sqrt((double)D);
    for (int64_t k = 0; k < n; k++) {
        double norm = 0;
        for (int i = 0; i < D; i++) {
            double x = common[i] + 0.8 * philox_normal(test_seed(), stream + 1, (uint64_t)k * D + i) / sqrt((double)D);
            t[k * D + i] = (float)x;
            norm += x * x;
        }
        for (int i = 0; i < D; i++) t[k * D + i] = (float)(t[k * D + i] / sqrt(norm));
    }
    free(common);
    return t;
}

// Images of pairs: v = t + g, g ~ truth.
static float* make_images(const float* texts, int64_t n, const Gauss* truth, uint64_t stream) {
    int D = truth->D;
    float* v = mallocCheck(sizeof(float) * n * D);
    draw(truth, n, stream, v);
    for (int64_t k = 0; k < n * D; k++) v[k] += texts[k];
    return v;
}

// ---------------------------------------------------------------- paired

static void check_paired(int D, int64_t n) {
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 10);
    float* t = make_texts(n, D, 20);
    float* v = make_images(t, n, &truth, 30);
    GapRows pairs = {v, NULL, t, NULL, n};
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_paired(&g, &pairs, D, NULL, err, sizeof err) == 0, "%s", err);
    double e_cov = rel_cov_error(g.cov, truth.sigma, D), tol_cov = 3 * cov_error_scale(truth.sigma, D, (double)n);
    double e_mu = mean_error(g.mu, truth.mu, D), tol_mu = 4 * sqrt(trace(truth.sigma, D) / n);
    printf("  paired D=%d N=%lld: ||mu - mu*|| = %.3g (tol %.3g), ||Sigma - Sigma*||/||Sigma*|| = %.3g (tol %.3g), "
           "shrinkage %.3g\n", D, (long long)n, e_mu, tol_mu, e_cov, tol_cov, g.shrinkage);
    CHECK(e_mu < tol_mu, "paired D=%d: mean error %.3g > %.3g", D, e_mu, tol_mu);
    CHECK(e_cov < tol_cov, "paired D=%d: covariance error %.3g > %.3g", D, e_cov, tol_cov);
    CHECK(g.n_used == n && g.n_rejected == 0 && g.setting == GAP_PAIRED, "bookkeeping: n_used %lld", g.n_used);
    CHECK(g.shrinkage >= 0 && g.shrinkage < 0.5, "shrinkage %g for N >> D", g.shrinkage);
    CHECK(chol_error(&g) < 1e-5, "chol does not factor cov: %.3g", chol_error(&g));
    gap_free(&g);
    free(t);
    free(v);
    free_gauss(&truth);
}

static void test_paired_d48(void) { check_paired(48, 20000); }
static void test_paired_d512(void) { check_paired(512, 4000); }

// N < D: the sample covariance is singular; Ledoit-Wolf makes it positive definite, with more
// shrinkage, and still closer to the truth than the raw sample covariance.
static void test_paired_few_pairs(void) {
    int D = 64, n = 40;
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 11);
    float* t = make_texts(n, D, 21);
    float* v = make_images(t, n, &truth, 31);
    GapRows pairs = {v, NULL, t, NULL, n};
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_paired(&g, &pairs, D, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(g.jitter == 0, "Ledoit-Wolf estimate needed jitter %g", g.jitter);
    CHECK(g.shrinkage > 0.05 && g.shrinkage <= 1, "shrinkage %g with N < D", g.shrinkage);
    // the raw sample covariance, for comparison
    double* raw = callocCheck((size_t)D * D, sizeof(double));
    double* mean = callocCheck(D, sizeof(double));
    for (int k = 0; k < n; k++)
        for (int i = 0; i < D; i++) mean[i] += ((double)v[k * D + i] - t[k * D + i]) / n;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++)
                raw[i * D + j] += ((double)v[k * D + i] - t[k * D + i] - mean[i]) * ((double)v[k * D + j] - t[k * D + j] - mean[j]) / n;
    double raw_err = 0;
    for (int k = 0; k < D * D; k++) raw_err += (raw[k] - truth.sigma[k]) * (raw[k] - truth.sigma[k]);
    raw_err = sqrt(raw_err) / frob(truth.sigma, D);
    double e = rel_cov_error(g.cov, truth.sigma, D);
    printf("  paired D=%d N=%d: shrinkage %.3f, error %.3f (raw sample covariance %.3f)\n", D, n, g.shrinkage, e, raw_err);
    CHECK(e < raw_err, "shrunk error %.3g not below the raw %.3g", e, raw_err);
    CHECK(e < 3 * cov_error_scale(truth.sigma, D, n), "error %.3g", e);
    gap_free(&g);
    free(raw);
    free(mean);
    free(t);
    free(v);
    free_gauss(&truth);
}

// The Ledoit-Wolf intensity and covariance equal scikit-learn's (skipped without it).
static void test_paired_vs_sklearn(void) {
    if (system("python3 -c 'import sklearn.covariance, numpy' >/dev/null 2>&1") != 0)
        SKIP("python3 with scikit-learn and numpy not available");
    int D = 24, n = 30;
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 12);
    float* d = mallocCheck(sizeof(float) * n * D);
    draw(&truth, n, 32, d);
    GapRows rows = {d, NULL, NULL, NULL, n};
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_paired(&g, &rows, D, NULL, err, sizeof err) == 0, "%s", err);
    char dir[] = "/tmp/tipcap_gap_XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char in[256], out[256], cmd[1024];
    snprintf(in, sizeof in, "%s/d.f32", dir);
    snprintf(out, sizeof out, "%s/lw.f64", dir);
    FILE* f = fopenCheck(in, "wb");
    fwriteCheck(d, sizeof(float), (size_t)n * D, f, in);
    fcloseCheck(f, in);
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import numpy as np; from sklearn.covariance import ledoit_wolf; "
             "x = np.fromfile('%s', dtype=np.float32).astype(np.float64).reshape(%d, %d); c, s = ledoit_wolf(x); "
             "np.concatenate([[s], c.ravel()]).tofile('%s')\"", in, n, D, out);
    REQUIRE(system(cmd) == 0, "python failed: %s", cmd);
    double* ref = mallocCheck(sizeof(double) * (1 + D * D));
    f = fopenCheck(out, "rb");
    freadCheck(ref, sizeof(double), 1 + (size_t)D * D, f, out);
    fcloseCheck(f, out);
    CHECK(fabs(g.shrinkage - ref[0]) < 1e-9, "shrinkage %.12g, sklearn %.12g", g.shrinkage, ref[0]);
    double num = 0, den = 0;
    for (int k = 0; k < D * D; k++) num += (g.cov[k] - ref[1 + k]) * (g.cov[k] - ref[1 + k]), den += ref[1 + k] * ref[1 + k];
    CHECK(sqrt(num / den) < 1e-6, "covariance differs from sklearn's by %.3g", sqrt(num / den));
    printf("  sklearn ledoit_wolf: shrinkage %.6f (ours %.6f), covariance relative difference %.2e\n", ref[0],
           g.shrinkage, sqrt(num / den));
    remove(in);
    remove(out);
    rmdir(dir);
    free(ref);
    gap_free(&g);
    free(d);
    free_gauss(&truth);
}

static void test_paired_too_few(void) {
    float v[8] = {0}, t[8] = {0};
    GapRows one = {v, NULL, t, NULL, 1};
    GapEstimate g;
    char err[256];
    CHECK(gap_estimate_paired(&g, &one, 8, NULL, err, sizeof err) == -1 && strstr(err, "1 pairs") &&
              strstr(err, "at least 2"),
          "one pair: \"%s\"", err);
    CHECK(g.mu == NULL, "partial estimate left after an error");
}

// ---------------------------------------------------------------- web

// 30% of the pairs get the image of another pair; the robust estimate recovers the truth from
// the clean 70% and rejects most mismatched pairs.
static void test_web_mismatched(void) {
    int D = 48;
    int64_t n = 20000;
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 13);
    float* t = make_texts(n, D, 23);
    float* v = make_images(t, n, &truth, 33);
    int64_t* image_of = mallocCheck(sizeof(int64_t) * n);
    uint8_t* mismatched = callocCheck(n, 1);
    int64_t n_bad = 0;
    for (int64_t k = 0; k < n; k++) {
        image_of[k] = k;
        if (philox_uniform(test_seed(), 43, k) < 0.3) {
            int64_t other = (k + 1 + (int64_t)(philox_uniform(test_seed(), 44, k) * (n - 1))) % n;
            image_of[k] = other;
            mismatched[k] = 1;
            n_bad++;
        }
    }
    GapRows pairs = {v, image_of, t, NULL, n};
    uint8_t* rejected = mallocCheck(n);
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_web(&g, &pairs, D, NULL, rejected, err, sizeof err) == 0, "%s", err);
    int64_t tp = 0, n_rej = 0;
    for (int64_t k = 0; k < n; k++) {
        n_rej += rejected[k];
        tp += rejected[k] && mismatched[k];
    }
    double precision = n_rej ? (double)tp / n_rej : 0, recall = (double)tp / n_bad;
    int64_t n_clean = n - n_bad;
    double e_cov = rel_cov_error(g.cov, truth.sigma, D), tol_cov = 3 * cov_error_scale(truth.sigma, D, (double)n_clean);
    double e_mu = mean_error(g.mu, truth.mu, D), tol_mu = 4 * sqrt(trace(truth.sigma, D) / n_clean);
    printf("  web D=%d N=%lld, %lld mismatched: rejected %lld; precision %.4f recall %.4f; ||mu - mu*|| = %.3g (tol %.3g), "
           "cov error %.3g (tol %.3g)\n", D, (long long)n, (long long)n_bad, (long long)n_rej, precision, recall, e_mu,
           tol_mu, e_cov, tol_cov);
    CHECK(g.n_rejected == n_rej && g.n_used == n - n_rej, "bookkeeping: n_rejected %lld, n_used %lld", g.n_rejected, g.n_used);
    CHECK(recall > 0.95, "only %.3f of the mismatched pairs rejected", recall);
    CHECK(precision > 0.95, "precision of rejection %.3f", precision);
    CHECK(e_mu < tol_mu, "web mean error %.3g > %.3g", e_mu, tol_mu);
    CHECK(e_cov < tol_cov, "web covariance error %.3g > %.3g", e_cov, tol_cov);
    // for contrast: the non-robust estimate on the same pairs is far off
    GapEstimate naive;
    REQUIRE(gap_estimate_paired(&naive, &pairs, D, NULL, err, sizeof err) == 0, "%s", err);
    double e_naive = rel_cov_error(naive.cov, truth.sigma, D);
    printf("  (paired estimator on the same pairs: cov error %.3g)\n", e_naive);
    CHECK(e_naive > 5 * e_cov, "the mismatched pairs do not matter? naive error %.3g", e_naive);
    gap_free(&naive);
    gap_free(&g);
    free(rejected);
    free(image_of);
    free(mismatched);
    free(t);
    free(v);
    free_gauss(&truth);
}

// Clean web pairs: almost nothing is rejected (the 0.999 quantile).
static void test_web_clean(void) {
    int D = 32;
    int64_t n = 5000;
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 14);
    float* t = make_texts(n, D, 24);
    float* v = make_images(t, n, &truth, 34);
    GapRows pairs = {v, NULL, t, NULL, n};
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_web(&g, &pairs, D, NULL, NULL, err, sizeof err) == 0, "%s", err);
    printf("  web clean D=%d N=%lld: rejected %lld\n", D, (long long)n, g.n_rejected);
    CHECK(g.n_rejected < n / 100, "rejected %lld of %lld clean pairs", g.n_rejected, (long long)n);
    double e_cov = rel_cov_error(g.cov, truth.sigma, D), tol = 3 * cov_error_scale(truth.sigma, D, (double)n);
    CHECK(e_cov < tol, "cov error %.3g > %.3g", e_cov, tol);
    gap_free(&g);
    free(t);
    free(v);
    free_gauss(&truth);
}

// ---------------------------------------------------------------- unpaired

// Images v = t' + g with t' drawn like (but apart from) the text set T: Cov V - Cov T = Sigma*.
static void test_unpaired(void) {
    int D = 32;
    int64_t n_img = 30000, n_txt = 30000;
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 15);
    Gauss text_dist = make_gauss(D, 0.2, 1.0 / D, 16);
    float* t_of_images = mallocCheck(sizeof(float) * n_img * D);
    float* texts = mallocCheck(sizeof(float) * n_txt * D);
    draw(&text_dist, n_img, 35, t_of_images);
    draw(&text_dist, n_txt, 36, texts);
    float* v = make_images(t_of_images, n_img, &truth, 37);
    GapRows images = {v, NULL, NULL, NULL, n_img}, text_rows = {texts, NULL, NULL, NULL, n_txt};
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_unpaired(&g, &images, &text_rows, D, NULL, err, sizeof err) == 0, "%s", err);
    // error of a difference of two independent sample covariances
    double* cov_v = mallocCheck(sizeof(double) * D * D);
    for (int k = 0; k < D * D; k++) cov_v[k] = truth.sigma[k] + text_dist.sigma[k];
    double fv = frob(cov_v, D), tv = trace(cov_v, D), ft = frob(text_dist.sigma, D), tt = trace(text_dist.sigma, D);
    double tol_cov = 3 * sqrt((fv * fv + tv * tv) / n_img + (ft * ft + tt * tt) / n_txt) / frob(truth.sigma, D);
    double tol_mu = 4 * sqrt(tv / n_img + tt / n_txt);
    double e_cov = rel_cov_error(g.cov, truth.sigma, D), e_mu = mean_error(g.mu, truth.mu, D);
    printf("  unpaired D=%d, %lld images, %lld texts: ||mu - mu*|| = %.3g (tol %.3g), cov error %.3g (tol %.3g), "
           "%lld eigenvalues raised to the floor %.3g\n", D, (long long)n_img, (long long)n_txt, e_mu, tol_mu, e_cov,
           tol_cov, g.n_clipped, g.psd_floor);
    CHECK(e_mu < tol_mu, "mean error %.3g > %.3g", e_mu, tol_mu);
    CHECK(e_cov < tol_cov, "cov error %.3g > %.3g", e_cov, tol_cov);
    CHECK(g.n_images == n_img && g.n_texts == n_txt && g.n_used == n_img + n_txt, "bookkeeping");
    CHECK(g.jitter == 0 && chol_error(&g) < 1e-5, "factor: jitter %g error %.3g", g.jitter, chol_error(&g));
    gap_free(&g);
    free(cov_v);
    free(t_of_images);
    free(texts);
    free(v);
    free_gauss(&truth);
    free_gauss(&text_dist);
}

// Where the texts vary more than the images, Cov V - Cov T has negative eigenvalues: they are
// raised to the floor, and the result is the projection: same eigenvectors, eigenvalues
// max(w, floor).
static void test_unpaired_psd_projection(void) {
    int D = 16;
    int64_t n = 4000;
    Gauss vd = make_gauss(D, 0.1, 1.0 / D, 17);
    float* v = mallocCheck(sizeof(float) * n * D);
    float* t = mallocCheck(sizeof(float) * n * D);
    draw(&vd, n, 38, v);
    draw(&vd, n, 39, t);
    for (int64_t k = 0; k < n; k++)  // texts vary more along dimension 0 and 1, images along 2
        t[k * D + 0] *= 3, t[k * D + 1] *= 2, v[k * D + 2] *= 3;
    GapRows images = {v, NULL, NULL, NULL, n}, texts = {t, NULL, NULL, NULL, n};
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_unpaired(&g, &images, &texts, D, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(g.n_clipped >= 2, "only %lld eigenvalues clipped", g.n_clipped);
    CHECK(g.psd_floor > 0 && g.jitter == 0, "floor %g jitter %g", g.psd_floor, g.jitter);
    double* A = mallocCheck(sizeof(double) * D * D);
    double* w = mallocCheck(sizeof(double) * D);
    for (int k = 0; k < D * D; k++) A[k] = g.cov[k];
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'L', D, A, D, w);
    CHECK(w[0] > g.psd_floor * (1 - 1e-4), "smallest eigenvalue %g below the floor %g", w[0], g.psd_floor);
    int at_floor = 0;
    for (int i = 0; i < D; i++) at_floor += fabs(w[i] - g.psd_floor) < 1e-4 * g.psd_floor + 1e-7 * w[D - 1];
    CHECK(at_floor == g.n_clipped, "%d eigenvalues at the floor, %lld reported", at_floor, g.n_clipped);
    gap_free(&g);
    // identical sets: Cov V - Cov T = 0, no gap to estimate
    GapRows same = {v, NULL, NULL, NULL, n};
    CHECK(gap_estimate_unpaired(&g, &same, &same, D, NULL, err, sizeof err) == -1 && strstr(err, "no positive eigenvalue"),
          "identical sets: \"%s\"", err);
    free(A);
    free(w);
    free(v);
    free(t);
    free_gauss(&vd);
}

// ---------------------------------------------------------------- text

static void test_text(void) {
    int D = 40;
    GapEstimate g;
    char err[512];
    REQUIRE(gap_estimate_text(&g, D, 0.016, NULL, NULL, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < D; i++) {
        CHECK(g.mu[i] == 0, "mu[%d] = %g", i, g.mu[i]);
        for (int j = 0; j < D; j++) {
            float want_cov = i == j ? 0.016f : 0.0f, want_chol = i == j ? sqrtf(0.016f) : 0.0f;
            CHECK(g.cov[i * D + j] == want_cov && fabsf(g.chol[i * D + j] - want_chol) < 1e-7f, "(%d,%d)", i, j);
        }
    }
    CHECK(g.sigma2 == 0.016 && g.n_used == 0 && g.setting == GAP_TEXT, "bookkeeping");
    // with a prior: its mu and covariance
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 18);
    float* t = make_texts(500, D, 25);
    float* v = make_images(t, 500, &truth, 40);
    GapRows pairs = {v, NULL, t, NULL, 500};
    GapEstimate prior, from_prior;
    REQUIRE(gap_estimate_paired(&prior, &pairs, D, NULL, err, sizeof err) == 0, "%s", err);
    snprintf(prior.source, sizeof prior.source, "prior.h5");
    REQUIRE(gap_estimate_text(&from_prior, D, 0.016, &prior, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(!memcmp(from_prior.mu, prior.mu, sizeof(float) * D) && !memcmp(from_prior.cov, prior.cov, sizeof(float) * D * D),
          "text with prior differs from the prior");
    CHECK(rel_err(from_prior.chol, prior.chol, (size_t)D * D) < 1e-6, "prior chol");
    CHECK(!strcmp(from_prior.source, "prior.h5"), "source '%s'", from_prior.source);
    CHECK(gap_estimate_text(&g, D + 1, 0.016, &prior, NULL, err, sizeof err) == -1 && strstr(err, "dimension 40"),
          "dimension mismatch: \"%s\"", err);
    gap_free(&g);
    CHECK(gap_estimate_text(&g, D, -1, NULL, NULL, err, sizeof err) == -1 && strstr(err, "sigma2"), "\"%s\"", err);
    gap_free(&prior);
    gap_free(&from_prior);
    free(t);
    free(v);
    free_gauss(&truth);
}

// ---------------------------------------------------------------- gap file

static void make_dir(char* dir) {
    strcpy(dir, "/tmp/tipcap_gapfile_XXXXXX");
    if (!mkdtemp(dir)) FATAL("mkdtemp failed");
}

static GapEstimate sample_estimate(int D) {
    Gauss truth = make_gauss(D, 0.05, 0.3 / D, 19);
    float* t = make_texts(300, D, 26);
    float* v = make_images(t, 300, &truth, 41);
    GapRows pairs = {v, NULL, t, NULL, 300};
    GapEstimate g;
    char err[512];
    if (gap_estimate_paired(&g, &pairs, D, NULL, err, sizeof err)) FATAL("%s", err);
    snprintf(g.source, sizeof g.source, "features.h5 (300 pairs)");
    free(t);
    free(v);
    free_gauss(&truth);
    return g;
}

static void test_file_round_trip(void) {
    char dir[64], path[128];
    make_dir(dir);
    snprintf(path, sizeof path, "%s/gap.h5", dir);
    GapEstimate g = sample_estimate(24), r;
    g.n_rejected = 7;
    g.jitter = 0;
    char err[512];
    REQUIRE(gap_write(path, &g, err, sizeof err) == 0, "%s", err);
    REQUIRE(gap_read(path, &r, err, sizeof err) == 0, "%s", err);
    CHECK(r.dim == 24 && r.setting == GAP_PAIRED && r.n_used == g.n_used && r.n_rejected == 7 &&
              r.shrinkage == g.shrinkage && !strcmp(r.source, g.source),
          "attributes differ");
    CHECK(!memcmp(r.mu, g.mu, sizeof(float) * 24) && !memcmp(r.cov, g.cov, sizeof(float) * 24 * 24) &&
              !memcmp(r.chol, g.chol, sizeof(float) * 24 * 24),
          "datasets differ");
    // readable by h5py as-is
    if (system("python3 -c 'import h5py' >/dev/null 2>&1") == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import h5py, numpy as np; f = h5py.File('%s', 'r'); "
                 "assert f.attrs['setting'] == 'paired', f.attrs['setting']; assert int(f.attrs['n_rejected']) == 7; "
                 "c = f['chol'][()]; s = f['cov'][()]; assert f['mu'].shape == (24,) and c.dtype == np.float32; "
                 "e = np.linalg.norm(c.astype(np.float64) @ c.T.astype(np.float64) - s) / np.linalg.norm(s); "
                 "assert e < 1e-5, e\"", path);
        CHECK(system(cmd) == 0, "h5py could not read the gap file as documented");
    } else {
        printf("  (h5py not available: the h5py check of the gap file is skipped)\n");
    }
    gap_free(&r);
    // no temporary left beside it
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
    CHECK(system(cmd) == 0, "files other than gap.h5 in %s", dir);
    remove(path);
    rmdir(dir);
    gap_free(&g);
}

static void expect_read_error(const char* path, const char* want) {
    GapEstimate r;
    char err[512] = "";
    int rc = gap_read(path, &r, err, sizeof err);
    CHECK(rc == -1 && strstr(err, want) && strstr(err, path), "reading %s: \"%s\" lacks \"%s\"", path, err, want);
    CHECK(r.mu == NULL, "partial read left");
}

static void test_file_errors(void) {
    char dir[64], path[160];
    make_dir(dir);
    char err[512];
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    expect_read_error(path, "cannot open the gap file");
    snprintf(path, sizeof path, "%s/text.h5", dir);
    FILE* f = fopenCheck(path, "w");
    fputs("not hdf5\n", f);
    fclose(f);
    expect_read_error(path, "not an HDF5 file");
    // chol that does not factor cov
    GapEstimate g = sample_estimate(12);
    snprintf(path, sizeof path, "%s/bad_chol.h5", dir);
    g.chol[5 * 12 + 2] += 0.1f;
    REQUIRE(gap_write(path, &g, err, sizeof err) == 0, "%s", err);
    expect_read_error(path, "/chol does not factor /cov");
    g.chol[5 * 12 + 2] -= 0.1f;
    // NaN in mu
    snprintf(path, sizeof path, "%s/nan.h5", dir);
    g.mu[3] = NAN;
    REQUIRE(gap_write(path, &g, err, sizeof err) == 0, "%s", err);
    expect_read_error(path, "/mu[3] is not finite");
    gap_free(&g);
    // wrong shape and missing attribute, written with h5py when present
    if (system("python3 -c 'import h5py' >/dev/null 2>&1") == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "python3 -c \"import h5py, numpy as np; f = h5py.File('%s/shape.h5', 'w'); f['mu'] = np.zeros(4, np.float32); "
                 "f['cov'] = np.eye(3, dtype=np.float32); f['chol'] = np.eye(4, dtype=np.float32); f.close(); "
                 "f = h5py.File('%s/attr.h5', 'w'); f['mu'] = np.zeros(4, np.float32); f['cov'] = np.eye(4, dtype=np.float32); "
                 "f['chol'] = np.eye(4, dtype=np.float32); f.attrs['setting'] = 'paired'; f.close()\"", dir, dir);
        REQUIRE(system(cmd) == 0, "h5py failed");
        snprintf(path, sizeof path, "%s/shape.h5", dir);
        expect_read_error(path, "/cov has shape [3, 3], want [4, 4]");
        remove(path);
        snprintf(path, sizeof path, "%s/attr.h5", dir);
        expect_read_error(path, "attribute 'n_used' is missing");
        remove(path);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

// ---------------------------------------------------------------- KL

static void test_kl_closed_form(void) {
    int D = 20;
    GapEstimate prior;
    char err[256];
    REQUIRE(gap_estimate_text(&prior, D, 0.02, NULL, NULL, err, sizeof err) == 0, "%s", err);
    GapPrior p;
    REQUIRE(gap_prior_init(&p, &prior, err, sizeof err) == 0, "%s", err);
    float* mu = callocCheck(D, sizeof(float));
    float* L = callocCheck((size_t)D * D, sizeof(float));
    for (int i = 0; i < D; i++) L[i * D + i] = sqrtf(0.02f);
    CHECK(fabs(gap_kl(&p, mu, L, 1, NULL, NULL)) < 1e-6, "KL to itself %g", gap_kl(&p, mu, L, 1, NULL, NULL));
    // q = N(m, s2 I): KL = D/2 (s2/s0 - 1 - log(s2/s0)) + ||m||^2 / (2 s0)
    double s2 = 0.05, s0 = 0.02, m2 = 0;
    for (int i = 0; i < D; i++) L[i * D + i] = (float)sqrt(s2), mu[i] = 0.01f * (i - 5), m2 += (double)mu[i] * mu[i];
    s2 = (double)L[0] * L[0];
    s0 = (double)prior.chol[0] * prior.chol[0];
    double want = D / 2.0 * (s2 / s0 - 1 - log(s2 / s0)) + m2 / (2 * s0);
    double got = gap_kl(&p, mu, L, 1, NULL, NULL);
    CHECK(fabs(got - want) < 1e-9 * want, "KL %.12g, closed form %.12g", got, want);
    L[3 * D + 3] = 0;
    CHECK(isinf(gap_kl(&p, mu, L, 1, NULL, NULL)), "degenerate L gives a finite KL");
    free(mu);
    free(L);
    gap_prior_free(&p);
    gap_free(&prior);
}

// Gradients against central differences (the KL is computed in double from float inputs; the
// step is the actual float difference).
static void test_kl_gradients(void) {
    int D = 12;
    GapEstimate prior = sample_estimate(D);
    GapPrior p;
    char err[256];
    REQUIRE(gap_prior_init(&p, &prior, err, sizeof err) == 0, "%s", err);
    float* mu = mallocCheck(sizeof(float) * D);
    float* L = callocCheck((size_t)D * D, sizeof(float));
    for (int i = 0; i < D; i++) {
        mu[i] = prior.mu[i] + 0.02f * philox_normal(test_seed(), 50, i);
        for (int j = 0; j <= i; j++)
            L[i * D + j] = prior.chol[i * D + j] * (1 + 0.2f * philox_normal(test_seed(), 51, i * D + j));
    }
    for (int j = 0; j + 1 < D; j++) L[j * D + j + 1] = 7.0f;  // the upper triangle is ignored
    float* dmu = callocCheck(D, sizeof(float));
    float* dL = callocCheck((size_t)D * D, sizeof(float));
    float w = 0.5f;
    gap_kl(&p, mu, L, w, dmu, dL);
    double worst = 0;
    for (int k = 0; k < D + D * D; k++) {
        int is_mu = k < D, idx = is_mu ? k : k - D;
        if (!is_mu && idx % D > idx / D) {
            CHECK(dL[idx] == 0, "upper dL[%d] = %g", idx, dL[idx]);
            continue;
        }
        float* x = is_mu ? &mu[idx] : &L[idx];
        float x0 = *x, h = 1e-3f * fmaxf(fabsf(x0), 1e-2f);
        *x = x0 + h;
        double up = gap_kl(&p, mu, L, 1, NULL, NULL);
        double step_up = (double)*x - x0;
        *x = x0 - h;
        double down = gap_kl(&p, mu, L, 1, NULL, NULL);
        double step_down = x0 - (double)*x;
        *x = x0;
        double fd = w * (up - down) / (step_up + step_down), an = is_mu ? dmu[idx] : dL[idx];
        double e = fabs(fd - an) / fmax(fabs(fd), 1e-2);
        if (e > worst) worst = e;
        CHECK(e < 1e-3, "%s[%d]: analytic %.8g, finite difference %.8g", is_mu ? "dmu" : "dL", idx, an, fd);
    }
    printf("  KL gradient check D=%d: worst relative difference %.2e\n", D, worst);
    free(mu);
    free(L);
    free(dmu);
    free(dL);
    gap_prior_free(&p);
    gap_free(&prior);
}


// ---------------------------------------------------------------- input selection

// An in-memory store: 100 images with 3 captions each (rows 3i..3i+2), and 10 captions without
// an image. Only the indices matter here.
static FeatureStore index_store(void) {
    FeatureStore fs;
    memset(&fs, 0, sizeof fs);
    fs.dim = 4;
    fs.n_images = 100;
    fs.n_texts = 310;
    fs.image_index = mallocCheck(sizeof(int64_t) * 310);
    for (int k = 0; k < 310; k++) fs.image_index[k] = k < 300 ? k / 3 : -1;
    return fs;
}

static void test_inputs_selection(void) {
    FeatureStore fs = index_store();
    GapInputOptions o = gap_input_options_default();
    GapInputs a, b;
    char err[512];
    o.pairs = 50;
    o.seed = test_seed();
    REQUIRE(gap_inputs_select(&a, &fs, "s.h5", GAP_PAIRED, &o, err, sizeof err) == 0, "%s", err);
    CHECK(a.n_pairs == 50 && a.n_available == 300 && a.mismatched == NULL, "n_pairs %lld", (long long)a.n_pairs);
    for (int64_t k = 0; k < a.n_pairs; k++) {
        CHECK(a.image_rows[k] == fs.image_index[a.text_rows[k]], "pair %lld is not a true pair", (long long)k);
        CHECK(k == 0 || a.text_rows[k] > a.text_rows[k - 1], "text rows not distinct and ascending");
    }
    REQUIRE(gap_inputs_select(&b, &fs, "s.h5", GAP_PAIRED, &o, err, sizeof err) == 0, "%s", err);
    CHECK(!memcmp(a.text_rows, b.text_rows, sizeof(int64_t) * 50), "same seed, different selection");
    gap_inputs_free(&b);
    o.seed++;
    REQUIRE(gap_inputs_select(&b, &fs, "s.h5", GAP_PAIRED, &o, err, sizeof err) == 0, "%s", err);
    CHECK(memcmp(a.text_rows, b.text_rows, sizeof(int64_t) * 50), "another seed, the same selection");
    gap_inputs_free(&a);
    gap_inputs_free(&b);
    // a fraction; web with 20% mismatched, each with an image other than its own
    o.pairs = 0;
    o.pair_fraction = 0.5;
    o.mismatch = 0.2;
    REQUIRE(gap_inputs_select(&a, &fs, "s.h5", GAP_WEB, &o, err, sizeof err) == 0, "%s", err);
    CHECK(a.n_pairs == 150 && a.n_mismatched == 30, "n_pairs %lld n_mismatched %lld", (long long)a.n_pairs,
          (long long)a.n_mismatched);
    int64_t flagged = 0;
    for (int64_t k = 0; k < a.n_pairs; k++) {
        int64_t own = fs.image_index[a.text_rows[k]];
        flagged += a.mismatched[k];
        CHECK(a.mismatched[k] ? a.image_rows[k] != own && a.image_rows[k] >= 0 && a.image_rows[k] < 100
                              : a.image_rows[k] == own,
              "pair %lld: image %lld, own %lld, mismatched %d", (long long)k, (long long)a.image_rows[k], (long long)own,
              a.mismatched[k]);
    }
    CHECK(flagged == 30, "%lld flagged", (long long)flagged);
    gap_inputs_free(&a);
    // unpaired, disjoint: 50 images; the captions of the other 50 (150) and the 10 orphans
    REQUIRE(gap_inputs_select(&a, &fs, "s.h5", GAP_UNPAIRED, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(a.n_images == 50 && a.n_texts == 160, "%lld images, %lld texts", (long long)a.n_images, (long long)a.n_texts);
    uint8_t used[100] = {0};
    for (int64_t i = 0; i < a.n_images; i++) used[a.image_set[i]] = 1;
    for (int64_t k = 0; k < a.n_texts; k++) {
        int64_t img = fs.image_index[a.text_set[k]];
        CHECK(img < 0 || !used[img], "caption %lld of a used image %lld in the text set", (long long)a.text_set[k],
              (long long)img);
    }
    gap_inputs_free(&a);
    REQUIRE(gap_inputs_select(&a, &fs, "s.h5", GAP_TEXT, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(a.n_pairs == 0 && a.n_images == 0 && a.n_texts == 0, "text selects nothing");
    gap_inputs_free(&a);
    // errors
    o = gap_input_options_default();
    o.pairs = 301;
    CHECK(gap_inputs_select(&a, &fs, "s.h5", GAP_PAIRED, &o, err, sizeof err) == -1 &&
              strstr(err, "s.h5: 301 pairs asked for, but only 300 captions have an image"),
          "\"%s\"", err);
    o.pairs = 0;
    o.pair_fraction = 0;
    CHECK(gap_inputs_select(&a, &fs, "s.h5", GAP_PAIRED, &o, err, sizeof err) == -1 && strstr(err, "pair fraction 0"),
          "\"%s\"", err);
    for (int k = 0; k < 310; k++) fs.image_index[k] = -1;
    CHECK(gap_inputs_select(&a, &fs, "s.h5", GAP_PAIRED, NULL, err, sizeof err) == -1 &&
              strstr(err, "too few pairs for the paired setting: 0 selected of 0"),
          "no captioned image: \"%s\"", err);
    CHECK(a.text_rows == NULL, "partial selection left after an error");
    // unpaired with no caption of an image: disjoint halves would drop half the images for nothing
    REQUIRE(gap_inputs_select(&a, &fs, "s.h5", GAP_UNPAIRED, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(a.n_images == 100 && a.n_texts == 310 && a.split == GAP_SPLIT_ALL,
          "no pairs: %lld images, %lld texts, split %d (every row expected)", (long long)a.n_images, (long long)a.n_texts,
          a.split);
    gap_inputs_free(&a);
    free(fs.image_index);
}

// ---------------------------------------------------------------- the simulator

// On tipcap-synth's CLIP-like features (Flickr30k test captions, D = 512, a fresh world seed),
// where genuine and mismatched pairs overlap as in real CLIP (matched cosine about 0.29,
// unpaired 0.19). Its truth is the gap g in v = normalize(c + g), before the normalisation and
// beside the caption-to-consensus difference c - t, so the estimate of v - t is compared with it
// in direction only: the mean, and the leading eigenvectors.
static double top_subspace_overlap(const float* est, const float* truth, int D, int k) {
    double* a = mallocCheck(sizeof(double) * D * D);
    double* b = mallocCheck(sizeof(double) * D * D);
    double* wa = mallocCheck(sizeof(double) * D);
    double* wb = mallocCheck(sizeof(double) * D);
    for (int e = 0; e < D * D; e++) a[e] = est[e], b[e] = truth[e];
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', D, a, D, wa);
    LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'L', D, b, D, wb);
    double s = 0;  // ||Qa^T Qb||_F^2 / k over the top k eigenvectors (columns D-k..D-1)
    for (int i = D - k; i < D; i++)
        for (int j = D - k; j < D; j++) {
            double d = 0;
            for (int r = 0; r < D; r++) d += a[r * D + i] * b[r * D + j];
            s += d * d;
        }
    free(a), free(b), free(wa), free(wb);
    return s / k;
}

static void test_simulator(void) {
    Corpus c;
    char err[512];
    REQUIRE(corpus_load("data/captions/flickr30k_karpathy_test.json", SPLIT_TEST, &c, err, sizeof err) == 0, "%s", err);
    SynthOptions o = synth_default_options();
    o.seed = test_seed();
    FeatureStore fs;
    REQUIRE(synth_generate(&o, &c, SPLIT_ALL, NULL, &fs, err, sizeof err) == 0, "%s", err);
    REQUIRE(fs.true_gap_mu && fs.true_gap_cov, "the simulator stored no ground truth");
    int D = fs.dim;
    GapSetting settings[] = {GAP_PAIRED, GAP_UNPAIRED};
    for (int s = 0; s < 2; s++) {
        GapInputs in;
        GapEstimate g;
        REQUIRE(gap_inputs_select(&in, &fs, "synth", settings[s], NULL, err, sizeof err) == 0, "%s", err);
        GapRows a = s == 0 ? gap_inputs_pair_rows(&in, &fs) : gap_inputs_image_rows(&in, &fs);
        GapRows b = gap_inputs_text_rows(&in, &fs);
        int rc = s == 0 ? gap_estimate_paired(&g, &a, D, NULL, err, sizeof err)
                        : gap_estimate_unpaired(&g, &a, &b, D, NULL, err, sizeof err);
        REQUIRE(rc == 0, "%s", err);
        double dot = 0, n1 = 0, n2 = 0;
        for (int i = 0; i < D; i++)
            dot += (double)g.mu[i] * fs.true_gap_mu[i], n1 += (double)g.mu[i] * g.mu[i],
                n2 += (double)fs.true_gap_mu[i] * fs.true_gap_mu[i];
        double cosine = dot / sqrt(n1 * n2), overlap = top_subspace_overlap(g.cov, fs.true_gap_cov, D, 5);
        printf("  simulator, %s: cos(mu, mu*) = %.3f, top-5 eigenspace overlap with Sigma* %.3f\n",
               gap_setting_name(settings[s]), cosine, overlap);
        CHECK(cosine > 0.8 && overlap > 0.8, "%s: the estimate does not point along the truth", gap_setting_name(settings[s]));
        gap_free(&g);
        gap_inputs_free(&in);
    }
    // web: 30% mismatched on purpose, and none
    double fractions[] = {0.3, 0.0};
    for (int f = 0; f < 2; f++) {
        GapInputOptions io = gap_input_options_default();
        io.mismatch = fractions[f];
        io.seed = test_seed();
        GapInputs in;
        GapEstimate g;
        REQUIRE(gap_inputs_select(&in, &fs, "synth", GAP_WEB, &io, err, sizeof err) == 0, "%s", err);
        GapRows pairs = gap_inputs_pair_rows(&in, &fs);
        uint8_t* rejected = mallocCheck(in.n_pairs);
        REQUIRE(gap_estimate_web(&g, &pairs, D, NULL, rejected, err, sizeof err) == 0, "%s", err);
        int64_t tp = 0, n_rej = 0;
        for (int64_t k = 0; k < in.n_pairs; k++) n_rej += rejected[k], tp += rejected[k] && in.mismatched[k];
        double recall = in.n_mismatched ? (double)tp / in.n_mismatched : 1, precision = n_rej ? (double)tp / n_rej : 1;
        printf("  simulator, web with %lld of %lld pairs mismatched: rejected %lld, recall %.3f, precision %.3f\n",
               (long long)in.n_mismatched, (long long)in.n_pairs, (long long)n_rej, recall, precision);
        if (in.n_mismatched) CHECK(recall > 0.75 && precision > 0.75, "recall %.3f precision %.3f", recall, precision);
        else CHECK(n_rej * 100 < in.n_pairs, "%lld of %lld clean pairs rejected", (long long)n_rej, (long long)in.n_pairs);
        free(rejected);
        gap_free(&g);
        gap_inputs_free(&in);
    }
    features_free(&fs);
    corpus_free(&c);
}

// ---------------------------------------------------------------- tipcap-prep gap

// A feature store with an exact truth: image k has caption k (v = t + g, g ~ truth), and
// n_orphans more captions have no image. Not normalised (normalising would change the truth).
static void write_store(const char* path, const Gauss* truth, int n_img, int n_orphans) {
    int D = truth->D, n_txt = n_img + n_orphans;
    FeatureStore fs;
    memset(&fs, 0, sizeof fs);
    fs.dim = D;
    fs.n_images = n_img;
    fs.n_texts = n_txt;
    fs.text_emb = make_texts(n_txt, D, 60);
    fs.image_emb = make_images(fs.text_emb, n_img, truth, 70);  // make_texts takes streams 60 and 61
    fs.image_keys = mallocCheck(sizeof(char*) * n_img);
    fs.captions = mallocCheck(sizeof(char*) * n_txt);
    fs.image_index = mallocCheck(sizeof(int64_t) * n_txt);
    for (int k = 0; k < n_txt; k++) {
        char s[32];
        snprintf(s, sizeof s, "caption %d", k);
        fs.captions[k] = strdupCheck(s);
        fs.image_index[k] = k < n_img ? k : -1;
        if (k < n_img) {
            snprintf(s, sizeof s, "img_%d.jpg", k);
            fs.image_keys[k] = strdupCheck(s);
        }
    }
    snprintf(fs.clip_model, sizeof fs.clip_model, "synthetic");
    snprintf(fs.source, sizeof fs.source, "test_gap");
    char err[512];
    if (features_write(path, &fs, 0, err, sizeof err)) FATAL("%s", err);
    features_free(&fs);
}

typedef struct {
    int argc;
    char* argv[32];
} Cli;

static void cli_child(void* arg) {
    Cli* c = arg;
    dup2(2, 1);  // stdout into the captured stream too
    exit(prep_gap_main(c->argc, c->argv));
}

// Runs `tipcap-prep gap ARGS...` (NULL-terminated) in a child; out gets stdout and stderr.
static int run_gap(char* out, size_t cap, ...) {
    Cli c = {1, {"gap"}};
    va_list ap;
    va_start(ap, cap);
    for (char* a; (a = va_arg(ap, char*)) && c.argc < 31;) c.argv[c.argc++] = a;
    va_end(ap);
    return run_captured(cli_child, &c, out, cap);
}

// Only the expected files in the directory: no temporary left behind.
static int count_files(const char* dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", dir);
    FILE* p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static char cli_dir[64], store_path[128], out_path[128];
static Gauss cli_truth;
static const int cli_D = 32, cli_images = 6000, cli_orphans = 500;

static void cli_setup(void) {
    if (cli_dir[0]) return;
    make_dir(cli_dir);
    snprintf(store_path, sizeof store_path, "%s/features.h5", cli_dir);
    snprintf(out_path, sizeof out_path, "%s/gap.h5", cli_dir);
    cli_truth = make_gauss(cli_D, 0.05, 0.3 / cli_D, 62);
    write_store(store_path, &cli_truth, cli_images, cli_orphans);
}

static void test_cli_paired(void) {
    cli_setup();
    char out[8192], err[512];
    int st = run_gap(out, sizeof out, "--setting", "paired", "--features", store_path, "--out", out_path, "--pairs", "4000",
                     "--seed", "3", NULL);
    REQUIRE(st == 0, "status %d:\n%s", st, out);
    GapEstimate g;
    REQUIRE(gap_read(out_path, &g, err, sizeof err) == 0, "%s", err);
    double e_cov = rel_cov_error(g.cov, cli_truth.sigma, cli_D), tol = 3 * cov_error_scale(cli_truth.sigma, cli_D, 4000);
    CHECK(g.setting == GAP_PAIRED && g.n_used == 4000 && g.dim == cli_D, "setting %d n_used %lld", g.setting, g.n_used);
    CHECK(e_cov < tol, "cov error %.3g > %.3g", e_cov, tol);
    CHECK(mean_error(g.mu, cli_truth.mu, cli_D) < 4 * sqrt(trace(cli_truth.sigma, cli_D) / 4000), "mean error");
    CHECK(strstr(g.source, "features.h5: 4000 pairs of 6000 (seed 3)"), "source '%s'", g.source);
    gap_free(&g);
    // a fraction; the same seed gives the same file
    st = run_gap(out, sizeof out, "--setting", "paired", "--features", store_path, "--out", out_path, "--pair-fraction",
                 "0.25", NULL);
    REQUIRE(st == 0 && gap_read(out_path, &g, err, sizeof err) == 0, "status %d: %s", st, out);
    CHECK(g.n_used == 1500, "fraction 0.25 of 6000 pairs: n_used %lld", g.n_used);
    GapEstimate again;
    REQUIRE(run_gap(out, sizeof out, "--setting", "paired", "--features", store_path, "--out", out_path,
                    "--pair-fraction", "0.25", NULL) == 0 && gap_read(out_path, &again, err, sizeof err) == 0, "%s", out);
    CHECK(!memcmp(g.cov, again.cov, sizeof(float) * cli_D * cli_D), "same seed, different estimate");
    gap_free(&g);
    gap_free(&again);
    CHECK(count_files(cli_dir) == 2, "files left beside the outputs: %d", count_files(cli_dir));
}

static void test_cli_web(void) {
    cli_setup();
    char out[8192], err[512];
    int st = run_gap(out, sizeof out, "--setting", "web", "--features", store_path, "--out", out_path, "--mismatch", "0.3",
                     "--seed", "5", NULL);
    REQUIRE(st == 0, "status %d:\n%s", st, out);
    printf("%s", out);
    const char* r = strstr(out, "(recall ");
    const char* p = strstr(out, "precision ");
    REQUIRE(r && p && strstr(out, "of the 1800 mismatched on purpose"), "no rejection report:\n%s", out);
    double recall = strtod(r + 8, NULL), precision = strtod(p + 10, NULL);
    CHECK(recall > 0.95 && precision > 0.95, "recall %.4f precision %.4f", recall, precision);
    GapEstimate g;
    REQUIRE(gap_read(out_path, &g, err, sizeof err) == 0, "%s", err);
    CHECK(g.setting == GAP_WEB && g.n_used + g.n_rejected == cli_images, "n_used %lld n_rejected %lld", g.n_used, g.n_rejected);
    double e_cov = rel_cov_error(g.cov, cli_truth.sigma, cli_D), tol = 3 * cov_error_scale(cli_truth.sigma, cli_D, 4200);
    CHECK(e_cov < tol, "web cov error %.3g > %.3g", e_cov, tol);
    gap_free(&g);
}

static void test_cli_unpaired(void) {
    cli_setup();
    char out[8192], err[512];
    int st = run_gap(out, sizeof out, "--setting", "unpaired", "--features", store_path, "--out", out_path, NULL);
    REQUIRE(st == 0, "status %d:\n%s", st, out);
    GapEstimate g;
    REQUIRE(gap_read(out_path, &g, err, sizeof err) == 0, "%s", err);
    // disjoint halves: 3000 images, the 3000 captions of the other images and the 500 orphans
    CHECK(g.n_images == 3000 && g.n_texts == 3500, "split: %lld images, %lld texts", g.n_images, g.n_texts);
    CHECK(g.setting == GAP_UNPAIRED && g.psd_floor > 0, "setting/floor");
    // Both sets come from the same text distribution, so Cov V - Cov T is again Sigma*; the
    // tolerance adds the errors of the two sample covariances, C_T measured on the texts.
    int D = cli_D, n_txt = cli_images + cli_orphans;
    float* t = make_texts(n_txt, D, 60);
    double* ct = callocCheck((size_t)D * D, sizeof(double));
    double* mean = callocCheck(D, sizeof(double));
    for (int k = 0; k < n_txt; k++)
        for (int i = 0; i < D; i++) mean[i] += (double)t[k * D + i] / n_txt;
    for (int k = 0; k < n_txt; k++)
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) ct[i * D + j] += (t[k * D + i] - mean[i]) * (t[k * D + j] - mean[j]) / (n_txt - 1);
    double* cv = mallocCheck(sizeof(double) * D * D);
    for (int k = 0; k < D * D; k++) cv[k] = ct[k] + cli_truth.sigma[k];
    double fv = frob(cv, D), tv = trace(cv, D), ft = frob(ct, D), tt = trace(ct, D);
    double tol = 3 * sqrt((fv * fv + tv * tv) / g.n_images + (ft * ft + tt * tt) / g.n_texts) / frob(cli_truth.sigma, D);
    double tol_mu = 4 * sqrt(tv / g.n_images + tt / g.n_texts);
    double e_cov = rel_cov_error(g.cov, cli_truth.sigma, D), e_mu = mean_error(g.mu, cli_truth.mu, D);
    printf("  unpaired through the CLI: cov error %.3g (tol %.3g), mean error %.3g (tol %.3g)\n", e_cov, tol, e_mu, tol_mu);
    CHECK(e_cov < tol, "cov error %.3g > %.3g", e_cov, tol);
    CHECK(e_mu < tol_mu, "mean error %.3g > %.3g", e_mu, tol_mu);
    free(t);
    free(ct);
    free(mean);
    free(cv);
    gap_free(&g);
    st = run_gap(out, sizeof out, "--setting", "unpaired", "--features", store_path, "--out", out_path, "--split", "all", NULL);
    REQUIRE(st == 0 && gap_read(out_path, &g, err, sizeof err) == 0, "status %d:\n%s", st, out);
    CHECK(g.n_images == cli_images && g.n_texts == cli_images + cli_orphans, "split all: %lld, %lld", g.n_images, g.n_texts);
    gap_free(&g);
}

static void test_cli_text(void) {
    cli_setup();
    char out[8192], err[512], prior_path[160];
    snprintf(prior_path, sizeof prior_path, "%s/prior.h5", cli_dir);
    int st = run_gap(out, sizeof out, "--setting", "text", "--features", store_path, "--out", prior_path, "--sigma2", "0.02", NULL);
    REQUIRE(st == 0, "status %d:\n%s", st, out);
    GapEstimate g, p;
    REQUIRE(gap_read(prior_path, &p, err, sizeof err) == 0, "%s", err);
    CHECK(p.dim == cli_D && p.sigma2 == 0.02 && p.cov[0] == 0.02f && p.mu[0] == 0, "sigma2 I from --features' dimension");
    st = run_gap(out, sizeof out, "--setting", "text", "--dim", "7", "--out", out_path, NULL);
    REQUIRE(st == 0 && gap_read(out_path, &g, err, sizeof err) == 0, "status %d:\n%s", st, out);
    CHECK(g.dim == 7 && g.sigma2 == 0.016, "default sigma2 with --dim: D %d sigma2 %g", g.dim, g.sigma2);
    gap_free(&g);
    // a prior gap file: its mu and Sigma
    st = run_gap(out, sizeof out, "--setting", "paired", "--features", store_path, "--out", prior_path, NULL);
    REQUIRE(st == 0, "%s", out);
    gap_free(&p);
    REQUIRE(gap_read(prior_path, &p, err, sizeof err) == 0, "%s", err);
    st = run_gap(out, sizeof out, "--setting", "text", "--prior", prior_path, "--out", out_path, NULL);
    REQUIRE(st == 0 && gap_read(out_path, &g, err, sizeof err) == 0, "status %d:\n%s", st, out);
    CHECK(g.setting == GAP_TEXT && !memcmp(g.cov, p.cov, sizeof(float) * cli_D * cli_D) &&
              !memcmp(g.mu, p.mu, sizeof(float) * cli_D) && strstr(g.source, "prior.h5"),
          "text from a prior: source '%s'", g.source);
    gap_free(&g);
    gap_free(&p);
    remove(prior_path);
}

// Bad input: a clear error, a non-zero status, and no file written (an existing output stays).
static void expect_cli_error(int want_status, const char* want, ...) {
    char out[8192];
    Cli c = {1, {"gap"}};
    va_list ap;
    va_start(ap, want);
    for (char* a; (a = va_arg(ap, char*)) && c.argc < 31;) c.argv[c.argc++] = a;
    va_end(ap);
    FILE* f = fopenCheck(out_path, "w");
    fputs("previous\n", f);
    fclose(f);
    int files = count_files(cli_dir);
    int st = run_captured(cli_child, &c, out, sizeof out);
    CHECK(st == want_status, "status %d (want %d) for \"%s\":\n%s", st, want_status, want, out);
    CHECK(strstr(out, want) != NULL, "error lacks \"%s\":\n%s", want, out);
    char buf[32] = "";
    f = fopenCheck(out_path, "r");
    CHECK(fgets(buf, sizeof buf, f) && !strcmp(buf, "previous\n"), "the existing output was replaced (\"%s\")", want);
    fclose(f);
    CHECK(count_files(cli_dir) == files, "a file was left behind (\"%s\")", want);
}

static void test_cli_errors(void) {
    cli_setup();
    char missing[160], few[160];
    snprintf(missing, sizeof missing, "%s/nope.h5", cli_dir);
    expect_cli_error(1, "nope.h5", "--setting", "paired", "--features", missing, "--out", out_path, NULL);
    expect_cli_error(2, "--setting 'pairs' is not one of paired|web|unpaired|text", "--setting", "pairs", "--features",
                     store_path, "--out", out_path, NULL);
    expect_cli_error(2, "--setting is required", "--features", store_path, "--out", out_path, NULL);
    expect_cli_error(2, "--out is required", "--setting", "paired", "--features", store_path, NULL);
    expect_cli_error(2, "--features is required for --setting web", "--setting", "web", "--out", out_path, NULL);
    expect_cli_error(1, "too few pairs for the paired setting: 1 selected", "--setting", "paired", "--features", store_path,
                     "--out", out_path, "--pairs", "1", NULL);
    expect_cli_error(1, "99999 pairs asked for, but only 6000 captions have an image", "--setting", "paired", "--features",
                     store_path, "--out", out_path, "--pairs", "99999", NULL);
    expect_cli_error(1, "pair fraction 1.5 is not in (0, 1]", "--setting", "paired", "--features", store_path, "--out",
                     out_path, "--pair-fraction", "1.5", NULL);
    expect_cli_error(2, "--mismatch and --web-* apply to --setting web, not paired", "--setting", "paired", "--features",
                     store_path, "--out", out_path, "--mismatch", "0.3", NULL);
    expect_cli_error(2, "--pairs: 'ten' is not an integer", "--setting", "paired", "--features", store_path, "--out",
                     out_path, "--pairs", "ten", NULL);
    expect_cli_error(2, "--dim: 99999999999 is outside [1, 1048576]", "--setting", "text", "--dim", "99999999999", "--out",
                     out_path, NULL);
    expect_cli_error(1, "mismatch fraction 1 is not in [0, 1)", "--setting", "web", "--features", store_path, "--out",
                     out_path, "--mismatch", "1", NULL);
    char not_hdf5[160];
    snprintf(not_hdf5, sizeof not_hdf5, "%s/prior.txt", cli_dir);
    FILE* f = fopenCheck(not_hdf5, "w");
    fputs("mu = 0\n", f);
    fclose(f);
    expect_cli_error(1, "prior.txt: not an HDF5 file", "--setting", "text", "--prior", not_hdf5, "--out", out_path, NULL);
    remove(not_hdf5);
    expect_cli_error(1, "needs the dimension", "--setting", "text", "--out", out_path, NULL);
    // a store with a single captioned image: too few pairs whatever is asked
    Gauss tiny = make_gauss(8, 0.05, 0.1, 63);
    snprintf(few, sizeof few, "%s/few.h5", cli_dir);
    write_store(few, &tiny, 1, 3);
    expect_cli_error(1, "too few pairs for the web setting: 1 selected of 1 captions with an image", "--setting", "web",
                     "--features", few, "--out", out_path, NULL);
    expect_cli_error(1, "too few rows for the unpaired setting", "--setting", "unpaired", "--features", few, "--out",
                     out_path, NULL);
    remove(few);
    // no caption with an image (the unpaired setting's own data): every image is used, and it says so
    char unpaired[160], out[8192];
    snprintf(unpaired, sizeof unpaired, "%s/no_pairs.h5", cli_dir);
    write_store(unpaired, &tiny, 40, 0);
    FeatureStore fs;
    char err[512];
    REQUIRE(features_read(unpaired, &fs, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < fs.n_texts; k++) fs.image_index[k] = -1;
    REQUIRE(features_write(unpaired, &fs, 0, err, sizeof err) == 0, "%s", err);
    features_free(&fs);
    int st = run_gap(out, sizeof out, "--setting", "unpaired", "--features", unpaired, "--out", out_path, NULL);
    GapEstimate g;
    CHECK(st == 0 && strstr(out, "no caption of") && strstr(out, "every image and caption is used") &&
              strstr(out, "40 images and 40 captions"), "status %d:\n%s", st, out);
    if (st == 0 && gap_read(out_path, &g, err, sizeof err) == 0) {
        CHECK(g.n_images == 40 && g.n_texts == 40, "the gap file says %lld images, %lld captions", g.n_images, g.n_texts);
        gap_free(&g);
    }
    remove(unpaired);
    free_gauss(&tiny);
    remove(out_path);
}

static void test_cli_cleanup(void) {
    if (!cli_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", cli_dir);
    CHECK(system(cmd) == 0, "cleanup");
    free_gauss(&cli_truth);
}

int main(void) {
    test_seed();
    RUN(test_paired_d48);
    RUN(test_paired_d512);
    RUN(test_paired_few_pairs);
    RUN(test_paired_vs_sklearn);
    RUN(test_paired_too_few);
    RUN(test_web_mismatched);
    RUN(test_web_clean);
    RUN(test_unpaired);
    RUN(test_unpaired_psd_projection);
    RUN(test_text);
    RUN(test_file_round_trip);
    RUN(test_file_errors);
    RUN(test_kl_closed_form);
    RUN(test_kl_gradients);
    RUN(test_inputs_selection);
    RUN(test_simulator);
    RUN(test_cli_paired);
    RUN(test_cli_web);
    RUN(test_cli_unpaired);
    RUN(test_cli_text);
    RUN(test_cli_errors);
    RUN(test_cli_cleanup);
    return test_summary();
}
