// GPT-2 byte-level BPE. See tokenizer.h.
//
// Encoding: UTF-8 validation, pre-tokenisation by a hand-written matcher of GPT-2's pattern
// (same alternatives in the same order, same greediness and backtracking), then per piece a
// cache lookup or BPE over token ids: the lowest-ranked adjacent pair is merged everywhere,
// left to right, until no pair has a rank (exactly the loop of GPT-2's encoder.py).
#include "data/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/paths.h"
#include "data/unicode_tables.h"

// ---------------------------------------------------------------- hash tables

static uint64_t hash_bytes(const char* s, size_t n) {  // FNV-1a, then a final mix
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h ^= h >> 29;
    return h * 0xBF58476D1CE4E5B9ull;
}

static uint64_t hash_u64(uint64_t x) {  // splitmix64 finaliser
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Token bytes -> id (read-only after loading).
typedef struct {
    int32_t* slots;  // [mask + 1] token id or -1
    size_t mask;
} TokenMap;

// (left id, right id) -> merge rank and merged id.
typedef struct {
    uint64_t key;    // left << 32 | right, UINT64_MAX when empty
    int32_t rank;
    int32_t merged;
} MergeSlot;

// Pre-tokenised piece -> its ids (the cache). Keys and ids live in growing arenas.
typedef struct {
    size_t key_off;   // into key_arena
    uint32_t key_len;
    uint32_t n_ids;
    size_t ids_off;   // into ids_arena
    int used;
} CacheSlot;

#define CACHE_MAX_ENTRIES (1u << 20)  // past this the cache is cleared (bounded memory on any input)
#define CACHE_MAX_PIECE 256           // longer pieces are not cached

struct Tokenizer {
    int vocab_size;
    char** token_bytes;      // [vocab_size] raw bytes of each token
    int* token_len;          // [vocab_size]
    int32_t byte_token[256]; // id of the single-byte token of each byte
    TokenMap tokens;
    MergeSlot* merges;       // [merge_mask + 1]
    size_t merge_mask;
    // cache
    CacheSlot* cache;
    size_t cache_mask, cache_count;
    char* key_arena;
    size_t key_len, key_cap;
    int32_t* ids_arena;
    size_t ids_len, ids_cap;
    // scratch for BPE
    int32_t* work;
    size_t work_cap;
};

static void set_err(char* err, size_t n, const char* fmt, ...) {
    if (!err || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

static int32_t token_map_get(const Tokenizer* t, const char* s, size_t n) {
    size_t i = hash_bytes(s, n) & t->tokens.mask;
    for (;;) {
        int32_t id = t->tokens.slots[i];
        if (id < 0) return -1;
        if ((size_t)t->token_len[id] == n && memcmp(t->token_bytes[id], s, n) == 0) return id;
        i = (i + 1) & t->tokens.mask;
    }
}

static void token_map_put(Tokenizer* t, int32_t id) {
    size_t i = hash_bytes(t->token_bytes[id], (size_t)t->token_len[id]) & t->tokens.mask;
    while (t->tokens.slots[i] >= 0) i = (i + 1) & t->tokens.mask;
    t->tokens.slots[i] = id;
}

static const MergeSlot* merge_get(const Tokenizer* t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = hash_u64(key) & t->merge_mask;
    for (;;) {
        const MergeSlot* s = &t->merges[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
        i = (i + 1) & t->merge_mask;
    }
}

// ---------------------------------------------------------------- UTF-8 and character classes

// Decodes the (valid) UTF-8 character at s; returns its byte length.
static inline int utf8_next(const unsigned char* s, uint32_t* cp) {
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = (c & 0x1F) << 6 | (s[1] & 0x3F); return 2; }
    if (c < 0xF0) { *cp = (c & 0x0F) << 12 | (s[1] & 0x3F) << 6 | (s[2] & 0x3F); return 3; }
    *cp = (c & 0x07) << 18 | (s[1] & 0x3F) << 12 | (s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return 4;
}

static int in_ranges(const UnicodeRange* r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid - 1;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

enum { CLASS_OTHER = 0, CLASS_LETTER = 1, CLASS_NUMBER = 2, CLASS_SPACE = 3 };

static unsigned char ascii_class[128];
static void init_ascii_class(void) {
    for (int c = 0; c < 128; c++) {
        uint32_t cp = (uint32_t)c;
        ascii_class[c] = in_ranges(unicode_letters, unicode_letters_count, cp) ? CLASS_LETTER
                       : in_ranges(unicode_numbers, unicode_numbers_count, cp) ? CLASS_NUMBER
                       : in_ranges(unicode_spaces, unicode_spaces_count, cp) ? CLASS_SPACE
                       : CLASS_OTHER;
    }
}

// Class and byte length of the character at s (s < end, valid UTF-8).
static inline int char_class(const unsigned char* s, int* nbytes) {
    if (s[0] < 0x80) { *nbytes = 1; return ascii_class[s[0]]; }
    uint32_t cp;
    *nbytes = utf8_next(s, &cp);
    if (in_ranges(unicode_letters, unicode_letters_count, cp)) return CLASS_LETTER;
    if (in_ranges(unicode_numbers, unicode_numbers_count, cp)) return CLASS_NUMBER;
    if (in_ranges(unicode_spaces, unicode_spaces_count, cp)) return CLASS_SPACE;
    return CLASS_OTHER;
}

// Length in bytes of the piece GPT-2's pattern matches at s (s < end).
static size_t next_piece(const unsigned char* s, const unsigned char* end) {
    size_t avail = (size_t)(end - s);
    // 's|'t|'re|'ve|'m|'ll|'d
    if (s[0] == '\'' && avail >= 2) {
        unsigned char c1 = s[1];
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
        if (avail >= 3 && ((c1 == 'r' && s[2] == 'e') || (c1 == 'v' && s[2] == 'e') || (c1 == 'l' && s[2] == 'l')))
            return 3;
    }
    int n0;
    int c0 = char_class(s, &n0);
    // ` ?X+` for X = letters, numbers, other (not space, letter or number)
    const unsigned char* p = s;
    int cls = c0, n = n0;
    if (s[0] == ' ' && avail > 1) {
        int n1;
        int c1 = char_class(s + 1, &n1);
        if (c1 != CLASS_SPACE) { p = s + 1; cls = c1; n = n1; }
    }
    if (cls != CLASS_SPACE) {
        p += n;
        while (p < end) {
            int m;
            if (char_class(p, &m) != cls) break;
            p += m;
        }
        return (size_t)(p - s);
    }
    // \s+(?!\S) | \s+ : a whitespace run; if a non-space follows, leave its last character to
    // join that non-space (unless the run is a single character).
    p = s + n0;
    const unsigned char* last = s;
    while (p < end) {
        int m;
        if (char_class(p, &m) != CLASS_SPACE) break;
        last = p;
        p += m;
    }
    if (p < end && last > s) return (size_t)(last - s);
    return (size_t)(p - s);
}

// ---------------------------------------------------------------- loading

// GPT-2's bytes_to_unicode(): printable bytes map to themselves, the rest to 256 + k.
static void byte_to_codepoint(uint32_t table[256]) {
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        table[b] = printable ? (uint32_t)b : (uint32_t)(256 + k++);
    }
}

// Converts a byte-encoded token string (UTF-8 of the code points above) to raw bytes in out.
// Returns the byte count, or -1 if a character is not one of the 256.
static int unmap_token(const char* s, const int16_t* cp_to_byte, char* out, size_t cap) {
    size_t len = strlen(s);
    if (utf8_first_invalid(s, len) >= 0) return -1;
    const unsigned char* u = (const unsigned char*)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        i += (size_t)utf8_next(u + i, &cp);
        if (cp >= 512 || cp_to_byte[cp] < 0 || o >= cap) return -1;
        out[o++] = (char)cp_to_byte[cp];
    }
    return (int)o;
}

static size_t pow2_at_least(size_t n) {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

void tokenizer_free(Tokenizer* t) {
    if (!t) return;
    if (t->token_bytes)
        for (int i = 0; i < t->vocab_size; i++) free(t->token_bytes[i]);
    free(t->token_bytes);
    free(t->token_len);
    free(t->tokens.slots);
    free(t->merges);
    free(t->cache);
    free(t->key_arena);
    free(t->ids_arena);
    free(t->work);
    free(t);
}

static void cache_reset(Tokenizer* t) {
    memset(t->cache, 0, (t->cache_mask + 1) * sizeof *t->cache);
    t->cache_count = 0;
    t->key_len = 0;
    t->ids_len = 0;
}

Tokenizer* tokenizer_load(const char* encoder_json, const char* vocab_bpe, char* err, size_t err_size) {
    static int class_ready;
    if (!class_ready) {
        init_ascii_class();
        class_ready = 1;
    }
    uint32_t b2c[256];
    byte_to_codepoint(b2c);
    int16_t c2b[512];
    for (int i = 0; i < 512; i++) c2b[i] = -1;
    for (int b = 0; b < 256; b++) c2b[b2c[b]] = (int16_t)b;

    FILE* f = fopen(encoder_json, "rb");
    if (!f) {
        set_err(err, err_size, "%s: cannot open the GPT-2 encoder", encoder_json);
        return NULL;
    }
    fclose(f);
    size_t len;
    char* text = readFileCheck(encoder_json, &len);
    cJSON* root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root)) {
        set_err(err, err_size, "%s: not a JSON object {\"token\": id}", encoder_json);
        cJSON_Delete(root);
        return NULL;
    }
    Tokenizer* t = callocCheck(1, sizeof *t);
    int n = cJSON_GetArraySize(root);
    t->vocab_size = n;
    t->token_bytes = callocCheck((size_t)n, sizeof(char*));
    t->token_len = callocCheck((size_t)n, sizeof(int));
    char buf[1024];
    for (cJSON* item = root->child; item; item = item->next) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble >= n ||
            item->valuedouble != (int)item->valuedouble) {
            set_err(err, err_size, "%s: key \"%s\": id must be an integer in [0, %d)", encoder_json, item->string, n);
            goto fail;
        }
        int id = item->valueint;
        if (t->token_bytes[id]) {
            set_err(err, err_size, "%s: key \"%s\": id %d is used twice", encoder_json, item->string, id);
            goto fail;
        }
        int blen = unmap_token(item->string, c2b, buf, sizeof buf);
        if (blen <= 0) {
            set_err(err, err_size, "%s: key \"%s\" is not a byte-level BPE token", encoder_json, item->string);
            goto fail;
        }
        t->token_bytes[id] = mallocCheck((size_t)blen);
        memcpy(t->token_bytes[id], buf, (size_t)blen);
        t->token_len[id] = blen;
    }
    cJSON_Delete(root);
    root = NULL;
    t->tokens.mask = pow2_at_least((size_t)n * 2) - 1;
    t->tokens.slots = mallocCheck((t->tokens.mask + 1) * sizeof(int32_t));
    memset(t->tokens.slots, 0xFF, (t->tokens.mask + 1) * sizeof(int32_t));
    for (int id = 0; id < n; id++) token_map_put(t, id);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_token[b] = token_map_get(t, &c, 1);
        if (t->byte_token[b] < 0) {
            set_err(err, err_size, "%s: no token for byte 0x%02X", encoder_json, b);
            goto fail;
        }
    }

    f = fopen(vocab_bpe, "rb");
    if (!f) {
        set_err(err, err_size, "%s: cannot open the GPT-2 merges", vocab_bpe);
        goto fail;
    }
    t->merge_mask = pow2_at_least((size_t)n * 4) - 1;
    t->merges = mallocCheck((t->merge_mask + 1) * sizeof(MergeSlot));
    for (size_t i = 0; i <= t->merge_mask; i++) t->merges[i].key = UINT64_MAX;
    char line[2048];
    int line_no = 0, rank = 0;
    while (fgets(line, sizeof line, f)) {
        line_no++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = '\0';
        if (line_no == 1 && !strncmp(line, "#version", 8)) continue;
        if (l == 0) continue;
        char* space = strchr(line, ' ');
        if (!space || strchr(space + 1, ' ')) {
            set_err(err, err_size, "%s:%d: expected two tokens separated by one space", vocab_bpe, line_no);
            fclose(f);
            goto fail;
        }
        *space = '\0';
        char left[512], right[512], joined[1024];
        int ll = unmap_token(line, c2b, left, sizeof left), rl = unmap_token(space + 1, c2b, right, sizeof right);
        int32_t a = ll > 0 ? token_map_get(t, left, (size_t)ll) : -1;
        int32_t b = rl > 0 ? token_map_get(t, right, (size_t)rl) : -1;
        int32_t m = -1;
        if (a >= 0 && b >= 0) {
            memcpy(joined, left, (size_t)ll);
            memcpy(joined + ll, right, (size_t)rl);
            m = token_map_get(t, joined, (size_t)(ll + rl));
        }
        if (m < 0) {
            set_err(err, err_size, "%s:%d: merge \"%s %s\" refers to a token missing from %s", vocab_bpe, line_no,
                    line, space + 1, encoder_json);
            fclose(f);
            goto fail;
        }
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
        size_t i = hash_u64(key) & t->merge_mask;
        while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key) i = (i + 1) & t->merge_mask;
        if (t->merges[i].key == UINT64_MAX) {  // a repeated pair keeps its first (lowest) rank
            t->merges[i].key = key;
            t->merges[i].rank = rank;
            t->merges[i].merged = m;
        }
        rank++;
        if ((size_t)rank * 2 > t->merge_mask) {
            set_err(err, err_size, "%s: more merges than expected for %d tokens", vocab_bpe, n);
            fclose(f);
            goto fail;
        }
    }
    fclose(f);
    if (rank == 0) {
        set_err(err, err_size, "%s: no merges", vocab_bpe);
        goto fail;
    }
    t->cache_mask = pow2_at_least(CACHE_MAX_ENTRIES * 2) - 1;
    t->cache = mallocCheck((t->cache_mask + 1) * sizeof(CacheSlot));
    cache_reset(t);
    return t;
