// METEOR 1.5 as pycocoevalcap runs its jar (`-l en -norm`, the stdio SCORE / EVAL protocol):
// normalisation (edu.cmu.meteor.util.Normalizer, see meteor_normalize.c), the aligner's four
// matchers (exact, Snowball stem, WordNet synonym, paraphrase), its beam search with the jar's
// comparator and quirks, and the scorer's statistics. Per image the best-scoring reference
// wins; the corpus score comes from the summed statistics.
//
// Quirks of the jar kept on purpose (they change scores):
// - words are compared by Java's String.hashCode, as the jar does;
// - the search adds weighted match sizes to int fields, truncating (weights 1.0/0.5/0.5/0.5);
// - the distance of a new match is added to the parent path, not to the new one;
// - one-to-one matches with no competitor are fixed before the search;
// - in the corpus total, a perfectly matched segment contributes no chunk.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libstemmer.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "eval/eval.h"
#include "eval/meteor_internal.h"
#include "eval/ngrams.h"
#include "eval/paraphrase_index.h"

enum { MOD_EXACT, MOD_STEM, MOD_SYNONYM, MOD_PARAPHRASE, N_MODULES };
static const double ALPHA = 0.85, BETA = 0.20, GAMMA = 0.60, DELTA = 0.75;
static const double SCORE_WEIGHTS[N_MODULES] = {1.0, 0.6, 0.8, 0.6};
static const double SEARCH_WEIGHTS[N_MODULES] = {1.0, 0.5, 0.5, 0.5};
enum { BEAM_SIZE = 40 };

// ---------------------------------------------------------------- resources
static char* read_file(const char* path, size_t* len) {
    FILE* f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char* buf = malloc(cap);
    if (!buf) abort();
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf) abort();
        }
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

// Splits a buffer into lines in place (handles \n and \r\n); returns the count.
static size_t split_lines(char* buf, char*** lines) {
    size_t n = 0, cap = 1024;
    *lines = malloc(cap * sizeof **lines);
    if (!*lines) abort();
    char* p = buf;
    while (*p) {
        char* e = strchr(p, '\n');
        if (e) *e = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = 0;
        if (n == cap) {
            cap *= 2;
            *lines = realloc(*lines, cap * sizeof **lines);
            if (!*lines) abort();
        }
        (*lines)[n++] = p;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

static int cmp_int(const void* a, const void* b) {
    int x = *(const int*)a, y = *(const int*)b;
    return x < y ? -1 : x > y;
}

static int load_resources(Meteor* m, const char* dir, char* err, size_t cap) {
    char path[4096];
    size_t len;
    // function words: one per line
    snprintf(path, sizeof path, "%s/english.function.words", dir);
    char* fw = read_file(path, &len);
    if (!fw) { snprintf(err, cap, "cannot read %s", path); return 0; }
    char** lines;
    size_t n = split_lines(fw, &lines);
    vocab_init(&m->function_words);
    for (size_t i = 0; i < n; i++) vocab_add(&m->function_words, lines[i], strlen(lines[i]));
    free(lines);
    free(fw);
    // synsets: word line, then a line of synset ids
    snprintf(path, sizeof path, "%s/english.synsets", dir);
    char* syn = read_file(path, &len);
    if (!syn) { snprintf(err, cap, "cannot read %s", path); return 0; }
    n = split_lines(syn, &lines);
    vocab_init(&m->syn_words);
    m->synsets = calloc(n / 2 + 1, sizeof *m->synsets);
    m->n_synsets = calloc(n / 2 + 1, sizeof *m->n_synsets);
    if (!m->synsets || !m->n_synsets) abort();
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint32_t id = vocab_add(&m->syn_words, lines[i], strlen(lines[i]));
        // a repeated word replaces its earlier set (Hashtable.put)
        free(m->synsets[id]);
        int count = 0, capi = 8;
        int* set = malloc((size_t)capi * sizeof *set);
        if (!set) abort();
        for (char* p = lines[i + 1]; *p;) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break;
            char* e;
            long v = strtol(p, &e, 10);
            if (e == p) { snprintf(err, cap, "%s: line %zu: not a synset id", path, i + 2); return 0; }
            if (count == capi) {
                capi *= 2;
                set = realloc(set, (size_t)capi * sizeof *set);
                if (!set) abort();
            }
            set[count++] = (int)v;
            p = e;
        }
        qsort(set, (size_t)count, sizeof *set, cmp_int);
        m->synsets[id] = set;
        m->n_synsets[id] = count;
    }
    free(lines);
    free(syn);
    // exceptions: base line, then a line of inflected forms
    snprintf(path, sizeof path, "%s/english.exceptions", dir);
    char* exc = read_file(path, &len);
    if (!exc) { snprintf(err, cap, "cannot read %s", path); return 0; }
    n = split_lines(exc, &lines);
    vocab_init(&m->exc_forms);
    size_t bases_cap = 1024;
    m->exc_bases = calloc(bases_cap, sizeof *m->exc_bases);
    m->n_exc_bases = calloc(bases_cap, sizeof *m->n_exc_bases);
    if (!m->exc_bases || !m->n_exc_bases) abort();
    for (size_t i = 0; i + 1 < n; i += 2) {
        const char* base = lines[i];
        for (char* p = lines[i + 1]; *p;) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break;
            char* e = p;
            while (*e && *e != ' ' && *e != '\t') e++;
            uint32_t id = vocab_add(&m->exc_forms, p, (size_t)(e - p));
            if (id >= bases_cap) {
                size_t old = bases_cap;
                bases_cap *= 2;
                m->exc_bases = realloc(m->exc_bases, bases_cap * sizeof *m->exc_bases);
                m->n_exc_bases = realloc(m->n_exc_bases, bases_cap * sizeof *m->n_exc_bases);
                if (!m->exc_bases || !m->n_exc_bases) abort();
                memset(m->exc_bases + old, 0, (bases_cap - old) * sizeof *m->exc_bases);
                memset(m->n_exc_bases + old, 0, (bases_cap - old) * sizeof *m->n_exc_bases);
            }
            int k = m->n_exc_bases[id];
            m->exc_bases[id] = realloc(m->exc_bases[id], (size_t)(k + 1) * sizeof(char*));
            if (!m->exc_bases[id]) abort();
            m->exc_bases[id][k] = strdup(base);
            m->n_exc_bases[id] = k + 1;
            p = e;
        }
    }
    free(lines);
    free(exc);
    // non-breaking prefixes for the normaliser
    snprintf(path, sizeof path, "%s/english.nonbreaking.prefixes", dir);
    char* nbp = read_file(path, &len);
    if (!nbp) { snprintf(err, cap, "cannot read %s", path); return 0; }
    n = split_lines(nbp, &lines);
    vocab_init(&m->nbp);
    m->nbp_numeric_only = calloc(n + 1, 1);
    if (!m->nbp_numeric_only) abort();
    for (size_t i = 0; i < n; i++) {
        char* p = lines[i];
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        char* e = p;
        while (*e && *e != ' ' && *e != '\t') e++;
        char* rest = e;
        while (*rest == ' ' || *rest == '\t') rest++;
        int numeric = !strncmp(rest, "#NUMERIC_ONLY#", 14) && (rest[14] == 0 || rest[14] == ' ' || rest[14] == '\t');
        uint32_t id = vocab_add(&m->nbp, p, (size_t)(e - p));
        m->nbp_numeric_only[id] = (char)numeric;  // a later line replaces an earlier one
    }
    free(lines);
    free(nbp);
    return 1;
}

