// libFuzzer target: GPT-2 encode and decode on arbitrary bytes. Valid UTF-8 must round-trip
// exactly and produce ids inside the vocabulary; invalid UTF-8 must be refused; any id sequence
// must decode to valid UTF-8. Build and run: make fuzz-data (data/module.mk).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

static Tokenizer* tok;

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (!tok) tok = tokenizer_load_default();
    char err[256];
    int32_t* ids = NULL;
    size_t cap = 0;
    long n = tokenizer_encode(tok, (const char*)data, size, &ids, &cap, err, sizeof err);
    if ((n < 0) != (utf8_first_invalid((const char*)data, size) >= 0)) abort();
    if (n >= 0) {
        for (long i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= GPT2_VOCAB_SIZE) abort();
        size_t len;
        char* back = tokenizer_decode(tok, ids, (size_t)n, &len, err, sizeof err);
        if (!back || len != size || memcmp(back, data, size) != 0) abort();
        free(back);
    }
    free(ids);
    // The same bytes as token ids (any sequence of ids decodes to valid UTF-8).
    size_t m = size / 2;
    int32_t* raw = malloc((m ? m : 1) * sizeof(int32_t));
    for (size_t i = 0; i < m; i++) raw[i] = (int32_t)((data[2 * i] | data[2 * i + 1] << 8) % GPT2_VOCAB_SIZE);
    size_t len;
    char* text = tokenizer_decode(tok, raw, m, &len, err, sizeof err);
    if (!text || utf8_first_invalid(text, len) >= 0) abort();
    free(text);
    free(raw);
    return 0;
}
