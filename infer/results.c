#include "infer/results.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"

long long coco_image_id(const char* key) {
    const char* base = strrchr(key, '/');
    base = base ? base + 1 : key;
    if (strncmp(base, "COCO_", 5)) return -1;
    const char* us = strrchr(base, '_');
    const char* dot = strrchr(base, '.');
    if (!us || !dot || dot < us + 2) return -1;
    long long id = 0;
    for (const char* p = us + 1; p < dot; p++) {
        if (!isdigit((unsigned char)*p)) return -1;
        id = id * 10 + (*p - '0');
    }
    return id;
}

int results_write(const char* path, const ResultEntry* entries, int n, int with_scores, char* err, size_t err_size) {
    cJSON* root = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON* o = cJSON_CreateObject();
        long long id = coco_image_id(entries[i].key);
        if (id >= 0) cJSON_AddNumberToObject(o, "image_id", (double)id);
        else cJSON_AddStringToObject(o, "image_id", entries[i].key);
        cJSON_AddStringToObject(o, "caption", entries[i].caption);
        if (with_scores) {
            cJSON_AddNumberToObject(o, "score", entries[i].score);
            cJSON* p = cJSON_AddArrayToObject(o, "prompts");
            for (int j = 0; j < entries[i].n_prompts; j++) cJSON_AddItemToArray(p, cJSON_CreateString(entries[i].prompts[j]));
        }
        cJSON_AddItemToArray(root, o);
    }
    char* text = cJSON_Print(root);
    cJSON_Delete(root);
    AtomicFile af = atomic_file_open(path);
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, af.f) == len && fputc('\n', af.f) != EOF;
    free(text);
    if (!ok) {
        atomic_file_abort(&af);
        snprintf(err, err_size, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    atomic_file_commit(&af);
    return 0;
}
