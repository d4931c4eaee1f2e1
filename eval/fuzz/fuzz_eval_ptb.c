// libFuzzer target: the PTB tokenizer (raw and through the toolkit's caption batching) and the
// METEOR normaliser on arbitrary bytes. Built and run by `make fuzz-eval`.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"

static Meteor* meteor;

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (!meteor) {
        char err[256];
        meteor = meteor_open("data/meteor", NULL, err, sizeof err);
        if (!meteor) abort();
    }
    char* text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    free(ptb_tokenize_raw(text, size));
    // split on 0xFF into captions, as one batch
    const char* caps[8];
    size_t n = 0;
    char* p = text;
    while (n < 8) {
        caps[n++] = p;
        char* e = strchr(p, '\xff');
        if (!e) break;
        *e = 0;
        p = e + 1;
    }
    char* out[8];
    ptb_tokenize_captions(caps, n, out);
    for (size_t i = 0; i < n; i++) {
        if (strchr(out[i], '\n')) abort();  // one output line per caption
        free(meteor_normalize(meteor, out[i]));
        free(out[i]);
    }
    free(text);
    return 0;
}
