// Where the shipped data files (GPT-2 vocabulary, entity vocabularies, METEOR resources) are:
// $TIPCAP_DATA if set, else <program dir>/../share/tipcap (installed), else <program dir>/../data
// (a build tree). tipcap_data_path("gpt2/encoder.json") returns a path the caller frees.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

char* tipcap_data_path(const char* relative);

// mkdir -p: creates `path` and its missing parents (mode 0755). Returns 0, or -1 with errno set.
int make_directories(const char* path);

#ifdef __cplusplus
}
#endif
