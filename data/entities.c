// Entity vocabulary and entity extraction. See entities.h.
#include "data/entities.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/paths.h"
#include "data/strmap.h"

#define MAX_WORD 64       // longer words are never vocabulary words
#define MAX_PHRASE 256

struct EntityIndex {
    StrMap phrases;      // normalised entry ("fire hydrant") -> entry index
    StrMap last_words;   // words that end some entry -> 1: the targets of folding
    StrMap exceptions;   // inflected form -> first index into bases
    char** bases;        // [n_bases] base forms (of the exception list)
    int32_t* base_next;  // [n_bases] next base of the same form, or -1
    int n_bases;
    int max_words;       // words in the longest entry
};

static void set_err(char* err, size_t n, const char* fmt, ...) {
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

// Splits lower-cased text into words of ASCII letters and digits (other bytes, including
// non-ASCII, separate words). Writes at most max_words (start, length) pairs; returns the count.
typedef struct {
    const char* s;
    int len;
} Word;

static int split_words(const char* text, Word* words, int max_words) {
    int n = 0;
    const unsigned char* p = (const unsigned char*)text;
    while (*p) {
        while (*p && !isalnum(*p)) p++;
        if (!*p) break;
        const unsigned char* start = p;
        while (*p && isalnum(*p)) p++;
        if (n < max_words) words[n] = (Word){(const char*)start, (int)(p - start)};
        n++;
    }
    return n;
}

static void lower_copy(char* dst, const char* src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (char)tolower((unsigned char)src[i]);
    dst[n] = '\0';
}

static int in_map(const StrMap* m, const char* s, size_t n) { return strmap_get(m, s, n, -1) >= 0; }

// The base form of `word` that ends some entry: through the exception list, then the suffix
// rules; the word itself when none does.
static void fold_to_last_word(const EntityIndex* ix, const char* word, char* buf, size_t buf_size) {
    size_t n = strlen(word);
    snprintf(buf, buf_size, "%s", word);
    if (n >= MAX_WORD) return;
    for (int64_t b = strmap_get(&ix->exceptions, word, n, -1); b >= 0; b = ix->base_next[b])
        if (in_map(&ix->last_words, ix->bases[b], strlen(ix->bases[b]))) {
            snprintf(buf, buf_size, "%s", ix->bases[b]);
            return;
        }
    static const char* const rules[][2] = {{"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"},
                                           {"ches", "ch"}, {"shes", "sh"}, {"men", "man"}, {"ies", "y"}};
    char cand[MAX_WORD + 8];
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        size_t sl = strlen(rules[r][0]);
        if (n <= sl || memcmp(word + n - sl, rules[r][0], sl) != 0) continue;
        snprintf(cand, sizeof cand, "%.*s%s", (int)(n - sl), word, rules[r][1]);
        if (in_map(&ix->last_words, cand, strlen(cand))) {
            snprintf(buf, buf_size, "%s", cand);
            return;
        }
    }
}

void entity_fold_word(const EntityVocab* v, const char* word, char* buf, size_t buf_size) {
    if (in_map(&v->index->phrases, word, strlen(word))) {  // an entry itself ("glasses") stays
        snprintf(buf, buf_size, "%s", word);
        return;
    }
    fold_to_last_word(v->index, word, buf, buf_size);
}

// The normalised phrase of words[0..n): lower-case words joined by one space; if fold, the last
// word folded. Returns the length, or -1 if it does not fit.
static int make_phrase(const EntityVocab* v, const Word* words, int n, int fold, char* out) {
    int len = 0;
    for (int k = 0; k < n; k++) {
        if (words[k].len >= MAX_WORD || len + words[k].len + 2 >= MAX_PHRASE) return -1;
        if (k) out[len++] = ' ';
        char w[MAX_WORD], folded[MAX_WORD + 8];
        lower_copy(w, words[k].s, (size_t)words[k].len);
        const char* use = w;
        if (fold && k == n - 1) {
            fold_to_last_word(v->index, w, folded, sizeof folded);
            use = folded;
        }
        int ul = (int)strlen(use);
        if (len + ul + 1 >= MAX_PHRASE) return -1;
        memcpy(out + len, use, (size_t)ul);
        len += ul;
    }
    out[len] = '\0';
    return len;
}

int entity_vocab_find(const EntityVocab* v, const char* name) {
    Word words[16];
    int n = split_words(name, words, 16);
    if (n < 1 || n > 16) return -1;
    char phrase[MAX_PHRASE];
    int len = make_phrase(v, words, n, 0, phrase);
    return len < 0 ? -1 : (int)strmap_get(&v->index->phrases, phrase, (size_t)len, -1);
}

