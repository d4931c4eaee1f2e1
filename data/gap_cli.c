// tipcap-prep gap: estimates the modality gap of a data setting from a feature store and
// writes the gap file (data/gap.h; docs/GAP.md has the formulas and every option).
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/cli.h"
#include "common/log.h"
#include "data/features.h"
#include "data/gap.h"
#include "data/gap_inputs.h"
#include "data/prep.h"

static void usage(FILE* out) {
    fprintf(out,
            "usage: tipcap-prep gap --setting paired|web|unpaired|text --out GAP.h5 [options]\n"
            "\n"
            "Estimates the modality gap N(mu, Sigma) of a data setting and writes /mu, /cov, /chol and\n"
            "the attributes of the gap file (docs/GAP.md).\n"
            "\n"
            "  --setting S          paired | web | unpaired | text (required)\n"
            "  --features F.h5      the feature store (required but for text, where it only gives D)\n"
            "  --out GAP.h5         the gap file to write (written atomically; nothing on error)\n"
            "  --seed N             seed of every random choice (default 0)\n"
            "paired, web:\n"
            "  --pairs N            use N (caption, image) pairs, drawn at random\n"
            "  --pair-fraction F    or this fraction of the pairs in the store (default 1)\n"
            "web:\n"
            "  --mismatch F         pair this fraction of the chosen captions with another image on purpose,\n"
            "                       and report how many of them the estimator rejects (default 0)\n"
            "  --web-start F        first estimate from this fraction of the pairs, highest CLIP cosine\n"
            "                       first (default 0.5)\n"
            "  --web-separation S   two fitted populations (genuine, mismatched) of (log Mahalanobis\n"
            "                       distance, CLIP cosine) count as such when their separation d' >= S\n"
            "                       (default 2.0)\n"
            "  --web-tail-p P       otherwise only the tail beyond the quantile P of the log distances is\n"
            "                       rejected (default 0.999)\n"
            "  --web-max-iter N     rejection rounds at most (default 20)\n"
            "unpaired:\n"
            "  --split disjoint|all disjoint (default): images of a random half and captions of the other,\n"
            "                       so that no true pair is used; all: every image and caption (also what\n"
            "                       disjoint does when no caption has an image: there is no pair to avoid)\n"
            "  --psd-floor F        eigenvalues of Cov V - Cov T below F x (sum of the positive ones) / D\n"
            "                       are raised to that floor (default 1e-3)\n"
            "text:\n"
            "  --sigma2 S           Sigma = S I, mu = 0 (default 0.016, CapDec's)\n"
            "  --prior GAP.h5       or the mu and Sigma of this gap file\n"
            "  --dim D              the dimension when neither --features nor --prior gives it\n"
            "  --help               this text\n");
}

