// tipcap-eval: BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D and SPICE for image captions, as the
// COCO caption toolkit (pycocoevalcap 1.2) computes them. See docs/EVAL.md.
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/evaluate.h"
#include "eval/input.h"

static void usage(FILE* f) {
    fprintf(f,
            "usage: tipcap-eval --refs REFS --results RESULTS [options]\n"
            "\n"
            "Scores image captions with the COCO caption toolkit's metrics (pycocoevalcap 1.2):\n"
            "PTB tokenisation, Bleu_1..4, METEOR 1.5, ROUGE_L, CIDEr(-D) and SPICE.\n"
            "\n"
            "  --refs FILE          references: COCO annotations JSON {\"annotations\": [{\"image_id\", \"caption\"}]}\n"
            "                       or {\"image_id\": [\"ref\", ...]}\n"
            "  --results FILE       results: COCO results JSON [{\"image_id\", \"caption\"}]\n"
            "  --json FILE          also write full-precision corpus scores, per-image scores and the\n"
            "                       BLEU statistics (testlen, reflen, guess, correct) to FILE\n"
            "  --metrics LIST       comma-separated subset of bleu,meteor,rouge,cider,spice (default: all)\n"
            "  --meteor-data DIR    directory holding METEOR's paraphrase-en.gz (default: the one beside the\n"
            "                       METEOR resources, which scripts/install-deps.sh fetches, else an installed\n"
            "                       pycocoevalcap's; without one METEOR runs without paraphrases and says so)\n"
            "  --spice-jar JAR      spice-1.0.jar (needs Java and Stanford CoreNLP 3.6.0 in its lib/) for real\n"
            "                       SPICE (an error if it fails); without it SPICE-approx, a native\n"
            "                       approximation, is reported\n"
            "  --no-tokenize        score the captions as they are (whitespace-split), skipping the PTB step\n"
            "  --tokens FILE        also write the tokenised captions: [{\"image_id\", \"caption\", \"refs\"}]\n"
            "  --threads N          worker threads (default: all cores)\n"
            "  -h, --help           this help\n"
            "\n"
            "Images are those with a result, in the references' order. A result whose image has no\n"
            "references, or two results for one image, is an error listing the image ids.\n"
            "Environment: TIPCAP_DATA (the folder holding meteor/), TIPCAP_METEOR_PARAPHRASE (the table).\n");
}

static int is_dir_with(const char* dir, const char* file) {
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    return access(p, R_OK) == 0;
}

// The METEOR resources: $TIPCAP_DATA/meteor, <exe>/../share/tipcap/meteor, <exe>/../data/meteor.
static char* find_meteor_dir(void) {
    char p[PATH_MAX];
    const char* env = getenv("TIPCAP_DATA");
    if (env) {
        snprintf(p, sizeof p, "%s/meteor", env);
        if (is_dir_with(p, "english.synsets")) return strdup(p);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char* dir = dirname(exe);
        snprintf(p, sizeof p, "%s/../share/tipcap/meteor", dir);
        if (is_dir_with(p, "english.synsets")) return strdup(p);
        snprintf(p, sizeof p, "%s/../data/meteor", dir);
        if (is_dir_with(p, "english.synsets")) return strdup(p);
    }
    return NULL;
}

