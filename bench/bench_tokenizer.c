// GPT-2 tokenizer throughput on one core: MB of caption text encoded per second, with a fresh
// tokenizer (every word through BPE once, then the word cache) and with a warm cache, and decode.
// usage: bin/bench/bench_tokenizer [corpus.json ...]   (default: the shipped Karpathy val/test captions)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/timer.h"
#include "data/corpus.h"
#include "data/tokenizer.h"

int main(int argc, char** argv) {
    const char* defaults[] = {"data/captions/coco_karpathy_val.json", "data/captions/coco_karpathy_test.json",
                              "data/captions/flickr30k_karpathy_val.json", "data/captions/flickr30k_karpathy_test.json"};
    int n_files = argc > 1 ? argc - 1 : 4;
    const char* const* files = argc > 1 ? (const char* const*)argv + 1 : defaults;
    char** texts = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    char err[512];
    for (int f = 0; f < n_files; f++) {
        Corpus c;
        if (corpus_load(files[f], SPLIT_TRAIN, &c, err, sizeof err) != 0) FATAL("%s", err);
        for (int i = 0; i < c.n_captions; i++) {
            if (n == cap) texts = reallocCheck(texts, (cap = cap ? cap * 2 : 65536) * sizeof(char*));
            texts[n++] = strdupCheck(c.captions[i]);
            bytes += strlen(c.captions[i]);
        }
        corpus_free(&c);
    }
    int32_t* ids = NULL;
    size_t ids_cap = 0;
    long total_ids = 0;
    double t0 = timer_now();
    Tokenizer* tok = tokenizer_load_default();
    double t_load = timer_now() - t0;
    t0 = timer_now();
    for (size_t i = 0; i < n; i++) total_ids += tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids, &ids_cap, err, sizeof err);
    double t_cold = timer_now() - t0;
    const int passes = 10;
    t0 = timer_now();
    for (int p = 0; p < passes; p++)
        for (size_t i = 0; i < n; i++) tokenizer_encode(tok, texts[i], strlen(texts[i]), &ids, &ids_cap, err, sizeof err);
    double t_warm = (timer_now() - t0) / passes;
    // Decode every caption's ids back.
    int32_t** all = mallocCheck(n * sizeof(int32_t*));
    long* lens = mallocCheck(n * sizeof(long));
    for (size_t i = 0; i < n; i++) {
        all[i] = NULL;
        size_t c = 0;
        lens[i] = tokenizer_encode(tok, texts[i], strlen(texts[i]), &all[i], &c, err, sizeof err);
    }
    t0 = timer_now();
    for (int p = 0; p < passes; p++)
        for (size_t i = 0; i < n; i++) free(tokenizer_decode(tok, all[i], (size_t)lens[i], NULL, err, sizeof err));
    double t_dec = (timer_now() - t0) / passes;
    double mb = (double)bytes / 1e6;
    printf("%zu captions, %.2f MB, %ld tokens (%.2f bytes per token)\n", n, mb, total_ids, (double)bytes / total_ids);
    printf("load encoder.json + vocab.bpe: %.3f s\n", t_load);
    printf("encode, fresh tokenizer (BPE for each new word): %.2f MB/s\n", mb / t_cold);
    printf("encode, warm word cache:                         %.2f MB/s  (%.2f M tokens/s)\n", mb / t_warm, total_ids / t_warm / 1e6);
    printf("decode:                                          %.2f MB/s\n", mb / t_dec);
    for (size_t i = 0; i < n; i++) {
        free(texts[i]);
        free(all[i]);
    }
    free(texts);
    free(all);
    free(lens);
    free(ids);
    tokenizer_free(tok);
    return 0;
}
