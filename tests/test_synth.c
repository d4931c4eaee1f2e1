// The CLIP-like simulator: cosine statistics within tolerance of the real CLIP ViT-B/32 targets
// (at D = 512 on a corpus it was not calibrated on, and at a small D), the ground truth (Sigma*
// symmetric, trace as asked, strongly anisotropic and correlated; pair moments equal to a direct
// computation), full covariance beating isotropic noise, zero-shot prompts, determinism, and the
// program's errors.
#include <math.h>

#include "common/check.h"
#include "data/synth.h"
#include "kernels/philox.h"
#include "tests/harness.h"

// Real CLIP ViT-B/32 (data/clip sample of 20 Flickr30k captions and 20 images, distinct pairs).
#define REAL_TEXT_TEXT 0.568
#define REAL_IMAGE_IMAGE 0.510
#define REAL_IMAGE_TEXT 0.180

static EntityVocab vocab;
static FeatureStore coco512;  // COCO Karpathy test, D = 512, default options

static void test_calibration_d512(void) {
    SynthStats s;
    synth_measure(&coco512, test_seed(), 20000, &s);
    printf("  D=512 COCO test: text-text %.3f image-image %.3f image-text %.3f matched %.3f prompts %.3f\n", s.text_text,
           s.image_image, s.image_text, s.matched, s.vocab_vocab);
    CHECK(fabs(s.text_text - REAL_TEXT_TEXT) < 0.03, "text-text %.3f vs %.3f", s.text_text, REAL_TEXT_TEXT);
    CHECK(fabs(s.image_image - REAL_IMAGE_IMAGE) < 0.03, "image-image %.3f vs %.3f", s.image_image, REAL_IMAGE_IMAGE);
    CHECK(fabs(s.image_text - REAL_IMAGE_TEXT) < 0.03, "image-text %.3f vs %.3f", s.image_text, REAL_IMAGE_TEXT);
    CHECK(s.matched > s.image_text + 0.08 && s.matched > 0.25 && s.matched < 0.36, "matched %.3f (unpaired %.3f)", s.matched,
          s.image_text);
}

static void test_calibration_small_d(void) {
    Corpus c;
    char err[512];
    REQUIRE(corpus_load("data/captions/flickr30k_karpathy_test.json", SPLIT_TEST, &c, err, sizeof err) == 0, "%s", err);
    SynthOptions o = synth_default_options();
    o.dim = 64;
    o.seed = test_seed();
    FeatureStore fs;
    REQUIRE(synth_generate(&o, &c, SPLIT_ALL, &vocab, &fs, err, sizeof err) == 0, "%s", err);
    SynthStats s;
    synth_measure(&fs, 5, 20000, &s);
    printf("  D=64 Flickr30k test: text-text %.3f image-image %.3f image-text %.3f matched %.3f\n", s.text_text, s.image_image,
           s.image_text, s.matched);
    CHECK(fabs(s.text_text - REAL_TEXT_TEXT) < 0.05 && fabs(s.image_image - REAL_IMAGE_IMAGE) < 0.05 &&
              fabs(s.image_text - REAL_IMAGE_TEXT) < 0.05 && s.matched > s.image_text + 0.06,
          "small D statistics off target");
    features_free(&fs);
    corpus_free(&c);
}

// Largest eigenvalue of a symmetric matrix by power iteration.
static double top_eigenvalue(const float* S, int D) {
    double* x = mallocCheck((size_t)D * sizeof(double));
    double* y = mallocCheck((size_t)D * sizeof(double));
    for (int j = 0; j < D; j++) x[j] = 1.0 + 0.01 * j;
    double lambda = 0;
    for (int it = 0; it < 300; it++) {
        double norm = 0;
        for (int a = 0; a < D; a++) {
            double s = 0;
            for (int b = 0; b < D; b++) s += (double)S[(size_t)a * D + b] * x[b];
            y[a] = s;
            norm += s * s;
        }
        norm = sqrt(norm);
        double xy = 0, xx = 0;
        for (int j = 0; j < D; j++) {
            xy += x[j] * y[j];
            xx += x[j] * x[j];
        }
        lambda = xy / xx;
        for (int j = 0; j < D; j++) x[j] = y[j] / norm;
    }
    free(x);
    free(y);
    return lambda;
}