Meteor* meteor_open(const char* data_dir, const char* para_path, char* err, size_t err_cap) {
    Meteor* m = calloc(1, sizeof *m);
    if (!m) abort();
    if (!load_resources(m, data_dir, err, err_cap)) {
        meteor_close(m);
        return NULL;
    }
    if (para_path) {
        FILE* f = fopen(para_path, "rb");
        if (f) {
            fclose(f);
            m->para_path = strdup(para_path);
        }
    }
    return m;
}

int meteor_has_paraphrase(const Meteor* m) { return m->para_path != NULL && m->para_used; }

static void para_free(Meteor* m) {
    free(m->para_child_keys);
    free(m->para_child_vals);
    free(m->para_emit_start);
    free(m->para_emit);
    free(m->para_phrases);
    free(m->para_phrase_start);
    m->para_child_keys = NULL;
    m->para_child_vals = NULL;
    m->para_emit_start = NULL;
    m->para_emit = NULL;
    m->para_phrases = NULL;
    m->para_phrase_start = NULL;
    m->para_loaded = 0;
}

void meteor_close(Meteor* m) {
    if (!m) return;
    if (m->synsets) {
        for (size_t i = 0; i < m->syn_words.n_words; i++) free(m->synsets[i]);
        free(m->synsets);
        free(m->n_synsets);
        vocab_free(&m->syn_words);
    }
    if (m->exc_bases) {
        for (size_t i = 0; i < m->exc_forms.n_words; i++) {
            for (int k = 0; k < m->n_exc_bases[i]; k++) free(m->exc_bases[i][k]);
            free(m->exc_bases[i]);
        }
        free(m->exc_bases);
        free(m->n_exc_bases);
        vocab_free(&m->exc_forms);
    }
    if (m->function_words.slots) vocab_free(&m->function_words);
    if (m->nbp.slots) vocab_free(&m->nbp);
    free(m->nbp_numeric_only);
    para_free(m);
    free(m->para_path);
    free(m);
}

// ---------------------------------------------------------------- Java string helpers
// String.hashCode over UTF-16 code units of the UTF-8 text.
static int32_t java_hash(const char* s) {
    uint32_t h = 0;
    const unsigned char* p = (const unsigned char*)s;
    while (*p) {
        uint32_t c;
        if (*p < 0x80) c = *p++;
        else if ((*p & 0xE0) == 0xC0 && p[1]) { c = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); p += 2; }
        else if ((*p & 0xF0) == 0xE0 && p[1] && p[2]) { c = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F); p += 3; }
        else if ((*p & 0xF8) == 0xF0 && p[1] && p[2] && p[3]) {
            c = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
            p += 4;
            c -= 0x10000;
            h = 31 * h + (0xD800 + (c >> 10));
            c = 0xDC00 + (c & 0x3FF);
        } else { c = 0xFFFD; p++; }
        h = 31 * h + c;
    }
    return (int32_t)h;
}

static size_t utf16_length(const char* s) {
    size_t n = 0;
    for (const unsigned char* p = (const unsigned char*)s; *p; p++) {
        if ((*p & 0xC0) != 0x80) n++;
        if ((*p & 0xF8) == 0xF0) n++;  // a surrogate pair
    }
    return n;
}

static int ends_with(const char* s, size_t n, const char* suf) {
    size_t k = strlen(suf);
    return n >= k && !memcmp(s + n - k, suf, k);
}

// ---------------------------------------------------------------- synonyms
static const int* synsets_of(const Meteor* m, const char* w, size_t n, int* count) {
    long id = vocab_lookup(&m->syn_words, w, n);
    if (id < 0 || !m->synsets[id]) { *count = 0; return NULL; }
    *count = m->n_synsets[id];
    return m->synsets[id];
}

// WordNet's morphological base (SynonymDictionary.morph for English), "" when none. Returns a
// malloc'd string.
static char* wordnet_morph(const Meteor* m, const char* word) {
    static const char* SUFX[] = {"s", "ses", "xes", "zes", "ches", "shes", "men", "ies", "s", "ies", "es", "es", "ed", "ed", "ing", "ing", "er", "est", "er", "est"};
    static const char* ADDR[] = {"", "s", "x", "z", "ch", "sh", "man", "y", "", "y", "e", "", "e", "", "e", "", "", "", "e", "e"};
    size_t n = strlen(word);
    const char* end = "";
    if (ends_with(word, n, "ful")) end = "ful";  // kept even though the stripped stem is then unused
    if (ends_with(word, n, "ss") || utf16_length(word) <= 2) return strdup(word);
    for (int i = 0; i < 20; i++) {
        if (!ends_with(word, n, SUFX[i])) continue;
        size_t base = n - strlen(SUFX[i]);
        size_t add = strlen(ADDR[i]);
        char* cand = malloc(base + add + strlen(end) + 1);
        if (!cand) abort();
        memcpy(cand, word, base);
        memcpy(cand + base, ADDR[i], add);
        cand[base + add] = 0;
        if (vocab_lookup(&m->syn_words, cand, base + add) >= 0) {
            strcat(cand, end);
            return cand;
        }
        free(cand);
    }
    return strdup("");
}

