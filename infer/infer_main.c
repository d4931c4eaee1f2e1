// tipcap-infer: captions for the images of a feature file from a trained checkpoint.
#include <cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/check.h"
#include "common/cli.h"
#include "common/runtime.h"
#include "common/log.h"
#include "common/timer.h"
#include "data/features.h"
#include "data/tokenizer.h"
#include "infer/decode.h"
#include "infer/prompts.h"
#include "infer/results.h"
#include "train/checkpoint.h"
#include "train/model.h"
#include "train/token_vocab.h"

static void usage(FILE* out) {
    fprintf(out,
            "usage: tipcap-infer --checkpoint C --features F --out results.json [options]\n"
            "       tipcap-infer --checkpoint C --features F --interactive [options]\n\n"
            "Writes a COCO results file [{\"image_id\", \"caption\"}] for every image of F (/images).\n\n"
            "  --checkpoint C        a run directory (its newest checkpoint), a checkpoint directory or a\n"
            "                        model.safetensors\n"
            "  --features F          HDF5 feature file with /images (and /vocab for --prompts auto)\n"
            "  --out FILE            results JSON (written atomically)\n"
            "  --beam N              beam width 1..10 (default 5; 1 is greedy)\n"
            "  --max-len N           generated tokens at most, >= 1 (default: 30, or what the decoder's positions allow)\n"
            "  --length-penalty A    beam score sum(log p) / len^A (default 0)\n"
            "  --no-repeat-ngram N   forbid repeating an n-gram, 0..100 (default 0: off)\n"
            "  --no-stop-at-period   do not end captions at '.' (they end at EOT)\n"
            "  --prompts MODE        none (default), auto (CLIP zero-shot over /vocab), or a JSON file\n"
            "                        {\"image key or COCO id\": [\"word\", ...]} (entries for other images are skipped)\n"
            "  --temperature T       auto prompts: softmax temperature, > 0 (default 0.01)\n"
            "  --threshold P         auto prompts: minimum probability, 0..1 (default 0.4)\n"
            "  --batch N             images per batch, >= 1 (default 32)\n"
            "  --limit N             only the first N images, >= 1\n"
            "  --device auto|cpu|cuda, --precision fp32|bf16 (GPU; default bf16)\n"
            "  --with-scores         add \"score\" and \"prompts\" to every result\n"
            "  --allow-clip-model-mismatch  caption images whose features' clip_model differs from the one the\n"
            "                        checkpoint was trained on (an error otherwise: the embeddings would not match)\n"
            "  --interactive         read lines \"IMAGE_KEY word, word, ...\" on stdin (no words: no prompts) and\n"
            "                        answer each with one JSON line {\"image\", \"prompts\", \"caption\"} (and\n"
            "                        \"score\" with --with-scores) or {\"image\", \"error\"}; EOF ends (docs/GUIDE.md)\n"
            "Environment: TIPCAP_ATTENTION=cudnn uses cuDNN's fused attention for the prefix on the GPU in\n"
            "bf16 (builds with cudnn-frontend; docs/KERNELS.md).\n");
}

static const char* resolve_checkpoint(const char* path, char* buf, size_t cap) {
    struct stat st;
    if (stat(path, &st) != 0) FATAL("--checkpoint %s: no such file or directory", path);
    if (!S_ISDIR(st.st_mode)) return path;
    snprintf(buf, cap, "%s/model.safetensors", path);
    if (access(buf, R_OK) == 0) return buf;
    char ckpt[4200];
    if (!checkpoint_latest(path, ckpt, sizeof ckpt)) FATAL("--checkpoint %s: no model.safetensors and no checkpoints/", path);
    snprintf(buf, cap, "%s/model.safetensors", ckpt);
    return buf;
}

typedef struct {
    Model* model;
    ModelDecoder* decoder;
    Tokenizer* tok;
    TokenVocab vocab;  // model ids <-> GPT-2 ids
    DecodeOptions dec;
    int batch;
    PromptBuffers buffers;
} Captioner;