// paraphrase-en.gz: --meteor-data DIR, $TIPCAP_METEOR_PARAPHRASE, beside the other METEOR
// resources (where scripts/install-deps.sh and make install put it), or an installed pycocoevalcap.
static char* find_paraphrase(const char* meteor_data, const char* meteor_dir) {
    char p[PATH_MAX];
    if (meteor_data) {
        snprintf(p, sizeof p, "%s/paraphrase-en.gz", meteor_data);
        return access(p, R_OK) == 0 ? strdup(p) : NULL;
    }
    const char* env = getenv("TIPCAP_METEOR_PARAPHRASE");
    if (env) return access(env, R_OK) == 0 ? strdup(env) : NULL;
    snprintf(p, sizeof p, "%s/paraphrase-en.gz", meteor_dir);
    if (access(p, R_OK) == 0) return strdup(p);
    const char* home = getenv("HOME");
    const char* patterns[] = {"%s/.local/lib/python3*/site-packages/pycocoevalcap/meteor/data/paraphrase-en.gz",
                              "%s/.pyenv/versions/*/lib/python3*/site-packages/pycocoevalcap/meteor/data/paraphrase-en.gz",
                              "/usr/local/lib/python3*/*-packages/pycocoevalcap/meteor/data/paraphrase-en.gz",
                              "/usr/lib/python3*/*-packages/pycocoevalcap/meteor/data/paraphrase-en.gz",
                              "/opt/*/lib/python3*/site-packages/pycocoevalcap/meteor/data/paraphrase-en.gz"};
    for (size_t k = 0; k < sizeof patterns / sizeof *patterns; k++) {
        snprintf(p, sizeof p, patterns[k], home ? home : "/nonexistent");
        glob_t g;
        if (glob(p, 0, NULL, &g) == 0 && g.gl_pathc > 0) {
            char* found = strdup(g.gl_pathv[0]);
            globfree(&g);
            return found;
        }
        globfree(&g);
    }
    // the active python's site-packages
    FILE* f = popen("python3 -c \"import importlib.util as u; s = u.find_spec('pycocoevalcap'); "
                    "print(list(s.submodule_search_locations)[0] if s else '')\" 2>/dev/null",
                    "r");
    if (f) {
        char line[PATH_MAX];
        char* got = fgets(line, sizeof line, f);
        pclose(f);
        if (got) {
            line[strcspn(line, "\n")] = 0;
            if (line[0] && strlen(line) < sizeof p - 40) {
                snprintf(p, sizeof p, "%.4000s/meteor/data/paraphrase-en.gz", line);
                if (access(p, R_OK) == 0) return strdup(p);
            }
        }
    }
    return NULL;
}

