// libFuzzer target: the caption corpus readers (all three formats) and entity extraction on
// arbitrary JSON. A parse either fails with a message or gives a consistent corpus.
// Build and run: make fuzz-data (data/module.mk).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/corpus.h"
#include "data/entities.h"

static EntityVocab vocab;
static int vocab_ready;

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    char err[512];
    if (!vocab_ready) {
        char* path = entity_vocab_default_path();
        if (entity_vocab_load(path, NULL, NULL, &vocab, err, sizeof err) != 0) abort();
        free(path);
        vocab_ready = 1;
    }
    Corpus c;
    err[0] = '\0';
    if (corpus_parse((const char*)data, size, "fuzz.json", SPLIT_TEST, &c, err, sizeof err) != 0) {
        if (!strstr(err, "fuzz.json")) abort();  // every error names the file
        return 0;
    }
    int total = 0;
    for (int i = 0; i < c.n_images; i++) {
        const CorpusImage* im = &c.images[i];
        if (im->first_caption != total || im->n_captions < 0) abort();
        for (int k = 0; k < im->n_captions; k++) {
            if (c.caption_image[total + k] != i || !c.captions[total + k][0]) abort();
            int32_t e[16];
            int n = entities_extract(&vocab, c.captions[total + k], e, 16);
            for (int j = 0; j < n && j < 16; j++)
                if (e[j] < 0 || e[j] >= vocab.n) abort();
        }
        total += im->n_captions;
    }
    if (total != c.n_captions) abort();
    corpus_free(&c);
    return 0;
}
