// tipcap-infer: captions for the images of a feature file from a trained checkpoint.
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/check.h"
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
            "  --max-len N           generated tokens at most (default: 30, or what the decoder's positions allow)\n"
            "  --length-penalty A    beam score sum(log p) / len^A (default 0)\n"
            "  --no-repeat-ngram N   forbid repeating an n-gram (default 0: off)\n"
            "  --no-stop-at-period   do not end captions at '.' (they end at EOT)\n"
            "  --prompts MODE        none (default), auto (CLIP zero-shot over /vocab), or a JSON file\n"
            "                        {\"image key\": [\"word\", ...]}\n"
            "  --temperature T       auto prompts: softmax temperature (default 0.01)\n"
            "  --threshold P         auto prompts: minimum probability (default 0.4)\n"
            "  --batch N             images per batch (default 32)\n"
            "  --limit N             only the first N images\n"
            "  --device auto|cpu|cuda, --precision fp32|bf16 (GPU; default bf16)\n"
            "  --with-scores         add \"score\" and \"prompts\" to every result\n"
            "  --interactive         read lines \"IMAGE_KEY word, word, ...\" on stdin and print a caption\n"
            "                        for each (no words: no prompts); an empty line or EOF ends\n"
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

static void interactive(Captioner* cap, const FeatureStore* fs, ImagePrompts* prompts) {
    char line[4096];
    int max_words = model_config(cap->model)->max_prompts;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char* p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p) break;
        char* key = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p) *p++ = '\0';
        int image = features_find_image(fs, key);
        if (image < 0) {
            fprintf(stderr, "tipcap-infer: unknown image key \"%s\"\n", key);
            continue;
        }
        const char* words[64];
        int n_words = 0;
        const char* sep = strchr(p, ',') ? "," : " \t";
        for (char* w = strtok(p, sep); w && n_words < max_words; w = strtok(NULL, sep)) {
            while (isspace((unsigned char)*w)) w++;
            size_t len = strlen(w);
            while (len && isspace((unsigned char)w[len - 1])) w[--len] = '\0';
            if (*w) words[n_words++] = w;
        }
        prompts_set(prompts, image, words, n_words);
        char* text;
        double score;
        caption_range(cap, fs, prompts, image, 1, &text, &score);
        printf("%s\n", text);
        fflush(stdout);
        free(text);
    }
}

int main(int argc, char** argv) {
    const char *checkpoint = NULL, *features = NULL, *out_path = NULL, *prompt_mode = "none", *device = "auto",
               *precision = "bf16";
    int beam = 5, max_len = 0, no_repeat = 0, stop_at_period = 1, batch = 32, with_scores = 0, interactive_mode = 0;
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
        else if (OPT("--beam")) beam = atoi(v);
        else if (OPT("--max-len")) max_len = atoi(v);
        else if (OPT("--length-penalty")) length_penalty = atof(v);
        else if (OPT("--no-repeat-ngram")) no_repeat = atoi(v);
        else if (!strcmp(a, "--no-stop-at-period")) stop_at_period = 0;
        else if (OPT("--prompts")) prompt_mode = v;
        else if (OPT("--temperature")) temperature = atof(v);
        else if (OPT("--threshold")) threshold = atof(v);
        else if (OPT("--batch")) batch = atoi(v);
        else if (OPT("--limit")) limit = atol(v);
        else if (OPT("--device")) device = v;
        else if (OPT("--precision")) precision = v;
        else if (!strcmp(a, "--with-scores")) with_scores = 1;
        else if (!strcmp(a, "--interactive")) interactive_mode = 1;
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
    if (beam < 1 || beam > 10) FATAL("--beam %d: must be 1..10", beam);
    if (max_len < 0) FATAL("--max-len %d: must be at least 1", max_len);
    if (batch < 1) FATAL("--batch %d: must be at least 1", batch);
    if (!(temperature > 0)) FATAL("--temperature must be positive");
    if (strcmp(device, "auto") && strcmp(device, "cpu") && strcmp(device, "cuda")) FATAL("--device %s: auto, cpu or cuda", device);

    char err[2048], model_buf[4300];
    FeatureStore fs;
    if (features_read(features, &fs, err, sizeof err)) FATAL("%s", err);
    if (fs.n_images == 0) FATAL("%s: no images (/images/embeddings is empty)", features);
    int n_images_in_file = fs.n_images;
    if (limit >= 0 && limit < fs.n_images) fs.n_images = (int)limit;
    const char* model_path = resolve_checkpoint(checkpoint, model_buf, sizeof model_buf);
    ModelConfig mc;
    if (checkpoint_read_model_config(model_path, &mc, err, sizeof err)) FATAL("%s", err);
    if (mc.clip_dim != fs.dim)
        FATAL("%s: the images have D = %d, but the checkpoint %s was trained on D = %d", features, fs.dim, model_path,
              mc.clip_dim);
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
    if (!strcmp(prompt_mode, "none")) prompts_none(&fs, &prompts);
    else if (!strcmp(prompt_mode, "auto")) {
        if (prompts_auto(&fs, mc.max_prompts, temperature, threshold, &prompts, err, sizeof err)) FATAL("%s: %s", features, err);
    } else if (prompts_load(prompt_mode, &fs, mc.max_prompts, &prompts, err, sizeof err)) {
        FATAL("%s", err);
    }

    int status = 0;
    if (interactive_mode) {
        interactive(&cap, &fs, &prompts);
    } else {
        char** texts = callocCheck((size_t)fs.n_images, sizeof(char*));
        double* scores = callocCheck((size_t)fs.n_images, sizeof(double));
        double start = timer_now();
        int tty = isatty(2);
        for (int first = 0; first < fs.n_images; first += batch) {
            int n = fs.n_images - first < batch ? fs.n_images - first : batch;
            caption_range(&cap, &fs, &prompts, first, n, texts + first, scores + first);
            double rate = (first + n) / (timer_now() - start);
            if (tty) fprintf(stderr, "\rcaptioned %d/%d images  %.1f images/s   ", first + n, fs.n_images, rate);
        }
        double elapsed = timer_now() - start;
        if (tty) fputc('\n', stderr);
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