static int parse_metrics(const char* list, int* out) {
    *out = 0;
    char* copy = strdup(list);
    int ok = 1;
    for (char* t = strtok(copy, ","); t; t = strtok(NULL, ",")) {
        for (char* c = t; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
        if (!strcmp(t, "bleu")) *out |= METRIC_BLEU;
        else if (!strcmp(t, "meteor")) *out |= METRIC_METEOR;
        else if (!strcmp(t, "rouge") || !strcmp(t, "rouge_l")) *out |= METRIC_ROUGE;
        else if (!strcmp(t, "cider") || !strcmp(t, "cider-d")) *out |= METRIC_CIDER;
        else if (!strcmp(t, "spice")) *out |= METRIC_SPICE;
        else if (!strcmp(t, "all")) *out |= METRIC_ALL;
        else {
            fprintf(stderr, "tipcap-eval: --metrics: unknown metric \"%s\" (choose from bleu,meteor,rouge,cider,spice)\n", t);
            ok = 0;
        }
    }
    free(copy);
    if (ok && !*out) fprintf(stderr, "tipcap-eval: --metrics: no metric named (choose from bleu,meteor,rouge,cider,spice)\n");
    return ok && *out;
}

// ---------------------------------------------------------------- output
static void json_number(FILE* f, double v) {
    if (v != v) fputs("NaN", f);  // as Python's json writes a NaN
    else fprintf(f, "%.17g", v);
}

static void json_string(FILE* f, const char* s) {
    fputc('"', f);
    for (const unsigned char* p = (const unsigned char*)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (p[0] == 0xC0 && p[1] == 0x80) {  // a NUL, as input.c keeps it
            fputs("\\u0000", f);
            p++;
        }
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int write_tokens(const char* path, const EvalImage* images, size_t n) {
    FILE* f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "tipcap-eval: %s: cannot create: %s\n", path, strerror(errno));
        return 0;
    }
    fputs("[", f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\n  {\"image_id\": ", i ? "," : "");
        if (images[i].id_is_number) fputs(images[i].id, f);
        else json_string(f, images[i].id);
        fputs(", \"caption\": ", f);
        json_string(f, images[i].hyp);
        fputs(", \"refs\": [", f);
        for (int r = 0; r < images[i].n_refs; r++) {
            if (r) fputs(", ", f);
            json_string(f, images[i].refs[r]);
        }
        fputs("]}", f);
    }
    fputs("\n]\n", f);
    if (fclose(f) != 0) {
        fprintf(stderr, "tipcap-eval: %s: write failed\n", path);
        unlink(path);
        return 0;
    }
    return 1;
}

static const char* spice_name(const EvalReport* r) { return r->spice_is_approx ? "SPICE-approx" : "SPICE"; }

static void write_json(FILE* f, const EvalImage* images, const EvalReport* r, int metrics) {
    static const char* BLEU_NAMES[4] = {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"};
    fprintf(f, "{\n  \"scores\": {");
    const char* sep = "";
    if (metrics & METRIC_BLEU)
        for (int k = 0; k < 4; k++) {
            fprintf(f, "%s\n    \"%s\": ", sep, BLEU_NAMES[k]);
            json_number(f, r->bleu[k]);
            sep = ",";
        }
    if (metrics & METRIC_METEOR) { fprintf(f, "%s\n    \"METEOR\": ", sep); json_number(f, r->meteor); sep = ","; }
    if (metrics & METRIC_ROUGE) { fprintf(f, "%s\n    \"ROUGE_L\": ", sep); json_number(f, r->rouge); sep = ","; }
    if (metrics & METRIC_CIDER) { fprintf(f, "%s\n    \"CIDEr\": ", sep); json_number(f, r->cider); sep = ","; }
    if (metrics & METRIC_SPICE) { fprintf(f, "%s\n    \"%s\": ", sep, spice_name(r)); json_number(f, r->spice); }
    fprintf(f, "\n  },\n");
    if (metrics & METRIC_BLEU) {
        const BleuStats* s = &r->bleu_stats;
        fprintf(f, "  \"bleu_stats\": {\"testlen\": %.0f, \"reflen\": %.0f, \"guess\": [%.0f, %.0f, %.0f, %.0f], \"correct\": [%.0f, %.0f, %.0f, %.0f]},\n",
                s->testlen, s->reflen, s->guess[0], s->guess[1], s->guess[2], s->guess[3], s->correct[0], s->correct[1],
                s->correct[2], s->correct[3]);
    }
    if (metrics & METRIC_METEOR) fprintf(f, "  \"meteor_paraphrase\": %s,\n", r->meteor_paraphrase ? "true" : "false");
    fprintf(f, "  \"images\": [");
    for (size_t i = 0; i < r->n; i++) {
        const double* v = r->per_image + i * N_COLUMNS;
        fprintf(f, "%s\n    {\"image_id\": ", i ? "," : "");
        if (images[i].id_is_number) fputs(images[i].id, f);
        else json_string(f, images[i].id);
        if (metrics & METRIC_BLEU)
            for (int k = 0; k < 4; k++) { fprintf(f, ", \"%s\": ", BLEU_NAMES[k]); json_number(f, v[COL_BLEU1 + k]); }
        if (metrics & METRIC_METEOR) { fprintf(f, ", \"METEOR\": "); json_number(f, v[COL_METEOR]); }
        if (metrics & METRIC_ROUGE) { fprintf(f, ", \"ROUGE_L\": "); json_number(f, v[COL_ROUGE]); }
        if (metrics & METRIC_CIDER) { fprintf(f, ", \"CIDEr\": "); json_number(f, v[COL_CIDER]); }
        if (metrics & METRIC_SPICE) { fprintf(f, ", \"%s\": ", spice_name(r)); json_number(f, v[COL_SPICE]); }
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
}

// Writes FILE through a temporary beside it and a rename, so no partial file is ever left.
static int write_json_atomic(const char* path, const EvalImage* images, const EvalReport* r, int metrics) {
    char* dup = strdup(path);
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.XXXXXX", dirname(dup), basename((char*)path));
    free(dup);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "tipcap-eval: %s: cannot create: %s\n", path, strerror(errno));
        return 0;
    }
    FILE* f = fdopen(fd, "w");
    write_json(f, images, r, metrics);
    int ok = fflush(f) == 0 && fsync(fd) == 0;
    ok = (fclose(f) == 0) && ok;
    if (ok) {
        chmod(tmp, 0644);
        ok = rename(tmp, path) == 0;
    }
    if (!ok) {
        fprintf(stderr, "tipcap-eval: %s: write failed: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

int main(int argc, char** argv) {
    const char *refs_path = NULL, *res_path = NULL, *json_path = NULL, *meteor_data = NULL, *spice_jar = NULL, *tokens_path = NULL;
    int metrics = METRIC_ALL, tokenize = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--no-tokenize")) tokenize = 0;
        else if (!v) { fprintf(stderr, "tipcap-eval: %s needs a value (see --help)\n", a); return 2; }
        else if (!strcmp(a, "--refs")) refs_path = argv[++i];
        else if (!strcmp(a, "--results")) res_path = argv[++i];
        else if (!strcmp(a, "--json")) json_path = argv[++i];
        else if (!strcmp(a, "--tokens")) tokens_path = argv[++i];
        else if (!strcmp(a, "--meteor-data")) meteor_data = argv[++i];
        else if (!strcmp(a, "--spice-jar")) spice_jar = argv[++i];
        else if (!strcmp(a, "--metrics")) { if (!parse_metrics(argv[++i], &metrics)) return 2; }
        else if (!strcmp(a, "--threads")) {
            char* end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 1024) { fprintf(stderr, "tipcap-eval: --threads: expected a positive integer, got \"%s\"\n", argv[i]); return 2; }
            threads = (int)t;
        } else { fprintf(stderr, "tipcap-eval: unknown option %s (see --help)\n", a); return 2; }
    }
    if (!refs_path || !res_path) {
        fprintf(stderr, "tipcap-eval: --refs and --results are required (see --help)\n");
        return 2;
    }
    char err[4096];
    RefSet refs;
    ResultSet res;
    if (!read_references(refs_path, &refs, err, sizeof err)) { fprintf(stderr, "tipcap-eval: %s\n", err); return 1; }
    if (!read_results(res_path, &res, err, sizeof err)) { fprintf(stderr, "tipcap-eval: %s\n", err); return 1; }
    Pairing pairing;
    char* pair_err = NULL;
    if (!pair_images(&refs, &res, refs_path, res_path, &pairing, &pair_err)) {
        fprintf(stderr, "tipcap-eval: %s\n", pair_err);
        free(pair_err);
        return 1;
    }
    free_references(&refs);
    free_results(&res);
    if (pairing.n == 0) {
        fprintf(stderr, "tipcap-eval: %s: no results to score\n", res_path);
        return 1;
    }
    if (pairing.refs_without_result)
        fprintf(stderr, "tipcap-eval: note: %zu reference image%s without a result %s not scored\n", pairing.refs_without_result,
                pairing.refs_without_result == 1 ? "" : "s", pairing.refs_without_result == 1 ? "is" : "are");
    char* meteor_dir = NULL;
    char* paraphrase = NULL;
    if (metrics & (METRIC_METEOR | METRIC_SPICE)) {
        meteor_dir = find_meteor_dir();
        if (!meteor_dir) {
            fprintf(stderr, "tipcap-eval: METEOR resources (meteor/english.synsets, ...) not found: set TIPCAP_DATA to the folder holding meteor/\n");
            return 1;
        }
        if (metrics & METRIC_METEOR) {
            paraphrase = find_paraphrase(meteor_data, meteor_dir);
            if (meteor_data && !paraphrase) {
                fprintf(stderr, "tipcap-eval: --meteor-data %s: no readable paraphrase-en.gz there\n", meteor_data);
                return 1;
            }
        }
    }
    if ((metrics & METRIC_SPICE) && spice_jar && access(spice_jar, R_OK) != 0) {
        fprintf(stderr, "tipcap-eval: --spice-jar %s: %s\n", spice_jar, strerror(errno));
        return 1;
    }
    EvalOptions opt = {metrics, tokenize, meteor_dir, paraphrase, spice_jar, threads};
    EvalReport report;
    if (!evaluate(pairing.images, pairing.n, &opt, &report, err, sizeof err)) {
        fprintf(stderr, "tipcap-eval: %s\n", err);
        return 1;
    }
    if (json_path && !write_json_atomic(json_path, pairing.images, &report, metrics)) return 1;
    if (tokens_path && !write_tokens(tokens_path, pairing.images, pairing.n)) return 1;
    // the toolkit's table
    if (metrics & METRIC_BLEU)
        for (int k = 0; k < 4; k++) printf("Bleu_%d: %0.3f\n", k + 1, report.bleu[k]);
    if (metrics & METRIC_METEOR)
        printf("METEOR: %0.3f%s\n", report.meteor, report.meteor_paraphrase ? "" : " (without the paraphrase module: no usable paraphrase-en.gz)");
    if (metrics & METRIC_ROUGE) printf("ROUGE_L: %0.3f\n", report.rouge);
    if (metrics & METRIC_CIDER) printf("CIDEr: %0.3f\n", report.cider);
    if (metrics & METRIC_SPICE) printf("%s: %0.3f\n", spice_name(&report), report.spice);
    free_report(&report);
    free_pairing(&pairing);
    free(meteor_dir);
    free(paraphrase);
    return 0;
}
