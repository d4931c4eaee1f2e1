// The Stanford PTBTokenizer (CoreNLP 3.4.1, the jar pycocoevalcap runs, with -preserveLines
// -lowerCase) re-implemented from the rules of its JFlex specification, PTBLexer.flex, then the
// toolkit's punctuation filter.
//
// JFlex picks the longest match over all rules, a rule's trailing context (r1/r2) counting in the
// length, and the earliest rule on a tie; the token of r1/r2 is the longest r1 that leaves an r2.
// scan() asks every rule, in the order of the specification, for its longest match at the
// current position. The spec is %caseless: its string literals match in either case (and 's',
// 'i', 'k' also match U+017F, U+0130, U+0131 and U+212A, which Unicode folds onto them), its
// character classes do not. The lexer reads Java chars, so a character outside the BMP is two
// UTF-16 units here too. Character classes that depend on a Unicode version ([:letter:],
// [:digit:], [:uppercase:]) and Java's lower-casing come from eval/unicode_tables.h, generated
// from the jar and Java 17 themselves (eval/gen_unicode_tables.py).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/unicode_tables.h"

enum { END = 0x10000 };  // past the end of the text: a member of no class, not even a negated one

typedef struct {
    const uint16_t* u;  // UTF-16 code units
    size_t n;
    int captions;  // 1: the toolkit's batch, in which every '\n' joins two captions
} Text;

static inline uint32_t at(const Text* t, size_t i) { return i < t->n ? t->u[i] : END; }
static inline size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

// ---------------------------------------------------------------- character classes
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
#define IN_TABLE(c, table) in_ranges(c, table, sizeof table / sizeof *table)

static inline int ascii_letter(uint32_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static inline int ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static inline int ascii_alnum(uint32_t c) { return ascii_letter(c) || ascii_digit(c); }
static inline int ascii_upper(uint32_t c) { return c >= 'A' && c <= 'Z'; }
static inline int one_of(uint32_t c, const char* set) { return c && c < 0x80 && strchr(set, (int)c); }

// [:letter:], [:digit:] (with the NKo digits U+07C0-07C9 that DIGIT adds), [:uppercase:]
static int letter(uint32_t c) { return c < 0x80 ? ascii_letter(c) : c < END && IN_TABLE(c, PTB_LETTERS); }
static int digit(uint32_t c) { return c < 0x80 ? ascii_digit(c) : c < END && IN_TABLE(c, PTB_DIGITS); }
static int uppercase(uint32_t c) { return c < 0x80 ? ascii_upper(c) : c < END && IN_TABLE(c, PTB_UPPERCASE); }
static int letter_digit(uint32_t c) { return letter(c) || digit(c); }

// The characters LETTER adds to [:letter:]: the soft hyphen and the spec's list of marks and
// modifiers (Latin, Greek, Cyrillic, Hebrew, Arabic, Syriac, NKo, Indic, Thai, Lao).
static const uint32_t LETTER_EXTRA[][2] = {
    {0xAD, 0xAD}, {0x237, 0x24F}, {0x2C2, 0x2C5}, {0x2D2, 0x2DF}, {0x2E5, 0x2FF}, {0x300, 0x36F}, {0x370, 0x37D},
    {0x384, 0x385}, {0x3CF, 0x3CF}, {0x3F6, 0x3F6}, {0x3FC, 0x3FF}, {0x483, 0x487}, {0x4CF, 0x4CF}, {0x4F6, 0x4FF},
    {0x510, 0x525}, {0x55A, 0x55F}, {0x591, 0x5BD}, {0x5BF, 0x5BF}, {0x5C1, 0x5C2}, {0x5C4, 0x5C5}, {0x5C7, 0x5C7},
    {0x615, 0x61A}, {0x63B, 0x63F}, {0x64B, 0x65E}, {0x670, 0x670}, {0x6D6, 0x6EF}, {0x6FA, 0x6FF}, {0x70F, 0x70F},
    {0x711, 0x711}, {0x730, 0x74F}, {0x750, 0x77F}, {0x7A6, 0x7B1}, {0x7CA, 0x7F5}, {0x7FA, 0x7FA}, {0x900, 0x903},
    {0x93C, 0x93C}, {0x93E, 0x94E}, {0x951, 0x955}, {0x962, 0x963}, {0x981, 0x983}, {0x9BC, 0x9C4}, {0x9C7, 0x9C8},
    {0x9CB, 0x9CD}, {0x9D7, 0x9D7}, {0x9E2, 0x9E3}, {0xA01, 0xA03}, {0xA3C, 0xA3C}, {0xA3E, 0xA4F}, {0xA81, 0xA83},
    {0xABC, 0xACF}, {0xB82, 0xB82}, {0xBBE, 0xBC2}, {0xBC6, 0xBC8}, {0xBCA, 0xBCD}, {0xC01, 0xC03}, {0xC3E, 0xC56},
    {0xD3E, 0xD44}, {0xD46, 0xD48}, {0xE30, 0xE3A}, {0xE47, 0xE4E}, {0xEB1, 0xEBC}, {0xEC8, 0xECD}};
static int letter_extra(uint32_t c) { return c >= 0xAD && c < 0xECE && IN_TABLE(c, LETTER_EXTRA); }

// SPACE = [ \t\u00A0\u2000-\u200A\u3000]; NEWLINE = \r | \r?\n | [\u2028\u2029\u000B\u000C\u0085]
static int space(uint32_t c) { return c == ' ' || c == '\t' || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x3000; }
static int newline_char(uint32_t c) { return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x85 || c == 0x2028 || c == 0x2029; }
static int spacenl_char(uint32_t c) { return space(c) || newline_char(c); }
// The longest SPACENL at i ("\r\n" is one NEWLINE), or 0.
static size_t m_spacenl(const Text* t, size_t i) {
    uint32_t c = at(t, i);
    if (c == '\r' && at(t, i + 1) == '\n') return 2;
    return spacenl_char(c) ? 1 : 0;
}
// The one-character classes of several rules
static int insentp(uint32_t c) { return c == ',' || c == ';' || c == ':' || c == 0x3001; }  // INSENTP
static int hyphen(uint32_t c) { return c == '-' || c == '_' || c == 0x58A || c == 0x2010 || c == 0x2011; }  // HYPHEN

// MISCSYMBOL, the spec's list of symbols that stand alone
static const uint32_t MISC_SYMBOLS[][2] = {
    {'%', '%'}, {'&', '&'}, {'+', '+'}, {'\\', '\\'}, {'^', '^'}, {'|', '|'}, {'~', '~'}, {0xA6, 0xA9}, {0xAC, 0xAC},
    {0xAE, 0xBA}, {0xD7, 0xD7}, {0xF7, 0xF7}, {0x387, 0x387}, {0x5BE, 0x5BE}, {0x5C0, 0x5C0}, {0x5C3, 0x5C3},
    {0x5C6, 0x5C6}, {0x5F3, 0x5F4}, {0x600, 0x603}, {0x606, 0x60A}, {0x60C, 0x60C}, {0x614, 0x614}, {0x61B, 0x61B},
    {0x61E, 0x61E}, {0x66A, 0x66A}, {0x66D, 0x66D}, {0x703, 0x70D}, {0x7F6, 0x7F8}, {0x964, 0x965}, {0xE4F, 0xE4F},
    {0x1FBD, 0x1FBD}, {0x2016, 0x2017}, {0x2020, 0x2023}, {0x2030, 0x2038}, {0x203B, 0x203B}, {0x203E, 0x2042},
    {0x2044, 0x2044}, {0x207A, 0x207F}, {0x208A, 0x208E}, {0x2100, 0x214F}, {0x2190, 0x2BFF}, {0x3012, 0x3012},
    {0x30FB, 0x30FB}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF20}, {0xFF3B, 0xFF40}, {0xFF5B, 0xFF65}};
static int misc_symbol(uint32_t c) { return c < END && IN_TABLE(c, MISC_SYMBOLS); }

// ---------------------------------------------------------------- caseless string literals
// The lower-case ASCII letter a character matches as in a caseless literal, or the character.
static uint32_t fold(uint32_t c) {
    if (c < 0x80) return ascii_upper(c) ? c + 32 : c;
    if (c == 0x17F) return 's';
    if (c == 0x130 || c == 0x131) return 'i';
    if (c == 0x212A) return 'k';
    return c;
}
// A literal of the spec at i; in these strings an upper-case letter stands for a one-letter class
// of the spec ([A]z, [M]iss, ...) and matches only itself. Returns its length or 0.
static size_t lit(const Text* t, size_t i, const char* s) {
    size_t k = 0;
    for (; s[k]; k++) {
        uint32_t want = (unsigned char)s[k], c = at(t, i + k);
        if (ascii_upper(want) ? c != want : fold(c) != want) return 0;
    }
    return k;
}

// A list of literals with an index by first letter, so that a lookup tries only a few.
typedef struct {
    const char* const* words;  // NULL-terminated
    unsigned char by_first[27][24];  // per first letter (26: others), word indices + 1, 0-terminated
} Literals;

static void index_literals(Literals* l) {
    unsigned char n[27] = {0};
    for (int w = 0; l->words[w]; w++) {
        uint32_t f = fold((unsigned char)l->words[w][0]);
        int slot = ascii_letter(f) ? (int)(f - 'a') : 26;
        if (n[slot] + 1 >= (int)sizeof l->by_first[slot]) abort();  // a list too long for its index
        l->by_first[slot][n[slot]++] = (unsigned char)(w + 1);
    }
}
// The lengths of all literals of the list that match at i, as a bit set (bit L: length L).
static uint32_t lit_lengths(const Literals* l, const Text* t, size_t i) {
    uint32_t f = fold(at(t, i));
    const unsigned char* idx = l->by_first[ascii_letter(f) ? f - 'a' : 26];
    uint32_t lengths = 0;
    for (; *idx; idx++) {
        size_t m = lit(t, i, l->words[*idx - 1]);
        if (m) lengths |= 1u << m;
    }
    return lengths;
}
static size_t highest_bit(uint32_t set) { return set ? 31 - (size_t)__builtin_clz(set) : 0; }

