// Reading references and results: COCO annotations JSON ({"annotations": [{"image_id",
// "caption"}], optional "images" for the order}) or {"image_id": ["ref", ...]}; results as
// [{"image_id", "caption"}]. Invalid UTF-8 and invalid JSON are reported with file and position.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "eval/input.h"

static void set_err(char* err, size_t cap, const char* fmt, const char* a, const char* b) {
    snprintf(err, cap, fmt, a, b);
}

static char* slurp(const char* path, size_t* len, char* err, size_t cap) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = 0, c = 1 << 16;
    char* buf = malloc(c);
    if (!buf) abort();
    size_t got;
    while ((got = fread(buf + n, 1, c - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == c) {
            c *= 2;
            buf = realloc(buf, c);
            if (!buf) abort();
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, cap, "%s: read error", path);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void line_col(const char* s, size_t off, size_t* line, size_t* col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && s[i]; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

// A C string cannot hold the NUL of a JSON "\u0000", which the PTB tokenizer must see (the jar
// drops it but keeps the text around it): inside strings it becomes C0 80, Java's own two-byte
// NUL, which the tokenizer decodes back. Run after the UTF-8 check, which rejects C0 80 as input.
static void keep_escaped_nuls(char* text) {
    char *r = text, *w = text;
    int in_string = 0;
    while (*r) {
        if (in_string && r[0] == '\\' && !strncmp(r + 1, "u0000", 5)) {
            *w++ = (char)0xC0;
            *w++ = (char)0x80;
            r += 6;
            continue;
        }
        if (in_string && r[0] == '\\' && r[1]) {
            *w++ = *r++;
        } else if (*r == '"') {
            in_string = !in_string;
        }
        *w++ = *r++;
    }
    *w = 0;
}

static cJSON* parse_file(const char* path, char* err, size_t cap) {
    size_t len;
    char* text = slurp(path, &len, err, cap);
    if (!text) return NULL;
    if (memchr(text, 0, len)) {
        size_t off = (size_t)((char*)memchr(text, 0, len) - text), l, c;
        line_col(text, off, &l, &c);
        snprintf(err, cap, "%s: invalid JSON: NUL byte at line %zu, column %zu (byte %zu)", path, l, c, off);
        free(text);
        return NULL;
    }
    long bad = utf8_invalid_offset(text, len);
    if (bad >= 0) {
        size_t l, c;
        line_col(text, (size_t)bad, &l, &c);
        snprintf(err, cap, "%s: invalid UTF-8 at line %zu, column %zu (byte %ld)", path, l, c, bad);
        free(text);
        return NULL;
    }
    if (strstr(text, "\\u0000")) keep_escaped_nuls(text);
    const char* end = NULL;
    cJSON* root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t off = end ? (size_t)(end - text) : 0, l, c;
        line_col(text, off, &l, &c);
        snprintf(err, cap, "%s: invalid JSON at line %zu, column %zu (byte %zu)", path, l, c, off);
        free(text);
        return NULL;
    }
    free(text);
    return root;
}

// An image id as text: integers without a fraction, other numbers as %.17g, strings as they are.
static char* id_text(const cJSON* v, int* is_number) {
    char buf[64];
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d > -9.2e18 && d < 9.2e18 && d == (double)(long long)d) snprintf(buf, sizeof buf, "%lld", (long long)d);
        else snprintf(buf, sizeof buf, "%.17g", d);
        *is_number = 1;
        return strdup(buf);
    }
    if (cJSON_IsString(v)) {
        *is_number = 0;
        return strdup(v->valuestring);
    }
    return NULL;
}

// ---------------------------------------------------------------- a small id -> index map
typedef struct {
    char** keys;
    int* vals;
    size_t n, cap;
} IdMap;

static uint64_t hstr(const char* s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}
static void idmap_init(IdMap* m) {
    m->cap = 1024;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    if (!m->keys || !m->vals) abort();
}
static int idmap_find(const IdMap* m, const char* k) {
    size_t j = hstr(k) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], k)) return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}