__attribute__((format(printf, 1, 2))) static int error(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tipcap-prep gap: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

static int parse_double(const char* opt, const char* s, double* out) {
    char err[256];
    return cli_parse_double(opt, s, out, err, sizeof err) ? error("%s", err) : 0;
}

static int parse_int(const char* opt, const char* s, long long min, long long max, long long* out) {
    char err[256];
    return cli_parse_int(opt, s, min, max, out, err, sizeof err) ? error("%s", err) : 0;
}

typedef struct {
    const char* setting;
    const char* features;
    const char* out;
    const char* prior;
    const char* split;
    long long seed, pairs, dim, web_max_iter;
    double pair_fraction, mismatch, sigma2, psd_floor, web_tail_p, web_start, web_separation;
    int has_pairs, has_fraction, has_mismatch, has_sigma2, has_dim, has_split, has_psd_floor, has_web;
} Args;

// Options that belong to one setting only: an error elsewhere, so that a typo'd run is not silently
// something else.
static int check_applies(const Args* a, GapSetting s) {
    if ((a->has_pairs || a->has_fraction) && s != GAP_PAIRED && s != GAP_WEB)
        return error("--pairs and --pair-fraction apply to --setting paired and web, not %s", a->setting);
    if (a->has_pairs && a->has_fraction) return error("give --pairs or --pair-fraction, not both");
    if ((a->has_mismatch || a->has_web) && s != GAP_WEB)
        return error("--mismatch and --web-* apply to --setting web, not %s", a->setting);
    if ((a->has_split || a->has_psd_floor) && s != GAP_UNPAIRED)
        return error("--split and --psd-floor apply to --setting unpaired, not %s", a->setting);
    if ((a->has_sigma2 || a->prior || a->has_dim) && s != GAP_TEXT)
        return error("--sigma2, --prior and --dim apply to --setting text, not %s", a->setting);
    if (a->has_sigma2 && a->prior) return error("give --sigma2 or --prior, not both");
    return 0;
}

static int parse_args(int argc, char** argv, Args* a, int* help) {
    memset(a, 0, sizeof *a);
    a->pair_fraction = 1.0;
    a->sigma2 = 0.016;
    GapOptions defaults = gap_options_default();
    a->psd_floor = defaults.psd_floor_rel;
    a->web_tail_p = defaults.web_tail_p;
    a->web_separation = defaults.web_separation;
    a->web_start = defaults.web_start_keep;
    a->web_max_iter = defaults.web_max_iter;
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char* o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            *help = 1;
            return 0;
        }
        if (strncmp(o, "--", 2)) return error("unexpected argument '%s' (see --help)", o);
        if (i + 1 >= argc) return error("%s needs a value", o);
        const char* v = argv[++i];
        int rc = 0;
        if (!strcmp(o, "--setting")) a->setting = v;
        else if (!strcmp(o, "--features")) a->features = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--prior")) a->prior = v;
        else if (!strcmp(o, "--split")) a->split = v, a->has_split = 1;
        else if (!strcmp(o, "--seed")) rc = parse_int(o, v, 0, LLONG_MAX, &a->seed);
        else if (!strcmp(o, "--pairs")) rc = parse_int(o, v, 1, LLONG_MAX, &a->pairs), a->has_pairs = 1;
        else if (!strcmp(o, "--dim")) rc = parse_int(o, v, 1, 1 << 20, &a->dim), a->has_dim = 1;
        else if (!strcmp(o, "--web-max-iter")) rc = parse_int(o, v, 1, 10000, &a->web_max_iter), a->has_web = 1;
        else if (!strcmp(o, "--pair-fraction")) rc = parse_double(o, v, &a->pair_fraction), a->has_fraction = 1;
        else if (!strcmp(o, "--mismatch")) rc = parse_double(o, v, &a->mismatch), a->has_mismatch = 1;
        else if (!strcmp(o, "--sigma2")) rc = parse_double(o, v, &a->sigma2), a->has_sigma2 = 1;
        else if (!strcmp(o, "--psd-floor")) rc = parse_double(o, v, &a->psd_floor), a->has_psd_floor = 1;
        else if (!strcmp(o, "--web-tail-p")) rc = parse_double(o, v, &a->web_tail_p), a->has_web = 1;
        else if (!strcmp(o, "--web-separation")) rc = parse_double(o, v, &a->web_separation), a->has_web = 1;
        else if (!strcmp(o, "--web-start")) rc = parse_double(o, v, &a->web_start), a->has_web = 1;
        else return error("unknown option '%s' (see --help)", o);
        if (rc) return rc;
    }
    return 0;
}

// The rejected set against the pairs mismatched on purpose.
static void report_rejection(const GapInputs* in, const uint8_t* rejected) {
    long long tp = 0, n_rej = 0;
    for (int64_t k = 0; k < in->n_pairs; k++) {
        n_rej += rejected[k];
        tp += rejected[k] && in->mismatched[k];
    }
    printf("gap: rejected %lld of %lld pairs as mismatched", n_rej, (long long)in->n_pairs);
    if (in->n_mismatched > 0)
        printf("; of the %lld mismatched on purpose, %lld rejected (recall %.4f), precision %.4f", (long long)in->n_mismatched,
               tp, (double)tp / in->n_mismatched, n_rej ? (double)tp / n_rej : 1.0);
    printf("\n");
}