static const char* const ABBREV1_WORDS[] = {
    // ABMONTH, ABDAYS
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues", "wed",
    "thu", "thurs", "fri",
    // ABSTATE
    "ala", "ariz", "Az", "Ark", "calif", "colo", "conn", "ct", "dak", "Del", "fla", "ga", "Ill", "ind", "kan", "kans",
    "ky", "La", "Mass", "md", "mich", "minn", "Miss", "mo", "mont", "neb", "nev", "okla", "Ore", "Pa", "penn", "tenn",
    "Tex", "va", "vt", "Wash", "wis", "wisc", "wyo",
    // ABCOMP (Pp?t[ye]s? in m_abbrev1), ABNUM, ABPTIT, and the rest of ABBREV1
    "inc", "co", "cos", "corp", "ltd", "plc", "rt", "bancorp", "bhd", "assn", "univ", "intl", "sys", "tel", "est", "ext",
    "sq", "jr", "sr", "bros", "ed.d", "ph.d", "blvd", "rd", "esq", "etc", "al", "seq", "bldg", NULL};
// ABBREV4 without ACRO: ABTITLE, a few words, ABCOMP2 (M[ft]g in m_abbrev4)
static const char* const ABBREV4_WORDS[] = {
    "mr", "mrs", "ms", "Miss", "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps", "atty", "attys", "lt", "col",
    "gen", "messrs", "gov", "govs", "adm", "rev", "maj", "sgt", "cpl", "pvt", "capt", "st", "ste", "ave", "pres",
    "lieut", "hon", "brig", "cmdr", "comdr", "pfc", "spc", "supt", "supts", "det", "mt", "ft", "adj", "adv", "asst",
    "assoc", "ens", "insp", "mlle", "mme", "msgr", "sfc", "vs", "alex", "wm", "jos", "cie", "a.k.a", "cf", "treas",
    "ph", "invt", "elec", "natl", "dept", NULL};
// ABBREV3 = (ca|figs?|prop|nos?|art|bldg|prop|pp|op)\.
static const char* const ABBREV3_WORDS[] = {"ca", "fig", "figs", "prop", "no", "nos", "art", "bldg", "pp", "op", NULL};
// The words after which an acronym's period also ends a sentence (first letters case-sensitive)
static const char* const ACRONYM_FOLLOWERS[] = {
    "About", "According", "Additionally", "After", "An", "A", "As", "At", "But", "Earlier", "He", "Her", "Here",
    "However", "If", "In", "It", "Last", "Many", "More", "Mr.", "Ms.", "Now", "Once", "One", "Other", "Our", "She",
    "Since", "So", "Some", "Such", "That", "The", "Their", "Then", "There", "These", "They", "This", "We", "When",
    "While", "What", "Yet", "You", NULL};
// FILENAME_EXT
static const char* const FILE_EXTS[] = {
    "bat", "bmp", "c", "class", "cgi", "cpp", "dll", "doc", "docx", "exe", "gif", "gz", "h", "htm", "html", "jar",
    "java", "jpeg", "jpg", "mov", "mp3", "pdf", "php", "pl", "png", "ppt", "ps", "py", "sql", "tar", "txt", "wav", "x",
    "xml", "zip", NULL};
// ACRO's special forms: (Canada|Sino|Korean|EU|Japan|non)-U\.S | U\.S\.-(U\.K|U\.S\.S\.R)
static const char* const ACRO_SPECIAL[] = {"canada-u.s", "sino-u.s", "korean-u.s", "eu-u.s", "japan-u.s", "non-u.s",
                                           "u.s.-u.k", "u.s.-u.s.s.r", NULL};
// TBSPEC's plain literals (Cap{APOS}n and c{APOS}est in m_tbspec)
static const char* const TBSPEC_WORDS[] = {"-rrb-", "-lrb-", "-rcb-", "-lcb-", "-rsb-", "-lsb-", "c.d.s", "pro-", "anti-",
                                           "s&p-500", "s&amp;p-500", "s&ls", "s&amp;ls", NULL};
static Literals abbrev1 = {ABBREV1_WORDS, {{0}}}, abbrev4 = {ABBREV4_WORDS, {{0}}}, abbrev3 = {ABBREV3_WORDS, {{0}}},
                followers = {ACRONYM_FOLLOWERS, {{0}}}, file_exts = {FILE_EXTS, {{0}}}, acro_specials = {ACRO_SPECIAL, {{0}}},
                tbspec = {TBSPEC_WORDS, {{0}}};
static pthread_once_t literals_once = PTHREAD_ONCE_INIT;
static void index_all_literals(void) {
    Literals* all[] = {&abbrev1, &abbrev4, &abbrev3, &followers, &file_exts, &acro_specials, &tbspec};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++) index_literals(all[k]);
}

// ---------------------------------------------------------------- macros of the specification
// SPLET = &[aeiouAEIOU](acute|grave|uml);
static size_t m_splet(const Text* t, size_t i) {
    if (at(t, i) != '&' || !one_of(at(t, i + 1), "aeiouAEIOU")) return 0;
    size_t m = lit(t, i + 2, "acute");
    if (!m) m = lit(t, i + 2, "grave");
    if (!m) m = lit(t, i + 2, "uml");
    return m && at(t, i + 2 + m) == ';' ? m + 3 : 0;
}
// LETTER = [:letter:] | SPLET | the extra marks; its length at i
static size_t m_letter(const Text* t, size_t i) {
    uint32_t c = at(t, i);
    if (c < 0x80) return ascii_letter(c) ? 1 : c == '&' ? m_splet(t, i) : 0;
    return letter(c) || letter_extra(c) ? 1 : 0;
}
static size_t m_letter_or_digit(const Text* t, size_t i) {
    size_t m = m_letter(t, i);
    return m ? m : digit(at(t, i)) ? 1 : 0;
}
// WORD = LETTER (LETTER|DIGIT)* ([.!?] LETTER (LETTER|DIGIT)*)*: its longest match. Every
// shorter WORD is followed by a LETTER, a DIGIT or [.!?] LETTER.
static size_t m_word(const Text* t, size_t i) {
    size_t m = m_letter(t, i);
    if (!m) return 0;
    size_t k = i + m;
    for (;;) {
        while ((m = m_letter_or_digit(t, k))) k += m;
        uint32_t c = at(t, k);
        if ((c == '.' || c == '!' || c == '?') && (m = m_letter(t, k + 1))) k += 1 + m;
        else return k - i;
    }
}
// APOS = ['\u0092\u2019] | &apos;  APOSETCETERA = APOS | [`\u0091\u2018\u201B]
static size_t m_apos(const Text* t, size_t i) {
    uint32_t c = at(t, i);
    if (c == '\'' || c == 0x92 || c == 0x2019) return 1;
    return c == '&' ? lit(t, i, "&apos;") : 0;
}
static size_t m_aposetc(const Text* t, size_t i) {
    uint32_t c = at(t, i);
    return (c == '`' || c == 0x91 || c == 0x2018 || c == 0x201B) ? 1 : m_apos(t, i);
}
// REDAUX = APOS ([msdMSD] | re | ve | ll)
static size_t m_redaux(const Text* t, size_t i) {
    size_t a = m_apos(t, i);
    if (!a) return 0;
    if (one_of(at(t, i + a), "msdMSD")) return a + 1;
    size_t m = lit(t, i + a, "re");
    if (!m) m = lit(t, i + a, "ve");
    if (!m) m = lit(t, i + a, "ll");
    return m ? a + m : 0;
}
// SREDAUX = n APOSETCETERA t
static size_t m_sredaux(const Text* t, size_t i) {
    if (fold(at(t, i)) != 'n') return 0;
    size_t a = m_aposetc(t, i + 1);
    return a && fold(at(t, i + 1 + a)) == 't' ? a + 2 : 0;
}
// ACRO = [A-Za-z](\.[A-Za-z])* | the special forms. The plain chain matches with every odd
// length up to its longest, which is returned (0: none).
static size_t acro_chain(const Text* t, size_t i) {
    if (!ascii_letter(at(t, i))) return 0;
    size_t k = i + 1;
    while (at(t, k) == '.' && ascii_letter(at(t, k + 1))) k += 2;
    return k - i;
}
static size_t acro_special(const Text* t, size_t i) {
    uint32_t f = fold(at(t, i));
    return (f == 'c' || f == 's' || f == 'k' || f == 'e' || f == 'j' || f == 'n' || f == 'u')
               ? highest_bit(lit_lengths(&acro_specials, t, i)) : 0;
}
// The longest ACRO followed by '.' (ACRO\. and ACRO2\.; ACRO2 has no chain of one letter):
// every shorter chain is followed by '.', the longest one may be.
static size_t acro_before_dot(const Text* t, size_t i, int acro2) {
    size_t chain = acro_chain(t, i), best = 0;
    if (chain && at(t, i + chain) == '.' && (chain >= 3 || !acro2)) best = chain;
    else if (chain >= 3 + 2 * (size_t)acro2) best = chain - 2;
    size_t s = acro_special(t, i);
    if (s && at(t, i + s) == '.') best = max_size(best, s);
    return best;
}
// SGML = \<([!\?][A-Za-z\-][^>\r\n]* | NAME([ ]+(NAME | NAME[ ]*=[ ]*('[^']*'|\"[^\"]*\")))*[ ]*\/? | \/NAME)[ ]*\>
// with NAME = [A-Za-z][A-Za-z0-9_:\.\-]*; its one possible length at i, or 0. NAME cannot stop
// short of a space, '=', '/' or '>', so every part is determined. In the toolkit's batch a
// quoted value may not run into the next caption (the jar would shift every later caption).
static size_t sgml_name(const Text* t, size_t k) {
    if (!ascii_letter(at(t, k))) return 0;
    size_t e = k + 1;
    while (ascii_alnum(at(t, e)) || one_of(at(t, e), "_:.-")) e++;
    return e - k;
}
static size_t m_sgml(const Text* t, size_t i) {
    if (at(t, i) != '<') return 0;
    size_t k = i + 1, n;
    uint32_t c = at(t, k);
    if (c == '!' || c == '?') {
        if (!(ascii_letter(at(t, k + 1)) || at(t, k + 1) == '-')) return 0;
        k += 2;
        while (k < t->n && at(t, k) != '>' && at(t, k) != '\r' && at(t, k) != '\n') k++;
    } else if (c == '/') {
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
                if (q != '\'' && q != '"') return 0;  // NAME= must have a quoted value
                size_t e = v + 1;
                while (e < t->n && at(t, e) != q && !(t->captions && at(t, e) == '\n')) e++;
                if (at(t, e) != q) return 0;
                a = e + 1;
            }
            k = a;
        }
        while (at(t, k) == ' ') k++;
        if (at(t, k) == '/') k++;
    }
    while (at(t, k) == ' ') k++;
    return at(t, k) == '>' ? k + 1 - i : 0;
}

