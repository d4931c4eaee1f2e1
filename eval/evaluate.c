#include "eval/evaluate.h"

#include <errno.h>
#include <pthread.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cJSON.h>
#ifdef _OPENMP
#include <omp.h>
#endif

// Python's order of the toolkit's image ids (Spice.compute_score sorts them): numbers by value,
// strings by code point (UTF-8 byte order); a mix, which Python refuses, puts numbers first.
static const EvalImage* sort_images;
static int cmp_image_ids(const void* pa, const void* pb) {
    const EvalImage* a = &sort_images[*(const size_t*)pa];
    const EvalImage* b = &sort_images[*(const size_t*)pb];
    if (a->id_is_number != b->id_is_number) return b->id_is_number - a->id_is_number;
    if (!a->id_is_number) return strcmp(a->id, b->id);
    double x = strtod(a->id, NULL), y = strtod(b->id, NULL);
    return (x > y) - (x < y);
}

static char* read_text(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char* buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

// Real SPICE through spice-1.0.jar, run as pycocoevalcap's Spice does: the images sorted by id,
// `java -jar -Xmx8G spice-1.0.jar IN -cache DIR/cache -out OUT -subset -silent` in the jar's
// folder, each image's "All" F-score from OUT (null: NaN), the mean over OUT's order (numpy's).
// Returns 0 with a message in err when the jar fails or its output does not fit.
static int run_spice_jar(const char* jar, const EvalImage* images, size_t n, double* mean, double* per_image, char* err,
                         size_t err_cap) {
    char jar_abs[PATH_MAX], jar_dir[PATH_MAX], cache_dir[PATH_MAX + 8];
    if (!realpath(jar, jar_abs)) {
        snprintf(err, err_cap, "--spice-jar %s: %s", jar, strerror(errno));
        return 0;
    }
    snprintf(jar_dir, sizeof jar_dir, "%s", jar_abs);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dirname(jar_dir));
    mkdir(cache_dir, 0755);
    size_t* order = malloc((n ? n : 1) * sizeof *order);
    if (!order) abort();
    for (size_t i = 0; i < n; i++) order[i] = i;
    sort_images = images;
    qsort(order, n, sizeof *order, cmp_image_ids);
    cJSON* input = cJSON_CreateArray();
    for (size_t k = 0; k < n; k++) {
        const EvalImage* im = &images[order[k]];
        cJSON* o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "image_id", im->id_is_number ? cJSON_CreateRaw(im->id) : cJSON_CreateString(im->id));
        cJSON_AddStringToObject(o, "test", im->hyp);
        cJSON* refs = cJSON_CreateArray();
        for (int r = 0; r < im->n_refs; r++) cJSON_AddItemToArray(refs, cJSON_CreateString(im->refs[r]));
        cJSON_AddItemToObject(o, "refs", refs);
        cJSON_AddItemToArray(input, o);
    }
    char* text = cJSON_PrintUnformatted(input);
    cJSON_Delete(input);
    char in_path[] = "/tmp/tipcap-spice-in-XXXXXX", out_path[] = "/tmp/tipcap-spice-out-XXXXXX";
    int fd_in = mkstemp(in_path), fd_out = mkstemp(out_path);
    FILE* f = fd_in >= 0 ? fdopen(fd_in, "w") : NULL;
    int ok = f && fd_out >= 0 && fputs(text, f) >= 0;
    ok = (f && fclose(f) == 0) && ok;
    if (fd_out >= 0) close(fd_out);
    free(text);
    int status = -1;
    if (ok) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            // the jar's messages go to stderr: stdout is tipcap-eval's table
            if (chdir(jar_dir) != 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) _exit(126);
            execlp("java", "java", "-jar", "-Xmx8G", jar_abs, in_path, "-cache", cache_dir, "-out", out_path, "-subset", "-silent",
                   (char*)NULL);
            _exit(127);
        }
        if (pid > 0) waitpid(pid, &status, 0);
    }
    cJSON* res = NULL;
    if (!ok) snprintf(err, err_cap, "SPICE: cannot write its input in /tmp");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ok = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) snprintf(err, err_cap, "--spice-jar %s: cannot run java (not on PATH?)", jar);
        else snprintf(err, err_cap, "--spice-jar %s: SPICE failed (java exited with status %d; its messages are above)", jar,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        char* out_text = read_text(out_path);
        res = out_text ? cJSON_Parse(out_text) : NULL;
        free(out_text);
        if (!cJSON_IsArray(res) || (size_t)cJSON_GetArraySize(res) != n) {
            ok = 0;
            snprintf(err, err_cap, "--spice-jar %s: SPICE's output is not a JSON list of %zu images", jar, n);
        }
    }
    unlink(in_path);
    unlink(out_path);
    double* f1 = malloc((n ? n : 1) * sizeof *f1);
    if (!f1) abort();
    size_t k = 0;
    const cJSON* item;
    if (ok) cJSON_ArrayForEach(item, res) {
        const EvalImage* im = &images[order[k]];
        const cJSON* id = cJSON_GetObjectItemCaseSensitive(item, "image_id");
        int same = im->id_is_number ? cJSON_IsNumber(id) && id->valuedouble == strtod(im->id, NULL)
                                    : cJSON_IsString(id) && !strcmp(id->valuestring, im->id);
        if (!same) {
            snprintf(err, err_cap, "--spice-jar %s: SPICE's output has its images out of order (row %zu is not image %s)", jar, k, im->id);
            ok = 0;
            break;
        }
        const cJSON* all = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(item, "scores"), "All");
        const cJSON* fv = cJSON_GetObjectItemCaseSensitive(all, "f");
        f1[k++] = cJSON_IsNumber(fv) ? fv->valuedouble : NAN;
    }
    cJSON_Delete(res);
    if (ok) {
        *mean = np_pairwise_sum(f1, n) / (double)n;
        for (k = 0; k < n; k++) per_image[order[k] * N_COLUMNS + COL_SPICE] = f1[k];
    }
    free(f1);
    free(order);
    return ok;
}