static void idmap_put(IdMap* m, const char* k, int v) {
    if (2 * (m->n + 1) > m->cap) {
        IdMap g;
        g.cap = m->cap * 2;
        g.n = 0;
        g.keys = calloc(g.cap, sizeof *g.keys);
        g.vals = calloc(g.cap, sizeof *g.vals);
        if (!g.keys || !g.vals) abort();
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) idmap_put(&g, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    size_t j = hstr(k) & (m->cap - 1);
    while (m->keys[j]) {
        if (!strcmp(m->keys[j], k)) {
            m->vals[j] = v;
            return;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->keys[j] = (char*)k;
    m->vals[j] = v;
    m->n++;
}
static void idmap_free(IdMap* m) {
    free(m->keys);
    free(m->vals);
}

// ---------------------------------------------------------------- references
static int refs_add(RefSet* r, IdMap* map, const char* id, int is_number, const char* caption) {
    int k = idmap_find(map, id);
    if (k < 0) {
        if (r->n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 1024;
            r->images = realloc(r->images, r->cap * sizeof *r->images);
            if (!r->images) abort();
        }
        k = (int)r->n++;
        RefImage* im = &r->images[k];
        memset(im, 0, sizeof *im);
        im->id = strdup(id);
        im->id_is_number = is_number;
        idmap_put(map, im->id, k);
    }
    RefImage* im = &r->images[k];
    if (!caption) return k;
    im->caps = realloc(im->caps, (size_t)(im->n_caps + 1) * sizeof *im->caps);
    if (!im->caps) abort();
    im->caps[im->n_caps++] = strdup(caption);
    return k;
}

int read_references(const char* path, RefSet* out, char* err, size_t cap) {
    memset(out, 0, sizeof *out);
    cJSON* root = parse_file(path, err, cap);
    if (!root) return 0;
    IdMap map;
    idmap_init(&map);
    int ok = 1;
    const cJSON* anns = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "annotations") : NULL;
    if (cJSON_IsArray(root)) anns = root;
    if (anns) {
        if (!cJSON_IsArray(anns)) {
            set_err(err, cap, "%s: \"annotations\" is not a list%s", path, "");
            ok = 0;
        }
        // the "images" list fixes the image order (as pycocotools' getImgIds)
        const cJSON* imgs = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "images") : NULL;
        if (ok && cJSON_IsArray(imgs)) {
            int row = 0;
            const cJSON* it;
            cJSON_ArrayForEach(it, imgs) {
                const cJSON* idv = cJSON_GetObjectItemCaseSensitive(it, "id");
                int num;
                char* id = idv ? id_text(idv, &num) : NULL;
                if (!id) {
                    char where[64];
                    snprintf(where, sizeof where, "%d", row);
                    set_err(err, cap, "%s: images[%s]: missing or invalid \"id\"", path, where);
                    ok = 0;
                    break;
                }
                refs_add(out, &map, id, num, NULL);
                free(id);
                row++;
            }
        }
        int row = 0;
        const cJSON* a;
        if (ok) cJSON_ArrayForEach(a, anns) {
            const cJSON* idv = cJSON_GetObjectItemCaseSensitive(a, "image_id");
            const cJSON* cap_v = cJSON_GetObjectItemCaseSensitive(a, "caption");
            char where[64];
            snprintf(where, sizeof where, "%d", row);
            int num;
            char* id = idv ? id_text(idv, &num) : NULL;
            if (!id) {
                set_err(err, cap, "%s: annotations[%s]: missing or invalid \"image_id\"", path, where);
                ok = 0;
                break;
            }
            if (!cJSON_IsString(cap_v)) {
                set_err(err, cap, "%s: annotations[%s]: \"caption\" missing or not a string", path, where);
                free(id);
                ok = 0;
                break;
            }
            refs_add(out, &map, id, num, cap_v->valuestring);
            free(id);
            row++;
        }
    } else if (cJSON_IsObject(root)) {
        const cJSON* e;
        cJSON_ArrayForEach(e, root) {
            if (!cJSON_IsArray(e)) {
                set_err(err, cap, "%s: image \"%s\": references must be a list of strings", path, e->string);
                ok = 0;
                break;
            }
            refs_add(out, &map, e->string, 0, NULL);
            const cJSON* c;
            int row = 0;
            cJSON_ArrayForEach(c, e) {
                if (!cJSON_IsString(c)) {
                    char where[300];
                    snprintf(where, sizeof where, "%.200s\"[%d]", e->string, row);
                    set_err(err, cap, "%s: image \"%s: not a string", path, where);
                    ok = 0;
                    break;
                }
                refs_add(out, &map, e->string, 0, c->valuestring);
                row++;
            }
            if (!ok) break;
        }
    } else {
        set_err(err, cap, "%s: expected COCO annotations {\"annotations\": [...]} or {\"image_id\": [\"ref\", ...]}%s", path, "");
        ok = 0;
    }
    idmap_free(&map);
    cJSON_Delete(root);
    if (!ok) free_references(out);
    return ok;
}

void free_references(RefSet* r) {
    for (size_t i = 0; i < r->n; i++) {
        for (int k = 0; k < r->images[i].n_caps; k++) free(r->images[i].caps[k]);
        free(r->images[i].caps);
        free(r->images[i].id);
    }
    free(r->images);
    memset(r, 0, sizeof *r);
}

// ---------------------------------------------------------------- results
int read_results(const char* path, ResultSet* out, char* err, size_t cap) {
    memset(out, 0, sizeof *out);
    cJSON* root = parse_file(path, err, cap);
    if (!root) return 0;
    int ok = 1;
    if (!cJSON_IsArray(root)) {
        set_err(err, cap, "%s: expected COCO results: a list of {\"image_id\", \"caption\"}%s", path, "");
        ok = 0;
    }
    int row = 0;
    const cJSON* it;
    if (ok) cJSON_ArrayForEach(it, root) {
        char where[64];
        snprintf(where, sizeof where, "%d", row);
        const cJSON* idv = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "image_id") : NULL;
        const cJSON* cv = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "caption") : NULL;
        int num;
        char* id = idv ? id_text(idv, &num) : NULL;
        if (!id) {
            set_err(err, cap, "%s: row %s: missing or invalid \"image_id\"", path, where);
            ok = 0;
            break;
        }
        if (!cJSON_IsString(cv)) {
            set_err(err, cap, "%s: row %s: \"caption\" missing or not a string", path, where);
            free(id);
            ok = 0;
            break;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 1024;
            out->items = realloc(out->items, out->cap * sizeof *out->items);
            if (!out->items) abort();
        }
        out->items[out->n].id = id;
        out->items[out->n].id_is_number = num;
        out->items[out->n].caption = strdup(cv->valuestring);
        out->n++;
        row++;
    }
    cJSON_Delete(root);
    if (!ok) free_results(out);
    return ok;
}

