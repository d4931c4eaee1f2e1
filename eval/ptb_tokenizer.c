// The Stanford PTBTokenizer (CoreNLP 3.4.1, the jar pycocoevalcap runs) re-implemented as a
// longest-match scanner over Unicode code points, then the toolkit's punctuation filter.
//
// The JFlex lexer picks the longest match over all rules (trailing context counts towards the
// length), ties going to the earlier rule; each rule below is a function returning the total
// match length and the token length. The rules are those of PTBLexer.flex as the 3.4.1 jar
// behaves (checked by scripts/check-eval-oracle against the jar on every COCO and Flickr30k
// caption): string literals are caseless, character classes are not.
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/unicode_tables.h"

typedef struct {
    const uint32_t* c;  // code points of the whole text
    size_t n;
} Text;

static uint32_t at(const Text* t, size_t i) { return i < t->n ? t->c[i] : 0; }

// ---------------------------------------------------------------- character classes
static int is_ascii_alpha(uint32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_upper(uint32_t c) { return c >= 'A' && c <= 'Z'; }
static int is_ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }

static int in_ranges(uint32_t c, const uint32_t (*r)[2], size_t n) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0]) hi = mid;
        else if (c > r[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}
// [:letter:] and [:digit:] (Java's isLetter / isDigit), NKo digits counted as digits too
static int is_letter(uint32_t c) {
    if (c < 0x80) return is_ascii_alpha(c);
    return in_ranges(c, UNICODE_LETTERS, sizeof UNICODE_LETTERS / sizeof *UNICODE_LETTERS);
}
static int is_digit(uint32_t c) {
    if (c < 0x80) return is_ascii_digit(c);
    return (c >= 0x7C0 && c <= 0x7C9) || in_ranges(c, UNICODE_DIGITS, sizeof UNICODE_DIGITS / sizeof *UNICODE_DIGITS);
}
// Characters WORD takes besides letters: the soft hyphen and the lexer's list of combining marks
// and modifiers (Latin, Greek, Cyrillic, Hebrew, Arabic, Syriac, Indic, Thai, Lao).
static const uint32_t WORD_EXTRA[][2] = {
    {0xAD, 0xAD}, {0x237, 0x24F}, {0x2C2, 0x2C5}, {0x2D2, 0x2DF}, {0x2E5, 0x2FF}, {0x300, 0x36F}, {0x370, 0x37D},
    {0x384, 0x385}, {0x3CF, 0x3CF}, {0x3F6, 0x3F6}, {0x3FC, 0x3FF}, {0x483, 0x487}, {0x4CF, 0x4CF}, {0x4F6, 0x4FF},
    {0x510, 0x525}, {0x55A, 0x55F}, {0x591, 0x5BD}, {0x5BF, 0x5BF}, {0x5C1, 0x5C2}, {0x5C4, 0x5C5}, {0x5C7, 0x5C7},
    {0x615, 0x61A}, {0x63B, 0x63F}, {0x64B, 0x65E}, {0x670, 0x670}, {0x6D6, 0x6EF}, {0x6FA, 0x6FF}, {0x70F, 0x70F},
    {0x711, 0x711}, {0x730, 0x74F}, {0x750, 0x77F}, {0x7A6, 0x7B1}, {0x7CA, 0x7F5}, {0x7FA, 0x7FA}, {0x900, 0x903},
    {0x93C, 0x93C}, {0x93E, 0x94E}, {0x951, 0x955}, {0x962, 0x963}, {0x981, 0x983}, {0x9BC, 0x9C4}, {0x9C7, 0x9C8},
    {0x9CB, 0x9CD}, {0x9D7, 0x9D7}, {0x9E2, 0x9E3}, {0xA01, 0xA03}, {0xA3C, 0xA3C}, {0xA3E, 0xA4F}, {0xA81, 0xA83},
    {0xABC, 0xACF}, {0xB82, 0xB82}, {0xBBE, 0xBC2}, {0xBC6, 0xBC8}, {0xBCA, 0xBCD}, {0xC01, 0xC03}, {0xC3E, 0xC56},
    {0xD3E, 0xD44}, {0xD46, 0xD48}, {0xE30, 0xE3A}, {0xE47, 0xE4E}, {0xEB1, 0xEBC}, {0xEC8, 0xECD}};
static int is_word_extra(uint32_t c) { return c >= 0xAD && in_ranges(c, WORD_EXTRA, sizeof WORD_EXTRA / sizeof *WORD_EXTRA); }
static int is_word_char(uint32_t c) { return is_letter(c) || is_word_extra(c); }
static int is_alnum(uint32_t c) { return is_letter(c) || is_digit(c); }
static int is_apos(uint32_t c) { return c == '\'' || c == 0x92 || c == 0x2019; }
static int is_aposetc(uint32_t c) { return is_apos(c) || c == 0x91 || c == 0x2018 || c == 0x201B; }
static int is_space(uint32_t c) { return c == ' ' || c == '\t' || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x3000; }
static int is_newline(uint32_t c) { return c == '\r' || c == '\n' || c == 0x2028 || c == 0x2029 || c == 0x0B || c == 0x0C || c == 0x85; }
static int is_spacenl(uint32_t c) { return is_space(c) || is_newline(c); }
static int is_vowel(uint32_t c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y' || c == 'A' || c == 'E' || c == 'I' || c == 'O' || c == 'U' || c == 'Y'; }
static int is_hyphen(uint32_t c) { return c == '-' || c == '_' || c == 0x58A || c == 0x2010 || c == 0x2011; }
static uint32_t lower(uint32_t c) { return c < 0x80 ? ((c >= 'A' && c <= 'Z') ? c + 32 : c) : unicode_lower(c); }

// Caseless comparison of the text at i with an ASCII literal.
static size_t lit(const Text* t, size_t i, const char* s) {
    size_t k = 0;
    for (; s[k]; k++) {
        uint32_t c = at(t, i + k);
        if (c >= 0x80 || lower(c) != (uint32_t)(unsigned char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] + 32 : s[k])) return 0;
    }
    return k;
}
// Longest caseless literal of a '|'-separated list matching at i.
static size_t lit_any(const Text* t, size_t i, const char* list) {
    size_t best = 0;
    uint32_t first = at(t, i);
    if (first >= 0x80) return 0;
    first = lower(first);
    for (const char* p = list; *p;) {
        const char* e = p;
        while (*e && *e != '|') e++;
        if ((uint32_t)(unsigned char)*p == first || ((*p >= 'A' && *p <= 'Z') && (uint32_t)(*p + 32) == first)) {
            size_t k = 0, len = (size_t)(e - p);
            for (; k < len; k++) {
                uint32_t c = at(t, i + k);
                char want = p[k] >= 'A' && p[k] <= 'Z' ? (char)(p[k] + 32) : p[k];
                if (c >= 0x80 || lower(c) != (uint32_t)(unsigned char)want) break;
            }
            if (k == len && len > best) best = len;
        }
        p = *e ? e + 1 : e;
    }
    return best;
}

// ---------------------------------------------------------------- building blocks
// WORD = L (L|D)* ([.!?] L (L|D)*)*  (L also takes soft hyphens and combining marks)
static size_t m_word(const Text* t, size_t i) {
    if (!is_word_char(at(t, i))) return 0;
    size_t k = i + 1;
    for (;;) {
        while (is_word_char(at(t, k)) || is_digit(at(t, k))) k++;
        uint32_t c = at(t, k);
        if ((c == '.' || c == '!' || c == '?') && is_word_char(at(t, k + 1))) { k += 2; continue; }
        break;
    }
    return k - i;
}
// REDAUX = APOS ([msd] | re | ve | ll)
static size_t m_redaux(const Text* t, size_t i) {
    if (!is_apos(at(t, i))) return 0;
    size_t m = lit_any(t, i + 1, "re|ve|ll");
    if (m) return 1 + m;
    uint32_t c = lower(at(t, i + 1));
    return (c == 'm' || c == 's' || c == 'd') ? 2 : 0;
}
// SWORD = [A-Za-z\xAD]* [A-MO-Za-mo-z] \xAD*  followed by SREDAUX = n APOSETC t
static size_t m_sword_sredaux(const Text* t, size_t i, size_t* tok) {
    size_t k = i;
    while (is_ascii_alpha(at(t, k)) || at(t, k) == 0xAD) k++;
    // backtrack to the longest prefix ending in a letter other than n followed by soft hyphens and n't
    for (size_t end = k; end > i; end--) {
        size_t e = end;
        while (e > i && at(t, e - 1) == 0xAD) e--;
        if (e == i) continue;
        uint32_t last = at(t, e - 1);
        if (!is_ascii_alpha(last) || last == 'n' || last == 'N') continue;
        if (lower(at(t, end)) == 'n' && is_aposetc(at(t, end + 1)) && lower(at(t, end + 2)) == 't') {
            *tok = end - i;
            return end - i + 3;
        }
    }
    return 0;
}
static size_t m_sredaux(const Text* t, size_t i) {
    return (lower(at(t, i)) == 'n' && is_aposetc(at(t, i + 1)) && lower(at(t, i + 2)) == 't') ? 3 : 0;
}
// NUM = D+ | D* ([.:,\xAD] D+)+ ; NUMBER = [-+]? NUM
static size_t m_num(const Text* t, size_t i) {
    size_t k = i;
    while (is_digit(at(t, k))) k++;
    size_t best = k - i;
    for (;;) {
        uint32_t c = at(t, k);
        if ((c == '.' || c == ':' || c == ',' || c == 0xAD) && is_digit(at(t, k + 1))) {
            k++;
            while (is_digit(at(t, k))) k++;
            best = k - i;
        } else {
            break;
        }
    }
    return best;
}
static size_t m_number(const Text* t, size_t i) {
    size_t sign = (at(t, i) == '-' || at(t, i) == '+') ? 1 : 0;
    size_t m = m_num(t, i + sign);
    return m ? sign + m : 0;
}
static size_t digits_upto(const Text* t, size_t i, size_t lo, size_t hi) {
    size_t k = 0;
    while (k < hi && is_digit(at(t, i + k))) k++;
    return k >= lo ? k : 0;
}
// DATE = D{1,2} [-/] D{1,2} [-/] D{2,4}
static size_t m_date(const Text* t, size_t i) {
    size_t a = digits_upto(t, i, 1, 2);
    if (!a || is_digit(at(t, i + a))) return 0;
    uint32_t s1 = at(t, i + a);
    if (s1 != '-' && s1 != '/') return 0;
    size_t b = digits_upto(t, i + a + 1, 1, 2);
    if (!b) return 0;
    size_t k = i + a + 1 + b;
    uint32_t s2 = at(t, k);
    if (s2 != '-' && s2 != '/') return 0;
    size_t c = digits_upto(t, k + 1, 2, 4);
    return c ? k + 1 + c - i : 0;
}
// FRAC = (D{1,4} [- \xA0])? D{1,4} \\?/ D{1,4}
static size_t m_frac_core(const Text* t, size_t i) {
    size_t a = digits_upto(t, i, 1, 4);
    if (!a) return 0;
    size_t k = i + a;
    if (at(t, k) == '\\') k++;
    if (at(t, k) != '/') return 0;
    size_t b = digits_upto(t, k + 1, 1, 4);
    return b ? k + 1 + b - i : 0;
}
static size_t m_frac(const Text* t, size_t i) {
    size_t best = m_frac_core(t, i);
    size_t a = digits_upto(t, i, 1, 4);
    if (a) {
        uint32_t s = at(t, i + a);
        if (s == '-' || s == ' ' || s == 0xA0) {
            size_t m = m_frac_core(t, i + a + 1);
            if (m && a + 1 + m > best) best = a + 1 + m;
        }
    }
    return best;
}
// THING = ([dDoOlL] APOSETC (L|D))? (L|D)+ (HYPHEN ([dDoOlL] APOSETC (L|D))? (L|D)+)*
static size_t m_thing_part(const Text* t, size_t i) {
    size_t k = i;
    uint32_t c = at(t, i);
    if ((c == 'd' || c == 'D' || c == 'o' || c == 'O' || c == 'l' || c == 'L') && is_aposetc(at(t, i + 1)) && is_alnum(at(t, i + 2)))
        k = i + 3;
    size_t s = k;
    while (is_alnum(at(t, k))) k++;
    if (k == s && k == i) return 0;
    return k - i;
}
static size_t m_thing(const Text* t, size_t i) {
    size_t m = m_thing_part(t, i);
    if (!m) return 0;
    size_t k = i + m;
    while (is_hyphen(at(t, k))) {
        size_t p = m_thing_part(t, k + 1);
        if (!p) break;
        k += 1 + p;
    }
    return k - i;
}
// ACRO = [A-Za-z] (\. [A-Za-z])+
static size_t m_acro_plain(const Text* t, size_t i) {
    if (!is_ascii_alpha(at(t, i))) return 0;
    size_t k = i + 1;
    while (at(t, k) == '.' && is_ascii_alpha(at(t, k + 1))) k += 2;
    return k - i > 1 ? k - i : 0;
}
// ... | (Canada|Sino|Korean|EU|Japan|non)-U.S | U.S.-(U.K|U.S.S.R), only as a whole
static size_t m_acro_special(const Text* t, size_t i) {
    return lit_any(t, i, "canada-u.s|sino-u.s|korean-u.s|eu-u.s|japan-u.s|non-u.s|u.s.-u.k|u.s.-u.s.s.r");
}
static size_t m_acro(const Text* t, size_t i) {
    size_t a = m_acro_plain(t, i), b = m_acro_special(t, i);
    return a > b ? a : b;
}
// HTHING = [A-Za-z0-9] [A-Za-z0-9.,\xAD]* (- ([A-Za-z0-9\xAD]+ | ACRO \.))+
static size_t m_hthing(const Text* t, size_t i) {
    uint32_t c0 = at(t, i);
    if (!(is_ascii_alpha(c0) || is_ascii_digit(c0))) return 0;
    // The head may itself contain hyphen-free runs; try every head end (the regex backtracks).
    size_t head_max = i + 1;
    while (is_ascii_alpha(at(t, head_max)) || is_ascii_digit(at(t, head_max)) || at(t, head_max) == '.' || at(t, head_max) == ',' || at(t, head_max) == 0xAD) head_max++;
    size_t best = 0;
    for (size_t h = head_max; h > i; h--) {
        size_t k = h;
        int parts = 0;
        while (at(t, k) == '-') {
            size_t a = 0;
            while (is_ascii_alpha(at(t, k + 1 + a)) || is_ascii_digit(at(t, k + 1 + a)) || at(t, k + 1 + a) == 0xAD) a++;
            // ACRO \. : the longest acronym prefix followed by a period
            size_t alt = 0, sp = m_acro_special(t, k + 1);
            if (sp && at(t, k + 1 + sp) == '.') alt = sp + 1;
            for (size_t ac = m_acro_plain(t, k + 1); ac >= 3; ac -= 2)
                if (at(t, k + 1 + ac) == '.') {
                    if (ac + 1 > alt) alt = ac + 1;
                    break;
                }
            size_t take = a > alt ? a : alt;
            if (!take) break;
            k += 1 + take;
            parts++;
        }
        if (parts && k - i > best) best = k - i;
    }
    return best;
}
// THING3 = [A-Za-z0-9]+ (-[A-Za-z]+){0,2} (\\?/ [A-Za-z0-9]+ (-[A-Za-z]+){0,2}){1,2}
static size_t m_thing3_seg(const Text* t, size_t i) {
    size_t k = i;
    while (is_ascii_alpha(at(t, k)) || is_ascii_digit(at(t, k))) k++;
    if (k == i) return 0;
    for (int h = 0; h < 2 && at(t, k) == '-' && is_ascii_alpha(at(t, k + 1)); h++) {
        k++;
        while (is_ascii_alpha(at(t, k))) k++;
    }
    return k - i;
}
static size_t m_thing3(const Text* t, size_t i) {
    size_t m = m_thing3_seg(t, i);
    if (!m) return 0;
    size_t k = i + m;
    int parts = 0;
    while (parts < 2) {
        size_t s = k;
        if (at(t, s) == '\\') s++;
        if (at(t, s) != '/') break;
        size_t p = m_thing3_seg(t, s + 1);
        if (!p) break;
        k = s + 1 + p;
        parts++;
    }
    return parts ? k - i : 0;
}

// Abbreviation lists (caseless strings; bracketed letters in the lexer are case-sensitive).
// ABBREV1: months, days, states, companies, a few others; normally followed by lower case.
static const char* ABBREV1_WORDS =
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|mon|tue|tues|wed|thu|thurs|fri|"
    "ala|ariz|calif|colo|conn|ct|dak|fla|ga|ind|kan|kans|ky|md|mich|minn|mo|mont|neb|nev|okla|"
    "penn|tenn|va|vt|wis|wisc|wyo|inc|co|cos|corp|ltd|plc|rt|bancorp|bhd|assn|"
    "univ|intl|sys|tel|est|ext|sq|jr|sr|bros|ed.d|ph.d|blvd|rd|esq|etc|al|seq|bldg";
// State abbreviations written [A]z, [A]rk, [D]el, [I]ll, [L]a, [M]ass, [M]iss, [O]re, [P]a,
// [T]ex, [W]ash: the first letter must be upper-case, the rest is caseless.
static const char* ABBREV1_CAPPED = "Az|Ark|Del|Ill|La|Mass|Miss|Ore|Pa|Tex|Wash";
// [Pp]{1,2}[Tt][ye][Ss]? (Pty, Ptys, Ppte, ...)
static size_t m_pty(const Text* t, size_t i) {
    size_t k = i;
    if (lower(at(t, k)) != 'p') return 0;
    k++;
    if (lower(at(t, k)) == 'p') k++;
    if (lower(at(t, k)) != 't') return 0;
    k++;
    if (lower(at(t, k)) != 'y' && lower(at(t, k)) != 'e') return 0;
    k++;
    if (lower(at(t, k)) == 's') k++;
    return k - i;
}
static const char* ABTITLE =
    "mr|mrs|ms|dr|drs|prof|profs|sen|sens|rep|reps|atty|attys|lt|col|gen|messrs|gov|govs|adm|rev|"
    "maj|sgt|cpl|pvt|capt|st|ste|ave|pres|lieut|hon|brig|cmdr|comdr|pfc|spc|supt|supts|det|mt|ft|"
    "adj|adv|asst|assoc|ens|insp|mlle|mme|msgr|sfc|"
    "vs|v|alex|wm|jos|cie|a.k.a|cf|treas|ph|invt|elec|natl|mfg|mtg|dept";
// ABBREV3: abbreviations only before a number (ca. 1900, No. 5).
static const char* ABBREV3_WORDS = "ca|fig|figs|prop|no|nos|art|bldg|pp|op";

// Longest caseless literal from a list.
static size_t m_word_list(const Text* t, size_t i, const char* list) { return lit_any(t, i, list); }
static size_t m_capped_list(const Text* t, size_t i, const char* list) {
    size_t best = 0;
    const char* p = list;
    while (*p) {
        const char* e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t k = 0;
        while (k < len && at(t, i + k) == (uint32_t)(unsigned char)p[k]) k++;
        if (k == len && len > best) best = len;
        p += len + (e ? 1 : 0);
    }
    return best;
}
// ABBREV1 = (...) \.
static size_t m_abbrev1(const Text* t, size_t i) {
    size_t a = m_word_list(t, i, ABBREV1_WORDS);
    size_t b = m_capped_list(t, i, ABBREV1_CAPPED);
    size_t p = m_pty(t, i);
    if (p > a) a = p;
    size_t best = 0;
    if (a && at(t, i + a) == '.') best = a + 1;
    if (b && at(t, i + b) == '.' && b + 1 > best) best = b + 1;
    return best;
}
// ABBREV4 = [A-Za-z] (not I) | ABTITLE | ACRO ; ABBREV2 = ABBREV4 \.
static size_t m_abbrev4(const Text* t, size_t i) {
    size_t best = 0;
    uint32_t c = at(t, i);
    if (is_ascii_alpha(c)) best = 1;
    size_t m = m_word_list(t, i, ABTITLE);
    if (m > best) best = m;
    if (at(t, i) == 'M' && lit(t, i + 1, "iss")) best = best > 4 ? best : 4;
    m = m_acro(t, i);
    if (m > best) best = m;
    return best;
}
static size_t m_abbrev2(const Text* t, size_t i) {
    // every ABBREV4 alternative ending right before a '.'
    size_t best = 0;
    uint32_t c = at(t, i);
    if (is_ascii_alpha(c) && at(t, i + 1) == '.') best = 2;
    // the longest title that is followed by '.' (titles that are prefixes of others: try each length)
    for (const char* p = ABTITLE; *p;) {
        const char* e = p;
        while (*e && *e != '|') e++;
        size_t len = (size_t)(e - p), k = 0;
        for (; k < len; k++) {
            uint32_t d = at(t, i + k);
            if (d >= 0x80 || lower(d) != (uint32_t)(unsigned char)p[k]) break;
        }
        if (k == len && at(t, i + len) == '.' && len + 1 > best) best = len + 1;
        p = *e ? e + 1 : e;
    }
    if (at(t, i) == 'M' && lit(t, i + 1, "iss") && at(t, i + 4) == '.' && best < 5) best = 5;
    // ACRO \. : any prefix of a plain acronym that ends before a '.', or a whole special one
    size_t a = m_acro_plain(t, i);
    for (size_t k = a; k >= 3; k -= 2)
        if (at(t, i + k) == '.' && k + 1 > best) { best = k + 1; break; }
    a = m_acro_special(t, i);
    if (a && at(t, i + a) == '.' && a + 1 > best) best = a + 1;
    return best;
}
// SGML = < ( [!?][A-Za-z-][^>\r\n]* | NAME ( +(NAME | NAME *= *('...'|"..."|NAME)))* */? | /NAME ) *>
// with NAME = [A-Za-z][A-Za-z0-9_:.-]*; its length at i, or 0. Kept within a line.
static size_t sgml_name(const Text* t, size_t k) {
    if (!is_ascii_alpha(at(t, k))) return 0;
    size_t e = k + 1;
    for (;;) {
        uint32_t c = at(t, e);
        if (is_ascii_alpha(c) || is_ascii_digit(c) || c == '_' || c == ':' || c == '.' || c == '-') e++;
        else break;
    }
    return e - k;
}
static size_t m_sgml(const Text* t, size_t i) {
    if (at(t, i) != '<') return 0;
    size_t k = i + 1, n;
    uint32_t c = at(t, k);
    if ((c == '!' || c == '?') && (is_ascii_alpha(at(t, k + 1)) || at(t, k + 1) == '-')) {
        k += 2;
        while (k < t->n && at(t, k) != '>' && at(t, k) != '\r' && at(t, k) != '\n') k++;
        return at(t, k) == '>' ? k + 1 - i : 0;
    }
    if (c == '/') {
        if (!(n = sgml_name(t, k + 1))) return 0;
        k += 1 + n;
    } else {
        if (!(n = sgml_name(t, k))) return 0;
        k += n;
        for (;;) {  // attributes
            size_t a = k;
            while (at(t, a) == ' ') a++;
            if (a == k || !(n = sgml_name(t, a))) break;
            a += n;
            size_t v = a;
            while (at(t, v) == ' ') v++;
            if (at(t, v) == '=') {
                v++;
                while (at(t, v) == ' ') v++;
                uint32_t q = at(t, v);
                if (q == '\'' || q == '"') {
                    size_t e = v + 1;
                    while (e < t->n && at(t, e) != q && !is_newline(at(t, e))) e++;
                    if (at(t, e) != q) break;
                    a = e + 1;
                } else if ((n = sgml_name(t, v))) {
                    a = v + n;
                }
            }
            k = a;
        }
        while (at(t, k) == ' ') k++;
        if (at(t, k) == '/') k++;
    }
    while (at(t, k) == ' ') k++;
    return at(t, k) == '>' ? k + 1 - i : 0;
}
// SENTEND = SPACENL (SPACENL | [A-Z] | SGML): its length at i, or 0
static size_t sentend_at(const Text* t, size_t i) {
    if (!is_spacenl(at(t, i))) return 0;
    uint32_t c = at(t, i + 1);
    if (is_spacenl(c) || is_upper(c) || (c >= 0x80 && is_letter(c) && lower(c) != c)) return 2;
    size_t g = m_sgml(t, i + 1);
    return g ? 1 + g : 0;
}
// The words after which an acronym's period also ends the sentence (first letter upper-case).
static const char* ACRONYM_FOLLOWERS[] = {
    "About", "According", "Additionally", "After", "An", "A", "As", "At", "But", "Earlier", "He", "Her", "Here",
    "However", "If", "In", "It", "Last", "Many", "More", "Mr.", "Ms.", "Now", "Once", "One", "Other", "Our",
    "She", "Since", "So", "Some", "Such", "That", "The", "Then", "There", "These", "They", "This", "We", "When",
    "While", "What", "Yet", "You", NULL};
static size_t acronym_follower(const Text* t, size_t i) {
    size_t k = i;
    while (is_spacenl(at(t, k))) k++;
    if (k == i) return 0;
    size_t best = 0;
    for (int w = 0; ACRONYM_FOLLOWERS[w]; w++) {
        const char* s = ACRONYM_FOLLOWERS[w];
        if (at(t, k) != (uint32_t)(unsigned char)s[0]) continue;
        size_t m = lit(t, k, s);
        if (m && is_spacenl(at(t, k + m)) && k + m + 1 - i > best) best = k + m + 1 - i;
    }
    size_t g = m_sgml(t, k);  // an SGML tag also starts a sentence
    if (g) {
        if (is_spacenl(at(t, k + g)) && k + g + 1 - i > best) best = k + g + 1 - i;
    }
    return best;
}

// ---------------------------------------------------------------- URLs and e-mail
static int url_stop(uint32_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '"' || c == '<' || c == '>' || c == '|' || c == '(' || c == ')' || c == 0;
}
static int url_trailing(uint32_t c) {
    return c == '.' || c == '!' || c == '?' || c == '(' || c == ')' || c == '{' || c == '}' || c == ',' || c == '-';
}
// An optional path: \/ [^ \t\n\f\r"<>|()]+ [^ \t\n\f\r"<>|.!?(){},-] (at least two characters).
static size_t url_path(const Text* t, size_t i) {
    if (at(t, i) != '/') return 0;
    size_t k = i + 1;
    while (k < t->n && !url_stop(at(t, k))) k++;
    while (k > i + 1 && url_trailing(at(t, k - 1))) k--;
    return k >= i + 3 ? k - i : 0;
}
// LIKELYURL = ((www\.([^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}) |
//              (([^ \t\n\f\r"`'<>|.!?(){},-_$]+\.)+(com|net|org|edu))) path?
// (",-_" in the second class is a range: it leaves out digits, upper case and most punctuation.)
static int www_seg(uint32_t c) {
    return !(c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == '"' || c == '<' || c == '>' || c == '|' ||
             c == '.' || c == '!' || c == '?' || c == '(' || c == ')' || c == '{' || c == '}' || c == ',' || c == 0);
}
static int dom_seg(uint32_t c) {
    return www_seg(c) && c != '`' && c != '\'' && !(c >= 0x2C && c <= 0x5F) && c != '$';
}
static size_t m_likely_url(const Text* t, size_t i) {
    size_t best = 0;
    if (lit(t, i, "www.")) {
        size_t k = i + 4;
        for (;;) {
            size_t s = k;
            while (www_seg(at(t, k))) k++;
            if (k == s || at(t, k) != '.') break;
            k++;  // after "seg."
            size_t l = 0;
            while (l < 4 && is_ascii_alpha(at(t, k + l))) l++;
            for (size_t e = 2; e <= l; e++) {
                size_t end = k + e, len = end - i + url_path(t, end);
                if (len > best) best = len;
            }
        }
    }
    size_t k = i;
    for (;;) {
        size_t s = k;
        while (dom_seg(at(t, k))) k++;
        if (k == s || at(t, k) != '.') break;
        k++;
        size_t tld = lit_any(t, k, "com|net|org|edu");
        if (tld) {
            size_t end = k + tld, len = end - i + url_path(t, end);
            if (len > best) best = len;
        }
    }
    return best;
}
// EMAIL = [a-zA-Z0-9] [^ \t\n\f\r"<>|()\xA0]* @ ([^ \t\n\f\r"<>|().\xA0]+ \.)* [^ \t\n\f\r"<>|().\xA0]+
static size_t m_email(const Text* t, size_t i) {
    if (!(is_ascii_alpha(at(t, i)) || is_ascii_digit(at(t, i)))) return 0;
    size_t run = i + 1;
    while (run < t->n && !url_stop(at(t, run)) && at(t, run) != 0xA0) run++;
    // the longest end e: after some '@' a+1 < e, dot-separated non-empty segments up to e
    for (size_t e = run; e >= i + 3; e--) {
        if (at(t, e - 1) == '.') continue;
        for (size_t a = e - 2; a > i; a--) {
            if (at(t, a) == '.' && at(t, a + 1) == '.') break;  // an empty segment: no '@' further left helps
            if (at(t, a) == '@' && at(t, a + 1) != '.') return e - i;
        }
    }
    return 0;
}

// FILENAME = (L|D)+ (\.(L|D)+)* \.EXT, followed by a space or one of . ? ! , " ' <
static const char* FILE_EXTS = "bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip";
static size_t m_filename(const Text* t, size_t i) {
    if (!is_alnum(at(t, i))) return 0;
    size_t k = i, best = 0;
    for (;;) {
        size_t s = k;
        while (is_alnum(at(t, k))) k++;
        if (k == s || at(t, k) != '.') break;
        // try each extension after this dot (needs at least one part before)
        for (const char* p = FILE_EXTS; *p;) {
            const char* e = p;
            while (*e && *e != '|') e++;
            size_t len = (size_t)(e - p), q = 0;
            for (; q < len; q++)
                if (lower(at(t, k + 1 + q)) != (uint32_t)(unsigned char)p[q] || at(t, k + 1 + q) >= 0x80) break;
            uint32_t f = at(t, k + 1 + len);
            if (q == len && (is_spacenl(f) || f == '.' || f == '?' || f == '!' || f == ',' || f == '"' || f == '\'' || f == '<') &&
                k + 2 + len - i > best)
                best = k + 2 + len - i;  // total, with the one character of trailing context
            p = *e ? e + 1 : e;
        }
        k++;
    }
    return best;
}

// ---------------------------------------------------------------- the scanner
typedef struct {
    size_t total;      // match length for the longest-match contest (with trailing context)
    size_t advance;    // how far the scanner moves
    const char* repl;  // replacement text, or NULL to emit the matched text
    size_t tok;        // length of the emitted text when repl is NULL
    int skip;          // 1: emit nothing
    int newline;       // 1: a line break
} Match;

static void consider(Match* best, size_t total, size_t tok, size_t advance, const char* repl, int skip) {
    if (total > best->total) {
        best->total = total;
        best->tok = tok;
        best->advance = advance;
        best->repl = repl;
        best->skip = skip;
        best->newline = 0;
    }
}

static Match scan(const Text* t, size_t i) {
    Match b = {0, 0, NULL, 0, 0, 0};
    uint32_t c = at(t, i);
    size_t m;
    if (c == ' ') {  // the common case first: a space starts no token
        b.total = b.advance = 1;
        b.skip = 1;
        return b;
    }
    // assimilations: cannot -> can not, 'twas -> 't was, gonna -> gon na, ...
    if ((m = lit(t, i, "cannot"))) consider(&b, m, 3, 3, NULL, 0);
    if (is_apos(c) && (m = lit(t, i + 1, "twas"))) consider(&b, 5, 2, 2, NULL, 0);
    if ((m = lit_any(t, i, "gonna|gotta|lemme|gimme|wanna"))) consider(&b, m, m - 2, m - 2, NULL, 0);
    if (is_apos(c) && lit(t, i + 1, "tis")) consider(&b, 4, 2, 2, NULL, 0);
    // programming languages, SGML tags, fake duck feet
    if ((m = lit_any(t, i, "c++|c#|f#"))) consider(&b, m, m, m, NULL, 0);
    if ((m = m_sgml(t, i))) consider(&b, m, m, m, "\001nbsp", 0);
    if ((c == '<' && at(t, i + 1) == '<') || (c == '>' && at(t, i + 1) == '>')) consider(&b, 2, 2, 2, NULL, 0);
    // dashes and entities
    if (c == 0x2013 || c == 0x2014 || c == 0x2015 || c == 0x96 || c == 0x97) consider(&b, 1, 0, 1, "--", 0);
    if ((m = lit_any(t, i, "&mdash;|&ndash;|&md;"))) consider(&b, m, 0, m, "--", 0);
    if ((m = lit(t, i, "&amp;"))) consider(&b, m, 0, m, "&", 0);
    if ((m = lit(t, i, "&lt;"))) consider(&b, m, 0, m, "<", 0);
    if ((m = lit(t, i, "&gt;"))) consider(&b, m, 0, m, ">", 0);
    if ((m = lit(t, i, "&apos;"))) consider(&b, m, 0, m, "'", 0);
    if ((m = lit(t, i, "&nbsp;"))) consider(&b, m, 0, m, NULL, 1);
    if ((m = lit_any(t, i, "&ht;|&tl;|&ur;|&lr;|&qc;|&ql;|&qr;|&odq;|&cdq;"))) consider(&b, m, m, m, NULL, 0);
    if (c == '&' && at(t, i + 1) == '#' && is_ascii_digit(at(t, i + 2))) {
        size_t k = i + 2;
        while (is_ascii_digit(at(t, k))) k++;
        if (at(t, k) == ';') consider(&b, k + 1 - i, k + 1 - i, k + 1 - i, NULL, 0);
    }
    // words, with a following clitic as trailing context
    size_t w = m_word(t, i);
    if (w) {
        size_t r = m_redaux(t, i + w);
        if (r) consider(&b, w + r, w, w, NULL, 0);
    }
    size_t stok = 0;
    if ((m = m_sword_sredaux(t, i, &stok))) consider(&b, m, stok, stok, NULL, 0);
    if (w) consider(&b, w, w, w, NULL, 0);
    // APOWORD: words with an apostrophe inside
    if (is_apos(c)) {
        if (lower(at(t, i + 1)) == 'n') consider(&b, is_apos(at(t, i + 2)) ? 3 : 2, is_apos(at(t, i + 2)) ? 3 : 2, is_apos(at(t, i + 2)) ? 3 : 2, NULL, 0);
        if (lit(t, i + 1, "em")) consider(&b, 3, 3, 3, NULL, 0);
        if (at(t, i + 1) >= '2' && at(t, i + 1) <= '9' && at(t, i + 2) == '0' && lower(at(t, i + 3)) == 's') consider(&b, 4, 4, 4, NULL, 0);
        if ((m = lit(t, i + 1, "till")) || (m = lit(t, i + 1, "til"))) consider(&b, m + 1, m + 1, m + 1, NULL, 0);
        if ((m = lit(t, i + 1, "cause"))) consider(&b, m + 1, m + 1, m + 1, NULL, 0);
    }
    if ((c == 'l' || c == 'L' || c == 'd' || c == 'D' || c == 'j' || c == 'J') && is_apos(at(t, i + 1))) consider(&b, 2, 2, 2, NULL, 0);
    if ((m = lit_any(t, i, "dunkin|somethin|ol")) && is_apos(at(t, i + m))) consider(&b, m + 1, m + 1, m + 1, NULL, 0);
    if ((((c >= 'A' && c <= 'H') || (c >= 'J' && c <= 'X') || c == 'Z' || c == 'n')) && is_aposetc(at(t, i + 1)) &&
        is_letter(at(t, i + 2)) && is_letter(at(t, i + 3))) {
        size_t k = i + 4;
        while (is_letter(at(t, k))) k++;
        consider(&b, k - i, k - i, k - i, NULL, 0);
    }
    if (is_letter(c)) {
        // L L* [aeiouy] APOSETC [aeiouA-Z] L*
        size_t k = i + 1;
        while (is_letter(at(t, k))) k++;
        for (size_t v = k; v > i + 1; v--) {
            if (is_vowel(at(t, v - 1)) && is_aposetc(at(t, v))) {
                uint32_t d = at(t, v + 1);
                if (d == 'a' || d == 'e' || d == 'i' || d == 'o' || d == 'u' || is_upper(d)) {
                    size_t e = v + 2;
                    while (is_letter(at(t, e))) e++;
                    consider(&b, e - i, e - i, e - i, NULL, 0);
                }
            }
        }
    }
    if ((m = lit_any(t, i, "cont'd.|cont'd|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l"))) consider(&b, m, m, m, NULL, 0);
    if ((c == 'y' || c == 'Y') && is_apos(at(t, i + 1)) && is_letter(at(t, i + 2))) consider(&b, 3, 2, 2, NULL, 0);
    // URLs, e-mail addresses, @names and #tags
    if ((m = lit_any(t, i, "http://|https://"))) {
        // https?:// [^ \t\n\f\r"<>|()]+ [^ \t\n\f\r"<>|.!?(){},-]
        size_t k = i + m;
        while (k < t->n && !url_stop(at(t, k))) k++;
        while (k > i + m && url_trailing(at(t, k - 1))) k--;
        if (k >= i + m + 2) consider(&b, k - i, k - i, k - i, NULL, 0);
    }
    if ((m = m_likely_url(t, i))) consider(&b, m, m, m, NULL, 0);
    if ((m = m_email(t, i))) consider(&b, m, m, m, NULL, 0);
    if (c == '@' && (is_ascii_alpha(at(t, i + 1)) || at(t, i + 1) == '_')) {
        size_t k = i + 2;
        while (is_ascii_alpha(at(t, k)) || is_ascii_digit(at(t, k)) || at(t, k) == '_') k++;
        consider(&b, k - i, k - i, k - i, NULL, 0);
    }
    if (c == '#' && is_letter(at(t, i + 1))) {
        size_t k = i + 2;
        while (is_letter(at(t, k))) k++;
        consider(&b, k - i, k - i, k - i, NULL, 0);
    }
    {
        // SMILEY = [<>]? [:;=] [-o*']? [()DPdpO\\{@|[\]]
        size_t k = i;
        if (at(t, k) == '<' || at(t, k) == '>') k++;
        uint32_t e = at(t, k);
        if (e == ':' || e == ';' || e == '=') {
            k++;
            uint32_t f = at(t, k);
            for (int pass = 0; pass < 2; pass++) {
                size_t q = k + (size_t)pass;
                if (pass == 1 && !(f == '-' || f == 'o' || f == '*' || f == '\'')) break;
                uint32_t g = at(t, q), h = at(t, q + 1);
                // the smiley needs a following character that is no letter or digit
                if ((g == '(' || g == ')' || g == 'D' || g == 'P' || g == 'd' || g == 'p' || g == 'O' || g == '\\' ||
                     g == '{' || g == '@' || g == '|' || g == '[' || g == ']') &&
                    q + 1 < t->n && !is_letter(h) && !is_digit(h))
                    consider(&b, q + 2 - i, q + 1 - i, q + 1 - i, "\001parens", 0);
            }
        }
    }
    // clitics on their own
    if ((m = m_redaux(t, i))) {
        if (i + m < t->n && !is_ascii_alpha(at(t, i + m))) consider(&b, m + 1, m, m, "\001quote", 0);
    }
    if ((m = m_sredaux(t, i))) consider(&b, m, m, m, "\001quote", 0);
    // numbers
    if ((m = m_date(t, i))) consider(&b, m, m, m, NULL, 0);
    if ((m = m_number(t, i))) consider(&b, m, m, m, NULL, 0);
    if ((m = m_frac(t, i))) consider(&b, m, m, m, "\001nbsp", 0);
    if (c == 0xBC) consider(&b, 1, 0, 1, "1/4", 0);
    if (c == 0xBD) consider(&b, 1, 0, 1, "1/2", 0);
    if (c == 0xBE) consider(&b, 1, 0, 1, "3/4", 0);
    if (c == 0x2153) consider(&b, 1, 0, 1, "1/3", 0);
    if (c == 0x2154) consider(&b, 1, 0, 1, "2/3", 0);
    if ((m = lit_any(t, i, "-rrb-|-lrb-|-rcb-|-lcb-|-rsb-|-lsb-|c.d.s|pro-|anti-|s&p-500|s&ls|s&amp;p-500|s&amp;ls"))) consider(&b, m, m, m, "\001amp", 0);
    if (lit(t, i, "cap") && is_apos(at(t, i + 3)) && lower(at(t, i + 4)) == 'n') consider(&b, 5, 5, 5, NULL, 0);
    if (lower(c) == 'c' && is_apos(at(t, i + 1)) && lit(t, i + 2, "est")) consider(&b, 5, 5, 5, NULL, 0);
    if ((m = m_thing3(t, i))) consider(&b, m, m, m, NULL, 0);
    // currency
    if (is_upper(c) || c == '$') {
        size_t k = i;
        while (is_upper(at(t, k))) k++;
        if (at(t, k) == '$') consider(&b, k + 1 - i, k + 1 - i, k + 1 - i, NULL, 0);
    }
    if (c == '#') consider(&b, 1, 1, 1, NULL, 0);
    if (c == 0xA2) consider(&b, 1, 0, 1, "cents", 0);
    if (c == 0xA3) consider(&b, 1, 0, 1, "#", 0);
    if (c == 0x80 || c == 0xA4 || c == 0x20A0 || c == 0x20AC) consider(&b, 1, 0, 1, "$", 0);
    if (c == 0xA5 || c == 0x60B || c == 0xE3F || c == 0x20A4 || c == 0xFFE0 || c == 0xFFE1 || c == 0xFFE5 || c == 0xFFE6) consider(&b, 1, 1, 1, NULL, 0);
    // acronyms and abbreviations
    size_t acro = m_acro(t, i);
    size_t acronym = acro ? acro : (is_ascii_alpha(c) ? 1 : 0);
    if (acronym && at(t, i + acronym) == '.') {
        // An acronym before a sentence-initial word (The, A, It, ...): the period also ends the
        // sentence. Longer acronyms keep their period and it is read again; a single letter
        // gives it up.
        size_t f = acronym_follower(t, i + acronym + 1);
        if (f && acronym == 1) consider(&b, 2 + f, 1, 1, NULL, 0);
        else if (f) consider(&b, acronym + 1 + f, acronym + 1, acronym, NULL, 0);
    }
    // abbreviations all start with a letter and end in a period (ABBREV4 before a space)
    int may_abbrev = is_ascii_alpha(c);
    if (may_abbrev && (m = m_abbrev1(t, i))) {
        // before a sentence end the period is read again; otherwise any two characters follow
        // as trailing context (which outweighs a longer WORD such as "inc.a"); at the very end
        // of the text the period is read again too
        size_t se = sentend_at(t, i + m);
        if (se) consider(&b, m + se, m, m - 1, NULL, 0);
        if (i + m + 2 <= t->n) consider(&b, m + 2, m, m, NULL, 0);
        else consider(&b, m, m, m - 1, NULL, 0);
    }
    if (may_abbrev && (m = m_abbrev2(t, i))) consider(&b, m, m, m, NULL, 0);
    if (may_abbrev && (m = m_word_list(t, i, ABBREV3_WORDS)) && at(t, i + m) == '.') {
        size_t k = i + m + 1;
        if (is_spacenl(at(t, k))) k++;
        if (is_digit(at(t, k))) consider(&b, k + 1 - i, m + 1, m + 1, NULL, 0);
    }
    if (may_abbrev && (m = m_abbrev4(t, i)) && is_space(at(t, i + m))) consider(&b, m + 1, m, m, NULL, 0);
    if (acro && is_spacenl(at(t, i + acro))) consider(&b, acro + 1, acro, acro, NULL, 0);
    if (is_apos(c) && is_ascii_digit(at(t, i + 1)) && is_ascii_digit(at(t, i + 2)) && is_spacenl(at(t, i + 3))) consider(&b, 4, 3, 3, NULL, 0);
    if ((m = m_filename(t, i))) consider(&b, m, m - 1, m - 1, NULL, 0);
    if (w && at(t, i + w) == '.' && (at(t, i + w + 1) == ',' || at(t, i + w + 1) == ';' || at(t, i + w + 1) == ':'))
        consider(&b, w + 2, w + 1, w + 1, NULL, 0);
    // quotes
    if (c == '"') {
        uint32_t d = at(t, i + 1);
        if (is_ascii_alpha(d) || is_ascii_digit(d) || d == '$') consider(&b, 2, 0, 1, "``", 0);
        consider(&b, 1, 0, 1, "''", 0);
    }
    if ((m = lit(t, i, "&quot;"))) {
        uint32_t d = at(t, i + m);
        if (is_ascii_alpha(d) || is_ascii_digit(d) || d == '$') consider(&b, m + 1, 0, m, "``", 0);
        consider(&b, m, 0, m, "''", 0);
    }
    // single symbols
    if (c == '+' || c == '%' || c == '&' || c == 0x2030 || c == 0x2031 || c == '~' || c == '^' || c == '|' || c == '\\' || c == '=' || c == '/')
        consider(&b, 1, 1, 1, NULL, 0);
    if (c == '(') consider(&b, 1, 0, 1, "-LRB-", 0);
    if (c == ')') consider(&b, 1, 0, 1, "-RRB-", 0);
    if (c == '[') consider(&b, 1, 0, 1, "-LSB-", 0);
    if (c == ']') consider(&b, 1, 0, 1, "-RSB-", 0);
    if (c == '{') consider(&b, 1, 0, 1, "-LCB-", 0);
    if (c == '}') consider(&b, 1, 0, 1, "-RCB-", 0);
    if (c == '<' || c == '>') consider(&b, 1, 1, 1, NULL, 0);
    if (c == '-') {
        size_t k = i;
        while (at(t, k) == '-') k++;
        size_t len = k - i;
        consider(&b, len, len, len, (len == 3 || len == 4) ? "--" : NULL, 0);
    }
    if (c == '.') {
        size_t k = i;
        while (at(t, k) == '.') k++;
        size_t len = k - i;
        if (len >= 3 && len <= 5) consider(&b, len, 0, len, "...", 0);
        else if (len > 5) consider(&b, 5, 0, 5, "...", 0);
        // spaced dots ". . ." (2 to 4 repeats of ". " then ".")
        size_t reps = 0, e = i;
        while (at(t, e) == '.' && (at(t, e + 1) == ' ' || at(t, e + 1) == 0xA0) && reps < 4) { e += 2; reps++; }
        if (reps >= 2 && at(t, e) == '.') consider(&b, e + 1 - i, 0, e + 1 - i, "...", 0);
        consider(&b, 1, 1, 1, NULL, 0);
    }
    if (c == 0x85 || c == 0x2026) consider(&b, 1, 0, 1, "...", 0);
    if (c == '\\' && at(t, i + 1) == '*') {
        size_t k = i;
        while (k - i < 6 && at(t, k) == '\\' && at(t, k + 1) == '*') k += 2;
        consider(&b, k - i, k - i, k - i, NULL, 0);
    }
    if (c == '@' || c == '#' || c == '_' || c == '*') {
        size_t k = i;
        while (at(t, k) == c) k++;
        consider(&b, k - i, k - i, k - i, NULL, 0);
    }
    if (c == ',' || c == ';' || c == ':') consider(&b, 1, 1, 1, NULL, 0);
    if (c == '?' || c == '!') {
        size_t k = i;
        while (at(t, k) == '?' || at(t, k) == '!') k++;
        consider(&b, k - i, k - i, k - i, NULL, 0);
    }
    if (c == 0xA1 || c == 0xBF || c == 0x37E || c == 0x589 || c == 0x61F || c == 0x6D4 || (c >= 0x700 && c <= 0x702) || c == 0x7FA || c == 0x3002)
        consider(&b, 1, 1, 1, NULL, 0);
    // hyphenated things and alphanumeric runs
    size_t ht = m_hthing(t, i);
    if (ht && at(t, i + ht) == '.' && (at(t, i + ht + 1) == ',' || at(t, i + ht + 1) == ';' || at(t, i + ht + 1) == ':'))
        consider(&b, ht + 2, ht + 1, ht + 1, NULL, 0);
    if (ht) consider(&b, ht, ht, ht, NULL, 0);
    size_t th = m_thing(t, i);
    if (th && at(t, i + th) == '.' && (at(t, i + th + 1) == ',' || at(t, i + th + 1) == ';' || at(t, i + th + 1) == ':'))
        consider(&b, th + 2, th + 1, th + 1, NULL, 0);
    if (th) consider(&b, th, th, th, NULL, 0);
    if (is_upper(c)) {
        // THINGA = [A-Z]+ (([+&] | &amp;) [A-Z]+)+
        size_t k = i;
        while (is_upper(at(t, k))) k++;
        int parts = 0;
        for (;;) {
            size_t s = k;
            if (lit(t, s, "&amp;")) s += 5;
            else if (at(t, s) == '+' || at(t, s) == '&') s++;
            else break;
            if (!is_upper(at(t, s))) break;
            while (is_upper(at(t, s))) s++;
            k = s;
            parts++;
        }
        if (parts) consider(&b, k - i, k - i, k - i, "\001amp", 0);
    }
    // quotes and apostrophes
    if (c == '\'' && is_ascii_alpha(at(t, i + 1)) && i + 2 < t->n && !is_space(at(t, i + 2)) && at(t, i + 2) != '\n' && at(t, i + 2) != '\r' && at(t, i + 2) != '\t')
        consider(&b, 3, 0, 1, "`", 0);
    if ((m = m_redaux(t, i))) consider(&b, m, m, m, "\001quote", 0);
    if (is_apos(c) || c == '`' || (c >= 0x2018 && c <= 0x201F) || c == 0x82 || c == 0x84 || (c >= 0x91 && c <= 0x94) || c == 0x2039 || c == 0x203A || c == 0xAB || c == 0xBB) {
        size_t len = 1;
        uint32_t d = at(t, i + 1);
        if (c != '\'' && c != 0x92 && (d == '`' || (d >= 0x2018 && d <= 0x201F) || d == 0x82 || d == 0x84 || (d >= 0x91 && d <= 0x94) || d == 0x2039 || d == 0x203A || d == 0xAB || d == 0xBB)) len = 2;
        if (c == '\'' && d == '\'') len = 2;
        consider(&b, len, len, len, "\001quote", 0);
    }
    // other symbols stand alone up to U+2FFF (roman numerals aside) and as full-width forms; the
    // lexer has no rule for the rest (CJK symbols, emoji, ...) and deletes them
    int symbol = (c >= 0xA0 && c < 0x2150) || (c > 0x218F && c < 0x3000) || (c >= 0xFF01 && c <= 0xFF65);
    if (!b.total && symbol && !is_spacenl(c) && !is_letter(c) && !is_digit(c) && c != 0xAD && !(c >= 0x200B && c <= 0x200F) && !(c >= 0x300 && c <= 0x36F))
        consider(&b, 1, 1, 1, NULL, 0);
    if (!b.total) {
        // whitespace, newlines, zero-width characters and anything untokenizable produce no token
        b.total = b.advance = 1;
        b.skip = 1;
        if (c == '\r' && at(t, i + 1) == '\n') b.total = b.advance = 2;
        b.newline = is_newline(c);
    }
    return b;
}

// ---------------------------------------------------------------- output
typedef struct {
    char* s;
    size_t len, cap;
} Buf;

static void buf_put(Buf* b, const char* s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
static void buf_cp(Buf* b, uint32_t c) {
    char u[4];
    size_t n;
    if (c < 0x80) { u[0] = (char)c; n = 1; }
    else if (c < 0x800) { u[0] = (char)(0xC0 | (c >> 6)); u[1] = (char)(0x80 | (c & 0x3F)); n = 2; }
    else if (c < 0x10000) { u[0] = (char)(0xE0 | (c >> 12)); u[1] = (char)(0x80 | ((c >> 6) & 0x3F)); u[2] = (char)(0x80 | (c & 0x3F)); n = 3; }
    else { u[0] = (char)(0xF0 | (c >> 18)); u[1] = (char)(0x80 | ((c >> 12) & 0x3F)); u[2] = (char)(0x80 | ((c >> 6) & 0x3F)); u[3] = (char)(0x80 | (c & 0x3F)); n = 4; }
    buf_put(b, u, n);
}

// Decodes UTF-8 (invalid bytes become U+FFFD, as Java's decoder does).
static uint32_t* decode_utf8(const char* s, size_t len, size_t* n_out) {
    uint32_t* cp = malloc((len + 1) * sizeof *cp);
    if (!cp) abort();
    size_t n = 0;
    const unsigned char* p = (const unsigned char*)s;
    size_t i = 0;
    while (i < len) {
        unsigned char b0 = p[i];
        uint32_t c;
        size_t need;
        if (b0 < 0x80) { c = b0; need = 0; }
        else if ((b0 & 0xE0) == 0xC0 && b0 >= 0xC2) { c = b0 & 0x1F; need = 1; }
        else if ((b0 & 0xF0) == 0xE0) { c = b0 & 0x0F; need = 2; }
        else if ((b0 & 0xF8) == 0xF0 && b0 <= 0xF4) { c = b0 & 0x07; need = 3; }
        else { cp[n++] = 0xFFFD; i++; continue; }
        size_t k = 1;
        for (; k <= need && i + k < len && (p[i + k] & 0xC0) == 0x80; k++) c = (c << 6) | (p[i + k] & 0x3F);
        if (k <= need) { cp[n++] = 0xFFFD; i += k; continue; }
        cp[n++] = c;
        i += need + 1;
    }
    *n_out = n;
    return cp;
}

// Unicode's Final_Sigma condition within a token: a cased letter before (case-ignorable
// characters skipped), none after.
static int case_ignorable(uint32_t c) {
    return c == '.' || c == ':' || c == '\'' || c == 0x2018 || c == 0x2019 || c == 0xB7 || c == 0xAD || c == '^' ||
           c == '`' || c == 0xA8 || c == 0xAF || c == 0xB4 || c == 0xB8 || (c >= 0x2B0 && c <= 0x36F) || (c >= 0x483 && c <= 0x489);
}
static int final_sigma(const uint32_t* tok, size_t n, size_t k) {
    size_t b = k;
    while (b > 0 && case_ignorable(tok[b - 1])) b--;
    if (b == 0 || !unicode_is_cased(tok[b - 1])) return 0;
    size_t a = k + 1;
    while (a < n && case_ignorable(tok[a])) a++;
    return a == n || !unicode_is_cased(tok[a]);
}

// Emits the token text after the lexer's normalisations (quotes, ampersands, spaces) lower-cased.
static void emit(Buf* out, const Text* t, size_t i, const Match* m) {
    if (m->repl && m->repl[0] != '\001') {
        for (const char* r = m->repl; *r; r++) buf_cp(out, lower((unsigned char)*r));  // ASCII replacements
        return;
    }
    const char* mode = m->repl ? m->repl + 1 : "";
    for (size_t k = 0; k < m->tok; k++) {
        uint32_t c = t->c[i + k];
        if (c == 0xAD && !strcmp(mode, "")) continue;  // soft hyphens leave words
        if (!strcmp(mode, "quote")) {
            // latexQuotes(probablyLeft = false)
            if (c == 0x91 || c == 0x2018 || c == 0x201B || c == 0x2039) { buf_put(out, "`", 1); continue; }
            if (c == 0x92 || c == 0x2019 || c == 0x203A) { buf_put(out, "'", 1); continue; }
            if (c == 0x93 || c == 0x201C || c == 0xAB) { buf_put(out, "``", 2); continue; }
            if (c == 0x94 || c == 0x201D || c == 0xBB) { buf_put(out, "''", 2); continue; }
            if (c == '"') { buf_put(out, "''", 2); continue; }
        }
        if (!strcmp(mode, "nbsp") && c == ' ') { buf_cp(out, 0xA0); continue; }
        if (!strcmp(mode, "parens") && (c == '(' || c == ')')) { buf_put(out, c == '(' ? "-lrb-" : "-rrb-", 5); continue; }
        if (!strcmp(mode, "amp") && c == '&' && k + 4 < m->tok && lit(t, i + k, "&amp;")) { buf_put(out, "&", 1); k += 4; continue; }
        // Java's toLowerCase: İ becomes i + combining dot; a capital sigma ending a word is final
        if (c == 0x130) { buf_put(out, "i", 1); buf_cp(out, 0x307); continue; }
        if (c == 0x3A3 && final_sigma(t->c + i, m->tok, k)) {
            buf_cp(out, 0x3C2);
            continue;
        }
        buf_cp(out, lower(c));
    }
}

char* ptb_tokenize_raw(const char* text, size_t len) {
    Text t;
    uint32_t* cp = decode_utf8(text, len, &t.n);
    t.c = cp;
    Buf out = {NULL, 0, 0};
    buf_put(&out, "", 0);
    int line_has_token = 0;
    size_t i = 0;
    while (i < t.n) {
        Match m = scan(&t, i);
        if (m.newline) {
            buf_put(&out, "\n", 1);
            line_has_token = 0;
        } else if (!m.skip) {
            if (line_has_token) buf_put(&out, " ", 1);
            emit(&out, &t, i, &m);
            line_has_token = 1;
        }
        i += m.advance;
    }
    free(cp);
    return out.s;
}

// The toolkit's filter: these tokens are dropped after lower-casing (so -lrb- and friends stay).
static int is_filtered(const char* tok, size_t n) {
    static const char* PUNCT[] = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";", NULL};
    for (int k = 0; PUNCT[k]; k++)
        if (strlen(PUNCT[k]) == n && !memcmp(PUNCT[k], tok, n)) return 1;
    return 0;
}

void ptb_tokenize_captions(const char* const* captions, size_t n, char** out) {
    // pycocoevalcap joins the captions with '\n' after replacing their own newlines by spaces,
    // so that the lexer sees each caption with the next one as context.
    Buf all = {NULL, 0, 0};
    buf_put(&all, "", 0);
    // Every other line separator the lexer knows (\r \v \f U+0085 U+2028 U+2029) becomes a space
    // too, so that output line k is always caption k (the jar would split the caption there).
    for (size_t i = 0; i < n; i++) {
        if (i) buf_put(&all, "\n", 1);
        for (const unsigned char* p = (const unsigned char*)captions[i]; *p; p++) {
            if (*p == '\n' || *p == '\r' || *p == '\v' || *p == '\f') { buf_put(&all, " ", 1); continue; }
            if (p[0] == 0xC2 && p[1] == 0x85) { buf_put(&all, " ", 1); p++; continue; }
            if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) { buf_put(&all, " ", 1); p += 2; continue; }
            buf_put(&all, (const char*)p, 1);
        }
    }
    char* raw = ptb_tokenize_raw(all.s, all.len);
    free(all.s);
    // Line k of the output belongs to caption k; the toolkit keeps the tokens not in its list,
    // splitting on single spaces.
    char* line = raw;
    for (size_t i = 0; i < n; i++) {
        char* end = line ? strchr(line, '\n') : NULL;
        size_t line_len = line ? (end ? (size_t)(end - line) : strlen(line)) : 0;
        Buf o = {NULL, 0, 0};
        buf_put(&o, "", 0);
        size_t k = 0;
        while (line && k <= line_len) {
            size_t e = k;
            while (e < line_len && line[e] != ' ') e++;
            if (!is_filtered(line + k, e - k)) {
                if (o.len) buf_put(&o, " ", 1);
                buf_put(&o, line + k, e - k);
            }
            k = e + 1;
        }
        out[i] = o.s;
        line = (line && end) ? end + 1 : NULL;
    }
    free(raw);
}