// Captions images [first, first + n) into texts[] (caller frees) and scores[].
static void caption_range(Captioner* cap, const FeatureStore* fs, const ImagePrompts* prompts, int first, int n,
                          char** texts, double* scores) {
    const ModelConfig* mc = model_config(cap->model);
    Caption* out = callocCheck((size_t)n, sizeof(Caption));
    ModelBatch mb = {.B = n, .L = 0, .emb = fs->image_emb + (size_t)first * fs->dim, .gap_noise = 0};
    prompts_fill_batch(prompts, first, n, mc->max_prompts, cap->tok, &cap->vocab, &cap->buffers, &mb);
    decode_batch(cap->model, cap->decoder, &mb, &cap->dec, out);
    char err[256];
    for (int i = 0; i < n; i++) {
        token_vocab_decode(&cap->vocab, out[i].tokens, (size_t)out[i].len);
        char* text = tokenizer_decode(cap->tok, out[i].tokens, (size_t)out[i].len, NULL, err, sizeof err);
        if (!text) FATAL("decoding image %s: %s", fs->image_keys[first + i], err);
        char* s = text;  // trim the leading space GPT-2 words carry
        while (isspace((unsigned char)*s)) s++;
        size_t len = strlen(s);
        while (len && isspace((unsigned char)s[len - 1])) s[--len] = '\0';
        texts[i] = strdupCheck(s);
        scores[i] = out[i].score;
        free(text);
        caption_free(&out[i]);
    }
    free(out);
}

// One answer line: {"image", "prompts", "caption"[, "score"]} or {"image", "error"}.
static void print_answer(const char* key, const char* const* words, int n_words, const char* caption, double score,
                         int with_score, const char* error) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", key);
    if (error) {
        cJSON_AddStringToObject(o, "error", error);
    } else {
        cJSON* p = cJSON_AddArrayToObject(o, "prompts");
        for (int j = 0; j < n_words; j++) cJSON_AddItemToArray(p, cJSON_CreateString(words[j]));
        cJSON_AddStringToObject(o, "caption", caption);
        if (with_score) cJSON_AddNumberToObject(o, "score", score);
    }
    char* text = cJSON_PrintUnformatted(o);
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    cJSON_Delete(o);
}

// Each line "KEY word, word, ..." (or words separated by spaces when there is no comma) gets
// exactly one answer line; a bad line is an error line and the session goes on.
static void interactive(Captioner* cap, const FeatureStore* fs, const char* features, int limited,
                        const ImageLookup* lookup, ImagePrompts* prompts, int with_scores) {
    int max_words = model_config(cap->model)->max_prompts;
    char* line = NULL;
    size_t line_cap = 0;
    while (getline(&line, &line_cap, stdin) >= 0) {
        line[strcspn(line, "\r\n")] = '\0';
        char* p = line;
        while (isspace((unsigned char)*p)) p++;
        char* key = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = '\0';
        if (!*key) {
            print_answer("", NULL, 0, NULL, 0, 0, "no image key: a line is IMAGE_KEY word, word, ...");
            continue;
        }
        int n_words = 0;
        char** words = mallocCheck(sizeof(char*) * (strlen(p) + 1));
        const char* sep = strchr(p, ',') ? "," : " \t";
        for (char* w = strtok(p, sep); w; w = strtok(NULL, sep)) {
            char* word = prompt_word_normalize(w);
            if (*word) words[n_words++] = word;
            else free(word);
        }
        char why[600];
        int image = image_lookup_find(lookup, key);
        if (image < 0) {
            snprintf(why, sizeof why, "image \"%s\" is not in %s%s", key, features,
                     limited ? " (or is beyond --limit)" : "");
            print_answer(key, NULL, 0, NULL, 0, 0, why);
        } else if (prompt_words_check((const char* const*)words, n_words, max_words, cap->tok, &cap->vocab, why,
                                      sizeof why)) {
            print_answer(key, NULL, 0, NULL, 0, 0, why);
        } else {
            prompts_set(prompts, image, (const char* const*)words, n_words);
            char* text;
            double score;
            caption_range(cap, fs, prompts, image, 1, &text, &score);
            print_answer(key, (const char* const*)words, n_words, text, score, with_scores, NULL);
            free(text);
        }
        for (int j = 0; j < n_words; j++) free(words[j]);
        free(words);
    }
    free(line);
}

