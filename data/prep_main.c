// tipcap-prep: data preparation. Each subcommand lives with its part of data/:
//   gap       modality-gap estimation per data setting (data/gap_cli.c)
//   tokens    caption corpus -> token sequences (data/tokens_cli.c)
//   entities  caption corpus -> entity prompts (data/entities_cli.c)
#include <stdio.h>
#include <string.h>

#include "data/prep.h"

static const struct {
    const char* name;
    int (*main)(int argc, char** argv);
    const char* help;
} subcommands[] = {
    {"gap", prep_gap_main, "estimate the modality gap (mu, Sigma, Cholesky) for a data setting"},
    {"tokens", prep_tokens_main, "caption corpus -> GPT-2 token sequences, split counts and the length L"},
    {"entities", prep_entities_main, "caption corpus -> entity prompts per image"},
    {NULL, NULL, NULL},
};

static void usage(FILE* out) {
    fprintf(out, "usage: tipcap-prep SUBCOMMAND [options]   (tipcap-prep SUBCOMMAND --help for its options)\n\n");
    for (int i = 0; subcommands[i].name; i++)
        fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].help);
}

int main(int argc, char** argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; subcommands[i].name; i++)
        if (!strcmp(argv[1], subcommands[i].name)) return subcommands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "tipcap-prep: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
