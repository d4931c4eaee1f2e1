// The COCO results file: [{"image_id": ..., "caption": "..."}, ...], which tipcap-eval and
// pycocoevalcap read directly. image_id is the COCO integer id when the image key is a COCO file
// name ("COCO_val2014_000000391895.jpg" -> 391895), and the key itself otherwise.
#pragma once
#include <stddef.h>

// The COCO id of a key, or -1 when the key is not a COCO file name.
long long coco_image_id(const char* key);

typedef struct {
    const char* key;
    const char* caption;
    double score;               // written with scores
    const char* const* prompts; // written with scores
    int n_prompts;
} ResultEntry;

// Writes atomically; with_scores adds "score" and "prompts" per entry. Returns 0 or -1 with err.
int results_write(const char* path, const ResultEntry* entries, int n, int with_scores, char* err, size_t err_size);
