#!/usr/bin/env python3
"""Writes eval/unicode_tables.h: the character tables the PTB tokenizer and METEOR's normaliser
need, taken from the programs tipcap-eval reproduces rather than from a Unicode version of our own.

- PTB_LETTERS, PTB_DIGITS, PTB_UPPERCASE: the BMP code points in the [:letter:], [:digit:] and
  [:uppercase:] classes of Stanford's PTBLexer as compiled into stanford-corenlp-3.4.1.jar (JFlex
  1.5.1 fixed them at an older Unicode version than Python's or the C library's). They are found by
  running the jar on three probe lines per non-ASCII code point c:
    "y'" c   the rule APOWORD2/[:letter:] keeps "y'" together only when c is a letter;
    c ",5"   NUM joins the comma only between digits;
    "etc. " c   ABBREV1/SENTEND adds a sentence-final "." only before an upper-case letter.
- JAVA_LOWER: Character.toLowerCase of Java 17, the runtime pycocoevalcap starts both jars with
  (String.toLowerCase adds only U+0130 -> "i\\u0307" and the final sigma, handled in C).
- JAVA_WORD_BREAK: the sets of the word rules of Java's BreakIterator, by Character.getType, which
  the final-sigma rule consults.
- JAVA_CASED: the "cased" characters of Java's final-sigma rule (ConditionalSpecialCasing.isCased,
  read through reflection).

Needs Java 17 and pycocoevalcap (pip install pycocoevalcap).
usage: python3 eval/gen_unicode_tables.py > eval/unicode_tables.h"""
import os
import subprocess
import sys
import tempfile

import pycocoevalcap.tokenizer.ptbtokenizer as ptbtokenizer

JAR = os.path.join(os.path.dirname(ptbtokenizer.__file__), "stanford-corenlp-3.4.1.jar")
NEWLINES = {0x85, 0x2028, 0x2029}
SPACES = {0xA0, 0x3000} | set(range(0x2000, 0x200B))


def jar_lines(lines, tmp):
    path = os.path.join(tmp, "probe.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    out = subprocess.run(["java", "-cp", JAR, "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", path],
                         check=True, capture_output=True).stdout.decode("utf-8").split("\n")
    if len(out) != len(lines):
        sys.exit("gen_unicode_tables: %d probe lines gave %d output lines" % (len(lines), len(out)))
    return out


def java_tables(tmp):
    src = os.path.join(tmp, "JavaCase.java")
    with open(src, "w") as f:
        f.write("""
public class JavaCase {
    public static void main(String[] args) throws Exception {
        java.lang.reflect.Method isCased =
            Class.forName("java.lang.ConditionalSpecialCasing").getDeclaredMethod("isCased", int.class);
        isCased.setAccessible(true);
        StringBuilder out = new StringBuilder();
        for (int cp = 0x80; cp <= 0x10FFFF; cp++) {
            int lower = Character.toLowerCase(cp);
            boolean cased = (Boolean) isCased.invoke(null, cp);
            if (lower != cp || cased) out.append(cp).append(' ').append(lower).append(' ').append(cased ? 1 : 0).append('\\n');
        }
        // runs of equal general category (Character.getType), for the word BreakIterator
        for (int cp = 0, start = 0; cp <= 0x110000; cp++) {
            if (cp == 0x110000 || (cp > start && Character.getType(cp) != Character.getType(start))) {
                out.append("type ").append(start).append(' ').append(cp - 1).append(' ').append(Character.getType(start)).append('\\n');
                start = cp;
            }
        }
        System.out.print(out);
    }
}
""")
    text = subprocess.run(["java", "--add-opens", "java.base/java.lang=ALL-UNNAMED", src], check=True, capture_output=True, text=True).stdout
    lower, cased, types = {}, set(), []
    for line in text.split("\n"):
        if line.startswith("type "):
            types.append(tuple(map(int, line.split()[1:])))
        elif line:
            cp, lo, c = map(int, line.split())
            if lo != cp:
                lower[cp] = lo
            if c:
                cased.add(cp)
    return lower, cased, types


# java.lang.Character.getType values
Mn, Me, Mc, Nd, Nl, No, Zs, Zl, Zp, Cc, Cf, Pd, Pc, Sc = 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 23, 26
LETTER_TYPES = {1, 2, 3, 4, 5}
# The sets of the word rules of Java's BreakIterator (sun.text.resources.BreakIteratorRules,
# WordBreakRules), one bit each; a code point of none of them but BASE is left out of the table.
WB = ["IGNORE", "ENCLOSING", "LETTER", "DIGIT", "MID_WORD", "MID_NUM", "PRE_NUM", "POST_NUM", "SPACE", "LINE_SEP", "CR",
      "KATAKANA", "HIRAGANA", "KANJI", "CJK_DIACRITIC", "DANDA", "BASE"]