// ---------------------------------------------------------------- rules with searches
// FULLURL = https?:\/\/ U1+ U2 and the path of LIKELYURL = \/ P1+ U2, with
// U1 = [^ \t\n\f\r\"<>|(){}], P1 = [^ \t\n\f\r\"<>|()], U2 = [^ \t\n\f\r\"<>|.!?(){},-]
static int url_char(uint32_t c) { return c != END && !one_of(c, " \t\n\f\r\"<>|(){}"); }
static int path_char(uint32_t c) { return c != END && !one_of(c, " \t\n\f\r\"<>|()"); }
static int url_last_char(uint32_t c) { return url_char(c) && !one_of(c, ".!?,-"); }
static size_t m_full_url(const Text* t, size_t i) {
    size_t m = lit(t, i, "https://");
    if (!m) m = lit(t, i, "http://");
    if (!m) return 0;
    size_t e = i + m;
    while (url_char(at(t, e))) e++;
    for (; e >= i + m + 2; e--)
        if (url_last_char(at(t, e - 1))) return e - i;
    return 0;
}
static size_t url_path(const Text* t, size_t k) {
    if (at(t, k) != '/') return 0;
    size_t e = k + 1;
    while (path_char(at(t, e))) e++;
    for (; e >= k + 3; e--)
        if (url_last_char(at(t, e - 1))) return e - k;
    return 0;
}
// LIKELYURL = ((www\.(W+\.)+[a-zA-Z]{2,4}) | ((D+\.)+(com|net|org|edu))) path? with
// W = [^ \t\n\f\r\"<>|.!?(){},] and D = [^ \t\n\f\r\"`'<>|.!?(){},-_$] (",-_" is the range
// U+002C-U+005F: no digits, no capitals). Every end after a "segment." may take the suffix.
static int www_char(uint32_t c) { return c != END && !one_of(c, " \t\n\f\r\"<>|.!?(){},"); }
static int domain_char(uint32_t c) { return www_char(c) && c != '`' && c != '\'' && c != '$' && !(c >= 0x2C && c <= 0x5F); }
static size_t m_likely_url(const Text* t, size_t i) {
    size_t best = 0;
    if (lit(t, i, "www.")) {
        size_t k = i + 4;
        for (;;) {
            size_t s = k;
            while (www_char(at(t, k))) k++;
            if (k == s || at(t, k) != '.') break;
            k++;
            for (size_t l = 1; l <= 4 && ascii_letter(at(t, k + l - 1)); l++)
                if (l >= 2) best = max_size(best, k + l - i + url_path(t, k + l));
        }
    }
    size_t k = i;
    for (;;) {
        size_t s = k;
        while (domain_char(at(t, k))) k++;
        if (k == s || at(t, k) != '.') break;
        k++;
        size_t m = lit(t, k, "com");
        if (!m) m = lit(t, k, "net");
        if (!m) m = lit(t, k, "org");
        if (!m) m = lit(t, k, "edu");
        if (m) best = max_size(best, k + m - i + url_path(t, k + m));
    }
    return best;
}
// EMAIL = (&lt;|<)? [a-zA-Z0-9] E* @ (F+\.)* F+ (&gt;|>)? with E = [^ \t\n\f\r\"<>|()\u00A0{}]
// and F = E without '.': the longest end e after some '@' whose domain has no empty part.
static int email_char(uint32_t c) { return c != END && c != 0xA0 && !one_of(c, " \t\n\f\r\"<>|(){}"); }
static size_t m_email(const Text* t, size_t i) {
    size_t s = i;
    if (at(t, i) == '<') s = i + 1;
    else if (at(t, i) == '&') s = i + lit(t, i, "&lt;");
    if (!ascii_alnum(at(t, s))) return 0;
    size_t run = s + 1;
    while (email_char(at(t, run))) run++;
    size_t best = 0;
    for (size_t e = run; e >= s + 3 && e + 4 > best + i; e--) {
        if (at(t, e - 1) == '.') continue;
        for (size_t a = e - 2; a > s; a--) {
            if (at(t, a) == '.' && at(t, a + 1) == '.') break;  // an empty part: no '@' further left helps
            if (at(t, a) == '@' && at(t, a + 1) != '.') {
                size_t suffix = at(t, e) == '>' ? 1 : lit(t, e, "&gt;");
                best = max_size(best, e + suffix - i);
                break;
            }
        }
    }
    return best;
}
// PHONE = (\(D{2,3}\)[ \u00A0]? | (\+\+?)?(D{2,4}[\- \u00A0])?D{2,4}[\- \u00A0]) D{3,4}[\- \u00A0]?D{3,5}
//       | ((\+\+?)?D{2,4}\.)?D{2,4}\.D{3,4}\.D{3,5}     (D = [0-9])
// as flat patterns: "#ab" a..b digits, 'p' (\+\+?)?, 'n' [ \u00A0]?, 's' [\- \u00A0], 'S' [\- \u00A0]?
static const char* const PHONE_PATTERNS[] = {"(#23)n#34S#35", "p#24s#24s#34S#35", "p#24s#34S#35", "p#24.#24.#34.#35",
                                             "#24.#34.#35", NULL};
static long phone_match(const Text* t, size_t k, const char* p) {
    if (!*p) return (long)k;
    uint32_t c = at(t, k);
    switch (*p) {
        case '#': {
            long best = -1;
            size_t lo = (size_t)(p[1] - '0'), hi = (size_t)(p[2] - '0'), n = 0;
            while (n < hi && ascii_digit(at(t, k + n))) n++;
            for (; n >= lo && n > 0; n--) {
                long e = phone_match(t, k + n, p + 3);
                if (e > best) best = e;
            }
            return best;
        }
        case 'p': {
            long best = phone_match(t, k, p + 1);
            for (size_t n = 1; n <= 2 && at(t, k + n - 1) == '+'; n++) {
                long e = phone_match(t, k + n, p + 1);
                if (e > best) best = e;
            }
            return best;
        }
        case 'n':
        case 'S': {
            long best = phone_match(t, k, p + 1);
            if (c == ' ' || c == 0xA0 || (*p == 'S' && c == '-')) {
                long e = phone_match(t, k + 1, p + 1);
                if (e > best) best = e;
            }
            return best;
        }
        case 's': return (c == ' ' || c == 0xA0 || c == '-') ? phone_match(t, k + 1, p + 1) : -1;
        default: return c == (uint32_t)*p ? phone_match(t, k + 1, p + 1) : -1;
    }
}
static size_t m_phone(const Text* t, size_t i) {
    uint32_t c = at(t, i);
    if (!(ascii_digit(c) || c == '(' || c == '+')) return 0;
    long best = 0;
    for (int k = 0; PHONE_PATTERNS[k]; k++) {
        long e = phone_match(t, i, PHONE_PATTERNS[k]);
        if (e > best + (long)i) best = e - (long)i;
    }
    return (size_t)best;
}
// HTHING = [A-Za-z0-9][A-Za-z0-9.,\u00AD]*(-([A-Za-z0-9\u00AD]+ | ACRO2\.))+ and
// THING = P (HYPHEN P)*, P = ([dDoOlL] APOSETCETERA A)? A+ with A = [:letter:]|[:digit:]: a part
// can end in one or two places (shorter parts are followed by what cannot follow), and each may
// go on after a hyphen. Ends records the longest end, and the longest followed by "." INSENTP
// (for the rules X\./{INSENTP}); the starts still to visit are kept in order, without repeats.
typedef struct {
    size_t best, best_dot;  // absolute end positions, 0 if none
    size_t* todo;           // part starts (HTHING: the dash) to visit
    size_t n_todo, cap, local[8];
} Ends;
static void ends_init(Ends* e) {
    e->best = e->best_dot = 0;
    e->todo = e->local;
    e->n_todo = 0;
    e->cap = sizeof e->local / sizeof *e->local;
}
static void ends_free(Ends* e) {
    if (e->todo != e->local) free(e->todo);
}
static void ends_visit(Ends* e, size_t k) {
    for (size_t j = 0; j < e->n_todo; j++)
        if (e->todo[j] == k) return;
    if (e->n_todo == e->cap) {
        size_t* grown = malloc(2 * e->cap * sizeof *grown);
        if (!grown) abort();
        memcpy(grown, e->todo, e->n_todo * sizeof *grown);
        ends_free(e);
        e->todo = grown;
        e->cap *= 2;
    }
    e->todo[e->n_todo++] = k;
}
static int ends_next(Ends* e, size_t* k) {  // the smallest start left: every step goes forward
    if (!e->n_todo) return 0;
    size_t min = 0;
    for (size_t j = 1; j < e->n_todo; j++)
        if (e->todo[j] < e->todo[min]) min = j;
    *k = e->todo[min];
    e->todo[min] = e->todo[--e->n_todo];
    return 1;
}
static void record_end(const Text* t, Ends* e, size_t end) {
    e->best = max_size(e->best, end);
    if (at(t, end) == '.' && insentp(at(t, end + 1))) e->best_dot = max_size(e->best_dot, end + 2);
}
static void m_hthing(const Text* t, size_t i, Ends* ends) {
    ends_init(ends);
    if (!ascii_alnum(at(t, i))) return;
    size_t k = i + 1;
    while (ascii_alnum(at(t, k)) || at(t, k) == '.' || at(t, k) == ',' || at(t, k) == 0xAD) k++;
    if (at(t, k) == '-') ends_visit(ends, k);
    while (ends_next(ends, &k)) {
        size_t e = k + 1;
        while (ascii_alnum(at(t, e)) || at(t, e) == 0xAD) e++;
        if (e > k + 1) {
            record_end(t, ends, e);
            if (at(t, e) == '-') ends_visit(ends, e);
        }
        size_t l = acro_before_dot(t, k + 1, 1);  // shorter ACRO2\. parts end before a letter
        if (l) {
            record_end(t, ends, k + 2 + l);
            if (at(t, k + 2 + l) == '-') ends_visit(ends, k + 2 + l);
        }
    }
}
static void m_thing(const Text* t, size_t i, Ends* ends) {
    ends_init(ends);
    if (letter_digit(at(t, i))) ends_visit(ends, i);
    size_t k;
    while (ends_next(ends, &k)) {
        size_t e = k, a;
        while (letter_digit(at(t, e))) e++;
        if (e > k) {
            record_end(t, ends, e);
            if (hyphen(at(t, e))) ends_visit(ends, e + 1);
        }
        if (one_of(at(t, k), "dDoOlL") && (a = m_aposetc(t, k + 1))) {
            e = k + 1 + a;
            while (letter_digit(at(t, e))) e++;
            if (e >= k + 3 + a) {
                record_end(t, ends, e);
                if (hyphen(at(t, e))) ends_visit(ends, e + 1);
            }
        }
    }
}
// THINGA = [A-Z]+ (([+&] | &amp;) [A-Z]+)+
static void m_thinga(const Text* t, size_t i, Ends* ends) {
    ends_init(ends);
    size_t k = i;
    while (ascii_upper(at(t, k))) k++;
    if (k == i) return;
    for (;;) {
        size_t s = k;
        if (at(t, s) == '+') s++;
        else if (at(t, s) == '&') s += lit(t, s, "&amp;") ? 5 : 1;
        else break;
        if (!ascii_upper(at(t, s))) break;
        while (ascii_upper(at(t, s))) s++;
        k = s;
        record_end(t, ends, k);
    }
}
// THING3 = [A-Za-z0-9]+(-[A-Za-z]+){0,2} (\\?\/[A-Za-z0-9]+(-[A-Za-z]+){0,2}){1,2}
static size_t thing3_segment(const Text* t, size_t i) {
    size_t k = i;
    while (ascii_alnum(at(t, k))) k++;
    if (k == i) return 0;
    for (int h = 0; h < 2 && at(t, k) == '-' && ascii_letter(at(t, k + 1)); h++) {
        k++;
        while (ascii_letter(at(t, k))) k++;
    }
    return k - i;
}
static size_t m_thing3(const Text* t, size_t i) {
    size_t m = thing3_segment(t, i);
    if (!m) return 0;
    size_t k = i + m;
    int parts = 0;
    while (parts < 2) {
        size_t s = k + (at(t, k) == '\\');
        if (at(t, s) != '/' || !(m = thing3_segment(t, s + 1))) break;
        k = s + 1 + m;
        parts++;
    }
    return parts ? k - i : 0;
}
// FILENAME = (LETTER|DIGIT)+ ([.](LETTER|DIGIT)+)* [.]FILENAME_EXT, trailing ({SPACENL}|[.?!,]):
// the longest total over every dot and extension.
static size_t m_filename(const Text* t, size_t i, size_t* tok) {
    size_t k = i, best = 0, m;
    for (;;) {
        size_t s = k;
        while ((m = m_letter_or_digit(t, k))) k += m;
        if (k == s || at(t, k) != '.') return best;
        uint32_t exts = lit_lengths(&file_exts, t, k + 1);
        for (size_t l = 1; exts >> l; l++) {
            if (!(exts >> l & 1)) continue;
            size_t e = k + 1 + l;
            size_t trail = one_of(at(t, e), ".?!,") ? 1 : m_spacenl(t, e);
            if (trail && e + trail - i > best) {
                best = e + trail - i;
                *tok = e - i;
            }
        }
        k++;
    }
}