static int merge_unique(int* dst, int n, const int* src, int k) {
    for (int i = 0; i < k; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            if (dst[j] == src[i]) { found = 1; break; }
        if (!found) dst[n++] = src[i];
    }
    return n;
}

// getSynSets(w) U getStemSynSets(w), sorted.
static int* synonym_set(const Meteor* m, const char* w, int* count) {
    int cap = 16, n = 0;
    int* out = malloc((size_t)cap * sizeof *out);
    if (!out) abort();
    int k;
    const int* s = synsets_of(m, w, strlen(w), &k);
#define ADD_SET(src, cnt)                                              \
    do {                                                              \
        if ((cnt) > 0) {                                              \
            while (n + (cnt) > cap) cap *= 2;                         \
            out = realloc(out, (size_t)cap * sizeof *out);            \
            if (!out) abort();                                        \
            n = merge_unique(out, n, (src), (cnt));                   \
        }                                                             \
    } while (0)
    ADD_SET(s, k);
    long ex = vocab_lookup(&m->exc_forms, w, strlen(w));
    if (ex >= 0) {
        for (int b = 0; b < m->n_exc_bases[ex]; b++) {
            s = synsets_of(m, m->exc_bases[ex][b], strlen(m->exc_bases[ex][b]), &k);
            ADD_SET(s, k);
        }
    } else {
        char* base = wordnet_morph(m, w);
        s = synsets_of(m, base, strlen(base), &k);
        ADD_SET(s, k);
        free(base);
    }
#undef ADD_SET
    qsort(out, (size_t)n, sizeof *out, cmp_int);
    *count = n;
    return out;
}

static int sets_intersect(const int* a, int na, const int* b, int nb) {
    int i = 0, j = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) return 1;
        if (a[i] < b[j]) i++;
        else j++;
    }
    return 0;
}

// ---------------------------------------------------------------- paraphrases
// From the table's index (paraphrase_index.h) only the entries whose words all occur in the
// evaluated captions are kept: no other entry can ever match, so the result is the jar's.
static uint64_t child_key(uint32_t node, uint32_t word) { return ((uint64_t)node << 32) | word; }

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static uint32_t child_find(const Meteor* m, uint32_t node, uint32_t word) {
    uint64_t key = child_key(node, word) + 1;
    size_t mask = m->para_child_cap - 1;
    size_t j = mix64(key) & mask;
    while (m->para_child_keys[j]) {
        if (m->para_child_keys[j] == key) return m->para_child_vals[j];
        j = (j + 1) & mask;
    }
    return 0;
}

typedef struct {
    uint32_t ref_node;   // trie node reached by the reference phrase
    uint32_t phrase;     // paraphrase index
} PendingEmit;

// The trie node of a reference phrase (corpus word ids), added with its missing ancestors.
static uint32_t trie_insert(Meteor* m, size_t* n_children, uint32_t* n_nodes, const uint32_t* ids, int n) {
    uint32_t node = 0;
    for (int k = 0; k < n; k++) {
        uint32_t child = child_find(m, node, ids[k]);
        if (!child) {
            if (2 * (*n_children + 1) > m->para_child_cap) {
                size_t nc = m->para_child_cap * 2;
                uint64_t* keys = calloc(nc, sizeof *keys);
                uint32_t* vals = calloc(nc, sizeof *vals);
                if (!keys || !vals) abort();
                for (size_t j = 0; j < m->para_child_cap; j++) {
                    if (!m->para_child_keys[j]) continue;
                    size_t t = mix64(m->para_child_keys[j]) & (nc - 1);
                    while (keys[t]) t = (t + 1) & (nc - 1);
                    keys[t] = m->para_child_keys[j];
                    vals[t] = m->para_child_vals[j];
                }
                free(m->para_child_keys);
                free(m->para_child_vals);
                m->para_child_keys = keys;
                m->para_child_vals = vals;
                m->para_child_cap = nc;
            }
            child = (*n_nodes)++;
            uint64_t key = child_key(node, ids[k]) + 1;
            size_t j = mix64(key) & (m->para_child_cap - 1);
            while (m->para_child_keys[j]) j = (j + 1) & (m->para_child_cap - 1);
            m->para_child_keys[j] = key;
            m->para_child_vals[j] = child;
            (*n_children)++;
        }
        node = child;
    }
    return node;
}