int prep_gap_main(int argc, char** argv) {
    Args a;
    int help;
    if (parse_args(argc, argv, &a, &help)) return 2;
    if (help) {
        usage(stdout);
        return 0;
    }
    if (!a.setting) return error("--setting is required (paired|web|unpaired|text)"), 2;
    GapSetting setting;
    if (gap_setting_parse(a.setting, &setting))
        return error("--setting '%s' is not one of paired|web|unpaired|text", a.setting), 2;
    if (!a.out) return error("--out is required"), 2;
    if (!a.features && setting != GAP_TEXT) return error("--features is required for --setting %s", a.setting), 2;
    if (check_applies(&a, setting)) return 2;

    GapOptions opt = gap_options_default();
    opt.psd_floor_rel = a.psd_floor;
    opt.web_tail_p = a.web_tail_p;
    opt.web_separation = a.web_separation;
    opt.web_start_keep = a.web_start;
    opt.web_max_iter = (int)a.web_max_iter;
    GapInputOptions in_opt = gap_input_options_default();
    in_opt.pairs = a.pairs;
    in_opt.pair_fraction = a.pair_fraction;
    in_opt.mismatch = a.mismatch;
    in_opt.seed = (uint64_t)a.seed;
    if (a.split) {
        if (!strcmp(a.split, "disjoint")) in_opt.split = GAP_SPLIT_DISJOINT;
        else if (!strcmp(a.split, "all")) in_opt.split = GAP_SPLIT_ALL;
        else return error("--split '%s' is not one of disjoint|all", a.split), 2;
    }
    if (!(a.psd_floor >= 0)) return error("--psd-floor %g must not be negative", a.psd_floor), 2;

    char err[1024];
    FeatureStore fs;
    memset(&fs, 0, sizeof fs);
    if (a.features && features_read(a.features, &fs, err, sizeof err)) return error("%s", err);
    if (a.features && !fs.normalized)
        LOG_WARN("%s: the embeddings are not marked L2-normalised (attribute normalized = 0); the gap is estimated "
                 "from them as they are", a.features);
    if (a.features && a.has_dim && a.dim != fs.dim) {
        features_free(&fs);
        return error("--dim %lld differs from the dimension %d of %s", a.dim, fs.dim, a.features);
    }

    GapInputs in;
    if (gap_inputs_select(&in, &fs, a.features ? a.features : "", setting, &in_opt, err, sizeof err)) {
        features_free(&fs);
        return error("%s", err);
    }
    GapEstimate g;
    memset(&g, 0, sizeof g);
    int rc = 0;
    uint8_t* rejected = NULL;
    switch (setting) {
        case GAP_PAIRED: {
            GapRows pairs = gap_inputs_pair_rows(&in, &fs);
            printf("gap: paired, D %d: %lld pairs of %lld in %s\n", fs.dim, (long long)in.n_pairs,
                   (long long)in.n_available, a.features);
            rc = gap_estimate_paired(&g, &pairs, fs.dim, &opt, err, sizeof err);
            snprintf(g.source, sizeof g.source, "%s: %lld pairs of %lld (seed %lld)", a.features, (long long)in.n_pairs,
                     (long long)in.n_available, a.seed);
            break;
        }
        case GAP_WEB: {
            GapRows pairs = gap_inputs_pair_rows(&in, &fs);
            printf("gap: web, D %d: %lld pairs of %lld in %s, %lld of them mismatched on purpose\n", fs.dim,
                   (long long)in.n_pairs, (long long)in.n_available, a.features, (long long)in.n_mismatched);
            rejected = mallocCheck(in.n_pairs);
            rc = gap_estimate_web(&g, &pairs, fs.dim, &opt, rejected, err, sizeof err);
            if (rc == 0) report_rejection(&in, rejected);
            snprintf(g.source, sizeof g.source, "%s: %lld pairs of %lld, %lld mismatched on purpose (seed %lld)",
                     a.features, (long long)in.n_pairs, (long long)in.n_available, (long long)in.n_mismatched, a.seed);
            break;
        }
        case GAP_UNPAIRED: {
            GapRows images = gap_inputs_image_rows(&in, &fs), texts = gap_inputs_text_rows(&in, &fs);
            const char* split = in.split == GAP_SPLIT_ALL ? "all" : "disjoint";
            if (in.split != in_opt.split)
                printf("gap: no caption of %s has an image, so no true pair can be used: the disjoint split would only "
                       "discard half the images; every image and caption is used (split all)\n", a.features);
            printf("gap: unpaired, D %d: %lld images and %lld captions of %s (%s split)\n", fs.dim,
                   (long long)in.n_images, (long long)in.n_texts, a.features, split);
            rc = gap_estimate_unpaired(&g, &images, &texts, fs.dim, &opt, err, sizeof err);
            snprintf(g.source, sizeof g.source, "%s: %lld images, %lld captions (%s split, seed %lld)", a.features,
                     (long long)in.n_images, (long long)in.n_texts, split, a.seed);
            break;
        }
        case GAP_TEXT: {
            int D = a.features ? fs.dim : (int)a.dim;
            GapEstimate prior;
            if (a.prior) {
                if (gap_read(a.prior, &prior, err, sizeof err)) {
                    rc = -1;
                    break;
                }
                snprintf(prior.source, sizeof prior.source, "prior %s", a.prior);
            } else if (D <= 0) {
                snprintf(err, sizeof err, "--setting text needs the dimension: give --features, --prior or --dim");
                rc = -1;
                break;
            }
            rc = gap_estimate_text(&g, D, a.sigma2, a.prior ? &prior : NULL, &opt, err, sizeof err);
            if (a.prior) gap_free(&prior);
            else if (rc == 0) snprintf(g.source, sizeof g.source, "sigma2 %g", a.sigma2);
            if (rc == 0) printf("gap: text, D %d: %s\n", g.dim, g.source);
            break;
        }
    }
    if (rc == 0) rc = gap_write(a.out, &g, err, sizeof err);
    if (rc == 0) {
        double mu2 = 0, trace = 0;
        for (int i = 0; i < g.dim; i++) mu2 += (double)g.mu[i] * g.mu[i], trace += g.cov[(size_t)i * g.dim + i];
        printf("gap: ||mu|| %.4g, trace(Sigma) %.4g, shrinkage %.4g, jitter %.3g; wrote %s\n", sqrt(mu2), trace,
               g.shrinkage, g.jitter, a.out);
    }
    free(rejected);
    gap_free(&g);
    gap_inputs_free(&in);
    features_free(&fs);
    return rc ? error("%s", err) : 0;
}