fail:
    cJSON_Delete(root);
    tokenizer_free(t);
    return NULL;
}

Tokenizer* tokenizer_load_default(void) {
    char* enc = tipcap_data_path("gpt2/encoder.json");
    char* bpe = tipcap_data_path("gpt2/vocab.bpe");
    char err[1024];
    Tokenizer* t = tokenizer_load(enc, bpe, err, sizeof err);
    if (!t) FATAL("%s (set TIPCAP_DATA to the folder holding gpt2/)", err);
    free(enc);
    free(bpe);
    return t;
}

int tokenizer_vocab_size(const Tokenizer* t) { return t->vocab_size; }

const char* tokenizer_token_bytes(const Tokenizer* t, int32_t id, int* len) {
    if (id < 0 || id >= t->vocab_size) {
        *len = 0;
        return NULL;
    }
    *len = t->token_len[id];
    return t->token_bytes[id];
}

// ---------------------------------------------------------------- encoding

// BPE of one piece into t->work; returns the number of ids.
static size_t bpe_piece(Tokenizer* t, const unsigned char* s, size_t n) {
    if (t->work_cap < n) {
        t->work_cap = n * 2;
        t->work = reallocCheck(t->work, t->work_cap * sizeof(int32_t));
    }
    int32_t* w = t->work;
    for (size_t i = 0; i < n; i++) w[i] = t->byte_token[s[i]];
    size_t len = n;
    while (len > 1) {
        int32_t best_rank = INT32_MAX, first = -1, second = -1, merged = -1;
        for (size_t i = 0; i + 1 < len; i++) {
            const MergeSlot* m = merge_get(t, w[i], w[i + 1]);
            if (m && m->rank < best_rank) {
                best_rank = m->rank;
                first = w[i];
                second = w[i + 1];
                merged = m->merged;
            }
        }
        if (merged < 0) break;
        size_t o = 0;
        for (size_t i = 0; i < len;) {
            if (i + 1 < len && w[i] == first && w[i + 1] == second) {
                w[o++] = merged;
                i += 2;
            } else {
                w[o++] = w[i++];
            }
        }
        len = o;
    }
    return len;
}