int meteor_load_paraphrases(Meteor* m, const Vocab* corpus, char* err, size_t err_cap) {
    para_free(m);
    if (!m->para_path) return 1;
    ParaIndex ix;
    if (!para_index_open(m->para_path, &ix, err, err_cap)) return 0;
    // each table word's corpus id (-1: not in the captions, so no phrase holding it can match)
    int32_t* corpus_id = malloc((ix.n_words ? ix.n_words : 1) * sizeof *corpus_id);
    if (!corpus_id) abort();
    for (uint32_t w = 0; w < ix.n_words; w++)
        corpus_id[w] = (int32_t)vocab_lookup(corpus, ix.word_bytes + ix.word_offsets[w], ix.word_offsets[w + 1] - ix.word_offsets[w]);
    // The phrases made only of corpus words, in table order, as corpus ids (m->para_phrases);
    // a bit per table phrase marks them, and a running count per 64 phrases gives a marked
    // phrase's number among them. Both stay in cache for the random lookups below.
    size_t n_blocks = (size_t)ix.n_phrases / 64 + 1;
    uint64_t* in_corpus = calloc(n_blocks, sizeof *in_corpus);
    uint32_t* rank_base = malloc(n_blocks * sizeof *rank_base);
    size_t cap_words = 1 << 16, cap_phrases = 1 << 12;
    uint32_t* words = malloc(cap_words * sizeof *words);
    uint32_t* phrase_start = malloc(cap_phrases * sizeof *phrase_start);
    if (!in_corpus || !rank_base || !words || !phrase_start) abort();
    size_t n_kept_words = 0;
    uint32_t n_kept = 0, at = 0;
    for (uint32_t p = 0; p < ix.n_phrases; p++) {
        if (p % 64 == 0) rank_base[p / 64] = n_kept;
        int len = ix.phrase_len[p], ok = 1;
        for (int k = 0; k < len; k++) ok &= corpus_id[ix.phrase_words[at + k]] >= 0;
        if (ok) {
            in_corpus[p / 64] |= 1ull << (p % 64);
            if (n_kept + 2 > cap_phrases) {
                cap_phrases *= 2;
                phrase_start = realloc(phrase_start, cap_phrases * sizeof *phrase_start);
                if (!phrase_start) abort();
            }
            if (n_kept_words + (size_t)len > cap_words) {
                cap_words *= 2;
                words = realloc(words, cap_words * sizeof *words);
                if (!words) abort();
            }
            phrase_start[n_kept++] = (uint32_t)n_kept_words;
            for (int k = 0; k < len; k++) words[n_kept_words++] = (uint32_t)corpus_id[ix.phrase_words[at + k]];
        }
        at += (uint32_t)len;
    }
    phrase_start[n_kept] = (uint32_t)n_kept_words;
    free(corpus_id);
    // the entries whose two phrases are both kept: a trie over the reference phrases, and their
    // paraphrases in file order per reference phrase
    m->para_child_cap = 1 << 16;
    m->para_child_keys = calloc(m->para_child_cap, sizeof *m->para_child_keys);
    m->para_child_vals = calloc(m->para_child_cap, sizeof *m->para_child_vals);
    if (!m->para_child_keys || !m->para_child_vals) abort();
    size_t n_children = 0;
    uint32_t n_nodes = 1;
    PendingEmit* pend = NULL;
    size_t n_pend = 0, cap_pend = 0;
#define KEPT(p) ((in_corpus[(p) / 64] >> ((p) % 64)) & 1)
#define KEPT_NUMBER(p) (rank_base[(p) / 64] + (uint32_t)__builtin_popcountll(in_corpus[(p) / 64] & ((1ull << ((p) % 64)) - 1)))
    uint64_t e = 0;
    for (uint32_t p = 0; p < ix.n_phrases; e += ix.para_count[p], p++) {
        if (!KEPT(p)) continue;
        uint32_t node = 0;
        int have_node = 0;
        for (uint32_t k = 0; k < ix.para_count[p]; k++) {
            uint32_t q = ix.para[e + k];
            if (!KEPT(q)) continue;
            if (!have_node) {
                uint32_t r = KEPT_NUMBER(p);
                node = trie_insert(m, &n_children, &n_nodes, words + phrase_start[r], (int)(phrase_start[r + 1] - phrase_start[r]));
                have_node = 1;
            }
            if (n_pend == cap_pend) {
                cap_pend = cap_pend ? 2 * cap_pend : 1 << 16;
                pend = realloc(pend, cap_pend * sizeof *pend);
                if (!pend) abort();
            }
            pend[n_pend].ref_node = node;
            pend[n_pend].phrase = KEPT_NUMBER(q);
            n_pend++;
        }
    }
#undef KEPT
#undef KEPT_NUMBER
    free(in_corpus);
    free(rank_base);
    para_index_close(&ix);
    // emits per node in file order (counting sort on the node)
    m->para_n_nodes = n_nodes;
    m->para_emit_start = calloc((size_t)n_nodes + 1, sizeof *m->para_emit_start);
    m->para_emit = malloc((n_pend ? n_pend : 1) * sizeof *m->para_emit);
    if (!m->para_emit_start || !m->para_emit) abort();
    for (size_t k = 0; k < n_pend; k++) m->para_emit_start[pend[k].ref_node + 1]++;
    for (uint32_t k = 0; k < n_nodes; k++) m->para_emit_start[k + 1] += m->para_emit_start[k];
    uint32_t* fill = malloc(((size_t)n_nodes + 1) * sizeof *fill);
    if (!fill) abort();
    memcpy(fill, m->para_emit_start, ((size_t)n_nodes + 1) * sizeof *fill);
    for (size_t k = 0; k < n_pend; k++) m->para_emit[fill[pend[k].ref_node]++] = pend[k].phrase;
    free(fill);
    free(pend);
    m->para_phrases = words;
    m->para_phrase_start = phrase_start;
    m->para_loaded = 1;
    return 1;
}

// ---------------------------------------------------------------- alignment
typedef struct {
    int start, length;             // in line 2 (the reference)
    int match_start, match_length; // in line 1 (the hypothesis)
    int module;
} Match;

typedef struct {
    int match_count, matches1, matches2, all_matches1, all_matches2, chunks, idx, last_match_end, distance;
    int* at;          // [len2] match index starting at each line-2 position, or -1
    unsigned char* used1;
    unsigned char* used2;
} Path;

typedef struct {
    Path** items;
    size_t n, cap;
} PathList;

typedef struct {
    Path** all;  // every path allocated for this segment, freed together
    size_t n, cap;
    int len1, len2;
} Arena;

static Path* path_new(Arena* a) {
    size_t bytes = sizeof(Path) + (size_t)a->len2 * sizeof(int) + (size_t)a->len1 + (size_t)a->len2;
    Path* p = malloc(bytes);
    if (!p) abort();
    p->at = (int*)(p + 1);
    p->used1 = (unsigned char*)(p->at + a->len2);
    p->used2 = p->used1 + a->len1;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 256;
        a->all = realloc(a->all, a->cap * sizeof *a->all);
        if (!a->all) abort();
    }
    a->all[a->n++] = p;
    return p;
}

static Path* path_copy(Arena* a, const Path* src) {
    Path* p = path_new(a);
    int* at = p->at;
    unsigned char* u1 = p->used1;
    unsigned char* u2 = p->used2;
    *p = *src;
    p->at = at;
    p->used1 = u1;
    p->used2 = u2;
    memcpy(p->at, src->at, (size_t)a->len2 * sizeof(int));
    memcpy(p->used1, src->used1, (size_t)a->len1);
    memcpy(p->used2, src->used2, (size_t)a->len2);
    return p;
}

static void list_push(PathList* l, Path* p) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        if (!l->items) abort();
    }
    l->items[l->n++] = p;
}

// Constants.PARTIAL_COMPARE_TOTAL: more weighted matches first, then fewer chunks, then less distance.
static int path_compare(const Path* a, const Path* b) {
    int d = (b->matches1 + b->matches2) - (a->matches1 + a->matches2);
    if (d > 0) return 1;
    if (d < 0) return -1;
    int c = a->chunks - b->chunks;
    if (c) return c;
    return a->distance - b->distance;
}