int entities_extract(const EntityVocab* v, const char* caption, int32_t* out, int cap) {
    enum { MAX_CAPTION_WORDS = 512 };
    Word words[MAX_CAPTION_WORDS];
    int n = split_words(caption, words, MAX_CAPTION_WORDS);
    if (n > MAX_CAPTION_WORDS) n = MAX_CAPTION_WORDS;
    int found = 0;
    char phrase[MAX_PHRASE];
    for (int i = 0; i < n;) {
        int matched = 0;
        for (int len = v->index->max_words < n - i ? v->index->max_words : n - i; len >= 1 && !matched; len--) {
            for (int fold = 0; fold <= 1 && !matched; fold++) {
                int pl = make_phrase(v, words + i, len, fold, phrase);
                int64_t e = pl < 0 ? -1 : strmap_get(&v->index->phrases, phrase, (size_t)pl, -1);
                if (e < 0) continue;
                int seen = 0;
                for (int k = 0; k < found && k < cap; k++) seen |= out[k] == (int32_t)e;
                if (!seen) {
                    if (found < cap) out[found] = (int32_t)e;
                    found++;
                }
                matched = len;
            }
        }
        i += matched ? matched : 1;
    }
    return found;
}

// ---------------------------------------------------------------- loading

static int load_exceptions(EntityIndex* ix, const char* path, char* err, size_t err_size) {
    FILE* f = fopen(path, "r");
    if (!f) {
        set_err(err, err_size, "%s: cannot open the morphology exceptions: %s", path, strerror(errno));
        return -1;
    }
    strmap_init(&ix->exceptions, 8192);
    char base[512], forms[4096];
    int cap = 0, line = 0;
    while (fgets(base, sizeof base, f)) {
        line++;
        if (!fgets(forms, sizeof forms, f)) {
            set_err(err, err_size, "%s:%d: a base form without its line of inflected forms", path, line);
            fclose(f);
            return -1;
        }
        line++;
        base[strcspn(base, "\r\n")] = '\0';
        forms[strcspn(forms, "\r\n")] = '\0';
        if (ix->n_bases == cap) {
            cap = cap ? cap * 2 : 8192;
            ix->bases = reallocCheck(ix->bases, (size_t)cap * sizeof(char*));
            ix->base_next = reallocCheck(ix->base_next, (size_t)cap * sizeof(int32_t));
        }
        for (char* form = strtok(forms, " "); form; form = strtok(NULL, " ")) {
            if (ix->n_bases == cap) {
                cap *= 2;
                ix->bases = reallocCheck(ix->bases, (size_t)cap * sizeof(char*));
                ix->base_next = reallocCheck(ix->base_next, (size_t)cap * sizeof(int32_t));
            }
            // Chain this base after any earlier base of the same form.
            int b = ix->n_bases++;
            ix->bases[b] = strdupCheck(base);
            ix->base_next[b] = -1;
            int64_t first = strmap_put(&ix->exceptions, form, strlen(form), b);
            if (first != b) {
                int64_t k = first;
                while (ix->base_next[k] >= 0) k = ix->base_next[k];
                ix->base_next[k] = b;
            }
        }
    }
    fclose(f);
    return 0;
}

// WordNet's exception list is shipped once, with the evaluator's METEOR resources.
static char* default_exceptions_path(void) { return tipcap_data_path("meteor/english.exceptions"); }

char* entity_vocab_default_path(void) { return tipcap_data_path("vocab/vinvl_vg_coco_oi_1848.json"); }

void entity_vocab_free(EntityVocab* v) {
    for (int i = 0; i < v->n; i++) free(v->words[i]);
    free(v->words);
    free(v->token_offsets);
    free(v->tokens);
    if (v->index) {
        strmap_free(&v->index->phrases);
        strmap_free(&v->index->last_words);
        if (v->index->exceptions.cap) strmap_free(&v->index->exceptions);
        for (int i = 0; i < v->index->n_bases; i++) free(v->index->bases[i]);
        free(v->index->bases);
        free(v->index->base_next);
        free(v->index);
    }
    memset(v, 0, sizeof *v);
}

typedef struct {
    char* name;
    double order;
} NamedEntry;

static int by_order(const void* a, const void* b) {
    double x = ((const NamedEntry*)a)->order, y = ((const NamedEntry*)b)->order;
    return x < y ? -1 : x > y;
}