static void append_ids(int32_t** ids, size_t* cap, size_t* count, const int32_t* src, size_t n) {
    if (*count + n > *cap) {
        size_t c = *cap ? *cap : 64;
        while (c < *count + n) c *= 2;
        *ids = reallocCheck(*ids, c * sizeof(int32_t));
        *cap = c;
    }
    memcpy(*ids + *count, src, n * sizeof(int32_t));
    *count += n;
}

static void encode_piece(Tokenizer* t, const unsigned char* s, size_t n, int32_t** ids, size_t* cap, size_t* count) {
    if (n > CACHE_MAX_PIECE) {
        size_t m = bpe_piece(t, s, n);
        append_ids(ids, cap, count, t->work, m);
        return;
    }
    uint64_t h = hash_bytes((const char*)s, n);
    size_t i = h & t->cache_mask;
    for (;;) {
        CacheSlot* c = &t->cache[i];
        if (!c->used) break;
        if (c->key_len == n && memcmp(t->key_arena + c->key_off, s, n) == 0) {
            append_ids(ids, cap, count, t->ids_arena + c->ids_off, c->n_ids);
            return;
        }
        i = (i + 1) & t->cache_mask;
    }
    size_t m = bpe_piece(t, s, n);
    append_ids(ids, cap, count, t->work, m);
    if (t->cache_count >= CACHE_MAX_ENTRIES) {
        cache_reset(t);
        i = h & t->cache_mask;
    }
    if (t->key_len + n > t->key_cap) {
        t->key_cap = (t->key_len + n) * 2;
        t->key_arena = reallocCheck(t->key_arena, t->key_cap);
    }
    if (t->ids_len + m > t->ids_cap) {
        t->ids_cap = (t->ids_len + m) * 2;
        t->ids_arena = reallocCheck(t->ids_arena, t->ids_cap * sizeof(int32_t));
    }
    CacheSlot* c = &t->cache[i];
    c->used = 1;
    c->key_off = t->key_len;
    c->key_len = (uint32_t)n;
    c->ids_off = t->ids_len;
    c->n_ids = (uint32_t)m;
    memcpy(t->key_arena + t->key_len, s, n);
    t->key_len += n;
    memcpy(t->ids_arena + t->ids_len, t->work, m * sizeof(int32_t));
    t->ids_len += m;
    t->cache_count++;
}

