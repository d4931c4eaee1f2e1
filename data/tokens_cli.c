// tipcap-prep tokens: caption corpus -> GPT-2 token sequences (JSON lines) and the length
// statistics that fix the training length L.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/check.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/prep.h"
#include "data/tokenizer.h"

static void usage(FILE* out) {
    fprintf(out,
            "usage: tipcap-prep tokens --captions CORPUS [--out TOKENS.jsonl] [options]\n"
            "Tokenises the captions of a split with GPT-2 (leading and trailing white space trimmed, as in\n"
            "training) and prints the corpus counts and token-length statistics, with the length L that\n"
            "training uses (the --percentile of the lengths unless --max-len is given).\n"
            "  --captions FILE     caption corpus (Karpathy, COCO annotations or {\"image\": [captions]})\n"
            "  --split S           train|val|test|all (default train; restval counts as train)\n"
            "  --percentile P      L = the P-th percentile of the token lengths (default 99)\n"
            "  --max-len N         L = N\n"
            "  --out FILE          one JSON object per caption: {\"image\", \"caption\", \"ids\"} with the ids\n"
            "                      truncated to L (written atomically)\n");
}

// JSON string literal into f (control characters escaped).
static void put_json_string(FILE* f, const char* s) {
    fputc('"', f);
    for (const unsigned char* p = (const unsigned char*)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p == '\r') fputs("\\r", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

int prep_tokens_main(int argc, char** argv) {
    const char *captions = NULL, *out = NULL;
    Split split = SPLIT_TRAIN;
    double percentile = 99;
    int max_len = 0;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tipcap-prep tokens: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
        const char* v = argv[++i];
        char* end;
        if (!strcmp(a, "--captions")) captions = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--split")) {
            int s = split_parse(v);
            if (s < 0) {
                fprintf(stderr, "tipcap-prep tokens: --split: expected train, val, test or all, got '%s'\n", v);
                return 2;
            }
            split = (Split)s;
        } else if (!strcmp(a, "--percentile")) {
            percentile = strtod(v, &end);
            if (*end || end == v || !(percentile > 0 && percentile <= 100)) {
                fprintf(stderr, "tipcap-prep tokens: --percentile: expected a number in (0, 100], got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--max-len")) {
            long m = strtol(v, &end, 10);
            max_len = m > 0 && m <= 100000 ? (int)m : -1;
            if (*end || end == v || max_len < 1) {
                fprintf(stderr, "tipcap-prep tokens: --max-len: expected an integer in [1, 100000], got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "tipcap-prep tokens: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!captions) {
        fprintf(stderr, "tipcap-prep tokens: --captions is required\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    Corpus c;
    if (corpus_load(captions, SPLIT_TRAIN, &c, err, sizeof err) != 0) {
        fprintf(stderr, "tipcap-prep tokens: %s\n", err);
        return 1;
    }
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++) {
        int ni, nc;
        corpus_count(&c, (Split)s, &ni, &nc);
        printf("%-5s %7d images %8d captions\n", split_name((Split)s), ni, nc);
    }
    int n;
    corpus_count(&c, split, NULL, &n);
    if (n == 0) {
        fprintf(stderr, "tipcap-prep tokens: %s has no captions in split %s\n", captions, split_name(split));
        corpus_free(&c);
        return 1;
    }
    Tokenizer* tok = tokenizer_load_default();
    int32_t* lengths = mallocCheck((size_t)n * sizeof(int32_t));
    int32_t** ids = mallocCheck((size_t)n * sizeof(int32_t*));
    int* caption_of = mallocCheck((size_t)n * sizeof(int));
    int k = 0, status = 0;
    double sum = 0;
    for (int i = 0; i < c.n_images && status == 0; i++) {
        const CorpusImage* im = &c.images[i];
        if (split != SPLIT_ALL && im->split != split) continue;
        for (int j = im->first_caption; j < im->first_caption + im->n_captions; j++) {
            const char* s = c.captions[j];
            size_t len = strlen(s);
            while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++, len--;
            while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r')) len--;
            ids[k] = NULL;
            size_t cap = 0;
            long m = tokenizer_encode(tok, s, len, &ids[k], &cap, err, sizeof err);
            if (m < 0) {
                fprintf(stderr, "tipcap-prep tokens: %s: image \"%s\" caption %d: %s\n", captions, im->key, j - im->first_caption, err);
                free(ids[k]);
                status = 1;
                break;
            }
            lengths[k] = (int32_t)m;
            caption_of[k] = j;
            sum += (double)m;
            k++;
        }
    }
    if (status == 0) {
        int L = max_len ? max_len : length_percentile(lengths, n, percentile);
        int truncated = 0, longest = 0;
        for (int i = 0; i < n; i++) {
            truncated += lengths[i] > L;
            if (lengths[i] > longest) longest = lengths[i];
        }
        printf("split %s: %d captions, tokens per caption: mean %.2f, median %d, p90 %d, p95 %d, p99 %d, max %d\n",
               split_name(split), n, sum / n, length_percentile(lengths, n, 50), length_percentile(lengths, n, 90),
               length_percentile(lengths, n, 95), length_percentile(lengths, n, 99), longest);
        printf("L = %d (%s): %d captions (%.2f%%) truncated\n", L, max_len ? "--max-len" : "percentile", truncated,
               100.0 * truncated / n);
        if (out) {
            AtomicFile af = atomic_file_open(out);
            for (int i = 0; i < n; i++) {
                int j = caption_of[i];
                fputs("{\"image\": ", af.f);
                put_json_string(af.f, c.images[c.caption_image[j]].key);
                fputs(", \"caption\": ", af.f);
                put_json_string(af.f, c.captions[j]);
                fputs(", \"ids\": [", af.f);
                int m = lengths[i] < L ? lengths[i] : L;
                for (int t = 0; t < m; t++) fprintf(af.f, t ? ",%d" : "%d", ids[i][t]);
                fputs("]}\n", af.f);
            }
            atomic_file_commit(&af);
            printf("wrote %s\n", out);
        }
    }
    for (int i = 0; i < k; i++) free(ids[i]);
    free(ids);
    free(lengths);
    free(caption_of);
    tokenizer_free(tok);
    corpus_free(&c);
    return status;
}