// ---------------------------------------------------------------- the scanner
typedef enum {
    TEXT,       // the matched text
    NO_SHY,     // without soft hyphens (removeSoftHyphens: "-" if nothing is left)
    NBSP,       // spaces become U+00A0 (SGML, FRAC)
    PHONE,      // spaces become U+00A0, parentheses -LRB- -RRB-
    PARENS,     // parentheses become -LRB- -RRB- (smileys)
    AMP,        // &amp; becomes & (normalizeAmp)
    QUOTE_LEFT, QUOTE_RIGHT,  // latexQuotes(probablyLeft)
    FRACTION,   // normalizeFractions
    CURRENCY,   // normalizeCurrency
    FIXED,      // the replacement text
    SKIP,       // no token
    NEWLINE,    // a line break
} Kind;

typedef struct {
    size_t total;     // match length for the longest-match contest (trailing context included)
    size_t tok;       // length of the token text
    size_t advance;   // where the next match starts (the lexer's pushback)
    Kind kind;
    const char* fixed;
} Match;

// A rule's match: kept when longer than the best so far (the earlier rule wins ties).
static void consider(Match* b, size_t total, size_t tok, size_t advance, Kind kind, const char* fixed) {
    if (total > b->total) *b = (Match){total, tok, advance, kind, fixed};
}
static void plain(Match* b, size_t len, Kind kind) { consider(b, len, len, len, kind, NULL); }
static void fixed(Match* b, size_t len, const char* text) { consider(b, len, len, len, FIXED, text); }