static void test_ground_truth(void) {
    const FeatureStore* fs = &coco512;
    const int D = fs->dim;
    REQUIRE(fs->true_gap_mu && fs->true_gap_cov && fs->pair_gap_mu && fs->pair_gap_cov, "truth stored");
    SynthOptions o = synth_default_options();
    double trace = 0, off = 0, total = 0, asym = 0;
    for (int a = 0; a < D; a++) {
        trace += fs->true_gap_cov[(size_t)a * D + a];
        for (int b = 0; b < D; b++) {
            double v = fs->true_gap_cov[(size_t)a * D + b];
            total += v * v;
            if (a != b) off += v * v;
            asym = fmax(asym, fabs(v - fs->true_gap_cov[(size_t)b * D + a]));
        }
    }
    CHECK(asym == 0, "Sigma* not symmetric (%g)", asym);
    CHECK(fabs(trace - o.gap_trace) < 1e-3 * o.gap_trace, "trace %.5f, asked %.5f", trace, o.gap_trace);
    double lmax = top_eigenvalue(fs->true_gap_cov, D);
    printf("  Sigma*: top eigenvalue %.4f = %.0f x the isotropic trace/D; off-diagonal share of ||Sigma*||_F^2 %.2f\n", lmax,
           lmax / (trace / D), off / total);
    CHECK(lmax > 20 * trace / D, "Sigma* is not anisotropic: top eigenvalue %.4f, trace/D %.4f", lmax, trace / D);
    CHECK(off / total > 0.3, "dimensions are not strongly correlated: off-diagonal share %.3f", off / total);
    double mu_norm = 0;
    for (int j = 0; j < D; j++) mu_norm += (double)fs->true_gap_mu[j] * fs->true_gap_mu[j];
    CHECK(fabs(sqrt(mu_norm) - hypot(o.gap_along, o.gap_across)) < 1e-4, "||mu*|| %.5f", sqrt(mu_norm));
    // Pair moments against a direct computation over 1,000 pairs chosen at random (mean only:
    // the covariance is checked on the small-D store below).
    double worst = 0;
    for (int j = 0; j < D; j += 37) {
        double s = 0;
        for (int t = 0; t < fs->n_texts; t++)
            s += (double)fs->image_emb[(size_t)fs->image_index[t] * D + j] - fs->text_emb[(size_t)t * D + j];
        worst = fmax(worst, fabs(s / fs->n_texts - fs->pair_gap_mu[j]));
    }
    CHECK(worst < 1e-5, "pair_gap_mu differs from the direct mean by %g", worst);
}

// Cholesky of a symmetric positive-definite matrix (double, lower), with a tiny jitter.
static void cholesky(const float* S, int D, double* L) {
    for (int i = 0; i < D; i++)
        for (int j = 0; j <= i; j++) {
            double s = S[(size_t)i * D + j] + (i == j ? 1e-9 : 0);
            for (int k = 0; k < j; k++) s -= L[(size_t)i * D + k] * L[(size_t)j * D + k];
            L[(size_t)i * D + j] = i == j ? sqrt(fmax(s, 1e-12)) : s / L[(size_t)j * D + j];
        }
}

// Relative Frobenius error between the covariance of pseudo-images x = normalize(t + mu + noise)
// and the covariance of the images, with full-covariance noise (L z) or isotropic noise of the
// same trace.
static double pseudo_image_cov_error(const FeatureStore* fs, const double* L, int full, uint64_t seed) {
    const int D = fs->dim, N = fs->n_texts;
    double trace = 0;
    for (int a = 0; a < D; a++) trace += fs->pair_gap_cov[(size_t)a * D + a];
    double* x = mallocCheck((size_t)D * sizeof(double));
    double* z = mallocCheck((size_t)D * sizeof(double));
    double* sx = callocCheck((size_t)D, sizeof(double));
    double* cx = callocCheck((size_t)D * D, sizeof(double));
    double* sv = callocCheck((size_t)D, sizeof(double));
    double* cv = callocCheck((size_t)D * D, sizeof(double));
    for (int t = 0; t < N; t++) {
        for (int j = 0; j < D; j++) z[j] = philox_normal(seed, 21, (uint64_t)t * D + j);
        double sq = 0;
        for (int a = 0; a < D; a++) {
            double noise = 0;
            if (full)
                for (int k = 0; k <= a; k++) noise += L[(size_t)a * D + k] * z[k];
            else noise = sqrt(trace / D) * z[a];
            x[a] = fs->text_emb[(size_t)t * D + a] + fs->pair_gap_mu[a] + noise;
            sq += x[a] * x[a];
        }
        for (int a = 0; a < D; a++) x[a] /= sqrt(sq);
        for (int a = 0; a < D; a++) {
            sx[a] += x[a];
            for (int b = 0; b < D; b++) cx[(size_t)a * D + b] += x[a] * x[b];
        }
    }
    for (int i = 0; i < fs->n_images; i++) {
        const float* v = fs->image_emb + (size_t)i * D;
        for (int a = 0; a < D; a++) {
            sv[a] += v[a];
            for (int b = 0; b < D; b++) cv[(size_t)a * D + b] += (double)v[a] * v[b];
        }
    }
    double num = 0, den = 0;
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double cov_x = cx[(size_t)a * D + b] / N - (sx[a] / N) * (sx[b] / N);
            double cov_v = cv[(size_t)a * D + b] / fs->n_images - (sv[a] / fs->n_images) * (sv[b] / fs->n_images);
            num += (cov_x - cov_v) * (cov_x - cov_v);
            den += cov_v * cov_v;
        }
    free(x);
    free(z);
    free(sx);
    free(cx);
    free(sv);
    free(cv);
    return sqrt(num / den);
}