// METEOR's resources load while the captions are tokenised.
typedef struct {
    const EvalOptions* o;
    Meteor* meteor;
    char* err;
    size_t err_cap;
} MeteorOpenJob;

static void* meteor_open_job(void* arg) {
    MeteorOpenJob* j = arg;
    j->meteor = meteor_open(j->o->meteor_dir, (j->o->metrics & METRIC_METEOR) ? j->o->paraphrase : NULL, j->err, j->err_cap);
    return NULL;
}

// BLEU, ROUGE-L and CIDEr need only the tokenised captions: they run beside METEOR, whose
// serial parts (the paraphrase table) would otherwise leave a core idle.
typedef struct {
    const EvalImage* images;
    size_t n;
    int metrics, threads;
    EvalReport* out;
} NgramJob;

static void* ngram_metrics_job(void* arg) {
    NgramJob* j = arg;
    EvalReport* out = j->out;
    size_t n = j->n;
#ifdef _OPENMP
    omp_set_num_threads(j->threads);
#endif
    double* tmp = malloc((n ? n : 1) * 4 * sizeof *tmp);
    if (!tmp) abort();
    if (j->metrics & METRIC_BLEU) {
        bleu_score(j->images, n, out->bleu, tmp, &out->bleu_stats);
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < 4; k++) out->per_image[i * N_COLUMNS + COL_BLEU1 + k] = tmp[4 * i + k];
    }
    if (j->metrics & METRIC_ROUGE) {
        out->rouge = rouge_l_score(j->images, n, tmp);
        for (size_t i = 0; i < n; i++) out->per_image[i * N_COLUMNS + COL_ROUGE] = tmp[i];
    }
    if (j->metrics & METRIC_CIDER) {
        out->cider = cider_d_score(j->images, n, tmp);
        for (size_t i = 0; i < n; i++) out->per_image[i * N_COLUMNS + COL_CIDER] = tmp[i];
    }
    free(tmp);
    return NULL;
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
    MeteorOpenJob open_job = {o, NULL, err, err_cap};
    pthread_t opener;
    int need_meteor = (o->metrics & (METRIC_METEOR | METRIC_SPICE)) != 0;
    if (need_meteor && pthread_create(&opener, NULL, meteor_open_job, &open_job) != 0) abort();
    if (o->tokenize) tokenize_images(images, n);
    if (need_meteor) pthread_join(opener, NULL);
    Meteor* meteor = open_job.meteor;
    if (need_meteor && !meteor) return 0;
    NgramJob ngram_job = {images, n, o->metrics, threads, out};
    pthread_t ngrams;
    if (pthread_create(&ngrams, NULL, ngram_metrics_job, &ngram_job) != 0) abort();
    double* tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!tmp) abort();
    if (o->metrics & METRIC_METEOR) {
        out->meteor = meteor_score(meteor, images, n, tmp, threads);
        out->meteor_paraphrase = meteor_has_paraphrase(meteor);
        for (size_t i = 0; i < n; i++) out->per_image[i * N_COLUMNS + COL_METEOR] = tmp[i];
    }
    pthread_join(ngrams, NULL);
    if (o->metrics & METRIC_SPICE) {
        out->spice_is_approx = !o->spice_jar;
        if (o->spice_jar && !run_spice_jar(o->spice_jar, images, n, &out->spice, out->per_image, err, err_cap)) {
            meteor_close(meteor);
            free(tmp);
            return 0;
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