static Match scan(const Text* t, size_t i) {
    Match b = {0, 0, 0, TEXT, NULL};
    uint32_t c = at(t, i), f = fold(c);
    size_t m, a;
    if (c == ' ' || c == '\t') {  // SPACES: no rule starting with ' ' or '\t' matches more
        size_t k = i + 1;
        while (space(at(t, k))) k++;
        plain(&b, k - i, SKIP);
        return b;
    }
    int alpha = ascii_letter(f);  // where a caseless literal can start: U+017F, U+0130, U+0131, U+212A too
    // c[+][+] | (c|f)# | cannot | 'twas | 'tis | gonna|gotta|lemme|gimme|wanna (pushback)
    if (f == 'c' && at(t, i + 1) == '+' && at(t, i + 2) == '+') plain(&b, 3, TEXT);
    if ((f == 'c' || f == 'f') && at(t, i + 1) == '#') plain(&b, 2, TEXT);
    if (f == 'c' && lit(t, i, "cannot")) consider(&b, 6, 3, 3, TEXT, NULL);
    if (c == '\'' && lit(t, i, "'twas")) consider(&b, 5, 2, 2, TEXT, NULL);
    if (c == '\'' && lit(t, i, "'tis")) consider(&b, 4, 2, 2, TEXT, NULL);
    if ((f == 'g' || f == 'l' || f == 'w') &&
        ((m = lit(t, i, "gonna")) || (m = lit(t, i, "gotta")) || (m = lit(t, i, "lemme")) || (m = lit(t, i, "gimme")) ||
         (m = lit(t, i, "wanna"))))
        consider(&b, 5, 3, 3, TEXT, NULL);
    // SGML (spaces become U+00A0)
    if (c == '<' && (m = m_sgml(t, i))) plain(&b, m, NBSP);
    // SPMDASH, SPAMP, SPPUNC
    if (c == 0x96 || c == 0x97 || (c >= 0x2013 && c <= 0x2015)) fixed(&b, 1, "--");
    if (c == '&') {
        if ((m = lit(t, i, "&md;")) || (m = lit(t, i, "&mdash;")) || (m = lit(t, i, "&ndash;"))) fixed(&b, m, "--");
        if ((m = lit(t, i, "&amp;"))) fixed(&b, m, "&");
        static const char* const sppunc[] = {"&ht;", "&tl;", "&ur;", "&lr;", "&qc;", "&ql;", "&qr;", "&odq;", "&cdq;", NULL};
        for (int k = 0; sppunc[k]; k++)
            if ((m = lit(t, i, sppunc[k]))) plain(&b, m, TEXT);
        if (at(t, i + 1) == '#' && ascii_digit(at(t, i + 2))) {
            size_t k = i + 2;
            while (ascii_digit(at(t, k))) k++;
            if (at(t, k) == ';') plain(&b, k + 1 - i, TEXT);
        }
    }
    // WORD/REDAUX, SWORD/SREDAUX, WORD
    size_t word = m_word(t, i);
    if (word && (m = m_redaux(t, i + word))) consider(&b, word + m, word, word, NO_SHY, NULL);
    if (alpha || c == 0xAD) {
        size_t e = i;
        while (ascii_letter(at(t, e)) || at(t, e) == 0xAD) e++;
        // SWORD = [A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*: SREDAUX's n must end the run
        if (e - i >= 2 && fold(at(t, e - 1)) == 'n' && (m = m_sredaux(t, e - 1))) {
            size_t last = e - 1;
            while (last > i && at(t, last - 1) == 0xAD) last--;
            if (last > i && fold(at(t, last - 1)) != 'n') consider(&b, e - 1 + m - i, e - 1 - i, e - 1 - i, NO_SHY, NULL);
        }
    }
    if (word) plain(&b, word, NO_SHY);
    // APOWORD
    {
        size_t best = 0;
        if ((a = m_apos(t, i))) {
            uint32_t d = at(t, i + a);
            if (fold(d) == 'n') best = max_size(best, a + 1 + m_apos(t, i + a + 1));
            if ((m = lit(t, i + a, "em"))) best = max_size(best, a + m);
            if (d >= '2' && d <= '9' && at(t, i + a + 1) == '0' && fold(at(t, i + a + 2)) == 's') best = max_size(best, a + 3);
            if ((m = lit(t, i + a, "till")) || (m = lit(t, i + a, "til"))) best = max_size(best, a + m);
            if ((m = lit(t, i + a, "cause"))) best = max_size(best, a + m);
        }
        if (alpha) {
            if (one_of(c, "lLdDjJ") && (a = m_apos(t, i + 1))) best = max_size(best, 1 + a);
            if (((m = lit(t, i, "dunkin")) || (m = lit(t, i, "somethin")) || (m = lit(t, i, "ol"))) && (a = m_apos(t, i + m)))
                best = max_size(best, m + a);
            if (((c >= 'A' && c <= 'H') || (c >= 'J' && c <= 'X') || c == 'Z' || c == 'n') && (a = m_aposetc(t, i + 1))) {
                size_t k = i + 1 + a;
                while (letter(at(t, k))) k++;
                if (k >= i + 3 + a) best = max_size(best, k - i);
            }
            static const char* const words[] = {"cont'd", "nor'easter", "c'mon", "e'er", "s'mores", "ev'ry", "li'l", "nat'l", NULL};
            for (int k = 0; words[k]; k++)
                if ((m = lit(t, i, words[k]))) best = max_size(best, m + (k == 0 && at(t, i + m) == '.'));
            if (f == 'o' && (a = m_aposetc(t, i + 1)) && fold(at(t, i + 1 + a)) == 'o') best = max_size(best, a + 2);
        }
        if (c == '\'' && lit(t, i, "'twas")) best = max_size(best, 5);
        if (letter(c)) {
            // [:letter:]+ [aeiouyAEIOUY] APOSETCETERA [aeiouA-Z] [:letter:]*: the apostrophe ends the letters
            size_t e = i;
            while (letter(at(t, e))) e++;
            if (e - i >= 2 && one_of(at(t, e - 1), "aeiouyAEIOUY") && (a = m_aposetc(t, e)) &&
                (one_of(at(t, e + a), "aeiou") || ascii_upper(at(t, e + a)))) {
                size_t k = e + a + 1;
                while (letter(at(t, k))) k++;
                best = max_size(best, k - i);
            }
        }
        if (best) plain(&b, best, TEXT);
    }
    // APOWORD2/[:letter:] = y APOS / [:letter:]
    if (f == 'y' && (a = m_apos(t, i + 1)) && letter(at(t, i + 1 + a))) consider(&b, a + 2, a + 1, a + 1, TEXT, NULL);
    // FULLURL, LIKELYURL, EMAIL, TWITTER
    if (f == 'h' && (m = m_full_url(t, i))) plain(&b, m, TEXT);
    if (c != ' ' && (m = m_likely_url(t, i))) plain(&b, m, TEXT);
    if ((ascii_alnum(c) || c == '<' || c == '&') && (m = m_email(t, i))) plain(&b, m, TEXT);
    if (c == '@' && (ascii_letter(at(t, i + 1)) || at(t, i + 1) == '_')) {
        size_t k = i + 2;
        while (ascii_alnum(at(t, k)) || at(t, k) == '_') k++;
        plain(&b, k - i, TEXT);
    }
    if (c == '#' && (m = m_letter(t, i + 1))) {
        size_t k = i + 1 + m;
        while ((m = m_letter(t, k))) k += m;
        plain(&b, k - i, TEXT);
    }
    // REDAUX/[^A-Za-z], SREDAUX/[^A-Za-z]
    size_t redaux = m_redaux(t, i), sredaux = m_sredaux(t, i);
    if (redaux && at(t, i + redaux) != END && !ascii_letter(at(t, i + redaux))) consider(&b, redaux + 1, redaux, redaux, QUOTE_RIGHT, NULL);
    if (sredaux && at(t, i + sredaux) != END && !ascii_letter(at(t, i + sredaux))) consider(&b, sredaux + 1, sredaux, sredaux, QUOTE_RIGHT, NULL);
    // numbers: DATE, NUMBER, SUBSUPNUM, FRAC, FRAC2
    if (digit(c)) {
        // DATE = DIGIT{1,2}[\-\/]DIGIT{1,2}[\-\/]DIGIT{2,4}
        size_t d1 = 0, d2 = 0, d3 = 0;
        while (d1 < 3 && digit(at(t, i + d1))) d1++;
        size_t k = i + d1;
        if (d1 <= 2 && (at(t, k) == '-' || at(t, k) == '/')) {
            while (d2 < 3 && digit(at(t, k + 1 + d2))) d2++;
            k += 1 + d2;
            if (d2 >= 1 && d2 <= 2 && (at(t, k) == '-' || at(t, k) == '/')) {
                while (d3 < 4 && digit(at(t, k + 1 + d3))) d3++;
                if (d3 >= 2) plain(&b, k + 1 + d3 - i, TEXT);
            }
        }
    }
    {
        // NUMBER = [\-+]? (DIGIT+ | DIGIT* ([.:,\u00AD\u066B\u066C] DIGIT+)+)
        size_t k = i + (c == '-' || c == '+');
        size_t s = k;
        while (digit(at(t, k))) k++;
        size_t end = k > s ? k : 0;
        for (;;) {
            uint32_t d = at(t, k);
            if ((d == '.' || d == ':' || d == ',' || d == 0xAD || d == 0x66B || d == 0x66C) && digit(at(t, k + 1))) {
                k++;
                while (digit(at(t, k))) k++;
                end = k;
            } else {
                break;
            }
        }
        if (end) plain(&b, end - i, NO_SHY);
    }
    if ((c >= 0x2070 && c <= 0x208B) || c == 0xB9 || c == 0xB2 || c == 0xB3) {
        // SUBSUPNUM = [\u207A\u207B\u208A\u208B]?([\u2070\u00B9\u00B2\u00B3\u2074-\u2079]+|[\u2080-\u2089]+)
        size_t k = i + (c == 0x207A || c == 0x207B || c == 0x208A || c == 0x208B);
        size_t s = k;
        uint32_t d = at(t, k);
        if (d >= 0x2080 && d <= 0x2089) {
            while (at(t, k) >= 0x2080 && at(t, k) <= 0x2089) k++;
        } else {
            for (;; k++) {
                d = at(t, k);
                if (!(d == 0x2070 || d == 0xB9 || d == 0xB2 || d == 0xB3 || (d >= 0x2074 && d <= 0x2079))) break;
            }
        }
        if (k > s) plain(&b, k - i, TEXT);
    }
    if (digit(c)) {
        // FRAC = (DIGIT{1,4}[- \u00A0])? DIGIT{1,4} (\\?\/|\u2044) DIGIT{1,4}   (spaces become U+00A0)
        size_t best = 0;
        for (int prefix = 0; prefix < 2; prefix++) {
            size_t k = i, n = 0;
            if (prefix) {
                while (n < 5 && digit(at(t, k + n))) n++;
                if (n > 4 || !(at(t, k + n) == '-' || at(t, k + n) == ' ' || at(t, k + n) == 0xA0)) continue;
                k += n + 1;
                n = 0;
            }
            while (n < 5 && digit(at(t, k + n))) n++;
            if (n == 0 || n > 4) continue;
            k += n;
            if (at(t, k) == '\\' && at(t, k + 1) == '/') k += 2;
            else if (at(t, k) == '/' || at(t, k) == 0x2044) k++;
            else continue;
            n = 0;
            while (n < 4 && digit(at(t, k + n))) n++;
            if (n) best = max_size(best, k + n - i);
        }
        if (best) plain(&b, best, NBSP);
    }
    if ((c >= 0xBC && c <= 0xBE) || (c >= 0x2153 && c <= 0x215E)) plain(&b, 1, FRACTION);
    // TBSPEC = -(RRB|LRB|RCB|LCB|RSB|LSB)- | C\.D\.s | pro- | anti- | S(&|&amp;)P-500 | S(&|&amp;)Ls | Cap{APOS}n | c{APOS}est
    if (c == '-' || f == 'c' || f == 'p' || f == 'a' || f == 's') {
        size_t best = highest_bit(lit_lengths(&tbspec, t, i));
        if (lit(t, i, "cap") && (a = m_apos(t, i + 3)) && fold(at(t, i + 3 + a)) == 'n') best = max_size(best, 4 + a);
        if (f == 'c' && (a = m_apos(t, i + 1)) && lit(t, i + 1 + a, "est")) best = max_size(best, 4 + a);
        if (best) plain(&b, best, AMP);
    }
    if ((m = m_thing3(t, i))) plain(&b, m, TEXT);
    // DOLSIGN = [A-Z]*\$ | #; DOLSIGN2 (normalizeCurrency)
    if (ascii_upper(c) || c == '$') {
        size_t k = i;
        while (ascii_upper(at(t, k))) k++;
        if (at(t, k) == '$') plain(&b, k + 1 - i, TEXT);
    }
    if (c == '#') plain(&b, 1, TEXT);
    if (c == 0xA2 || c == 0xA3 || c == 0xA4 || c == 0xA5 || c == 0x80 || c == 0x20A0 || c == 0x20AC || c == 0x60B ||
        c == 0xE3F || c == 0x20A4 || c == 0xFFE0 || c == 0xFFE1 || c == 0xFFE5 || c == 0xFFE6)
        plain(&b, 1, CURRENCY);
    if (alpha) {
        size_t chain = acro_chain(t, i), special = acro_special(t, i);
        // ACRONYM/(SPACENLS)(followers|SGML)SPACENL: the acronym's period also ends the sentence.
        // "I." gives the letter and reads the period again; longer ones keep it and read it again.
        for (int form = 0; form < 2; form++) {
            size_t acronym = (form ? special : chain) + 1;
            if (acronym == 1 || at(t, i + acronym - 1) != '.') continue;
            size_t k = i + acronym;
            while (spacenl_char(at(t, k))) k++;
            if (k == i + acronym) continue;
            size_t best = 0;
            uint32_t words = lit_lengths(&followers, t, k);
            for (size_t l = 1; words >> l; l++)
                if ((words >> l & 1) && (m = m_spacenl(t, k + l))) best = max_size(best, l + m);
            if ((m = m_sgml(t, k)) && (a = m_spacenl(t, k + m))) best = max_size(best, m + a);
            if (best) {
                if (acronym == 2) consider(&b, k + best - i, 1, 1, TEXT, NULL);
                else consider(&b, k + best - i, acronym, acronym - 1, TEXT, NULL);
            }
        }
        // ABBREV3/{SPACENL}?[:digit:]
        uint32_t ab3 = lit_lengths(&abbrev3, t, i);
        for (size_t l = 1; ab3 >> l; l++) {
            if (!(ab3 >> l & 1) || at(t, i + l) != '.') continue;
            size_t best = digit(at(t, i + l + 1)) ? 1 : 0;
            if ((m = m_spacenl(t, i + l + 1)) && digit(at(t, i + l + 1 + m))) best = m + 1;
            if (m == 2 && digit(at(t, i + l + 2))) best = max_size(best, 2);  // "\r" as the SPACENL
            if (best) consider(&b, l + 1 + best, l + 1, l + 1, TEXT, NULL);
        }
        // (pt[eyEY]|co)\./{SPACE}(ltd|lim)
        size_t p = (lit(t, i, "pt") && one_of(at(t, i + 2), "eyEY")) ? 3 : lit(t, i, "co");
        if (p && at(t, i + p) == '.' && space(at(t, i + p + 1)) && (lit(t, i + p + 2, "ltd") || lit(t, i + p + 2, "lim")))
            consider(&b, p + 5, p + 1, p + 1, TEXT, NULL);
        // ABBREV1 with the class Pp?t[ye]s? of ABCOMP: /SENTEND, /[^][^], alone
        size_t ab1 = 0;
        uint32_t ab1_set = lit_lengths(&abbrev1, t, i);
        if (f == 'p') {
            size_t k = i + 1 + (fold(at(t, i + 1)) == 'p');
            if (fold(at(t, k)) == 't' && (at(t, k + 1) == 'y' || at(t, k + 1) == 'e')) {
                k += 2;
                ab1_set |= 1u << (k - i);
                if (fold(at(t, k)) == 's') ab1_set |= 1u << (k + 1 - i);
            }
        }
        for (size_t l = 1; ab1_set >> l; l++)
            if ((ab1_set >> l & 1) && at(t, i + l) == '.') ab1 = l + 1;
        if (ab1) {
            // SENTEND = SPACENL (SPACENL | [:uppercase:] | SGML)
            size_t sentend = 0, k = i + ab1;
            for (size_t first = 1; first <= m_spacenl(t, k); first++) {
                size_t q = k + first;
                if ((m = m_spacenl(t, q))) sentend = max_size(sentend, first + m);
                if (uppercase(at(t, q))) sentend = max_size(sentend, first + 1);
                if ((m = m_sgml(t, q))) sentend = max_size(sentend, first + m);
            }
            if (sentend) consider(&b, ab1 + sentend, ab1, ab1 - 1, TEXT, NULL);
            if (i + ab1 + 2 <= t->n) consider(&b, ab1 + 2, ab1, ab1, TEXT, NULL);
            consider(&b, ab1, ab1, ab1 - 1, TEXT, NULL);
        }
        // ABBREV2 = ABBREV4\., ABBREV4/{SPACE}, ACRO/{SPACENL}; ABBREV4 = the words | M[ft]g | ACRO,
        // of which only the longest chain or a special form can be followed by a space
        uint32_t ab4 = lit_lengths(&abbrev4, t, i);
        if (f == 'm' && (at(t, i + 1) == 'f' || at(t, i + 1) == 't') && fold(at(t, i + 2)) == 'g') ab4 |= 1u << 3;
        size_t ab2 = acro_before_dot(t, i, 0), ab4_space = 0, acro = 0, acro_total = 0;
        ab2 = ab2 ? ab2 + 1 : 0;
        for (size_t l = 1; ab4 >> l; l++) {
            if (!(ab4 >> l & 1)) continue;
            if (at(t, i + l) == '.') ab2 = max_size(ab2, l + 1);
            if (space(at(t, i + l))) ab4_space = l;
        }
        for (int form = 0; form < 2; form++) {
            size_t l = form ? special : chain;
            if (!l) continue;
            if (space(at(t, i + l))) ab4_space = max_size(ab4_space, l);
            if ((m = m_spacenl(t, i + l)) && l + m > acro_total) acro = l, acro_total = l + m;
        }
        if (ab2) plain(&b, ab2, TEXT);
        if (ab4_space) consider(&b, ab4_space + 1, ab4_space, ab4_space, TEXT, NULL);
        if (acro) consider(&b, acro_total, acro, acro, TEXT, NULL);
    }
    // TBSPEC2/{SPACENL} = APOS [0-9][0-9] / SPACENL
    if ((a = m_apos(t, i)) && ascii_digit(at(t, i + a)) && ascii_digit(at(t, i + a + 1)) && (m = m_spacenl(t, i + a + 2)))
        consider(&b, a + 2 + m, a + 2, a + 2, TEXT, NULL);
    // FILENAME/({SPACENL}|[.?!,])
    size_t tok;
    if (word || digit(c)) {
        tok = 0;
        if ((m = m_filename(t, i, &tok))) consider(&b, m, tok, tok, TEXT, NULL);
    }
    // WORD\./{INSENTP}
    if (word && at(t, i + word) == '.' && insentp(at(t, i + word + 1))) consider(&b, word + 2, word + 1, word + 1, NO_SHY, NULL);
    if ((m = m_phone(t, i))) plain(&b, m, PHONE);
    // DBLQUOT/[A-Za-z0-9$], DBLQUOT
    m = c == '"' ? 1 : c == '&' ? lit(t, i, "&quot;") : 0;
    if (m) {
        uint32_t d = at(t, i + m);
        if (ascii_alnum(d) || d == '$') consider(&b, m + 1, m, m, QUOTE_LEFT, NULL);
        plain(&b, m, QUOTE_RIGHT);
    }
    if (c == 0x7F) plain(&b, 1, SKIP);
    // LESSTHAN, GREATERTHAN
    if (c == '<') fixed(&b, 1, "<");
    if (c == '&' && (m = lit(t, i, "&lt;"))) fixed(&b, m, "<");
    if (c == '>') fixed(&b, 1, ">");
    if (c == '&' && (m = lit(t, i, "&gt;"))) fixed(&b, m, ">");
    // SMILEY/[^A-Za-z0-9] = [<>]?[:;=][\-o\*']?[\(\)DPdpO\\{@\|\[\]]
    if (one_of(c, "<>:;=")) {
        size_t k = i + (c == '<' || c == '>');
        if (one_of(at(t, k), ":;=")) {
            k++;
            if (one_of(at(t, k), "-o*'")) k++;
            if (one_of(at(t, k), "()DPdpO\\{@|[]") && at(t, k + 1) != END && !ascii_alnum(at(t, k + 1)))
                consider(&b, k + 2 - i, k + 1 - i, k + 1 - i, PARENS, NULL);
        }
    }
    // ASIANSMILEY = [\^x=~<>]\.\[\^x=~<>\] (in the spec "\[" makes the rest of this one literal)
    //             | [\-\^x=~<>']_[\-\^x=~<>'] | \([\-\^x=~<>'][_.]?[\-\^x=~<>']\) | \([\^x=~<>']-[\^x=~<>'`]\)
    {
        static const char eyes[] = "-^x=~<>'";
        if (one_of(c, "^x=~<>") && at(t, i + 1) == '.' && lit(t, i + 2, "[^x=~<>]")) plain(&b, 10, PARENS);
        if (one_of(c, eyes) && at(t, i + 1) == '_' && one_of(at(t, i + 2), eyes)) plain(&b, 3, PARENS);
        if (c == '(' && one_of(at(t, i + 1), eyes)) {
            size_t k = i + 2 + (at(t, i + 2) == '_' || at(t, i + 2) == '.');
            if (one_of(at(t, k), eyes) && at(t, k + 1) == ')') plain(&b, k + 2 - i, PARENS);
            if (k == i + 3 && one_of(at(t, i + 2), eyes) && at(t, i + 3) == ')') plain(&b, 4, PARENS);
            if (one_of(at(t, i + 1), "^x=~<>'") && at(t, i + 2) == '-' && one_of(at(t, i + 3), "^x=~<>'`") && at(t, i + 4) == ')')
                plain(&b, 5, PARENS);
        }
    }
    // brackets
    if (c == '{') fixed(&b, 1, "-LCB-");
    if (c == '}') fixed(&b, 1, "-RCB-");
    if (c == '[') fixed(&b, 1, "-LSB-");
    if (c == ']') fixed(&b, 1, "-RSB-");
    if (c == '(') fixed(&b, 1, "-LRB-");
    if (c == ')') fixed(&b, 1, "-RRB-");
    // HYPHENS (three or four: --)
    if (c == '-') {
        size_t k = i;
        while (at(t, k) == '-') k++;
        if (k - i == 3 || k - i == 4) fixed(&b, k - i, "--");
        else plain(&b, k - i, TEXT);
    }
    // LDOTS = \.{3,5} | (\.[ \u00A0]){2,4}\. | [\u0085\u2026]
    if (c == '.') {
        size_t k = i;
        while (k - i < 5 && at(t, k) == '.') k++;
        if (k - i >= 3) fixed(&b, k - i, "...");
        size_t reps = 0, e = i;
        while (reps < 4 && at(t, e) == '.' && (at(t, e + 1) == ' ' || at(t, e + 1) == 0xA0)) e += 2, reps++;
        for (; reps >= 2; reps--, e -= 2)
            if (at(t, e) == '.') {
                fixed(&b, e + 1 - i, "...");
                break;
            }
    }
    if (c == 0x85 || c == 0x2026) fixed(&b, 1, "...");
    // FNMARKS = @+ | #+ | _+; ASTS = \*+ | (\\\*){1,3}
    if (c == '@' || c == '#' || c == '_' || c == '*') {
        size_t k = i;
        while (at(t, k) == c) k++;
        plain(&b, k - i, TEXT);
    }
    if (c == '\\' && at(t, i + 1) == '*') {
        size_t k = i;
        while (k - i < 6 && at(t, k) == '\\' && at(t, k + 1) == '*') k += 2;
        plain(&b, k - i, TEXT);
    }
    // INSENTP, [?!]+, [.¡¿\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002], =, \/
    if (insentp(c)) plain(&b, 1, TEXT);
    if (c == '?' || c == '!') {
        size_t k = i;
        while (at(t, k) == '?' || at(t, k) == '!') k++;
        plain(&b, k - i, TEXT);
    }
    if (c == '.' || c == 0xA1 || c == 0xBF || c == 0x37E || c == 0x589 || c == 0x61F || c == 0x6D4 || (c >= 0x700 && c <= 0x702) ||
        c == 0x7FA || c == 0x3002 || c == '=' || c == '/')
        plain(&b, 1, TEXT);
    // HTHING\./{INSENTP}, HTHING, THING\./{INSENTP}, THING, THINGA\./{INSENTP}, THINGA
    if (ascii_alnum(c)) {
        Ends h;
        m_hthing(t, i, &h);
        if (h.best_dot) consider(&b, h.best_dot - i, h.best_dot - 1 - i, h.best_dot - 1 - i, NO_SHY, NULL);
        if (h.best) plain(&b, h.best - i, NO_SHY);
        ends_free(&h);
    }
    if (letter_digit(c)) {
        Ends h;
        m_thing(t, i, &h);
        if (h.best_dot) consider(&b, h.best_dot - i, h.best_dot - 1 - i, h.best_dot - 1 - i, TEXT, NULL);
        if (h.best) plain(&b, h.best - i, TEXT);
        ends_free(&h);
    }
    if (ascii_upper(c)) {
        Ends h;
        m_thinga(t, i, &h);
        if (h.best_dot) consider(&b, h.best_dot - i, h.best_dot - 1 - i, h.best_dot - 1 - i, AMP, NULL);
        if (h.best) plain(&b, h.best - i, AMP);
        ends_free(&h);
    }
    // '/[A-Za-z][^ \t\n\r\u00A0]: an opening quote
    if (c == '\'' && ascii_letter(at(t, i + 1))) {
        uint32_t d = at(t, i + 2);
        if (d != END && d != ' ' && d != '\t' && d != '\n' && d != '\r' && d != 0xA0) consider(&b, 3, 1, 1, QUOTE_LEFT, NULL);
    }
    // REDAUX, SREDAUX, QUOTES = APOS | '' | [`\u2018\u2019\u201A\u201B\u201C\u201D\u0091-\u0094\u201E\u201F\u2039\u203A\u00AB\u00BB]{1,2}
    if (redaux) plain(&b, redaux, QUOTE_RIGHT);
    if (sredaux) plain(&b, sredaux, QUOTE_RIGHT);
    {
        static const uint16_t quotes[] = {'`', 0x2018, 0x2019, 0x201A, 0x201B, 0x201C, 0x201D, 0x91, 0x92, 0x93, 0x94,
                                          0x201E, 0x201F, 0x2039, 0x203A, 0xAB, 0xBB, 0};
        size_t q = 0;
        while (q < 2) {
            uint32_t d = at(t, i + q);
            const uint16_t* p = quotes;
            while (*p && *p != d) p++;
            if (!*p) break;
            q++;
        }
        size_t best = max_size(q, m_apos(t, i));
        if (c == '\'' && at(t, i + 1) == '\'') best = max_size(best, 2);
        if (best) plain(&b, best, QUOTE_RIGHT);
    }
    // FAKEDUCKFEET, MISCSYMBOL
    if ((c == '<' || c == '>') && at(t, i + 1) == c) plain(&b, 2, TEXT);
    if (misc_symbol(c)) plain(&b, 1, TEXT);
    // \0 | SPACES | [\u200B\u200E-\u200F\uFEFF]: no token
    if (c == 0 || c == 0x200B || c == 0x200E || c == 0x200F || c == 0xFEFF) plain(&b, 1, SKIP);
    if (space(c)) {
        size_t k = i;
        while (space(at(t, k))) k++;
        plain(&b, k - i, SKIP);
    }
    if ((m = m_spacenl(t, i)) && newline_char(c)) plain(&b, m, NEWLINE);
    if (c == '&' && (m = lit(t, i, "&nbsp;"))) plain(&b, m, SKIP);
    // . : the lexer has no rule for the character and deletes it ("Untokenizable")
    plain(&b, 1, SKIP);
    return b;
}

