// tipcap-eval: the COCO caption metrics (pycocoevalcap 1.2) in C. Shared types and the scorer API.
// Everything here depends only on libc, cJSON and libstemmer: the evaluator stands alone.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// One evaluated image: its id as written in the input, the result caption and the references,
// all already tokenised.
typedef struct {
    char* id;            // image id as text (a JSON number is kept as its literal)
    int id_is_number;    // 1 when the id was a JSON number (written back as a number)
    char* hyp;           // tokenised result caption
    char** refs;         // [n_refs] tokenised references
    int n_refs;
} EvalImage;

// ---------------------------------------------------------------- PTB tokeniser
// Tokenises captions as pycocoevalcap's PTBTokenizer does: Stanford PTBTokenizer 3.4.1 with
// -preserveLines -lowerCase over the captions joined by '\n' (a caption's own newlines become
// spaces), then the toolkit's punctuation filter. out[i] receives a malloc'd string.
void ptb_tokenize_captions(const char* const* captions, size_t n, char** out);
// The same output, computed in parallel chunks (eval/tokenize.c).
void ptb_tokenize_batch(const char* const* captions, size_t n, char** out);
// The raw tokenizer output for one text (no filter): tokens separated by ' ', lines by '\n'.
char* ptb_tokenize_raw(const char* text, size_t len);

// ---------------------------------------------------------------- BLEU
typedef struct {
    double testlen, reflen;
    double guess[4], correct[4];
} BleuStats;
// Corpus BLEU-1..4 ('closest' reference length, summed statistics) and per-image scores.
// per_image: [n_images][4]; may be NULL. total: summed statistics.
void bleu_score(const EvalImage* images, size_t n, double corpus[4], double* per_image, BleuStats* total);

// ---------------------------------------------------------------- ROUGE-L
double rouge_l_image(const char* hyp, char* const* refs, int n_refs);
double rouge_l_score(const EvalImage* images, size_t n, double* per_image);

// ---------------------------------------------------------------- CIDEr-D
double cider_d_score(const EvalImage* images, size_t n, double* per_image);

// ---------------------------------------------------------------- METEOR 1.5
typedef struct Meteor Meteor;
// Loads the resources: function words, synonyms (WordNet synsets + exceptions) from
// data_dir, and the paraphrase table from para_path (NULL or unreadable: no paraphrase module).
// Returns NULL with a message in err on failure.
Meteor* meteor_open(const char* data_dir, const char* para_path, char* err, size_t err_cap);
// 1 when the last meteor_score ran with the paraphrase module.
int meteor_has_paraphrase(const Meteor* m);
void meteor_close(Meteor* m);
// Corpus score from summed statistics, per-image scores (may be NULL), as the toolkit's jar.
double meteor_score(Meteor* m, const EvalImage* images, size_t n, double* per_image, int n_threads);
// METEOR's -norm tokenizer (edu.cmu.meteor.util.Normalizer, English, punctuation kept),
// followed by lower-casing. Returns a malloc'd string.
char* meteor_normalize(const Meteor* m, const char* line);

// ---------------------------------------------------------------- SPICE-approx
// A native approximation of SPICE (not SPICE): tuples (objects, attributes, relations) parsed
// from each caption, matched exactly or through WordNet synonyms; F1 per image, mean over images.
double spice_approx_score(const Meteor* synonyms, const EvalImage* images, size_t n, double* per_image);

// ---------------------------------------------------------------- helpers
// numpy's pairwise summation (np.mean / np.sum over float64), so means match the toolkit bit for bit.
double np_pairwise_sum(const double* a, size_t n);
// Java 17's Character.toLowerCase (both jars run on it; defined with the tokenizer's tables).
uint32_t unicode_lower(uint32_t c);
// 1 for a character Java's final-sigma rule counts as cased.
int unicode_is_cased(uint32_t c);
// Validates UTF-8; returns the byte offset of the first invalid sequence or -1 if valid.
long utf8_invalid_offset(const char* s, size_t len);

#ifdef __cplusplus
}
#endif