// Collections.sort is stable: a merge sort.
static void stable_sort(Path** v, size_t n, Path** tmp) {
    if (n < 2) return;
    size_t h = n / 2;
    stable_sort(v, h, tmp);
    stable_sort(v + h, n - h, tmp);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = path_compare(v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

typedef struct {
    Match* matches;   // all matches, grouped by line-2 start in insertion order via `next`
    int n, cap;
    int* head;        // [len2] first match index starting there, -1
    int* tail;
    int* next;
    int* count;       // [len2] matches starting there
    int* cover1;      // [len1] coverage counts
    int* cover2;      // [len2]
} Stage;

static void stage_add(Stage* s, int module, int start, int length, int match_start, int match_length) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->matches = realloc(s->matches, (size_t)s->cap * sizeof *s->matches);
        s->next = realloc(s->next, (size_t)s->cap * sizeof *s->next);
        if (!s->matches || !s->next) abort();
    }
    int id = s->n++;
    s->matches[id] = (Match){start, length, match_start, match_length, module};
    s->next[id] = -1;
    if (s->tail[start] >= 0) s->next[s->tail[start]] = id;
    else s->head[start] = id;
    s->tail[start] = id;
    s->count[start]++;
    for (int k = 0; k < match_length; k++) s->cover1[match_start + k]++;
    for (int k = 0; k < length; k++) s->cover2[start + k]++;
}

typedef struct {
    const char** w;   // words
    int n;
    int32_t* hash;    // Java hash codes
    int32_t* stem_hash;
    int** syn;        // synonym sets
    int* n_syn;
    int* para_id;     // corpus ids for the paraphrase table, -1 unknown
    unsigned char* function;
} Line;

typedef struct {
    int content1[N_MODULES], content2[N_MODULES], function1[N_MODULES], function2[N_MODULES];
    int chunks, len1, len2, fw1, fw2;
} AlignResult;

static void paraphrase_match(const Meteor* m, Stage* s, const Line* a, const Line* b, int a_is_ref) {
    // phrases of line `a` found (via the table) as their paraphrase in line `b`
    for (int j = 0; j < a->n; j++) {
        uint32_t node = 0;
        for (int i = 0; j + i < a->n; i++) {
            if (a->para_id[j + i] < 0) break;
            node = child_find(m, node, (uint32_t)a->para_id[j + i]);
            if (!node) break;
            for (uint32_t e = m->para_emit_start[node]; e < m->para_emit_start[node + 1]; e++) {
                uint32_t ph = m->para_emit[e];
                const uint32_t* words = m->para_phrases + m->para_phrase_start[ph];
                int wl = (int)(m->para_phrase_start[ph + 1] - m->para_phrase_start[ph]);
                for (int k0 = 0; k0 < b->n; k0++) {
                    int ok = 1;
                    for (int k = 0; k < wl; k++)
                        if (k0 + k == b->n || b->para_id[k0 + k] != (int)words[k]) { ok = 0; break; }
                    if (!ok) continue;
                    if (a_is_ref) stage_add(s, MOD_PARAPHRASE, j, i + 1, k0, wl);
                    else stage_add(s, MOD_PARAPHRASE, k0, wl, j, i + 1);
                }
            }
        }
    }
}