// "tipcap-infer: MESSAGE" and exit 2, before anything is read or written.
__attribute__((noreturn, format(printf, 1, 2))) static void usage_error(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tipcap-infer: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static long long int_option(const char* opt, const char* v, long long lo, long long hi) {
    char err[256];
    long long x;
    if (cli_parse_int(opt, v, lo, hi, &x, err, sizeof err)) usage_error("%s", err);
    return x;
}

static double number_option(const char* opt, const char* v) {
    char err[256];
    double x;
    if (cli_parse_double(opt, v, &x, err, sizeof err)) usage_error("%s", err);
    return x;
}

// Captioning progress on stderr as training shows it: on a terminal one line redrawn in place,
// otherwise a log line at each tenth of the images.
static void progress(int before, int done, int total, double start, int tty) {
    double rate = done / (timer_now() - start);
    char eta[32];
    timer_format_hms((total - done) / rate, eta, sizeof eta);
    if (tty) {
        fprintf(stderr, "\rcaptioned %d/%d images  %.1f images/s  ETA %s   ", done, total, rate, eta);
        if (done == total) fputc('\n', stderr);
        fflush(stderr);
    } else if (done < total && (long)done * 10 / total > (long)before * 10 / total) {
        LOG_INFO("captioned %d/%d images  %.1f images/s  ETA %s", done, total, rate, eta);
    }
}

int main(int argc, char** argv) {
    const char *checkpoint = NULL, *features = NULL, *out_path = NULL, *prompt_mode = "none", *device = "auto",
               *precision = "bf16";
    int beam = 5, max_len = 0, no_repeat = 0, stop_at_period = 1, batch = 32, with_scores = 0, interactive_mode = 0,
        allow_clip_mismatch = 0;
    long limit = -1;
    double length_penalty = 0, temperature = 0.01, threshold = 0.4;
    runtime_init(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (OPT("--checkpoint")) checkpoint = v;
        else if (OPT("--features")) features = v;
        else if (OPT("--out")) out_path = v;
        else if (OPT("--beam")) beam = (int)int_option(a, v, 1, 10);
        else if (OPT("--max-len")) max_len = (int)int_option(a, v, 1, 100000);
        else if (OPT("--length-penalty")) length_penalty = number_option(a, v);
        else if (OPT("--no-repeat-ngram")) no_repeat = (int)int_option(a, v, 0, 100);
        else if (!strcmp(a, "--no-stop-at-period")) stop_at_period = 0;
        else if (OPT("--prompts")) prompt_mode = v;
        else if (OPT("--temperature")) temperature = number_option(a, v);
        else if (OPT("--threshold")) threshold = number_option(a, v);
        else if (OPT("--batch")) batch = (int)int_option(a, v, 1, 1 << 20);
        else if (OPT("--limit")) limit = (long)int_option(a, v, 1, INT_MAX);
        else if (OPT("--device")) device = v;
        else if (OPT("--precision")) precision = v;
        else if (!strcmp(a, "--with-scores")) with_scores = 1;
        else if (!strcmp(a, "--interactive")) interactive_mode = 1;
        else if (!strcmp(a, "--allow-clip-model-mismatch")) allow_clip_mismatch = 1;
        else {
            fprintf(stderr, "tipcap-infer: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
#undef OPT
    }
    if (!checkpoint || !features || (!out_path && !interactive_mode)) {
        usage(stderr);
        return 2;
    }
    if (!(temperature > 0)) usage_error("--temperature: %g must be positive", temperature);
    if (!(threshold >= 0 && threshold <= 1)) usage_error("--threshold: %g is outside [0, 1]", threshold);
    if (strcmp(device, "auto") && strcmp(device, "cpu") && strcmp(device, "cuda"))
        usage_error("--device: '%s' is not auto, cpu or cuda", device);
    if (strcmp(precision, "fp32") && strcmp(precision, "bf16")) usage_error("--precision: '%s' is not fp32 or bf16", precision);

    char err[2048], model_buf[4300];
    FeatureStore fs;
    if (features_read(features, &fs, err, sizeof err)) FATAL("%s", err);
    if (fs.n_images == 0)
        FATAL("%s: no images: /images is absent or empty (a file of caption features only?); tipcap-infer captions the "
              "images of a feature file", features);
    int n_images_in_file = fs.n_images;
    if (limit > 0 && limit < fs.n_images) fs.n_images = (int)limit;
    const char* model_path = resolve_checkpoint(checkpoint, model_buf, sizeof model_buf);
    ModelConfig mc;
    char clip_model[256];
    if (checkpoint_read_model_config(model_path, &mc, clip_model, sizeof clip_model, err, sizeof err)) FATAL("%s", err);
    if (mc.clip_dim != fs.dim)
        FATAL("%s: the images have D = %d, but the checkpoint %s was trained on D = %d", features, fs.dim, model_path,
              mc.clip_dim);
    if (clip_model[0] && strcmp(clip_model, fs.clip_model)) {  // "": a checkpoint from before clip_model was recorded
        if (!allow_clip_mismatch)
            FATAL("%s: the image features are of clip_model \"%s\", but the checkpoint %s was trained on features of "
                  "\"%s\": the embeddings would not match (--allow-clip-model-mismatch captions them anyway)", features,
                  fs.clip_model, model_path, clip_model);
        LOG_WARN("%s: clip_model \"%s\", the checkpoint's features \"%s\" (--allow-clip-model-mismatch)", features,
                 fs.clip_model, clip_model);
    }
    if (max_len == 0) max_len = mc.max_len - mc.prefix_len < 30 ? mc.max_len - mc.prefix_len : 30;
    if (mc.prefix_len + max_len > mc.max_len) {
        LOG_WARN("--max-len %d: the decoder has %d positions after the %d prefix tokens; using %d", max_len,
                 mc.max_len - mc.prefix_len, mc.prefix_len, mc.max_len - mc.prefix_len);
        max_len = mc.max_len - mc.prefix_len;
    }
    if (batch > fs.n_images) batch = fs.n_images;

    Backend* be = NULL;
    if (strcmp(device, "cpu")) be = backend_cuda_create(strcmp(precision, "fp32") ? DTYPE_BF16 : DTYPE_F32);
    if (!be && !strcmp(device, "cuda")) FATAL("--device cuda: no GPU backend is available");
    if (!be) be = backend_cpu_create();

    Captioner cap = {0};
    cap.batch = batch;
    cap.model = model_create(be, &mc, batch * beam, max_len);
    if (model_load_weights(cap.model, model_path, err, sizeof err)) FATAL("%s", err);
    if (token_vocab_from_ids(&cap.vocab, model_vocab(cap.model), mc.vocab_size, err, sizeof err))
        FATAL("%s: %s", model_path, err);
    if (cap.vocab.index[GPT2_EOT] < 0) FATAL("%s: the model's vocabulary has no end-of-text token", model_path);
    cap.dec = (DecodeOptions){.beam = beam, .max_len = max_len, .length_penalty = length_penalty,
                              .stop_at_period = stop_at_period && cap.vocab.index[13] >= 0, .no_repeat_ngram = no_repeat,
                              .eot = cap.vocab.index[GPT2_EOT], .period = cap.vocab.index[13]};
    cap.decoder = model_decoder_create(cap.model, batch * beam, decode_topk_needed(&cap.dec));
    cap.tok = tokenizer_load_default();

    ImagePrompts prompts;
    ImageLookup lookup;
    image_lookup_init(&lookup, &fs);
    if (!strcmp(prompt_mode, "none")) prompts_none(&fs, &prompts);
    else if (!strcmp(prompt_mode, "auto")) {
        if (prompts_auto(&fs, mc.max_prompts, temperature, threshold, &prompts, err, sizeof err)) FATAL("%s: %s", features, err);
    } else {
        int skipped;
        if (prompts_load(prompt_mode, &fs, &lookup, mc.max_prompts, cap.tok, &cap.vocab, &prompts, &skipped, err,
                         sizeof err))
            FATAL("%s", err);
        if (skipped)
            LOG_INFO("%s: %d entr%s for images not in %s%s skipped", prompt_mode, skipped, skipped == 1 ? "y" : "ies",
                     features, fs.n_images < n_images_in_file ? " (or beyond --limit)" : "");
    }

    int status = 0;
    if (interactive_mode) {
        interactive(&cap, &fs, features, fs.n_images < n_images_in_file, &lookup, &prompts, with_scores);
    } else {
        char** texts = callocCheck((size_t)fs.n_images, sizeof(char*));
        double* scores = callocCheck((size_t)fs.n_images, sizeof(double));
        double start = timer_now();
        int tty = isatty(2);
        for (int first = 0; first < fs.n_images; first += batch) {
            int n = fs.n_images - first < batch ? fs.n_images - first : batch;
            caption_range(&cap, &fs, &prompts, first, n, texts + first, scores + first);
            progress(first, first + n, fs.n_images, start, tty);
        }
        double elapsed = timer_now() - start;
        LOG_INFO("%d captions in %.1f s (%.1f images/s, beam %d, %s)", fs.n_images, elapsed, fs.n_images / elapsed, beam,
                 be->name);
        ResultEntry* entries = callocCheck((size_t)fs.n_images, sizeof(ResultEntry));
        for (int i = 0; i < fs.n_images; i++) {
            entries[i] = (ResultEntry){.key = fs.image_keys[i], .caption = texts[i], .score = scores[i],
                                       .prompts = (const char* const*)prompts.words + prompts.offsets[i],
                                       .n_prompts = prompts.offsets[i + 1] - prompts.offsets[i]};
        }
        if (results_write(out_path, entries, fs.n_images, with_scores, err, sizeof err)) {
            fprintf(stderr, "tipcap-infer: %s\n", err);
            status = 1;
        }
        for (int i = 0; i < fs.n_images; i++) free(texts[i]);
        free(texts);
        free(scores);
        free(entries);
    }
    prompts_free(&prompts);
    image_lookup_free(&lookup);
    prompt_buffers_free(&cap.buffers);
    tokenizer_free(cap.tok);
    token_vocab_free(&cap.vocab);
    model_decoder_free(cap.model, cap.decoder);
    model_free(cap.model);
    be->destroy(be);
    fs.n_images = n_images_in_file;
    features_free(&fs);
    return status;
}
