#include "eval/evaluate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void tokenize_images(EvalImage* images, size_t n) {
    size_t n_refs = 0;
    for (size_t i = 0; i < n; i++) n_refs += (size_t)images[i].n_refs;
    const char** refs = malloc((n_refs ? n_refs : 1) * sizeof *refs);
    char** refs_out = malloc((n_refs ? n_refs : 1) * sizeof *refs_out);
    const char** hyps = malloc((n ? n : 1) * sizeof *hyps);
    char** hyps_out = malloc((n ? n : 1) * sizeof *hyps_out);
    if (!refs || !refs_out || !hyps || !hyps_out) abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        hyps[i] = images[i].hyp;
        for (int r = 0; r < images[i].n_refs; r++) refs[k++] = images[i].refs[r];
    }
    #pragma omp parallel sections
    {
        #pragma omp section
        ptb_tokenize_captions(refs, n_refs, refs_out);
        #pragma omp section
        ptb_tokenize_captions(hyps, n, hyps_out);
    }
    k = 0;
    for (size_t i = 0; i < n; i++) {
        free(images[i].hyp);
        images[i].hyp = hyps_out[i];
        for (int r = 0; r < images[i].n_refs; r++) {
            free(images[i].refs[r]);
            images[i].refs[r] = refs_out[k++];
        }
    }
    free(refs);
    free(refs_out);
    free(hyps);
    free(hyps_out);
}

// Real SPICE through its jar, the toolkit's way; returns 0 when it cannot run.
static int run_spice_jar(const char* jar, const EvalImage* images, size_t n, double* mean, double* per_image) {
    char in_path[] = "/tmp/tipcap-spice-in-XXXXXX", out_path[] = "/tmp/tipcap-spice-out-XXXXXX";
    int fd_in = mkstemp(in_path), fd_out = mkstemp(out_path);
    if (fd_in < 0 || fd_out < 0) return 0;
    close(fd_out);
    cJSON* arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON* o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "image_id", images[i].id);
        cJSON_AddStringToObject(o, "test", images[i].hyp);
        cJSON* refs = cJSON_CreateArray();
        for (int r = 0; r < images[i].n_refs; r++) cJSON_AddItemToArray(refs, cJSON_CreateString(images[i].refs[r]));
        cJSON_AddItemToObject(o, "refs", refs);
        cJSON_AddItemToArray(arr, o);
    }
    char* text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    FILE* f = fdopen(fd_in, "w");
    int ok = f && fputs(text, f) >= 0;
    if (f) fclose(f);
    free(text);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd \"$(dirname '%s')\" && java -jar -Xmx8G '%s' '%s' -cache cache -out '%s' -subset -silent >&2", jar, jar,
             in_path, out_path);
    ok = ok && system(cmd) == 0;
    cJSON* res = NULL;
    if (ok) {
        FILE* g = fopen(out_path, "rb");
        if (g) {
            fseek(g, 0, SEEK_END);
            long len = ftell(g);
            fseek(g, 0, SEEK_SET);
            char* buf = malloc((size_t)len + 1);
            if (buf && fread(buf, 1, (size_t)len, g) == (size_t)len) {
                buf[len] = 0;
                res = cJSON_Parse(buf);
            }
            free(buf);
            fclose(g);
        }
    }
    unlink(in_path);
    unlink(out_path);
    if (!res || !cJSON_IsArray(res) || (size_t)cJSON_GetArraySize(res) != n) {
        cJSON_Delete(res);
        return 0;
    }
    double* f1 = malloc((n ? n : 1) * sizeof *f1);
    if (!f1) abort();
    size_t i = 0;
    const cJSON* it;
    cJSON_ArrayForEach(it, res) {
        const cJSON* all = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "scores"), "All");
        const cJSON* fv = cJSON_GetObjectItemCaseSensitive(all, "f");
        f1[i++] = cJSON_IsNumber(fv) ? fv->valuedouble : (0.0 / 0.0);
    }
    cJSON_Delete(res);
    *mean = np_pairwise_sum(f1, n) / (double)n;
    for (size_t k = 0; k < n; k++) per_image[k * N_COLUMNS + COL_SPICE] = f1[k];
    free(f1);
    return 1;
}

int evaluate(EvalImage* images, size_t n, const EvalOptions* o, EvalReport* out, char* err, size_t err_cap) {
    memset(out, 0, sizeof *out);
    out->n = n;
    out->per_image = calloc((n ? n : 1) * N_COLUMNS, sizeof *out->per_image);
    if (!out->per_image) abort();
#ifdef _OPENMP
    if (o->threads > 0) omp_set_num_threads(o->threads);
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif
    if (o->tokenize) tokenize_images(images, n);
    double* tmp = malloc((n ? n : 1) * 4 * sizeof *tmp);
    if (!tmp) abort();
    Meteor* meteor = NULL;
    if (o->metrics & (METRIC_METEOR | METRIC_SPICE)) {
        meteor = meteor_open(o->meteor_dir, (o->metrics & METRIC_METEOR) ? o->paraphrase : NULL, err, err_cap);
        if (!meteor) {
            free(tmp);
            return 0;
        }
    }
    if (o->metrics & METRIC_METEOR) {
        out->meteor = meteor_score(meteor, images, n, tmp, threads);
        out->meteor_paraphrase = meteor_has_paraphrase(meteor);
        for (size_t i = 0; i < n; i++) out->per_image[i * N_COLUMNS + COL_METEOR] = tmp[i];
    }
    if (o->metrics & METRIC_BLEU) {
        bleu_score(images, n, out->bleu, tmp, &out->bleu_stats);
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 4; k++) out->per_image[i * N_COLUMNS + COL_BLEU1 + k] = tmp[4 * i + k];
    }
    if (o->metrics & METRIC_ROUGE) {
        out->rouge = rouge_l_score(images, n, tmp);
        for (size_t i = 0; i < n; i++) out->per_image[i * N_COLUMNS + COL_ROUGE] = tmp[i];
    }
    if (o->metrics & METRIC_CIDER) {
        out->cider = cider_d_score(images, n, tmp);
        for (size_t i = 0; i < n; i++) out->per_image[i * N_COLUMNS + COL_CIDER] = tmp[i];
    }
    if (o->metrics & METRIC_SPICE) {
        out->spice_is_approx = 1;
        if (o->spice_jar && access(o->spice_jar, R_OK) == 0) {
            if (run_spice_jar(o->spice_jar, images, n, &out->spice, out->per_image)) out->spice_is_approx = 0;
            else fprintf(stderr, "tipcap-eval: warning: SPICE (%s) did not run; reporting SPICE-approx instead\n", o->spice_jar);
        }
        if (out->spice_is_approx) {
            out->spice = spice_approx_score(meteor, images, n, tmp);
            for (size_t i = 0; i < n; i++) out->per_image[i * N_COLUMNS + COL_SPICE] = tmp[i];
        }
    }
    meteor_close(meteor);
    free(tmp);
    return 1;
}

void free_report(EvalReport* r) {
    free(r->per_image);
    memset(r, 0, sizeof *r);
}