def word_break_masks(types):
    bit = {name: 1 << k for k, name in enumerate(WB)}
    kanji = {0x3005} | set(range(0x4E00, 0x9FA6)) | set(range(0xF900, 0xFA2E))
    kata = set(range(0x30A1, 0x30FB)) | {0x30FD, 0x30FE}
    hira = set(range(0x3041, 0x3095)) | {0x309D, 0x309E}
    cjk = set(range(0x3099, 0x309D)) | {0x30FB, 0x30FC}
    special = kanji | kata | hira | cjk | {0x964, 0x965, 0xAD, 0x2027, 0x66A, 0x66B, 0xA2, 0x2030, 0x2031, 0x2028, 0x2029} | \
        {ord(c) for c in "\"'.,#%&\t\n\f\r"}
    def mask(cp, t):
        m = 0
        if t == Cf and cp != 0xAD: m |= bit["IGNORE"]  # the soft hyphen, also in mid-word, is not ignored (checked)
        if t in (Mn, Me): m |= bit["ENCLOSING"]
        if (t in LETTER_TYPES or t == Mc) and cp not in kanji | kata | hira | cjk: m |= bit["LETTER"]
        if t in (Nd, Nl, No): m |= bit["DIGIT"]
        if t in (Pd, Pc) or cp in (0xAD, 0x2027) or chr(cp) in "\"'.": m |= bit["MID_WORD"]
        if chr(cp) in "\"',." or cp == 0x66B: m |= bit["MID_NUM"]
        if (t == Sc or chr(cp) in "#.") and cp != 0xA2: m |= bit["PRE_NUM"]
        if chr(cp) in "%&" or cp in (0xA2, 0x66A, 0x2030, 0x2031): m |= bit["POST_NUM"]
        if t == Zs or cp == 9: m |= bit["SPACE"]
        if cp in (0xA, 0xC, 0x2028, 0x2029): m |= bit["LINE_SEP"]
        if cp == 0xD: m |= bit["CR"]
        if cp in kata: m |= bit["KATAKANA"]
        if cp in hira: m |= bit["HIRAGANA"]
        if cp in kanji: m |= bit["KANJI"]
        if cp in cjk: m |= bit["CJK_DIACRITIC"]
        if cp in (0x964, 0x965): m |= bit["DANDA"]
        if t not in (Mn, Me, Cc, Cf, Zl, Zp): m |= bit["BASE"]
        return m
    runs = []
    def add(first, last, m):
        if m == bit["BASE"]:
            return
        if runs and runs[-1][1] == first - 1 and runs[-1][2] == m:
            runs[-1][1] = last
        else:
            runs.append([first, last, m])
    for first, last, t in types:
        inner = [cp for cp in special if first <= cp <= last]
        start = first
        for cp in sorted(inner):
            if cp > start:
                add(start, cp - 1, mask(start, t))
            add(cp, cp, mask(cp, t))
            start = cp + 1
        if start <= last:
            add(start, last, mask(start, t))
    return runs


def ranges(points):
    out = []
    for c in sorted(points):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def lower_runs(lower):
    # {first, last, delta, stride}: code points first, first+stride, ..., last map to c + delta
    runs = []
    for c in sorted(lower):
        d = lower[c] - c
        if runs:
            first, last, delta, stride = runs[-1]
            if delta == d and ((stride == 0 and c - last in (1, 2)) or (stride and c - last == stride)):
                runs[-1][1], runs[-1][3] = c, c - first if stride == 0 else stride
                continue
        runs.append([c, c, d, 0])
    return [(f, l, d, s or 1) for f, l, d, s in runs]


def emit_ranges(name, comment, rs):
    print("// %s" % comment)
    print("static const uint32_t %s[][2] = {" % name)
    for i in range(0, len(rs), 6):
        print("    " + " ".join("{0x%X, 0x%X}," % tuple(r) for r in rs[i:i + 6]))
    print("};")


def main():
    probe = [c for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF and c not in NEWLINES]
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for c in probe:
            lines += ["y'" + chr(c), chr(c) + ",5", "etc. " + chr(c)]
        out = jar_lines(lines, tmp)
        lower, cased, types = java_tables(tmp)
    letters, digits, upper = set(), set(), set()
    for k, c in enumerate(probe):
        apo, num, etc = out[3 * k:3 * k + 3]
        if apo.split(" ")[0] == "y'":
            letters.add(c)
        if " " not in num and num.endswith(",5") and num != ",5":  # an untokenizable c leaves ",5"
            digits.add(c)
        if etc.split(" ")[:2] == ["etc.", "."] and c not in SPACES:
            upper.add(c)
    version = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.split("\n")[0]
    print("// Generated by eval/gen_unicode_tables.py from stanford-corenlp-3.4.1.jar and %s: do not edit." % version)
    print("// Non-ASCII code points only (ASCII is decided in C).")
    print("#pragma once")
    print("#include <stdint.h>")
    emit_ranges("PTB_LETTERS", "PTBLexer's [:letter:] (BMP)", ranges(letters))
    emit_ranges("PTB_DIGITS", "PTBLexer's [:digit:] (BMP)", ranges(digits))
    emit_ranges("PTB_UPPERCASE", "PTBLexer's [:uppercase:] (BMP)", ranges(upper))
    emit_ranges("JAVA_CASED", "Java 17: the cased characters of the final-sigma rule", ranges(cased))
    print("// The sets of Java's word BreakIterator rules, for the final-sigma rule of String.toLowerCase")
    for k, name in enumerate(WB):
        print("#define WB_%s 0x%X" % (name, 1 << k))
    print("// {first, last, sets}; a code point not listed is in WB_BASE only")
    print("static const uint32_t JAVA_WORD_BREAK[][3] = {")
    wb = word_break_masks(types)
    for i in range(0, len(wb), 5):
        print("    " + " ".join("{0x%X, 0x%X, 0x%X}," % tuple(r) for r in wb[i:i + 5]))
    print("};")
    runs = lower_runs(lower)
    print("// Java 17's Character.toLowerCase: {first, last, delta, stride}, c = first + k * stride maps to c + delta")
    print("static const int32_t JAVA_LOWER[][4] = {")
    for i in range(0, len(runs), 4):
        print("    " + " ".join("{0x%X, 0x%X, %d, %d}," % r for r in runs[i:i + 4]))
    print("};")


main()