// ---------------------------------------------------------------- tokens
typedef struct {
    char* s;
    size_t len, cap;
} Buf;

static void buf_grow(Buf* b, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
}
static void buf_put(Buf* b, const char* s, size_t n) {
    buf_grow(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
static void buf_cp(Buf* b, uint32_t c) {
    buf_grow(b, 4);
    char* o = b->s + b->len;
    if (c < 0x80) { o[0] = (char)c; b->len += 1; }
    else if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); b->len += 2; }
    else if (c < 0x10000) { o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F)); o[2] = (char)(0x80 | (c & 0x3F)); b->len += 3; }
    else { o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F)); o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F)); b->len += 4; }
    b->s[b->len] = 0;
}

// UTF-16 units of one token, after the lexer's replacements, and its code points
typedef struct {
    uint16_t* u;
    uint32_t* cp;
    size_t n, cap;
} Units;
static void unit(Units* w, uint32_t c) {
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->u = realloc(w->u, w->cap * sizeof *w->u);
        w->cp = realloc(w->cp, w->cap * sizeof *w->cp);
        if (!w->u || !w->cp) abort();
    }
    w->u[w->n++] = (uint16_t)c;
}
static void units_ascii(Units* w, const char* s) {
    while (*s) unit(w, (unsigned char)*s++);
}