long tokenizer_encode(Tokenizer* t, const char* text, size_t len, int32_t** ids, size_t* cap, char* err,
                      size_t err_size) {
    long bad = utf8_first_invalid(text, len);
    if (bad >= 0) {
        set_err(err, err_size, "invalid UTF-8 at byte %ld", bad);
        return -1;
    }
    const unsigned char* s = (const unsigned char*)text;
    const unsigned char* end = s + len;
    size_t count = 0;
    while (s < end) {
        size_t n = next_piece(s, end);
        encode_piece(t, s, n, ids, cap, &count);
        s += n;
    }
    return (long)count;
}

// ---------------------------------------------------------------- decoding

// Length of the maximal subpart of an ill-formed sequence at s (Unicode 3.9, as Python's
// decode(errors="replace") counts them): the longest prefix of a well-formed sequence, or 1.
static size_t ill_formed_length(const unsigned char* s, size_t avail) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;  // range of the second byte
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    size_t k = 1;
    if (k < need && k < avail && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k < need && k < avail && (s[k] & 0xC0) == 0x80) k++;
    }
    return k;
}

char* tokenizer_decode(const Tokenizer* t, const int32_t* ids, size_t n, size_t* len_out, char* err,
                       size_t err_size) {
    size_t raw_len = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->vocab_size) {
            set_err(err, err_size, "token %zu: id %d is outside the vocabulary [0, %d)", i, ids[i], t->vocab_size);
            return NULL;
        }
        raw_len += (size_t)t->token_len[ids[i]];
    }
    char* raw = mallocCheck(raw_len + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(raw + o, t->token_bytes[ids[i]], (size_t)t->token_len[ids[i]]);
        o += (size_t)t->token_len[ids[i]];
    }
    // Replace each maximal invalid subsequence by U+FFFD (3 bytes, so at most 3x the input).
    char* out = mallocCheck(raw_len * 3 + 1);
    size_t i = 0, w = 0;
    while (i < raw_len) {
        long bad = utf8_first_invalid(raw + i, raw_len - i);
        size_t good = bad < 0 ? raw_len - i : (size_t)bad;
        memcpy(out + w, raw + i, good);
        w += good;
        i += good;
        if (bad < 0) break;
        memcpy(out + w, "\xEF\xBF\xBD", 3);  // one U+FFFD per maximal ill-formed subpart
        w += 3;
        i += ill_formed_length((const unsigned char*)raw + i, raw_len - i);
    }
    out[w] = '\0';
    free(raw);
    if (len_out) *len_out = w;
    return out;
}
