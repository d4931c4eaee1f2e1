// tipcap-synth: captions -> an HDF5 feature file of simulated CLIP-like embeddings (data/synth.h).
// For tests and the demo only: the embeddings are not CLIP's.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/timer.h"
#include "data/synth.h"

static void usage(FILE* out) {
    SynthOptions d = synth_default_options();
    fprintf(out,
            "usage: tipcap-synth --captions CORPUS --out FEATURES.h5 [options]\n"
            "Simulates CLIP-like image and text embeddings for the images and captions of a corpus (for\n"
            "tests and the demo: the embeddings are NOT CLIP's). The modality gap is drawn from a known\n"
            "anisotropic N(mu*, Sigma*), stored in the file as /synth/gap_mu and /synth/gap_cov.\n"
            "  --captions FILE      caption corpus (Karpathy, COCO annotations or {\"image\": [captions]})\n"
            "  --split S            train|val|test|all: which images of a Karpathy corpus (default all)\n"
            "  --out FILE           the HDF5 feature file (written atomically)\n"
            "  --vocab FILE         entity vocabulary for /vocab (default: data/vocab/vinvl_vg_coco_oi_1848.json)\n"
            "  --no-vocab           no /vocab group\n"
            "  --max-images N       only the first N images of the split (default: all)\n"
            "  --dim D              embedding width (default %d)\n"
            "  --seed N             world seed: the same seed gives the same simulated encoder (default %llu)\n"
            "  --float16            store embeddings as float16\n"
            "  --text-mean X --text-content X --text-noise X --image-detail X\n"
            "  --gap-along X --gap-across X --gap-trace X --gap-decay X\n"
            "                       model weights (defaults %.2f %.2f %.2f %.2f, %.2f %.2f %.2f %.2f; see docs/DATA.md)\n"
            "Prints the mean cosines of the result (text-text, image-image, unpaired and matched image-text).\n",
            d.dim, (unsigned long long)d.seed, d.text_mean, d.text_content, d.text_noise, d.image_detail, d.gap_along,
            d.gap_across, d.gap_trace, d.gap_decay);
}

static double parse_number(const char* opt, const char* s) {
    char* end;
    double v = strtod(s, &end);
    if (end == s || *end) {
        fprintf(stderr, "tipcap-synth: %s: '%s' is not a number\n", opt, s);
        exit(2);
    }
    return v;
}

static long long parse_integer(const char* opt, const char* s, long long lo, long long hi) {
    char* end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "tipcap-synth: %s: expected an integer in [%lld, %lld], got '%s'\n", opt, lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char** argv) {
    SynthOptions o = synth_default_options();
    const char *captions = NULL, *out = NULL, *vocab_path = NULL;
    int no_vocab = 0, float16 = 0;
    long max_images = -1;
    Split split = SPLIT_ALL;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-vocab")) { no_vocab = 1; continue; }
        if (!strcmp(a, "--float16")) { float16 = 1; continue; }
        if (!v) {
            fprintf(stderr, "tipcap-synth: unknown option or missing value: '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--captions")) captions = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--vocab")) vocab_path = v;
        else if (!strcmp(a, "--split")) {
            int s = split_parse(v);
            if (s < 0) {
                fprintf(stderr, "tipcap-synth: --split: expected train, val, test or all, got '%s'\n", v);
                return 2;
            }
            split = (Split)s;
        } else if (!strcmp(a, "--max-images")) max_images = (long)parse_integer(a, v, 1, 1LL << 40);
        else if (!strcmp(a, "--dim")) o.dim = (int)parse_integer(a, v, 8, 8192);
        else if (!strcmp(a, "--seed")) o.seed = (uint64_t)parse_integer(a, v, 0, LLONG_MAX);
        else if (!strcmp(a, "--text-mean")) o.text_mean = parse_number(a, v);
        else if (!strcmp(a, "--text-content")) o.text_content = parse_number(a, v);
        else if (!strcmp(a, "--text-noise")) o.text_noise = parse_number(a, v);
        else if (!strcmp(a, "--image-detail")) o.image_detail = parse_number(a, v);
        else if (!strcmp(a, "--gap-along")) o.gap_along = parse_number(a, v);
        else if (!strcmp(a, "--gap-across")) o.gap_across = parse_number(a, v);
        else if (!strcmp(a, "--gap-trace")) o.gap_trace = parse_number(a, v);
        else if (!strcmp(a, "--gap-decay")) o.gap_decay = parse_number(a, v);
        else {
            fprintf(stderr, "tipcap-synth: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!captions || !out) {
        fprintf(stderr, "tipcap-synth: --captions and --out are required\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    Corpus corpus;
    if (corpus_load(captions, SPLIT_TRAIN, &corpus, err, sizeof err) != 0) {
        fprintf(stderr, "tipcap-synth: %s\n", err);
        return 1;
    }
    if (max_images >= 0) {  // keep the first N images of the split: drop the others from the corpus
        long kept = 0;
        int w = 0, wc = 0;
        for (int i = 0; i < corpus.n_images; i++) {
            CorpusImage im = corpus.images[i];
            int keep = (split == SPLIT_ALL || im.split == split) && kept < max_images;
            kept += keep;
            for (int c = im.first_caption; c < im.first_caption + im.n_captions; c++) {
                if (!keep) {
                    free(corpus.captions[c]);
                    continue;
                }
                corpus.captions[wc] = corpus.captions[c];
                corpus.caption_image[wc++] = w;
            }
            if (!keep) {
                free(im.key);
                continue;
            }
            im.first_caption = wc - im.n_captions;
            corpus.images[w++] = im;
        }
        corpus.n_images = w;
        corpus.n_captions = wc;
    }
    EntityVocab vocab;
    int have_vocab = !no_vocab;
    if (have_vocab) {
        char* path = vocab_path ? strdupCheck(vocab_path) : entity_vocab_default_path();
        int rc = entity_vocab_load(path, NULL, NULL, &vocab, err, sizeof err);
        free(path);
        if (rc != 0) {
            fprintf(stderr, "tipcap-synth: %s\n", err);
            corpus_free(&corpus);
            return 1;
        }
    }
    double t0 = timer_now();
    FeatureStore fs;
    int status = 0;
    if (synth_generate(&o, &corpus, split, have_vocab ? &vocab : NULL, &fs, err, sizeof err) != 0) {
        fprintf(stderr, "tipcap-synth: %s\n", err);
        status = 1;
    } else if (features_write(out, &fs, float16, err, sizeof err) != 0) {
        fprintf(stderr, "tipcap-synth: %s\n", err);
        status = 1;
    } else {
        SynthStats s;
        synth_measure(&fs, 99, 20000, &s);
        printf("tipcap-synth: %d images, %d captions, %d vocabulary prompts, D = %d -> %s (%.1f s)\n", fs.n_images,
               fs.n_texts, fs.n_vocab, fs.dim, out, timer_now() - t0);
        printf("mean cosine: text-text %.3f  image-image %.3f  image-text unpaired %.3f  matched %.3f  prompt-prompt %.3f\n",
               s.text_text, s.image_image, s.image_text, s.matched, s.vocab_vocab);
    }
    features_free(&fs);
    if (have_vocab) entity_vocab_free(&vocab);
    corpus_free(&corpus);
    return status;
}
