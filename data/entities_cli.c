// tipcap-prep entities: caption corpus -> entity prompts per image (JSON), with statistics.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/check.h"
#include "data/corpus.h"
#include "data/entities.h"
#include "data/prep.h"

static void usage(FILE* out) {
    fprintf(out,
            "usage: tipcap-prep entities --captions CORPUS --out PROMPTS.json [options]\n"
            "Extracts the entities of every caption (vocabulary words, plurals folded, multi-word entries\n"
            "matched as one) and writes per image the entities its captions mention:\n"
            "  {\"image key\": [\"dog\", \"frisbee\", ...], ...}   (most-mentioned first)\n"
            "  --captions FILE   caption corpus (Karpathy, COCO annotations or {\"image\": [captions]})\n"
            "  --split S         train|val|test|all (default all)\n"
            "  --vocab FILE      entity vocabulary (default data/vocab/vinvl_vg_coco_oi_1848.json)\n"
            "  --min-count N     keep entities mentioned by at least N of the image's captions (default 1)\n"
            "  --out FILE        the JSON file (written atomically)\n"
            "Prints coverage statistics and the most frequent entities.\n");
}

typedef struct {
    int entity, count, first;
} Mention;

static int by_count(const void* a, const void* b) {
    const Mention *x = a, *y = b;
    if (x->count != y->count) return y->count - x->count;
    return x->first - y->first;
}

int prep_entities_main(int argc, char** argv) {
    const char *captions = NULL, *out = NULL, *vocab_path = NULL;
    Split split = SPLIT_ALL;
    int min_count = 1;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "tipcap-prep entities: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
        const char* v = argv[++i];
        if (!strcmp(a, "--captions")) captions = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--vocab")) vocab_path = v;
        else if (!strcmp(a, "--split")) {
            int s = split_parse(v);
            if (s < 0) {
                fprintf(stderr, "tipcap-prep entities: --split: expected train, val, test or all, got '%s'\n", v);
                return 2;
            }
            split = (Split)s;
        } else if (!strcmp(a, "--min-count")) {
            char* end;
            long m = strtol(v, &end, 10);
            min_count = m > 0 && m <= 1000000 ? (int)m : -1;
            if (*end || end == v || min_count < 1) {
                fprintf(stderr, "tipcap-prep entities: --min-count: expected a positive integer, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "tipcap-prep entities: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!captions || !out) {
        fprintf(stderr, "tipcap-prep entities: --captions and --out are required\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    Corpus c;
    if (corpus_load(captions, SPLIT_TRAIN, &c, err, sizeof err) != 0) {
        fprintf(stderr, "tipcap-prep entities: %s\n", err);
        return 1;
    }
    EntityVocab vocab;
    char* vp = vocab_path ? strdupCheck(vocab_path) : entity_vocab_default_path();
    int rc = entity_vocab_load(vp, NULL, NULL, &vocab, err, sizeof err);
    free(vp);
    if (rc != 0) {
        fprintf(stderr, "tipcap-prep entities: %s\n", err);
        corpus_free(&c);
        return 1;
    }
    long* total = callocCheck((size_t)vocab.n, sizeof(long));
    long n_captions = 0, with_entity = 0, mentions = 0;
    int n_images = 0;
    Mention* m = mallocCheck((size_t)vocab.n * sizeof(Mention));
    int* slot = mallocCheck((size_t)vocab.n * sizeof(int));
    for (int e = 0; e < vocab.n; e++) slot[e] = -1;
    cJSON* root = cJSON_CreateObject();
    for (int i = 0; i < c.n_images; i++) {
        const CorpusImage* im = &c.images[i];
        if (split != SPLIT_ALL && im->split != split) continue;
        n_images++;
        int nm = 0, order = 0;
        for (int k = im->first_caption; k < im->first_caption + im->n_captions; k++) {
            int32_t found[64];
            int n = entities_extract(&vocab, c.captions[k], found, 64);
            if (n > 64) n = 64;
            n_captions++;
            with_entity += n > 0;
            mentions += n;
            for (int j = 0; j < n; j++) {
                total[found[j]]++;
                if (slot[found[j]] < 0) {
                    slot[found[j]] = nm;
                    m[nm++] = (Mention){found[j], 0, order++};
                }
                m[slot[found[j]]].count++;
            }
        }
        qsort(m, (size_t)nm, sizeof *m, by_count);
        cJSON* list = cJSON_CreateArray();
        for (int j = 0; j < nm; j++) {
            if (m[j].count >= min_count) cJSON_AddItemToArray(list, cJSON_CreateString(vocab.words[m[j].entity]));
            slot[m[j].entity] = -1;
        }
        cJSON_AddItemToObject(root, im->key, list);
    }
    int status = 0;
    if (n_images == 0) {
        fprintf(stderr, "tipcap-prep entities: %s has no images in split %s\n", captions, split_name(split));
        status = 1;
    } else {
        char* json = cJSON_Print(root);
        atomic_write_file(out, json, strlen(json));
        free(json);
        printf("%d images, %ld captions: %.1f%% of captions name at least one entity, %.2f entities per caption\n", n_images,
               n_captions, 100.0 * with_entity / n_captions, (double)mentions / n_captions);
        printf("most frequent:");
        for (int r = 0; r < 15; r++) {
            int best = -1;
            for (int e = 0; e < vocab.n; e++)
                if (total[e] > 0 && (best < 0 || total[e] > total[best])) best = e;
            if (best < 0) break;
            printf(" %s (%ld)", vocab.words[best], total[best]);
            total[best] = -total[best];
        }
        printf("\nwrote %s\n", out);
    }
    cJSON_Delete(root);
    free(total);
    free(m);
    free(slot);
    entity_vocab_free(&vocab);
    corpus_free(&c);
    return status;
}