static void test_full_covariance_beats_isotropic(void) {
    Corpus c;
    char err[512];
    REQUIRE(corpus_load("data/captions/coco_karpathy_val.json", SPLIT_VAL, &c, err, sizeof err) == 0, "%s", err);
    SynthOptions o = synth_default_options();
    o.dim = 96;
    o.seed = test_seed();
    FeatureStore fs;
    REQUIRE(synth_generate(&o, &c, SPLIT_ALL, NULL, &fs, err, sizeof err) == 0, "%s", err);
    const int D = fs.dim;
    // The stored pair covariance equals a direct computation.
    double worst = 0;
    for (int a = 0; a < D; a += 11)
        for (int b = 0; b < D; b += 7) {
            double sa = 0, sb = 0, sab = 0;
            for (int t = 0; t < fs.n_texts; t++) {
                double da = (double)fs.image_emb[(size_t)fs.image_index[t] * D + a] - fs.text_emb[(size_t)t * D + a];
                double db = (double)fs.image_emb[(size_t)fs.image_index[t] * D + b] - fs.text_emb[(size_t)t * D + b];
                sa += da;
                sb += db;
                sab += da * db;
            }
            double n = fs.n_texts;
            worst = fmax(worst, fabs(sab / n - (sa / n) * (sb / n) - fs.pair_gap_cov[(size_t)a * D + b]));
        }
    CHECK(worst < 1e-6, "pair_gap_cov differs from the direct covariance by %g", worst);
    double* L = callocCheck((size_t)D * D, sizeof(double));
    cholesky(fs.pair_gap_cov, D, L);
    double e_full = pseudo_image_cov_error(&fs, L, 1, o.seed);
    double e_iso = pseudo_image_cov_error(&fs, L, 0, o.seed);
    printf("  pseudo-image covariance vs images (rel. Frobenius): full %.3f, isotropic %.3f\n", e_full, e_iso);
    CHECK(e_full < 0.7 * e_iso, "full covariance (%.3f) should clearly beat isotropic noise (%.3f)", e_full, e_iso);
    free(L);
    features_free(&fs);
    corpus_free(&c);
}

// The top vocabulary prompt of an image names an entity of its captions for many images (chance:
// an image's captions name about 8 of the 1,848 entries, so about 0.5%).
static void test_zero_shot_prompts(void) {
    const FeatureStore* fs = &coco512;
    const int D = fs->dim, N = 400;
    int hits = 0;
    for (int i = 0; i < N; i++) {
        const float* v = fs->image_emb + (size_t)i * D;
        int best = -1;
        double best_score = -2;
        for (int w = 0; w < fs->n_vocab; w++) {
            double s = 0;
            for (int j = 0; j < D; j++) s += (double)v[j] * fs->vocab_emb[(size_t)w * D + j];
            if (s > best_score) {
                best_score = s;
                best = w;
            }
        }
        int hit = 0;
        for (int t = 0; t < fs->n_texts && !hit; t++) {
            if (fs->image_index[t] != i) continue;
            int32_t e[32];
            int n = entities_extract(&vocab, fs->captions[t], e, 32);
            for (int k = 0; k < n && k < 32; k++) hit |= e[k] == best;
        }
        hits += hit;
    }
    printf("  zero-shot: the top prompt is an entity of the image's captions for %d of %d images\n", hits, N);
    CHECK(hits > N / 4, "only %d of %d", hits, N);
}