// Reads the names of a vocabulary file in entry order.
static NamedEntry* read_names(const char* path, int* count, char* err, size_t err_size) {
    FILE* f = fopen(path, "rb");
    if (!f) {
        set_err(err, err_size, "%s: cannot open the entity vocabulary: %s", path, strerror(errno));
        return NULL;
    }
    fclose(f);
    size_t len;
    char* text = readFileCheck(path, &len);
    size_t k = 0;
    while (k < len && isspace((unsigned char)text[k])) k++;
    NamedEntry* e = NULL;
    int n = 0;
    if (k < len && (text[k] == '{' || text[k] == '[')) {
        cJSON* root = cJSON_ParseWithLength(text, len);
        if (!root) {
            set_err(err, err_size, "%s: malformed JSON", path);
            free(text);
            return NULL;
        }
        e = callocCheck((size_t)cJSON_GetArraySize(root) + 1, sizeof *e);
        int i = 0;
        for (cJSON* it = root->child; it; it = it->next, i++) {
            const char* name = cJSON_IsObject(root) ? it->string : cJSON_IsString(it) ? it->valuestring : NULL;
            if (!name || (cJSON_IsObject(root) && !cJSON_IsNumber(it))) {
                set_err(err, err_size, "%s: entry %d: expected %s", path, i,
                        cJSON_IsObject(root) ? "\"name\": number" : "a string");
                for (int j = 0; j < n; j++) free(e[j].name);
                free(e);
                cJSON_Delete(root);
                free(text);
                return NULL;
            }
            e[n].name = strdupCheck(name);
            e[n].order = cJSON_IsObject(root) ? it->valuedouble : i;
            n++;
        }
        cJSON_Delete(root);
    } else {
        int cap = 1024;
        e = mallocCheck((size_t)cap * sizeof *e);
        char* save = NULL;
        for (char* line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            line[strcspn(line, ",\r")] = '\0';  // first of comma-separated synonyms
            while (*line == ' ' || *line == '\t') line++;
            if (!*line) continue;
            if (n == cap) e = reallocCheck(e, (size_t)(cap *= 2) * sizeof *e);
            e[n].name = strdupCheck(line);
            e[n].order = n;
            n++;
        }
    }
    free(text);
    qsort(e, (size_t)n, sizeof *e, by_order);
    *count = n;
    return e;
}

int entity_vocab_load(const char* path, const char* exceptions_path, Tokenizer* tok, EntityVocab* v, char* err,
                      size_t err_size) {
    memset(v, 0, sizeof *v);
    int n;
    NamedEntry* names = read_names(path, &n, err, err_size);
    if (!names) return -1;
    if (n == 0) {
        set_err(err, err_size, "%s: the entity vocabulary is empty", path);
        free(names);
        return -1;
    }
    v->index = callocCheck(1, sizeof *v->index);
    strmap_init(&v->index->phrases, (size_t)n);
    strmap_init(&v->index->last_words, (size_t)n);
    v->words = mallocCheck((size_t)n * sizeof(char*));
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i].name);
        v->words[i] = mallocCheck(l + 1);
        lower_copy(v->words[i], names[i].name, l);
        free(names[i].name);
    }
    free(names);
    v->n = n;
    for (int i = 0; i < n; i++) {
        Word words[16];
        int nw = split_words(v->words[i], words, 16);
        char phrase[MAX_PHRASE];
        int pl = nw >= 1 && nw <= 16 ? make_phrase(v, words, nw, 0, phrase) : -1;
        if (pl < 0) {
            set_err(err, err_size, "%s: entry %d (\"%s\"): no words, or too long", path, i, v->words[i]);
            entity_vocab_free(v);
            return -1;
        }
        strmap_put(&v->index->phrases, phrase, (size_t)pl, i);  // a repeated entry keeps its first index
        const Word* last = &words[nw - 1];
        strmap_put(&v->index->last_words, phrase + pl - last->len, (size_t)last->len, 1);
        if (nw > v->index->max_words) v->index->max_words = nw;
    }
    char* exc = exceptions_path ? strdupCheck(exceptions_path) : default_exceptions_path();
    int rc = load_exceptions(v->index, exc, err, err_size);
    free(exc);
    if (rc != 0) {
        entity_vocab_free(v);
        return -1;
    }
    v->token_offsets = callocCheck((size_t)n + 1, sizeof(int32_t));
    if (tok) {
        size_t cap = 0, total = 0;
        int32_t* ids = NULL;
        for (int i = 0; i < n; i++) {
            size_t l = strlen(v->words[i]);
            char* spaced = mallocCheck(l + 2);
            spaced[0] = ' ';
            memcpy(spaced + 1, v->words[i], l + 1);
            int32_t* one = NULL;
            size_t one_cap = 0;
            long k = tokenizer_encode(tok, spaced, l + 1, &one, &one_cap, err, err_size);
            free(spaced);
            if (k < 0) {
                set_err(err, err_size, "%s: entry %d: not valid UTF-8", path, i);
                free(one);
                free(ids);
                entity_vocab_free(v);
                return -1;
            }
            if (total + (size_t)k > cap) {
                cap = (total + (size_t)k) * 2;
                ids = reallocCheck(ids, cap * sizeof(int32_t));
            }
            memcpy(ids + total, one, (size_t)k * sizeof(int32_t));
            free(one);
            total += (size_t)k;
            v->token_offsets[i + 1] = (int32_t)total;
        }
        v->tokens = ids;
    }
    return 0;
}