static void align(const Meteor* m, const Line* l1, const Line* l2, AlignResult* out) {
    int n1 = l1->n, n2 = l2->n;
    Stage s;
    memset(&s, 0, sizeof s);
    int* ints = malloc((size_t)(4 * n2 + n1 + n2 + 4) * sizeof *ints);
    if (!ints) abort();
    s.head = ints;
    s.tail = s.head + n2;
    s.count = s.tail + n2;
    s.cover2 = s.count + n2;
    s.cover1 = s.cover2 + n2;
    for (int j = 0; j < n2; j++) s.head[j] = s.tail[j] = -1, s.count[j] = 0, s.cover2[j] = 0;
    for (int i = 0; i < n1; i++) s.cover1[i] = 0;
    int identical = n1 == n2;
    for (int i = 0; identical && i < n1; i++) identical = l1->hash[i] == l2->hash[i];
    int modules = identical ? 1 : (m->para_loaded ? 4 : 3);
    for (int mod = 0; mod < modules; mod++) {
        if (mod == MOD_EXACT) {
            for (int j = 0; j < n2; j++)
                for (int i = 0; i < n1; i++)
                    if (l1->hash[i] == l2->hash[j]) stage_add(&s, mod, j, 1, i, 1);
        } else if (mod == MOD_STEM) {
            for (int j = 0; j < n2; j++)
                for (int i = 0; i < n1; i++)
                    if (l1->stem_hash[i] == l2->stem_hash[j] && l1->hash[i] != l2->hash[j]) stage_add(&s, mod, j, 1, i, 1);
        } else if (mod == MOD_SYNONYM) {
            for (int j = 0; j < n2; j++)
                for (int i = 0; i < n1; i++)
                    if (sets_intersect(l1->syn[i], l1->n_syn[i], l2->syn[j], l2->n_syn[j]) && l1->hash[i] != l2->hash[j])
                        stage_add(&s, mod, j, 1, i, 1);
        } else {
            paraphrase_match(m, &s, l2, l1, 1);
            paraphrase_match(m, &s, l1, l2, 0);
        }
    }
    // one-to-one matches nothing else touches are fixed
    Arena arena = {NULL, 0, 0, n1, n2};
    Path* start = path_new(&arena);
    memset(start, 0, sizeof *start);
    start->at = (int*)(start + 1);
    start->used1 = (unsigned char*)(start->at + n2);
    start->used2 = start->used1 + n1;
    for (int j = 0; j < n2; j++) start->at[j] = -1;
    for (int i = 0; i < n1; i++) start->used1[i] = 0;
    for (int j = 0; j < n2; j++) start->used2[j] = 0;
    start->last_match_end = -1;
    for (int j = 0; j < n2; j++) {
        if (s.count[j] != 1) continue;
        const Match* mt = &s.matches[s.head[j]];
        int overlap = 0;
        for (int k = 0; k < mt->length; k++) if (s.cover2[j + k] != 1) overlap = 1;
        for (int k = 0; k < mt->match_length; k++) if (s.cover1[mt->match_start + k] != 1) overlap = 1;
        if (!overlap) {
            start->at[j] = s.head[j];
            for (int k = 0; k < mt->length; k++) start->used2[j + k] = 1;
            for (int k = 0; k < mt->match_length; k++) start->used1[mt->match_start + k] = 1;
        }
    }
    // beam search, left to right over line 2
    PathList paths = {NULL, 0, 0}, next = {NULL, 0, 0};
    Path** tmp = NULL;
    size_t tmp_cap = 0;
    list_push(&next, start);
    for (int cur = 0; cur <= n2; cur++) {
        PathList t = paths;
        paths = next;
        next = t;
        next.n = 0;
        if (paths.n > tmp_cap) {
            tmp_cap = paths.n * 2;
            tmp = realloc(tmp, tmp_cap * sizeof *tmp);
            if (!tmp) abort();
        }
        stable_sort(paths.items, paths.n, tmp);
        for (size_t rank = 0; rank < BEAM_SIZE && rank < paths.n; rank++) {
            Path* p = paths.items[rank];
            if (cur == n2) {
                if (p->last_match_end != -1) p->chunks++;
                list_push(&next, p);
                continue;
            }
            if (p->used2[cur]) {
                if (cur < p->idx) {
                    list_push(&next, p);
                } else if (p->at[p->idx] >= 0) {
                    const Match* mt = &s.matches[p->at[p->idx]];
                    p->match_count++;
                    p->matches1 = (int)(p->matches1 + mt->match_length * SEARCH_WEIGHTS[mt->module]);
                    p->matches2 = (int)(p->matches2 + mt->length * SEARCH_WEIGHTS[mt->module]);
                    p->all_matches1 += mt->match_length;
                    p->all_matches2 += mt->length;
                    if (p->last_match_end != -1 && mt->match_start != p->last_match_end) p->chunks++;
                    p->idx = mt->start + mt->length;
                    p->last_match_end = mt->match_start + mt->match_length;
                    p->distance += abs(mt->start - mt->match_start);
                    list_push(&next, p);
                }
                continue;
            }
            for (int id = s.head[cur]; id >= 0; id = s.next[id]) {
                const Match* mt = &s.matches[id];
                int used = 0;
                for (int k = 0; k < mt->length && !used; k++) used = p->used2[mt->start + k];
                for (int k = 0; k < mt->match_length && !used; k++) used = p->used1[mt->match_start + k];
                if (used) continue;
                Path* np = path_copy(&arena, p);
                for (int k = 0; k < mt->length; k++) np->used2[mt->start + k] = 1;
                for (int k = 0; k < mt->match_length; k++) np->used1[mt->match_start + k] = 1;
                np->at[cur] = id;
                np->match_count++;
                np->matches1 = (int)(np->matches1 + mt->match_length * SEARCH_WEIGHTS[mt->module]);
                np->matches2 = (int)(np->matches2 + mt->length * SEARCH_WEIGHTS[mt->module]);
                np->all_matches1 += mt->match_length;
                np->all_matches2 += mt->length;
                if (np->last_match_end != -1 && mt->match_start != np->last_match_end) np->chunks++;
                np->idx = mt->start + mt->length;
                np->last_match_end = mt->match_start + mt->match_length;
                p->distance += abs(mt->start - mt->match_start);  // sic: the jar updates the parent
                list_push(&next, np);
            }
            if (p->last_match_end != -1) {
                p->chunks++;
                p->last_match_end = -1;
            }
            p->idx++;
            list_push(&next, p);
        }
        if (next.n == 0) list_push(&next, paths.items[0]);
    }
    if (next.n > tmp_cap) {
        tmp = realloc(tmp, next.n * sizeof *tmp);
        if (!tmp) abort();
    }
    stable_sort(next.items, next.n, tmp);
    const Path* best = next.items[0];
    // totals by module and word type
    memset(out, 0, sizeof *out);
    out->len1 = n1;
    out->len2 = n2;
    for (int i = 0; i < n1; i++) out->fw1 += l1->function[i];
    for (int j = 0; j < n2; j++) out->fw2 += l2->function[j];
    for (int j = 0; j < n2; j++) {
        if (best->at[j] < 0) continue;
        const Match* mt = &s.matches[best->at[j]];
        for (int k = 0; k < mt->match_length; k++) {
            if (l1->function[mt->match_start + k]) out->function1[mt->module]++;
            else out->content1[mt->module]++;
        }
        for (int k = 0; k < mt->length; k++) {
            if (l2->function[mt->start + k]) out->function2[mt->module]++;
            else out->content2[mt->module]++;
        }
    }
    // chunks as getCountAndChunks counts them on the final alignment
    int chunks = 0, idx = 0, last = -1;
    while (idx < n2) {
        if (best->at[idx] < 0) {
            if (last != -1) {
                chunks++;
                last = -1;
            }
            idx++;
        } else {
            const Match* mt = &s.matches[best->at[idx]];
            if (last != -1 && mt->match_start != last) chunks++;
            idx = mt->start + mt->length;
            last = mt->match_start + mt->match_length;
        }
    }
    if (last != -1) chunks++;
    out->chunks = chunks;
    for (size_t k = 0; k < arena.n; k++) free(arena.all[k]);
    free(arena.all);
    free(paths.items);
    free(next.items);
    free(tmp);
    free(s.matches);
    free(s.next);
    free(ints);
}

// ---------------------------------------------------------------- statistics
// The jar's sufficient statistics of a segment (MeteorStats), word counts as doubles.
typedef struct {
    double test_len, ref_len, test_fw, ref_fw;
    double test_content[4], ref_content[4], test_function[4], ref_function[4];
    double chunks, test_word_matches, ref_word_matches;
    double score;
} MeteorStats;

