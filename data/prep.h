// Subcommands of tipcap-prep (data/prep_main.c). Each takes argv with argv[0] = the subcommand
// name and returns the process exit status.
#pragma once

int prep_gap_main(int argc, char** argv);       // data/gap_cli.c
int prep_tokens_main(int argc, char** argv);    // data/tokens_cli.c
int prep_entities_main(int argc, char** argv);  // data/entities_cli.c
