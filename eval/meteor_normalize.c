// edu.cmu.meteor.util.Normalizer.normalizeLine for English with punctuation kept (the jar's -norm),
// then String.toLowerCase. Each regular expression pass of the Java code is one function here
// with java.util.regex's semantics (left to right, matches do not overlap).
#include <stdlib.h>
#include <string.h>

#include "eval/meteor_internal.h"

typedef struct {
    uint32_t* c;
    size_t n, cap;
} U32;

static void put(U32* s, uint32_t c) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->c = realloc(s->c, s->cap * sizeof *s->c);
        if (!s->c) abort();
    }
    s->c[s->n++] = c;
}
static void put_ascii(U32* s, const char* a) {
    while (*a) put(s, (unsigned char)*a++);
}

static const uint32_t MULTI_DOT = 0xE000;  // a dot of a "..." run, protected as the jar's DOTMULTI escape

// The normaliser's letter ranges: Western European and Cyrillic.
static int is_alpha(uint32_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == 0x160 || c == 0x17D || c == 0x161 || c == 0x17E ||
           c == 0x178 || (c >= 0xC0 && c <= 0xD6) || (c >= 0xD8 && c <= 0xF6) || (c >= 0xF8 && c <= 0x17E) ||
           (c >= 0x400 && c <= 0x4FF) || (c >= 0x500 && c <= 0x527) || (c >= 0xA640 && c <= 0xA66E) ||
           (c >= 0xA67E && c <= 0xA697) || (c >= 0x1D00 && c <= 0x1D7F);
}
static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_alnum(uint32_t c) { return is_alpha(c) || is_digit(c); }
static int is_jspace(uint32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == 0x0B || c == '\f' || c == '\r'; }

uint32_t java_lower(uint32_t c) { return unicode_lower(c); }

// Applies "(A)[x](B)" -> "$1<mid>$2" over the whole string, non-overlapping.
typedef int (*Class)(uint32_t);
static U32 replace3(U32 in, Class a, uint32_t x, Class b, const char* mid) {
    U32 out = {NULL, 0, 0};
    size_t i = 0;
    while (i < in.n) {
        if (i + 2 < in.n && a(in.c[i]) && in.c[i + 1] == x && b(in.c[i + 2])) {
            put(&out, in.c[i]);
            put_ascii(&out, mid);
            put(&out, in.c[i + 2]);
            i += 3;
        } else {
            put(&out, in.c[i++]);
        }
    }
    free(in.c);
    return out;
}

static int not_digit(uint32_t c) { return !is_digit(c); }
static int not_alpha(uint32_t c) { return !is_alpha(c); }
static int not_alpha_digit(uint32_t c) { return !is_alpha(c) && !is_digit(c); }
static int alnum_or_dot(uint32_t c) { return is_alnum(c) || c == '.'; }
static int is_s(uint32_t c) { return c == 's'; }

