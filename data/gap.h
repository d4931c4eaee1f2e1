// The modality gap as a multivariate Gaussian N(mu, Sigma = L L^T): estimators for the four
// data settings, the gap file, and the KL term of the learnable Gaussian. Formulas and the
// choices where the paper is silent: docs/GAP.md.
//
// Gap file (HDF5, float32, readable by h5py as-is):
//   /mu [D], /cov [D,D], /chol [D,D] lower-triangular with chol chol^T = cov (+ jitter I)
//   attributes on /: setting (string), n_used, shrinkage, n_rejected, jitter, and
//   n_images, n_texts, n_clipped, psd_floor, sigma2, source (see GapEstimate)
//
// Estimates are computed in double precision and stored as float32.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/cholesky.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { GAP_PAIRED = 0, GAP_WEB = 1, GAP_UNPAIRED = 2, GAP_TEXT = 3 } GapSetting;

const char* gap_setting_name(GapSetting s);           // "paired", "web", "unpaired", "text"
int gap_setting_parse(const char* name, GapSetting* out);  // 0, or -1 for an unknown name

typedef struct {
    GapSetting setting;
    int dim;                // D
    float* mu;              // [D]
    float* cov;             // [D,D] symmetric positive definite
    float* chol;            // [D,D] lower-triangular, chol chol^T = cov + jitter I
    long long n_used;       // pairs used (paired; web after rejection), images + texts (unpaired), 0 (text)
    double shrinkage;       // Ledoit-Wolf intensity in [0, 1] (paired, web); 0 otherwise
    long long n_rejected;   // pairs rejected as mismatched (web); 0 otherwise
    double jitter;          // added to the diagonal for the Cholesky factor (0: none needed)
    long long n_images, n_texts;  // unpaired: the two sets; 0 otherwise
    long long n_clipped;    // unpaired: eigenvalues of Cov V - Cov T raised to the PSD floor
    double psd_floor;       // unpaired: that floor
    double sigma2;          // text without prior: the isotropic variance; 0 otherwise
    char source[512];       // what the estimate came from (feature file, prior file)
} GapEstimate;

// Options of the estimators; gap_options_default() gives the documented defaults.
typedef struct {
    double psd_floor_rel;   // unpaired: floor = psd_floor_rel * (sum of positive eigenvalues) / D
    double web_start_keep;  // web: fraction of pairs, highest CLIP cosine first, of the first estimate
    double web_separation;  // web: the smallest separation d' of the two fitted populations (genuine,
                            // mismatched) that counts as a second population (docs/GAP.md)
    double web_tail_p;      // web: without a second population, only the tail beyond this quantile
                            // of the (robustly fitted) log Mahalanobis distances is rejected
    int web_max_iter;       // web: rejection rounds at most
    CholeskyPolicy chol;    // jitter policy of the final factor
} GapOptions;

GapOptions gap_options_default(void);

// The vectors an estimate is computed from: row idx[k] of emb (idx NULL: row k), minus, when
// sub is not NULL, row sub_idx[k] of sub (pairs: image minus text). All rows have D floats.
typedef struct {
    const float* emb;
    const int64_t* idx;
    const float* sub;
    const int64_t* sub_idx;
    int64_t n;
} GapRows;

// Each estimator fills *out (allocating its arrays; gap_free releases them) and returns 0, or
// returns -1 with a message in err and leaves *out empty.

// paired: d_k = v_k - t_k; mu = mean d; Sigma = Ledoit-Wolf shrinkage of the covariance of d.
// Needs at least 2 pairs.
int gap_estimate_paired(GapEstimate* out, const GapRows* pairs, int D, const GapOptions* opt, char* err,
                        size_t err_size);
// web: robust rejection of mismatched pairs (CLIP-cosine start, then rounds of a two-population
// fit to the Mahalanobis distance and the CLIP cosine), then paired on the kept ones.
// rejected [n] (may be NULL) receives 1 for each rejected pair.
int gap_estimate_web(GapEstimate* out, const GapRows* pairs, int D, const GapOptions* opt, uint8_t* rejected,
                     char* err, size_t err_size);
// unpaired: mu = mean V - mean T; Sigma = Cov V - Cov T with eigenvalues raised to the PSD floor.
// Needs at least 2 images and 2 texts.
int gap_estimate_unpaired(GapEstimate* out, const GapRows* images, const GapRows* texts, int D,
                          const GapOptions* opt, char* err, size_t err_size);
// text: mu = 0, Sigma = sigma2 I; or, when prior is not NULL, the prior's mu and Sigma.
int gap_estimate_text(GapEstimate* out, int D, double sigma2, const GapEstimate* prior, const GapOptions* opt,
                      char* err, size_t err_size);

void gap_free(GapEstimate* g);

// Writes the gap file atomically (nothing at path on error). Returns 0 or -1 with err.
int gap_write(const char* path, const GapEstimate* g, char* err, size_t err_size);
// Reads and validates a gap file: datasets and shapes, finite values, cov symmetric, chol
// lower-triangular with a positive diagonal and chol chol^T = cov + jitter I (relative error
// 1e-4). Errors name the file and the dataset or attribute.
int gap_read(const char* path, GapEstimate* g, char* err, size_t err_size);

// ---- the learnable Gaussian's KL term (host, double precision inside)
// KL(N(mu, L L^T) || N(mu0, Sigma0)) = 1/2 [ tr(P L L^T) + (mu - mu0)^T P (mu - mu0) - D
//                                            + log det Sigma0 - 2 sum_i log |L_ii| ],  P = Sigma0^-1
// gradients: dKL/dmu = P (mu - mu0); dKL/dL = lower(P L) - diag(1 / L_ii).
typedef struct {
    int dim;
    double* mu0;        // [D]
    double* precision;  // [D,D] P = Sigma0^-1
    double logdet0;     // log det Sigma0
} GapPrior;

// From a gap estimate (its chol gives P and log det). Returns 0 or -1 with err.
int gap_prior_init(GapPrior* p, const GapEstimate* prior, char* err, size_t err_size);
void gap_prior_free(GapPrior* p);
// mu [D], L [D,D] (lower triangle read); dmu [D] += weight dKL/dmu and dL [D,D] += weight dKL/dL
// on the lower triangle (either may be NULL). Returns the KL (unweighted); INFINITY, with the
// gradients untouched, when a diagonal entry of L is 0 (the Gaussian is degenerate).
double gap_kl(const GapPrior* p, const float* mu, const float* L, float weight, float* dmu, float* dL);

#ifdef __cplusplus
}
#endif