static void test_determinism(void) {
    Corpus c;
    char err[512];
    const char* json = "{\"a.jpg\": [\"a dog on a red sofa\", \"two dogs\"], \"b.jpg\": [\"a plate of food\"]}";
    REQUIRE(corpus_parse(json, strlen(json), "t.json", SPLIT_TEST, &c, err, sizeof err) == 0, "%s", err);
    SynthOptions o = synth_default_options();
    o.dim = 32;
    FeatureStore a, b, d;
    REQUIRE(synth_generate(&o, &c, SPLIT_ALL, &vocab, &a, err, sizeof err) == 0, "%s", err);
    REQUIRE(synth_generate(&o, &c, SPLIT_ALL, &vocab, &b, err, sizeof err) == 0, "%s", err);
    o.seed++;
    REQUIRE(synth_generate(&o, &c, SPLIT_ALL, &vocab, &d, err, sizeof err) == 0, "%s", err);
    CHECK(!memcmp(a.image_emb, b.image_emb, 2 * 32 * sizeof(float)) && !memcmp(a.text_emb, b.text_emb, 3 * 32 * sizeof(float)) &&
              !memcmp(a.vocab_emb, b.vocab_emb, (size_t)a.n_vocab * 32 * sizeof(float)),
          "same seed, same embeddings");
    CHECK(memcmp(a.image_emb, d.image_emb, 2 * 32 * sizeof(float)) != 0, "another seed, other embeddings");
    CHECK(a.normalized == 1 && !strcmp(a.clip_model, "tipcap-synth") && a.n_vocab == vocab.n, "attributes");
    // "dogs" folds to "dog": the two captions of a.jpg share content, so they are closer to each
    // other than to b.jpg's caption.
    double ab = 0, ac = 0;
    for (int j = 0; j < 32; j++) {
        ab += (double)a.text_emb[j] * a.text_emb[32 + j];
        ac += (double)a.text_emb[j] * a.text_emb[64 + j];
    }
    CHECK(ab > ac, "captions sharing 'dog' should be closer (%.3f vs %.3f)", ab, ac);
    features_free(&a);
    features_free(&b);
    features_free(&d);
    SynthOptions bad = synth_default_options();
    bad.dim = 4;
    CHECK(synth_generate(&bad, &c, SPLIT_ALL, NULL, &a, err, sizeof err) == -1 && strstr(err, "dim 4"), "dim: %s", err);
    bad = synth_default_options();
    bad.gap_trace = NAN;
    CHECK(synth_generate(&bad, &c, SPLIT_ALL, NULL, &a, err, sizeof err) == -1, "NaN weight refused");
    CHECK(synth_generate(&o, &c, SPLIT_TRAIN, NULL, &a, err, sizeof err) == -1 && strstr(err, "split train"), "empty split: %s", err);
    corpus_free(&c);
}

static int run(const char* cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_program(void) {
    if (access("bin/tipcap-synth", X_OK) != 0) SKIP("bin/tipcap-synth not built");
    char dir[] = "/tmp/tipcap_synth_XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char cmd[512], out[200];
    snprintf(out, sizeof out, "%s/f.h5", dir);
    snprintf(cmd, sizeof cmd, "bin/tipcap-synth --captions data/captions/flickr30k_karpathy_val.json --out %s --dim 16 "
             "--max-images 50 --float16 > /dev/null", out);
    CHECK(run(cmd) == 0, "a small run");
    FeatureStore fs;
    char err[512];
    CHECK(features_read(out, &fs, err, sizeof err) == 0 && fs.n_images == 50 && fs.dim == 16 && fs.n_vocab == 1848,
          "the file: %s", err);
    features_free(&fs);
    snprintf(cmd, sizeof cmd, "printf '{\"a.jpg\": [\"\"]}' > %s/bad.json && bin/tipcap-synth --captions %s/bad.json --out %s/x.h5 2>/dev/null",
             dir, dir, dir);
    CHECK(run(cmd) == 1, "an empty caption fails");
    snprintf(cmd, sizeof cmd, "test ! -e %s/x.h5", dir);
    CHECK(run(cmd) == 0, "no output left behind");
    CHECK(run("bin/tipcap-synth --dim x --captions a --out b 2>/dev/null") == 2, "a bad number is a usage error");
    CHECK(run("bin/tipcap-synth --help > /dev/null") == 0, "--help");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) {}
}

int main(void) {
    test_seed();
    char err[512];
    char* path = entity_vocab_default_path();
    if (entity_vocab_load(path, NULL, NULL, &vocab, err, sizeof err) != 0) FATAL("%s", err);
    free(path);
    Corpus c;
    if (corpus_load("data/captions/coco_karpathy_test.json", SPLIT_TEST, &c, err, sizeof err) != 0) FATAL("%s", err);
    SynthOptions o = synth_default_options();
    o.seed = test_seed();
    if (synth_generate(&o, &c, SPLIT_ALL, &vocab, &coco512, err, sizeof err) != 0) FATAL("%s", err);
    corpus_free(&c);
    RUN(test_calibration_d512);
    RUN(test_calibration_small_d);
    RUN(test_ground_truth);
    RUN(test_full_covariance_beats_isotropic);
    RUN(test_zero_shot_prompts);
    RUN(test_determinism);
    RUN(test_program);
    features_free(&coco512);
    entity_vocab_free(&vocab);
    return test_summary();
}