// Java's Character.toLowerCase (Java 17's Unicode tables)
uint32_t unicode_lower(uint32_t c) {
    if (c < 0x80) return ascii_upper(c) ? c + 32 : c;
    size_t lo = 0, hi = sizeof JAVA_LOWER / sizeof *JAVA_LOWER;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < (uint32_t)JAVA_LOWER[mid][0]) hi = mid;
        else if (c > (uint32_t)JAVA_LOWER[mid][1]) lo = mid + 1;
        else return (c - (uint32_t)JAVA_LOWER[mid][0]) % (uint32_t)JAVA_LOWER[mid][3] ? c : (uint32_t)((int32_t)c + JAVA_LOWER[mid][2]);
    }
    return c;
}
int unicode_is_cased(uint32_t c) { return c < 0x80 ? ascii_letter(c) : IN_TABLE(c, JAVA_CASED); }

static uint32_t code_point(const uint16_t* u, size_t n, size_t k, size_t* len) {
    if (u[k] >= 0xD800 && u[k] < 0xDC00 && k + 1 < n && u[k + 1] >= 0xDC00 && u[k + 1] < 0xE000) {
        *len = 2;
        return 0x10000 + ((uint32_t)(u[k] - 0xD800) << 10) + (u[k + 1] - 0xDC00);
    }
    *len = 1;
    return u[k];
}

// Java's final-sigma condition (ConditionalSpecialCasing.isFinalCased): within the segment of a
// word BreakIterator that holds the sigma, a cased character before it and none after it.
static uint32_t word_sets(uint32_t c) {
    size_t lo = 0, hi = sizeof JAVA_WORD_BREAK / sizeof *JAVA_WORD_BREAK;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < JAVA_WORD_BREAK[mid][0]) hi = mid;
        else if (c > JAVA_WORD_BREAK[mid][1]) lo = mid + 1;
        else return JAVA_WORD_BREAK[mid][2];
    }
    return WB_BASE;
}
// One step of each word rule (-1: dead). Rule 0 is {word}(number word)*{number{post-num}} and
// pre-num(number word)*{number{post-num}} (word = let+(mid-word let+)*{danda}, number =
// dgt+(mid-num dgt+)*, a let or dgt taking enclosing marks), 1 ws*{\r}{ls}, 2-4 the runs of
// katakana, hiragana and kanji, 5 base enclosing+, 6 any one character.
enum { WORD_RULES = 7 };
static int word_rule_step(int rule, int state, uint32_t sets) {
    switch (rule) {
        case 0:
            switch (state) {
                case 0: return sets & WB_LETTER ? 1 : sets & WB_DIGIT ? 3 : sets & WB_PRE_NUM ? 5 : -1;
                case 1: return sets & (WB_LETTER | WB_ENCLOSING) ? 1 : sets & WB_DIGIT ? 3 : sets & WB_MID_WORD ? 2 : sets & WB_DANDA ? 6 : -1;
                case 2: return sets & WB_LETTER ? 1 : -1;
                case 3: return sets & (WB_DIGIT | WB_ENCLOSING) ? 3 : sets & WB_LETTER ? 1 : sets & WB_MID_NUM ? 4 : sets & WB_POST_NUM ? 7 : -1;
                case 4: case 5: case 6: return sets & WB_DIGIT ? 3 : -1;
                default: return -1;
            }
        case 1:
            if (state == 3) return -1;
            if (sets & WB_LINE_SEP) return 3;
            if (sets & WB_CR) return state < 2 ? 2 : -1;
            return state < 2 && (sets & (state ? WB_SPACE | WB_ENCLOSING : WB_SPACE)) ? 1 : -1;
        case 2: return sets & (WB_KATAKANA | WB_CJK_DIACRITIC) ? 1 : -1;
        case 3: return sets & (WB_HIRAGANA | WB_CJK_DIACRITIC) ? 1 : -1;
        case 4: return sets & WB_KANJI ? 1 : -1;
        case 5: return state == 0 ? (sets & WB_BASE ? 1 : -1) : sets & WB_ENCLOSING ? 2 : -1;
        default: return state == 0 ? 1 : -1;
    }
}
static int word_rule_accepts(int rule, int state) {
    if (rule == 0) return state == 1 || state == 3 || state == 5 || state == 6 || state == 7;
    if (rule == 5) return state == 2;
    return state > 0;
}
// The end of the segment that starts at p: the longest match of the rules; an ignorable (Cf)
// character makes no transition and extends an accepted match.
static size_t word_segment_end(const uint32_t* cp, size_t n, size_t p) {
    int state[WORD_RULES] = {0};
    size_t end = p + 1;
    for (size_t q = p; q < n; q++) {
        uint32_t sets = word_sets(cp[q]);
        int alive = 0, accepted = 0;
        for (int r = 0; r < WORD_RULES; r++) {
            if (state[r] < 0) continue;
            if (!(sets & WB_IGNORE)) state[r] = word_rule_step(r, state[r], sets);
            if (state[r] >= 0) alive = 1, accepted |= word_rule_accepts(r, state[r]);
        }
        if (accepted) end = q + 1;
        if (!alive) break;
    }
    return end;
}
// isBoundary(j) of Java's iterator: a boundary of the forward segmentation, or the position after
// a supplementary character that does not start the text (following() backs up into the middle
// of its surrogate pair and finds a break there).
static int java_is_boundary(const uint32_t* cp, const unsigned char* forward, size_t j) {
    return forward[j] || (j >= 2 && cp[j - 1] >= 0x10000);
}
static int final_sigma(const uint32_t* cp, size_t n, size_t k) {
    unsigned char* forward = calloc(n + 1, 1);
    if (!forward) abort();
    for (size_t p = 0; p < n; p = word_segment_end(cp, n, p)) forward[p] = 1;
    forward[n] = 1;
    // the loops of ConditionalSpecialCasing.isFinalCased
    int final = 0;
    for (size_t j = k; j > 0 && !java_is_boundary(cp, forward, j); j--) {
        if (!unicode_is_cased(cp[j - 1])) continue;
        final = 1;
        for (size_t q = k + 1; q < n && !java_is_boundary(cp, forward, q); q++)
            if (unicode_is_cased(cp[q])) final = 0;
        break;
    }
    free(forward);
    return final;
}