// MeteorScorer.computeMetrics
static void meteor_compute(MeteorStats* s) {
    double twm = 0, rwm = 0;
    double twl = (DELTA * (s->test_len - s->test_fw)) + ((1.0 - DELTA) * (s->test_fw));
    double rwl = (DELTA * (s->ref_len - s->ref_fw)) + ((1.0 - DELTA) * (s->ref_fw));
    for (int i = 0; i < N_MODULES; i++) twm += s->test_content[i] * SCORE_WEIGHTS[i] * DELTA;
    for (int i = 0; i < N_MODULES; i++) rwm += s->ref_content[i] * SCORE_WEIGHTS[i] * DELTA;
    for (int i = 0; i < N_MODULES; i++) twm += s->test_function[i] * SCORE_WEIGHTS[i] * (1.0 - DELTA);
    for (int i = 0; i < N_MODULES; i++) rwm += s->ref_function[i] * SCORE_WEIGHTS[i] * (1.0 - DELTA);
    double precision = twm / twl, recall = rwm / rwl;
    double fmean = 1.0 / (((1.0 - ALPHA) / precision) + (ALPHA / recall));
    double test_total = 0, ref_total = 0;
    for (int i = 0; i < N_MODULES; i++) {
        test_total += s->test_content[i];
        test_total += s->test_function[i];
        ref_total += s->ref_content[i];
        ref_total += s->ref_function[i];
    }
    double frag;
    if (test_total == s->test_len && ref_total == s->ref_len && s->chunks == 1) frag = 0;
    else frag = s->chunks / ((s->test_word_matches + s->ref_word_matches) / 2);
    double penalty = GAMMA * pow(frag, BETA);
    double score = fmean * (1.0 - penalty);
    s->score = isnan(score) ? 0 : (score > 0.0 ? score : 0.0);
}

static void stats_from_alignment(const AlignResult* a, MeteorStats* s) {
    memset(s, 0, sizeof *s);
    s->test_len = a->len1;
    s->ref_len = a->len2;
    s->test_fw = a->fw1;
    s->ref_fw = a->fw2;
    for (int i = 0; i < N_MODULES; i++) {
        s->test_content[i] = a->content1[i];
        s->ref_content[i] = a->content2[i];
        s->test_function[i] = a->function1[i];
        s->ref_function[i] = a->function2[i];
        s->test_word_matches += a->content1[i];
        s->test_word_matches += a->function1[i];
        s->ref_word_matches += a->content2[i];
        s->ref_word_matches += a->function2[i];
    }
    s->chunks = a->chunks;
    meteor_compute(s);
}

// MeteorStats.addStats: a segment that matches its reference perfectly (every word matched, one
// chunk) adds no chunk to the total, so the corpus fragmentation ignores it.
static void stats_add(MeteorStats* sum, const MeteorStats* s) {
    double test_total = 0, ref_total = 0;
    for (int i = 0; i < N_MODULES; i++) {
        test_total += s->test_content[i];
        test_total += s->test_function[i];
        ref_total += s->ref_content[i];
        ref_total += s->ref_function[i];
    }
    int perfect = test_total == s->test_len && ref_total == s->ref_len && s->chunks == 1;
    sum->test_len += s->test_len;
    sum->ref_len += s->ref_len;
    sum->test_fw += s->test_fw;
    sum->ref_fw += s->ref_fw;
    for (int i = 0; i < N_MODULES; i++) {
        sum->test_content[i] += s->test_content[i];
        sum->ref_content[i] += s->ref_content[i];
        sum->test_function[i] += s->test_function[i];
        sum->ref_function[i] += s->ref_function[i];
    }
    if (!perfect) sum->chunks += s->chunks;
    sum->test_word_matches += s->test_word_matches;
    sum->ref_word_matches += s->ref_word_matches;
}

// ---------------------------------------------------------------- corpus scoring
// Words of all normalised segments, with their per-word data computed once.
typedef struct {
    Vocab vocab;
    int32_t* hash;
    int32_t* stem_hash;
    int** syn;
    int* n_syn;
    unsigned char* function;
} WordTable;

static void split_words(const char* s, const char*** words, int* n, char** storage) {
    // StringTokenizer on " \t\n\r\f"
    char* copy = strdup(s);
    if (!copy) abort();
    int cap = 16, k = 0;
    const char** w = malloc((size_t)cap * sizeof *w);
    if (!w) abort();
    char* save = NULL;
    for (char* p = strtok_r(copy, " \t\n\r\f", &save); p; p = strtok_r(NULL, " \t\n\r\f", &save)) {
        if (k == cap) {
            cap *= 2;
            w = realloc(w, (size_t)cap * sizeof *w);
            if (!w) abort();
        }
        w[k++] = p;
    }
    *words = w;
    *n = k;
    *storage = copy;
}

typedef struct {
    const char** w;
    int n;
    int* ids;
    char* storage;
} Segment;

static void make_line(const WordTable* t, const Segment* seg, Line* l) {
    l->w = seg->w;
    l->n = seg->n;
    size_t n = (size_t)(seg->n ? seg->n : 1);
    l->hash = malloc(n * sizeof *l->hash);
    l->stem_hash = malloc(n * sizeof *l->stem_hash);
    l->syn = malloc(n * sizeof *l->syn);
    l->n_syn = malloc(n * sizeof *l->n_syn);
    l->para_id = malloc(n * sizeof *l->para_id);
    l->function = malloc(n);
    if (!l->hash || !l->stem_hash || !l->syn || !l->n_syn || !l->para_id || !l->function) abort();
    for (int i = 0; i < seg->n; i++) {
        int id = seg->ids[i];
        l->hash[i] = t->hash[id];
        l->stem_hash[i] = t->stem_hash[id];
        l->syn[i] = t->syn[id];
        l->n_syn[i] = t->n_syn[id];
        l->para_id[i] = id;
        l->function[i] = t->function[id];
    }
}

static void free_line(Line* l) {
    free(l->hash);
    free(l->stem_hash);
    free(l->syn);
    free(l->n_syn);
    free(l->para_id);
    free(l->function);
}

// Splits a reference on "|||" the way the jar splits the SCORE line, trimming each part.
static int split_refs(char* const* refs, int n_refs, char*** out) {
    int cap = n_refs + 4, k = 0;
    char** v = malloc((size_t)cap * sizeof *v);
    if (!v) abort();
    for (int r = 0; r < n_refs; r++) {
        const char* p = refs[r];
        for (;;) {
            const char* e = strstr(p, "|||");
            size_t len = e ? (size_t)(e - p) : strlen(p);
            while (len && (unsigned char)*p <= ' ') p++, len--;
            while (len && (unsigned char)p[len - 1] <= ' ') len--;
            if (k == cap) {
                cap *= 2;
                v = realloc(v, (size_t)cap * sizeof *v);
                if (!v) abort();
            }
            v[k] = malloc(len + 1);
            if (!v[k]) abort();
            memcpy(v[k], p, len);
            v[k][len] = 0;
            k++;
            if (!e) break;
            p = e + 3;
        }
    }
    *out = v;
    return k;
}