void free_results(ResultSet* r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].id);
        free(r->items[i].caption);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

// ---------------------------------------------------------------- pairing
static void append_ids(char** list, size_t* len, const char* id) {
    size_t add = strlen(id) + 2;
    *list = realloc(*list, *len + add + 1);
    if (!*list) abort();
    if (*len) {
        memcpy(*list + *len, ", ", 2);
        *len += 2;
    }
    memcpy(*list + *len, id, add - 2);
    *len += add - 2;
    (*list)[*len] = 0;
}

// The COCO image id of a COCO file name ("COCO_val2014_000000391895.jpg" -> "391895"), so that
// results with COCO's integer ids match references keyed by file name (the Karpathy split files).
// Returns 0 when `key` is not a COCO file name.
static int coco_file_id(const char* key, char* buf, size_t cap) {
    const char* base = strrchr(key, '/');
    base = base ? base + 1 : key;
    const char* us = strrchr(base, '_');
    const char* dot = strrchr(base, '.');
    if (strncmp(base, "COCO_", 5) || !us || !dot || dot <= us + 1) return 0;
    const char* p = us + 1;
    while (p < dot - 1 && *p == '0') p++;
    if ((size_t)(dot - p) + 1 > cap) return 0;
    for (const char* q = p; q < dot; q++)
        if (*q < '0' || *q > '9') return 0;
    memcpy(buf, p, (size_t)(dot - p));
    buf[dot - p] = 0;
    return 1;
}