// The token for match m at i, lower-cased as String.toLowerCase(Locale.ENGLISH), appended as UTF-8.
static void emit(Buf* out, const Text* t, size_t i, const Match* m, Units* w) {
    w->n = 0;
    const uint16_t* s = t->u + i;
    switch (m->kind) {
        case FIXED: units_ascii(w, m->fixed); break;
        case FRACTION: {
            static const char* const fractions[] = {"1/4", "1/2", "3/4"};
            if (s[0] >= 0xBC && s[0] <= 0xBE) units_ascii(w, fractions[s[0] - 0xBC]);
            else if (s[0] == 0x2153) units_ascii(w, "1/3");
            else if (s[0] == 0x2154) units_ascii(w, "2/3");
            else unit(w, s[0]);
            break;
        }
        case CURRENCY:
            if (s[0] == 0xA2) units_ascii(w, "cents");
            else if (s[0] == 0xA3) units_ascii(w, "#");
            else if (s[0] == 0x80 || s[0] == 0xA4 || s[0] == 0x20A0 || s[0] == 0x20AC) units_ascii(w, "$");
            else unit(w, s[0]);
            break;
        default:
            for (size_t k = 0; k < m->tok; k++) {
                uint16_t c = s[k];
                if (m->kind == NO_SHY && c == 0xAD) continue;
                if ((m->kind == NBSP || m->kind == PHONE) && c == ' ') c = 0xA0;
                if ((m->kind == PHONE || m->kind == PARENS) && (c == '(' || c == ')')) {
                    units_ascii(w, c == '(' ? "-LRB-" : "-RRB-");
                    continue;
                }
                if (m->kind == AMP && c == '&' && k + 5 <= m->tok && s[k + 1] < 0x80 && s[k + 2] < 0x80 && s[k + 3] < 0x80 &&
                    (s[k + 1] | 0x20) == 'a' && (s[k + 2] | 0x20) == 'm' && (s[k + 3] | 0x20) == 'p' && s[k + 4] == ';') {
                    unit(w, '&');  // (?i:&amp;) is ASCII-caseless
                    k += 4;
                    continue;
                }
                if (m->kind == QUOTE_LEFT || m->kind == QUOTE_RIGHT) {
                    // latexQuotes: ' and &apos; (lower case only, as its pattern), then the curly quotes
                    int left = m->kind == QUOTE_LEFT;
                    if (c == '\'' || (c == '&' && k + 6 <= m->tok && !memcmp(s + k, u"&apos;", 12))) {
                        unit(w, left ? '`' : '\'');
                        if (c == '&') k += 5;
                        continue;
                    }
                    if (c == '"' || (c == '&' && k + 6 <= m->tok && !memcmp(s + k, u"&quot;", 12))) {
                        units_ascii(w, left ? "``" : "''");
                        if (c == '&') k += 5;
                        continue;
                    }
                    if (c == 0x91 || c == 0x2018 || c == 0x201B || c == 0x2039) { unit(w, '`'); continue; }
                    if (c == 0x92 || c == 0x2019 || c == 0x203A) { unit(w, '\''); continue; }
                    if (c == 0x93 || c == 0x201C || c == 0xAB) { units_ascii(w, "``"); continue; }
                    if (c == 0x94 || c == 0x201D || c == 0xBB) { units_ascii(w, "''"); continue; }
                }
                unit(w, c);
            }
            if (m->kind == NO_SHY && w->n == 0) unit(w, '-');  // removeSoftHyphens never leaves a token empty
    }
    size_t n = 0;
    for (size_t k = 0; k < w->n; n++) {
        size_t len;
        w->cp[n] = code_point(w->u, w->n, k, &len);
        k += len;
    }
    for (size_t k = 0; k < n; k++) {
        uint32_t c = w->cp[k];
        if (c >= 0xD800 && c < 0xE000) buf_put(out, "?", 1);  // a lone surrogate: Java's encoder writes '?'
        else if (c == 0) buf_put(out, "\xc0\x80", 2);  // NUL inside a token (EMAIL, URL), kept as input.c keeps it
        else if (c == 0x130) buf_put(out, "i\xcc\x87", 3);  // İ: i and a combining dot
        else if (c == 0x3A3) buf_cp(out, final_sigma(w->cp, n, k) ? 0x3C2 : 0x3C3);
        else buf_cp(out, unicode_lower(c));
    }
}

// Decodes UTF-8 to UTF-16 units (invalid bytes become U+FFFD, as Java's decoder does; the
// two-byte NUL C0 80 that input.c keeps an escaped NUL as becomes U+0000).
static uint16_t* decode_utf8(const char* s, size_t len, size_t* n_out) {
    uint16_t* u = malloc((len + 1) * sizeof *u);
    if (!u) abort();
    size_t n = 0, i = 0;
    const unsigned char* p = (const unsigned char*)s;
    while (i < len) {
        unsigned char b0 = p[i];
        uint32_t c;
        size_t need;
        if (b0 < 0x80) { u[n++] = b0; i++; continue; }
        if (b0 == 0xC0 && i + 1 < len && p[i + 1] == 0x80) { u[n++] = 0; i += 2; continue; }
        if ((b0 & 0xE0) == 0xC0 && b0 >= 0xC2) { c = b0 & 0x1F; need = 1; }
        else if ((b0 & 0xF0) == 0xE0) { c = b0 & 0x0F; need = 2; }
        else if ((b0 & 0xF8) == 0xF0 && b0 <= 0xF4) { c = b0 & 0x07; need = 3; }
        else { u[n++] = 0xFFFD; i++; continue; }
        size_t k = 1;
        for (; k <= need && i + k < len && (p[i + k] & 0xC0) == 0x80; k++) c = (c << 6) | (p[i + k] & 0x3F);
        if (k <= need) { u[n++] = 0xFFFD; i += k; continue; }
        if (c >= 0x10000) {
            u[n++] = (uint16_t)(0xD800 + ((c - 0x10000) >> 10));
            u[n++] = (uint16_t)(0xDC00 + ((c - 0x10000) & 0x3FF));
        } else {
            u[n++] = (uint16_t)c;
        }
        i += need + 1;
    }
    *n_out = n;
    return u;
}

// The jar's output for the text: tokens separated by ' ', a '\n' for each line break. In the
// toolkit's batch only a break at a '\n' (which joins two captions) ends a line; a caption's own
// \r, \v, \f, U+2028, U+2029 separate tokens without one (the jar would start a new line there
// and shift every later caption: the one deliberate difference, see docs/EVAL.md).
static char* tokenize(const char* text, size_t len, int captions) {
    pthread_once(&literals_once, index_all_literals);
    Text t;
    uint16_t* u = decode_utf8(text, len, &t.n);
    t.u = u;
    t.captions = captions;
    Buf out = {NULL, 0, 0};
    buf_put(&out, "", 0);
    Units w = {NULL, NULL, 0, 0};
    int line_has_token = 0;
    for (size_t i = 0; i < t.n;) {
        Match m = scan(&t, i);
        if (m.kind == NEWLINE && (!captions || t.u[i + m.total - 1] == '\n')) {
            buf_put(&out, "\n", 1);
            line_has_token = 0;
        } else if (m.kind != SKIP && m.kind != NEWLINE) {
            if (line_has_token) buf_put(&out, " ", 1);
            emit(&out, &t, i, &m, &w);
            line_has_token = 1;
        }
        i += m.advance;
    }
    free(w.u);
    free(w.cp);
    free(u);
    return out.s;
}

char* ptb_tokenize_raw(const char* text, size_t len) { return tokenize(text, len, 0); }

// The toolkit's filter: these tokens are dropped after lower-casing (so -lrb- and friends stay).
static int is_filtered(const char* tok, size_t n) {
    static const char* const PUNCT[] = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";", NULL};
    for (int k = 0; PUNCT[k]; k++)
        if (strlen(PUNCT[k]) == n && !memcmp(PUNCT[k], tok, n)) return 1;
    return 0;
}

// Python's str.isspace at the end of a UTF-8 line: the length of the trailing whitespace there.
static size_t trailing_python_space(const char* s, size_t n) {
    size_t k = n;
    for (;;) {
        if (k >= 1 && (s[k - 1] == ' ' || (s[k - 1] >= '\t' && s[k - 1] <= '\r') || (s[k - 1] >= 0x1C && s[k - 1] <= 0x1F))) { k--; continue; }
        const unsigned char* p = (const unsigned char*)s;
        if (k >= 2 && p[k - 2] == 0xC2 && (p[k - 1] == 0x85 || p[k - 1] == 0xA0)) { k -= 2; continue; }
        if (k >= 3) {
            uint32_t c = ((uint32_t)(p[k - 3] & 0x0F) << 12) | ((uint32_t)(p[k - 2] & 0x3F) << 6) | (p[k - 1] & 0x3F);
            if ((p[k - 3] & 0xF0) == 0xE0 && (c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
                                               c == 0x202F || c == 0x205F || c == 0x3000)) {
                k -= 3;
                continue;
            }
        }
        return n - k;
    }
}

void ptb_tokenize_captions(const char* const* captions, size_t n, char** out) {
    // pycocoevalcap joins the captions with '\n' after replacing their own '\n' by ' ', so that
    // the lexer sees each caption with the next one as context.
    Buf all = {NULL, 0, 0};
    buf_put(&all, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (i) buf_put(&all, "\n", 1);
        size_t start = all.len;
        buf_put(&all, captions[i], strlen(captions[i]));
        for (size_t k = start; k < all.len; k++)
            if (all.s[k] == '\n') all.s[k] = ' ';
    }
    char* raw = tokenize(all.s, all.len, 1);
    free(all.s);
    // Line k of the output belongs to caption k; the toolkit strips the line's trailing
    // whitespace, splits it on single spaces and keeps the tokens not in its list.
    char* line = raw;
    for (size_t i = 0; i < n; i++) {
        char* end = line ? strchr(line, '\n') : NULL;
        size_t line_len = line ? (end ? (size_t)(end - line) : strlen(line)) : 0;
        if (line) line_len -= trailing_python_space(line, line_len);
        Buf o = {NULL, 0, 0};
        buf_put(&o, "", 0);
        for (size_t k = 0; line && k <= line_len;) {
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