// The toolkit's hypothesis clean-up: "|||" removed, double spaces halved, then trimmed.
static char* clean_hypothesis(const char* h) {
    size_t n = strlen(h);
    char* a = malloc(n + 1);
    if (!a) abort();
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (!strncmp(h + i, "|||", 3)) { i += 3; continue; }
        a[k++] = h[i++];
    }
    a[k] = 0;
    char* b = malloc(k + 1);
    if (!b) abort();
    size_t j = 0;
    for (size_t i = 0; i < k;) {
        if (a[i] == ' ' && a[i + 1] == ' ') { b[j++] = ' '; i += 2; continue; }
        b[j++] = a[i++];
    }
    b[j] = 0;
    free(a);
    char* p = b;
    while (*p && (unsigned char)*p <= ' ') p++;
    size_t len = strlen(p);
    while (len && (unsigned char)p[len - 1] <= ' ') len--;
    char* out = malloc(len + 1);
    if (!out) abort();
    memcpy(out, p, len);
    out[len] = 0;
    free(b);
    return out;
}

double meteor_score(Meteor* m, const EvalImage* images, size_t n, double* per_image, int n_threads) {
    // normalise every segment, collect the words
    Segment* hyps = calloc(n ? n : 1, sizeof *hyps);
    Segment** refs = calloc(n ? n : 1, sizeof *refs);
    int* n_refs = calloc(n ? n : 1, sizeof *n_refs);
    if (!hyps || !refs || !n_refs) abort();
    #pragma omp parallel for schedule(dynamic, 16) num_threads(n_threads)
    for (size_t i = 0; i < n; i++) {
        char* h = clean_hypothesis(images[i].hyp);
        char* norm = meteor_normalize(m, h);
        split_words(norm, &hyps[i].w, &hyps[i].n, &hyps[i].storage);
        free(norm);
        free(h);
        char** parts;
        int k = split_refs(images[i].refs, images[i].n_refs, &parts);
        refs[i] = calloc((size_t)(k ? k : 1), sizeof **refs);
        if (!refs[i]) abort();
        n_refs[i] = k;
        for (int r = 0; r < k; r++) {
            norm = meteor_normalize(m, parts[r]);
            split_words(norm, &refs[i][r].w, &refs[i][r].n, &refs[i][r].storage);
            free(norm);
            free(parts[r]);
        }
        free(parts);
    }
    WordTable t;
    vocab_init(&t.vocab);
    for (size_t i = 0; i < n; i++) {
        Segment* segs[2] = {&hyps[i], NULL};
        for (int r = -1; r < n_refs[i]; r++) {
            Segment* sg = r < 0 ? segs[0] : &refs[i][r];
            sg->ids = malloc((size_t)(sg->n ? sg->n : 1) * sizeof *sg->ids);
            if (!sg->ids) abort();
            for (int k = 0; k < sg->n; k++) sg->ids[k] = (int)vocab_add(&t.vocab, sg->w[k], strlen(sg->w[k]));
        }
    }
    size_t nw = t.vocab.n_words;
    t.hash = malloc((nw ? nw : 1) * sizeof *t.hash);
    t.stem_hash = malloc((nw ? nw : 1) * sizeof *t.stem_hash);
    t.syn = malloc((nw ? nw : 1) * sizeof *t.syn);
    t.n_syn = malloc((nw ? nw : 1) * sizeof *t.n_syn);
    t.function = malloc(nw ? nw : 1);
    if (!t.hash || !t.stem_hash || !t.syn || !t.n_syn || !t.function) abort();
    #pragma omp parallel num_threads(n_threads)
    {
        struct sb_stemmer* stemmer = sb_stemmer_new("english", "UTF_8");
        if (!stemmer) abort();
        #pragma omp for schedule(dynamic, 64)
        for (size_t w = 0; w < nw; w++) {
            const char* word = t.vocab.words[w];
            t.hash[w] = java_hash(word);
            const sb_symbol* st = sb_stemmer_stem(stemmer, (const sb_symbol*)word, (int)strlen(word));
            char* stem = strndup((const char*)st, (size_t)sb_stemmer_length(stemmer));
            t.stem_hash[w] = java_hash(stem);
            free(stem);
            t.syn[w] = synonym_set(m, word, &t.n_syn[w]);
            t.function[w] = vocab_lookup(&m->function_words, word, strlen(word)) >= 0;
        }
        sb_stemmer_delete(stemmer);
    }
    if (m->para_path && !m->para_loaded) {
        char err[512];
        if (!meteor_load_paraphrases(m, &t.vocab, err, sizeof err)) fprintf(stderr, "tipcap-eval: warning: %s; METEOR runs without paraphrases\n", err);
    }
    m->para_used = m->para_loaded;
    MeteorStats* stats = malloc((n ? n : 1) * sizeof *stats);
    if (!stats) abort();
    #pragma omp parallel for schedule(dynamic, 8) num_threads(n_threads)
    for (size_t i = 0; i < n; i++) {
        Line lh;
        make_line(&t, &hyps[i], &lh);
        MeteorStats best;
        memset(&best, 0, sizeof best);
        best.score = -1;
        for (int r = 0; r < n_refs[i]; r++) {
            Line lr;
            make_line(&t, &refs[i][r], &lr);
            AlignResult a;
            align(m, &lh, &lr, &a);
            MeteorStats cur;
            stats_from_alignment(&a, &cur);
            if (cur.score > best.score) best = cur;
            free_line(&lr);
        }
        free_line(&lh);
        stats[i] = best;
    }
    MeteorStats sum;
    memset(&sum, 0, sizeof sum);
    for (size_t i = 0; i < n; i++) {
        stats_add(&sum, &stats[i]);
        if (per_image) per_image[i] = stats[i].score;
    }
    meteor_compute(&sum);
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < n_refs[i]; r++) {
            free(refs[i][r].w);
            free(refs[i][r].ids);
            free(refs[i][r].storage);
        }
        free(refs[i]);
        free(hyps[i].w);
        free(hyps[i].ids);
        free(hyps[i].storage);
    }
    for (size_t w = 0; w < nw; w++) free(t.syn[w]);
    free(t.hash);
    free(t.stem_hash);
    free(t.syn);
    free(t.n_syn);
    free(t.function);
    vocab_free(&t.vocab);
    free(hyps);
    free(refs);
    free(n_refs);
    free(stats);
    // the table was filtered for this corpus
    para_free(m);
    return sum.score;
}
