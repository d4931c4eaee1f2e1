// The PTB step of an evaluation, on all cores: the toolkit tokenises all references as one
// batch and all results as another; here each batch is cut into chunks tokenised in parallel,
// with the same output.
#include <stdlib.h>

#include "eval/evaluate.h"
#ifdef _OPENMP
#include <omp.h>
#endif

// 1 when the caption holds a printable ASCII character, so the lexer's look-ahead past the end
// of the caption before it stops here (it crosses only white space and line ends).
static int stops_lookahead(const char* caption) {
    for (const unsigned char* p = (const unsigned char*)caption; *p; p++)
        if (*p > ' ' && *p < 0x7f) return 1;
    return 0;
}

void ptb_tokenize_batch(const char* const* captions, size_t n, char** out) {
    // A caption's tokens depend on itself and on the start of the next caption with text (an
    // abbreviation's period before a capitalised word, possibly across blank captions), never on
    // what comes before it. So a chunk is tokenised with the captions after it up to and
    // including the first that stops the look-ahead, and their output is dropped.
    enum { CHUNK = 512 };
    size_t n_chunks = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(dynamic, 1)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t begin = c * CHUNK, end = begin + CHUNK < n ? begin + CHUNK : n, context_end = end;
        while (context_end < n && !stops_lookahead(captions[context_end])) context_end++;
        if (context_end < n) context_end++;
        char** tokens = malloc((context_end - begin) * sizeof *tokens);
        if (!tokens) abort();
        ptb_tokenize_captions(captions + begin, context_end - begin, tokens);
        for (size_t i = begin; i < context_end; i++) {
            if (i < end) out[i] = tokens[i - begin];
            else free(tokens[i - begin]);
        }
        free(tokens);
    }
}

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
    ptb_tokenize_batch(refs, n_refs, refs_out);
    ptb_tokenize_batch(hyps, n, hyps_out);
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
