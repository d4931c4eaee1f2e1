#!/usr/bin/env python3
"""Test oracle for tests/test_tokenizer.c: OpenAI GPT-2's encoder.py algorithm (the `regex`
pre-tokeniser and the rank-ordered BPE loop) in Python.
usage: gpt2_reference.py ENCODER_JSON VOCAB_BPE < texts.jsonl > ids.jsonl
Exits 3 when the `regex` package is missing (the test is then skipped)."""
import json
import sys

try:
    import regex
except ImportError:
    sys.exit(3)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def main():
    encoder = json.load(open(sys.argv[1], encoding="utf-8"))
    merges = open(sys.argv[2], encoding="utf-8").read().split("\n")[1:-1]
    ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
    byte_encoder = bytes_to_unicode()
    pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    cache = {}

    def bpe(token):
        if token in cache:
            return cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            first, second = best
            new, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        cache[token] = word
        return word

    for line in sys.stdin:
        text = json.loads(line)
        ids = []
        for piece in regex.findall(pat, text):
            piece = "".join(byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(encoder[t] for t in bpe(piece))
        print(json.dumps(ids))


main()
