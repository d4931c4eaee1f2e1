// Caption corpus readers (Karpathy, COCO annotations, simple). See corpus.h.
#include "data/corpus.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "data/strmap.h"
#include "data/tokenizer.h"

static void set_err(char* err, size_t n, const char* fmt, ...) {
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

int split_parse(const char* s) {
    if (!strcmp(s, "train") || !strcmp(s, "restval")) return SPLIT_TRAIN;
    if (!strcmp(s, "val")) return SPLIT_VAL;
    if (!strcmp(s, "test")) return SPLIT_TEST;
    if (!strcmp(s, "all")) return SPLIT_ALL;
    return -1;
}

const char* split_name(Split s) {
    static const char* names[] = {"train", "val", "test", "all"};
    return (unsigned)s < 4 ? names[s] : "?";
}

// Growing corpus under construction.
typedef struct {
    Corpus c;
    int image_cap, caption_cap;
    StrMap keys;
    const char* name;
    char* err;
    size_t err_size;
} Builder;

static int add_image(Builder* b, const char* key, Split split, const char* where) {
    if (!*key) {
        set_err(b->err, b->err_size, "%s: %s: empty image key", b->name, where);
        return -1;
    }
    if (strmap_put(&b->keys, key, strlen(key), b->c.n_images) != b->c.n_images) {
        set_err(b->err, b->err_size, "%s: %s: image \"%s\" appears twice", b->name, where, key);
        return -1;
    }
    if (b->c.n_images == b->image_cap) {
        b->image_cap = b->image_cap ? b->image_cap * 2 : 1024;
        b->c.images = reallocCheck(b->c.images, (size_t)b->image_cap * sizeof(CorpusImage));
    }
    CorpusImage* im = &b->c.images[b->c.n_images++];
    im->key = strdupCheck(key);
    im->split = split;
    im->first_caption = b->c.n_captions;
    im->n_captions = 0;
    return 0;
}

// A caption must be a non-blank string of valid UTF-8.
static int check_caption(Builder* b, const cJSON* item, const char* where) {
    if (!cJSON_IsString(item)) {
        set_err(b->err, b->err_size, "%s: %s: expected a string", b->name, where);
        return -1;
    }
    const char* s = item->valuestring;
    size_t len = strlen(s);
    long bad = utf8_first_invalid(s, len);
    if (bad >= 0) {
        set_err(b->err, b->err_size, "%s: %s: invalid UTF-8 at byte %ld", b->name, where, bad);
        return -1;
    }
    size_t k = 0;
    while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r')) k++;
    if (k == len) {
        set_err(b->err, b->err_size, "%s: %s: empty caption", b->name, where);
        return -1;
    }
    return 0;
}

// Appends a caption to image `image` (the last image added: captions stay grouped by image).
static void push_caption(Builder* b, int image, const char* s) {
    if (b->c.n_captions == b->caption_cap) {
        b->caption_cap = b->caption_cap ? b->caption_cap * 2 : 4096;
        b->c.captions = reallocCheck(b->c.captions, (size_t)b->caption_cap * sizeof(char*));
        b->c.caption_image = reallocCheck(b->c.caption_image, (size_t)b->caption_cap * sizeof(int));
    }
    b->c.captions[b->c.n_captions] = strdupCheck(s);
    b->c.caption_image[b->c.n_captions] = image;
    b->c.n_captions++;
    b->c.images[image].n_captions++;
}

static int parse_karpathy(Builder* b, const cJSON* images) {
    int i = 0;
    for (const cJSON* im = images->child; im; im = im->next, i++) {
        char where[512];
        const cJSON* fn = cJSON_GetObjectItemCaseSensitive(im, "filename");
        const cJSON* split = cJSON_GetObjectItemCaseSensitive(im, "split");
        const cJSON* sents = cJSON_GetObjectItemCaseSensitive(im, "sentences");
        snprintf(where, sizeof where, "images[%d]", i);
        if (!cJSON_IsObject(im)) {
            set_err(b->err, b->err_size, "%s: %s: expected an object", b->name, where);
            return -1;
        }
        if (!cJSON_IsString(fn)) {
            set_err(b->err, b->err_size, "%s: %s.filename: missing or not a string", b->name, where);
            return -1;
        }
        snprintf(where, sizeof where, "images[%d] (\"%.200s\")", i, fn->valuestring);
        int sp = cJSON_IsString(split) ? split_parse(split->valuestring) : -1;
        if (sp < 0 || sp == SPLIT_ALL) {
            set_err(b->err, b->err_size, "%s: %s.split: expected \"train\", \"restval\", \"val\" or \"test\"", b->name, where);
            return -1;
        }
        if (!cJSON_IsArray(sents)) {
            set_err(b->err, b->err_size, "%s: %s.sentences: missing or not an array", b->name, where);
            return -1;
        }
        if (add_image(b, fn->valuestring, (Split)sp, where) != 0) return -1;
        int k = 0;
        for (const cJSON* s = sents->child; s; s = s->next, k++) {
            char w2[600];
            snprintf(w2, sizeof w2, "%s.sentences[%d].raw", where, k);
            const cJSON* raw = cJSON_GetObjectItemCaseSensitive(s, "raw");
            if (!raw) {
                set_err(b->err, b->err_size, "%s: %s: missing", b->name, w2);
                return -1;
            }
            if (check_caption(b, raw, w2) != 0) return -1;
            push_caption(b, b->c.n_images - 1, raw->valuestring);
        }
    }
    return 0;
}

// An integral JSON number within +-2^53 (exact in a double); larger ones are refused before any
// conversion (casting an out-of-range double to an integer is undefined).
static int json_integer(const cJSON* v, long long* out) {
    if (cJSON_IsNumber(v) && fabs(v->valuedouble) <= 9007199254740992.0 && v->valuedouble == floor(v->valuedouble)) {
        *out = (long long)v->valuedouble;
        return 1;
    }
    return 0;
}

static int parse_coco(Builder* b, const cJSON* images, const cJSON* annotations, Split split) {
    int n_ann = cJSON_GetArraySize(annotations);
    // Image id -> corpus image (via its decimal text in a StrMap).
    StrMap ids;
    strmap_init(&ids, (size_t)(images ? cJSON_GetArraySize(images) : n_ann));
    int status = -1;
    char idtxt[32], where[512];
    int* ann_image = mallocCheck((size_t)(n_ann ? n_ann : 1) * sizeof(int));
    int i = 0;
    if (images) {
        for (const cJSON* im = images->child; im; im = im->next, i++) {
            long long id;
            const cJSON* fn = cJSON_GetObjectItemCaseSensitive(im, "file_name");
            if (!json_integer(cJSON_GetObjectItemCaseSensitive(im, "id"), &id)) {
                set_err(b->err, b->err_size, "%s: images[%d].id: missing or not an integer", b->name, i);
                goto done;
            }
            if (!cJSON_IsString(fn)) {
                set_err(b->err, b->err_size, "%s: images[%d].file_name: missing or not a string", b->name, i);
                goto done;
            }
            snprintf(idtxt, sizeof idtxt, "%lld", id);
            snprintf(where, sizeof where, "images[%d] (id %lld)", i, id);
            if (strmap_put(&ids, idtxt, strlen(idtxt), b->c.n_images) != b->c.n_images) {
                set_err(b->err, b->err_size, "%s: %s: the image id appears twice", b->name, where);
                goto done;
            }
            if (add_image(b, fn->valuestring, split, where) != 0) goto done;
        }
    }
    // Annotations grouped by image in image order, annotation order kept within an image.
    int* count = callocCheck((size_t)(b->c.n_images + n_ann + 1), sizeof(int));
    i = 0;
    for (const cJSON* a = annotations->child; a; a = a->next, i++) {
        long long id;
        if (!json_integer(cJSON_GetObjectItemCaseSensitive(a, "image_id"), &id)) {
            set_err(b->err, b->err_size, "%s: annotations[%d].image_id: missing or not an integer", b->name, i);
            free(count);
            goto done;
        }
        snprintf(idtxt, sizeof idtxt, "%lld", id);
        int64_t img = strmap_get(&ids, idtxt, strlen(idtxt), -1);
        if (img < 0) {
            if (images) {
                set_err(b->err, b->err_size, "%s: annotations[%d].image_id: %lld is not in \"images\"", b->name, i, id);
                free(count);
                goto done;
            }
            snprintf(where, sizeof where, "annotations[%d]", i);
            strmap_put(&ids, idtxt, strlen(idtxt), b->c.n_images);
            if (add_image(b, idtxt, split, where) != 0) {
                free(count);
                goto done;
            }
            img = b->c.n_images - 1;
        }
        snprintf(where, sizeof where, "annotations[%d].caption (image %lld)", i, id);
        const cJSON* cap = cJSON_GetObjectItemCaseSensitive(a, "caption");
        if (!cap) {
            set_err(b->err, b->err_size, "%s: %s: missing", b->name, where);
            free(count);
            goto done;
        }
        if (check_caption(b, cap, where) != 0) {
            free(count);
            goto done;
        }
        ann_image[i] = (int)img;
        count[img]++;
    }
    // Lay the captions out image by image.
    int total = 0;
    for (int m = 0; m < b->c.n_images; m++) {
        b->c.images[m].first_caption = total;
        b->c.images[m].n_captions = 0;
        total += count[m];
    }
    free(count);
    b->c.n_captions = total;
    b->caption_cap = total ? total : 1;
    b->c.captions = mallocCheck((size_t)b->caption_cap * sizeof(char*));
    b->c.caption_image = mallocCheck((size_t)b->caption_cap * sizeof(int));
    i = 0;
    for (const cJSON* a = annotations->child; a; a = a->next, i++) {
        CorpusImage* im = &b->c.images[ann_image[i]];
        int slot = im->first_caption + im->n_captions++;
        b->c.captions[slot] = strdupCheck(cJSON_GetObjectItemCaseSensitive(a, "caption")->valuestring);
        b->c.caption_image[slot] = ann_image[i];
    }
    status = 0;
done:
    free(ann_image);
    strmap_free(&ids);
    return status;
}

static int parse_simple(Builder* b, const cJSON* root, Split split) {
    int i = 0;
    for (const cJSON* im = root->child; im; im = im->next, i++) {
        char where[512];
        snprintf(where, sizeof where, "image %d (\"%.200s\")", i, im->string);
        if (!cJSON_IsArray(im)) {
            set_err(b->err, b->err_size, "%s: %s: expected an array of captions", b->name, where);
            return -1;
        }
        if (add_image(b, im->string, split, where) != 0) return -1;
        int k = 0;
        for (const cJSON* s = im->child; s; s = s->next, k++) {
            char w2[600];
            snprintf(w2, sizeof w2, "%s caption %d", where, k);
            if (check_caption(b, s, w2) != 0) return -1;
            push_caption(b, b->c.n_images - 1, s->valuestring);
        }
    }
    return 0;
}

void corpus_free(Corpus* c) {
    for (int i = 0; i < c->n_images; i++) free(c->images[i].key);
    for (int i = 0; i < c->n_captions; i++) free(c->captions[i]);
    free(c->images);
    free(c->captions);
    free(c->caption_image);
    memset(c, 0, sizeof *c);
}

int corpus_parse(const char* json, size_t len, const char* name, Split default_split, Corpus* c, char* err,
                 size_t err_size) {
    memset(c, 0, sizeof *c);
    const char* end = NULL;
    cJSON* root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - json) : 0, line = 1, col = 1;
        for (size_t i = 0; i < off && i < len; i++) {
            if (json[i] == '\n') {
                line++;
                col = 1;
            } else col++;
        }
        set_err(err, err_size, "%s: malformed JSON near line %zu, column %zu", name, line, col);
        return -1;
    }
    Builder b = {.name = name, .err = err, .err_size = err_size};
    strmap_init(&b.keys, 1024);
    int status;
    const cJSON* images = cJSON_GetObjectItemCaseSensitive(root, "images");
    const cJSON* annotations = cJSON_GetObjectItemCaseSensitive(root, "annotations");
    if (!cJSON_IsObject(root)) {
        set_err(err, err_size, "%s: expected a JSON object (Karpathy, COCO annotations or {\"image\": [captions]})", name);
        status = -1;
    } else if (annotations) {
        if (!cJSON_IsArray(annotations) || (images && !cJSON_IsArray(images))) {
            set_err(err, err_size, "%s: \"annotations\" and \"images\" must be arrays", name);
            status = -1;
        } else status = parse_coco(&b, images, annotations, default_split);
    } else if (cJSON_IsArray(images)) {
        status = parse_karpathy(&b, images);
    } else {
        status = parse_simple(&b, root, default_split);
    }
    if (status == 0 && b.c.n_captions == 0) {
        set_err(err, err_size, "%s: no captions", name);
        status = -1;
    }
    cJSON_Delete(root);
    strmap_free(&b.keys);
    if (status != 0) {
        corpus_free(&b.c);
        return -1;
    }
    *c = b.c;
    return 0;
}

int corpus_load(const char* path, Split default_split, Corpus* c, char* err, size_t err_size) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        set_err(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    fclose(f);
    size_t len;
    char* text = readFileCheck(path, &len);
    int status = corpus_parse(text, len, path, default_split, c, err, err_size);
    free(text);
    return status;
}

void corpus_count(const Corpus* c, Split split, int* n_images, int* n_captions) {
    int ni = 0, nc = 0;
    for (int i = 0; i < c->n_images; i++) {
        if (split != SPLIT_ALL && c->images[i].split != split) continue;
        ni++;
        nc += c->images[i].n_captions;
    }
    if (n_images) *n_images = ni;
    if (n_captions) *n_captions = nc;
}