int pair_images(const RefSet* refs, const ResultSet* res, const char* refs_path, const char* res_path, Pairing* out,
                char** err_msg) {
    memset(out, 0, sizeof *out);
    IdMap ref_map, res_map;
    idmap_init(&ref_map);
    idmap_init(&res_map);
    for (size_t i = 0; i < refs->n; i++) idmap_put(&ref_map, refs->images[i].id, (int)i);
    char** aliases = calloc(refs->n ? refs->n : 1, sizeof *aliases);  // the map keeps pointers: owned here
    if (!aliases) abort();
    for (size_t i = 0; i < refs->n; i++) {  // COCO file names also answer to their integer id
        char num[32];
        if (coco_file_id(refs->images[i].id, num, sizeof num) && idmap_find(&ref_map, num) < 0) {
            aliases[i] = strdup(num);
            if (!aliases[i]) abort();
            idmap_put(&ref_map, aliases[i], (int)i);
        }
    }
    char* dups = NULL;
    size_t dups_len = 0, n_dups = 0;
    char* missing = NULL;
    size_t missing_len = 0, n_missing = 0;
    for (size_t i = 0; i < res->n; i++) {
        const char* id = res->items[i].id;
        if (idmap_find(&res_map, id) >= 0) {
            append_ids(&dups, &dups_len, id);
            n_dups++;
        } else {
            idmap_put(&res_map, id, (int)i);
        }
        int r = idmap_find(&ref_map, id);
        if (r < 0 || refs->images[r].n_caps == 0) {
            append_ids(&missing, &missing_len, id);
            n_missing++;
        }
    }
    // one image given twice, once by file name and once by its integer id
    for (size_t i = 0; i < refs->n; i++)
        if (aliases[i] && idmap_find(&res_map, refs->images[i].id) >= 0 && idmap_find(&res_map, aliases[i]) >= 0) {
            append_ids(&dups, &dups_len, refs->images[i].id);
            n_dups++;
        }
    int ok = !n_dups && !n_missing;
    if (!ok) {
        size_t cap = 256 + dups_len + missing_len + strlen(refs_path) + strlen(res_path);
        *err_msg = malloc(cap);
        if (!*err_msg) abort();
        (*err_msg)[0] = 0;
        if (n_dups)
            snprintf(*err_msg, cap, "%s: %zu duplicate image%s (one result per image): %s", res_path, n_dups,
                     n_dups == 1 ? "" : "s", dups);
        if (n_missing) {
            size_t l = strlen(*err_msg);
            snprintf(*err_msg + l, cap - l, "%s%s: %zu result%s without references in %s: %s", l ? "\n" : "", res_path,
                     n_missing, n_missing == 1 ? "" : "s", refs_path, missing);
        }
    } else {
        // images in the references' order, those with a result
        out->images = calloc(res->n ? res->n : 1, sizeof *out->images);
        if (!out->images) abort();
        for (size_t i = 0; i < refs->n; i++) {
            int k = idmap_find(&res_map, refs->images[i].id);
            char num[32];
            if (k < 0 && coco_file_id(refs->images[i].id, num, sizeof num)) k = idmap_find(&res_map, num);
            if (k < 0) {
                out->refs_without_result++;
                continue;
            }
            EvalImage* im = &out->images[out->n++];
            im->id = strdup(res->items[k].id);  // as the results name it (a COCO id may match a file name)
            im->id_is_number = res->items[k].id_is_number;
            im->hyp = strdup(res->items[k].caption);
            im->n_refs = refs->images[i].n_caps;
            im->refs = malloc((size_t)im->n_refs * sizeof *im->refs);
            if (!im->refs) abort();
            for (int c = 0; c < im->n_refs; c++) im->refs[c] = strdup(refs->images[i].caps[c]);
        }
    }
    free(dups);
    free(missing);
    idmap_free(&ref_map);
    idmap_free(&res_map);
    for (size_t i = 0; i < refs->n; i++) free(aliases[i]);
    free(aliases);
    return ok;
}

void free_pairing(Pairing* p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->images[i].id);
        free(p->images[i].hyp);
        for (int k = 0; k < p->images[i].n_refs; k++) free(p->images[i].refs[k]);
        free(p->images[i].refs);
    }
    free(p->images);
    memset(p, 0, sizeof *p);
}