static int is_white(uint32_t c) {
    return c == ' ' || c == 0xA0 || c == 0x1680 || c == 0x180E || (c >= 0x2000 && c <= 0x200A) || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static void encode(U32* s, char** out) {
    size_t cap = s->n * 4 + 1, k = 0;
    char* o = malloc(cap);
    if (!o) abort();
    for (size_t i = 0; i < s->n; i++) {
        uint32_t c = s->c[i];
        if (c < 0x80) o[k++] = (char)c;
        else if (c < 0x800) { o[k++] = (char)(0xC0 | (c >> 6)); o[k++] = (char)(0x80 | (c & 0x3F)); }
        else if (c < 0x10000) { o[k++] = (char)(0xE0 | (c >> 12)); o[k++] = (char)(0x80 | ((c >> 6) & 0x3F)); o[k++] = (char)(0x80 | (c & 0x3F)); }
        else { o[k++] = (char)(0xF0 | (c >> 18)); o[k++] = (char)(0x80 | ((c >> 12) & 0x3F)); o[k++] = (char)(0x80 | ((c >> 6) & 0x3F)); o[k++] = (char)(0x80 | (c & 0x3F)); }
    }
    o[k] = 0;
    *out = o;
}

char* meteor_normalize(const Meteor* m, const char* line) {
    U32 s = {NULL, 0, 0};
    put(&s, ' ');
    const unsigned char* p = (const unsigned char*)line;
    while (*p) {
        uint32_t c;
        if (*p < 0x80) c = *p++;
        else if ((*p & 0xE0) == 0xC0 && p[1]) { c = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); p += 2; }
        else if ((*p & 0xF0) == 0xE0 && p[1] && p[2]) { c = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F); p += 3; }
        else if ((*p & 0xF8) == 0xF0 && p[1] && p[2] && p[3]) { c = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F); p += 4; }
        else { c = 0xFFFD; p++; }
        put(&s, c);
    }
    put(&s, ' ');
    // separate every character that is not alphanumeric, space or . ' ` , - ‘ ’
    U32 t = {NULL, 0, 0};
    for (size_t i = 0; i < s.n; i++) {
        uint32_t c = s.c[i];
        if (is_alnum(c) || is_jspace(c) || c == '.' || c == '\'' || c == '`' || c == ',' || c == '-' || c == 0x2018 || c == 0x2019) put(&t, c);
        else { put(&t, ' '); put(&t, c); put(&t, ' '); }
    }
    free(s.c);
    // runs of two or more dots stand apart and are protected from the prefix rule
    s = (U32){NULL, 0, 0};
    for (size_t i = 0; i < t.n;) {
        if (t.c[i] == '.' && i + 1 < t.n && t.c[i + 1] == '.') {
            size_t k = i;
            while (k < t.n && t.c[k] == '.') k++;
            put(&s, ' ');
            for (size_t j = i; j < k; j++) put(&s, MULTI_DOT);
            if (k < t.n) put(&s, ' ');
            i = k;
        } else {
            put(&s, t.c[i++]);
        }
    }
    free(t.c);
    // commas, except between digits
    s = replace3(s, not_digit, ',', not_digit, " , ");
    s = replace3(s, is_digit, ',', not_digit, " , ");
    s = replace3(s, not_digit, ',', is_digit, " , ");
    // quotes: ` ‘ ’ -> ', then “ ” '' -> "
    for (size_t i = 0; i < s.n; i++)
        if (s.c[i] == '`' || s.c[i] == 0x2018 || s.c[i] == 0x2019) s.c[i] = '\'';
    t = (U32){NULL, 0, 0};
    for (size_t i = 0; i < s.n;) {
        if (s.c[i] == 0x201C || s.c[i] == 0x201D) { put_ascii(&t, " \" "); i++; }
        else if (s.c[i] == '\'' && i + 1 < s.n && s.c[i + 1] == '\'') { put_ascii(&t, " \" "); i += 2; }
        else put(&t, s.c[i++]);
    }
    free(s.c);
    // dashes: – -> -, then -- -> -
    for (size_t i = 0; i < t.n; i++)
        if (t.c[i] == 0x2013) t.c[i] = '-';
    s = (U32){NULL, 0, 0};
    for (size_t i = 0; i < t.n;) {
        if (t.c[i] == '-' && i + 1 < t.n && t.c[i + 1] == '-') { put(&s, '-'); i += 2; }
        else put(&s, t.c[i++]);
    }
    free(t.c);
    // a dash between alphanumerics (or after a dot) becomes a space
    s = replace3(s, alnum_or_dot, '-', is_alnum, " ");
    // English contractions split to the right
    s = replace3(s, not_alpha, '\'', not_alpha, " ' ");
    s = replace3(s, not_alpha_digit, '\'', is_alpha, " ' ");
    s = replace3(s, is_alpha, '\'', not_alpha, " ' ");
    s = replace3(s, is_alpha, '\'', is_alpha, " '");
    s = replace3(s, is_digit, '\'', is_s, " '");
    // words, with a final period split off unless a non-breaking prefix keeps it
    size_t n_words = 0;
    size_t* ws = malloc((s.n + 1) * sizeof *ws);
    size_t* we = malloc((s.n + 1) * sizeof *we);
    if (!ws || !we) abort();
    for (size_t i = 0; i < s.n;) {
        uint32_t c = s.c[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') { i++; continue; }
        size_t k = i;
        while (k < s.n && !(s.c[k] == ' ' || s.c[k] == '\t' || s.c[k] == '\n' || s.c[k] == '\r' || s.c[k] == '\f')) k++;
        ws[n_words] = i;
        we[n_words] = k;
        n_words++;
        i = k;
    }
    t = (U32){NULL, 0, 0};
    for (size_t w = 0; w < n_words; w++) {
        size_t a = ws[w], b = we[w], len = b - a;
        if (len > 1 && s.c[b - 1] == '.') {
            size_t pre_len = len - 1;
            int pre_has_dot = 0, pre_has_alpha = 0;
            for (size_t k = a; k < b - 1; k++) {
                if (s.c[k] == '.') pre_has_dot = 1;
                if (is_alpha(s.c[k])) pre_has_alpha = 1;
            }
            // the prefix as UTF-8 for the list lookup
            U32 pre = {s.c + a, pre_len, pre_len};
            char* pre8;
            encode(&pre, &pre8);
            long id = vocab_lookup(&m->nbp, pre8, strlen(pre8));
            free(pre8);
            int any = id >= 0 && !m->nbp_numeric_only[id];
            int numeric = id >= 0 && m->nbp_numeric_only[id];
            int next_lower = w + 1 < n_words && s.c[ws[w + 1]] >= 'a' && s.c[ws[w + 1]] <= 'z';
            int next_digit = w + 1 < n_words && is_digit(s.c[ws[w + 1]]);
            if (pre_has_dot && pre_has_alpha) {
                for (size_t k = a; k < b; k++)
                    if (s.c[k] != '.') put(&t, s.c[k]);
            } else if (any || next_lower || (numeric && next_digit)) {
                for (size_t k = a; k < b; k++) put(&t, s.c[k]);
            } else {
                for (size_t k = a; k < b - 1; k++) put(&t, s.c[k]);
                put_ascii(&t, " .");
            }
        } else {
            for (size_t k = a; k < b; k++) put(&t, s.c[k]);
        }
        put(&t, ' ');
    }
    free(ws);
    free(we);
    free(s.c);
    // unescape dots, squeeze Unicode spaces, trim, lower-case
    s = (U32){NULL, 0, 0};
    for (size_t i = 0; i < t.n;) {
        if (is_white(t.c[i])) {
            put(&s, ' ');
            while (i < t.n && is_white(t.c[i])) i++;
            continue;
        }
        put(&s, t.c[i] == MULTI_DOT ? '.' : java_lower(t.c[i]));
        i++;
    }
    free(t.c);
    size_t a = 0, b = s.n;
    while (a < b && s.c[a] <= ' ') a++;
    while (b > a && s.c[b - 1] <= ' ') b--;
    U32 trimmed = {s.c ? s.c + a : NULL, b - a, b - a};
    char* out;
    encode(&trimmed, &out);
    free(s.c);
    return out;
}
