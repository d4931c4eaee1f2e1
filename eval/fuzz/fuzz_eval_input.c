// libFuzzer target: the references/results readers and the pairing on arbitrary bytes (each
// input is used as both files), then the BLEU/ROUGE/CIDEr scorers on whatever parsed.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/evaluate.h"
#include "eval/input.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    char path[] = "/tmp/tipcap-fuzz-input-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) abort();
    close(fd);
    char err[4096];
    RefSet refs;
    ResultSet res;
    int ok_refs = read_references(path, &refs, err, sizeof err);
    int ok_res = read_results(path, &res, err, sizeof err);
    if (ok_refs && ok_res) {
        Pairing p;
        char* msg = NULL;
        if (pair_images(&refs, &res, path, path, &p, &msg)) {
            tokenize_images(p.images, p.n);
            double b[4];
            bleu_score(p.images, p.n, b, NULL, NULL);
            rouge_l_score(p.images, p.n, NULL);
            cider_d_score(p.images, p.n, NULL);
            free_pairing(&p);
        }
        free(msg);
    }
    if (ok_refs) free_references(&refs);
    if (ok_res) free_results(&res);
    unlink(path);
    return 0;
}
