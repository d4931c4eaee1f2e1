// One evaluation: tokenise, run the selected metrics, keep corpus and per-image scores.
#pragma once
#include "eval/eval.h"

enum { METRIC_BLEU = 1, METRIC_METEOR = 2, METRIC_ROUGE = 4, METRIC_CIDER = 8, METRIC_SPICE = 16, METRIC_ALL = 31 };

typedef struct {
    int metrics;              // METRIC_* bits
    int tokenize;             // 1: PTB tokenisation (the toolkit's default); 0: captions used as they are
    const char* meteor_dir;   // METEOR resources (english.synsets, ...)
    const char* paraphrase;   // paraphrase-en.gz, or NULL
    const char* spice_jar;    // spice-1.0.jar for real SPICE, or NULL for SPICE-approx
    int threads;
} EvalOptions;

typedef struct {
    size_t n;
    double bleu[4], meteor, rouge, cider, spice;
    BleuStats bleu_stats;
    double* per_image;        // [n][N_COLUMNS]
    int meteor_paraphrase;    // 1 when the paraphrase module ran
    int spice_is_approx;      // 1: SPICE-approx
} EvalReport;

enum { COL_BLEU1, COL_BLEU2, COL_BLEU3, COL_BLEU4, COL_METEOR, COL_ROUGE, COL_CIDER, COL_SPICE, N_COLUMNS };

// images: raw captions; they are tokenised in place when options->tokenize. Returns 1, or 0
// with a message in err.
int evaluate(EvalImage* images, size_t n, const EvalOptions* options, EvalReport* out, char* err, size_t err_cap);
void free_report(EvalReport* r);
// Tokenises every caption as the toolkit does: references as one batch, results as another.
void tokenize_images(EvalImage* images, size_t n);
