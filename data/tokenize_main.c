// tipcap-tokenize: GPT-2 BPE on the command line.
//   encode (default): stdin has one JSON string per line; stdout gets one JSON array of ids per line.
//   --decode:         stdin has one JSON array of ids per line; stdout gets one JSON string per line.
// Output is written only when every line succeeded: an error names the line and exits 1 with
// nothing on stdout.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "data/tokenizer.h"

typedef struct {
    char* data;
    size_t len, cap;
} Buf;

static void buf_put(Buf* b, const char* s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->data = reallocCheck(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

static void buf_printf_int(Buf* b, long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%ld", v);
    buf_put(b, tmp, (size_t)n);
}

// JSON string literal of n bytes of UTF-8 (NUL and control characters escaped).
static void buf_put_json_string(Buf* b, const char* s, size_t n) {
    buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') buf_put(b, "\\\"", 2);
        else if (c == '\\') buf_put(b, "\\\\", 2);
        else if (c == '\n') buf_put(b, "\\n", 2);
        else if (c == '\r') buf_put(b, "\\r", 2);
        else if (c == '\t') buf_put(b, "\\t", 2);
        else if (c < 0x20 || c == 0x7F) {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            buf_put(b, tmp, 6);
        } else buf_put(b, (const char*)&c, 1);
    }
    buf_put(b, "\"", 1);
}

static void usage(FILE* out) {
    fprintf(out,
            "usage: tipcap-tokenize [--decode] [--encoder encoder.json] [--merges vocab.bpe] < in > out\n"
            "GPT-2 byte-level BPE.\n"
            "  (default)   each input line is a JSON string; each output line the JSON array of its GPT-2 ids\n"
            "  --decode    each input line is a JSON array of ids; each output line the decoded JSON string\n"
            "              (bytes that are not valid UTF-8 decode to U+FFFD)\n"
            "  --encoder, --merges   vocabulary files (default: the shipped data/gpt2/)\n"
            "Empty input lines are errors. On any error nothing is written to stdout and the exit status is 1.\n");
}

int main(int argc, char** argv) {
    int decode = 0;
    const char* encoder = NULL;
    const char* merges = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--decode")) decode = 1;
        else if (!strcmp(argv[i], "--encoder") && i + 1 < argc) encoder = argv[++i];
        else if (!strcmp(argv[i], "--merges") && i + 1 < argc) merges = argv[++i];
        else {
            fprintf(stderr, "tipcap-tokenize: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    char err[512];
    Tokenizer* tok;
    if (encoder || merges) {
        if (!encoder || !merges) {
            fprintf(stderr, "tipcap-tokenize: --encoder and --merges go together\n");
            return 2;
        }
        tok = tokenizer_load(encoder, merges, err, sizeof err);
        if (!tok) {
            fprintf(stderr, "tipcap-tokenize: %s\n", err);
            return 1;
        }
    } else tok = tokenizer_load_default();

    Buf out = {0};
    int32_t* ids = NULL;
    size_t ids_cap = 0;
    char* line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    long line_no = 0;
    int status = 0;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        line_no++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        cJSON* json = cJSON_ParseWithLength(line, len);
        if (!decode) {
            if (!cJSON_IsString(json)) {
                fprintf(stderr, "tipcap-tokenize: stdin line %ld: expected a JSON string\n", line_no);
                status = 1;
            } else {
                const char* s = json->valuestring;
                long n = tokenizer_encode(tok, s, strlen(s), &ids, &ids_cap, err, sizeof err);
                if (n < 0) {
                    fprintf(stderr, "tipcap-tokenize: stdin line %ld: %s\n", line_no, err);
                    status = 1;
                } else {
                    buf_put(&out, "[", 1);
                    for (long k = 0; k < n; k++) {
                        if (k) buf_put(&out, ",", 1);
                        buf_printf_int(&out, ids[k]);
                    }
                    buf_put(&out, "]\n", 2);
                }
            }
        } else {
            int n = cJSON_IsArray(json) ? cJSON_GetArraySize(json) : -1;
            if (n < 0) {
                fprintf(stderr, "tipcap-tokenize: stdin line %ld: expected a JSON array of ids\n", line_no);
                status = 1;
            } else {
                if ((size_t)n > ids_cap) {
                    ids_cap = (size_t)n;
                    ids = reallocCheck(ids, ids_cap * sizeof(int32_t));
                }
                int k = 0;
                for (cJSON* it = json->child; it; it = it->next, k++) {
                    if (!cJSON_IsNumber(it) || !(fabs(it->valuedouble) < 2147483648.0) ||
                        it->valuedouble != floor(it->valuedouble)) {
                        fprintf(stderr, "tipcap-tokenize: stdin line %ld: element %d is not an integer id\n", line_no, k);
                        status = 1;
                        break;
                    }
                    ids[k] = (int32_t)it->valuedouble;
                }
                size_t text_len;
                char* text = status ? NULL : tokenizer_decode(tok, ids, (size_t)n, &text_len, err, sizeof err);
                if (!status && !text) {
                    fprintf(stderr, "tipcap-tokenize: stdin line %ld: %s\n", line_no, err);
                    status = 1;
                }
                if (text) {
                    buf_put_json_string(&out, text, text_len);
                    buf_put(&out, "\n", 1);
                    free(text);
                }
            }
        }
        cJSON_Delete(json);
        if (status) break;
    }
    if (!status && out.len) fwriteCheck(out.data, 1, out.len, stdout, "stdout");
    if (!status && fflush(stdout) != 0) {
        fprintf(stderr, "tipcap-tokenize: writing stdout failed\n");
        status = 1;
    }
    free(out.data);
    free(ids);
    free(line);
    tokenizer_free(tok);
    return status;
}
