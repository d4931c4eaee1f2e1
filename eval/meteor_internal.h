// METEOR's resources, shared by the scorer (meteor.c), its normaliser (meteor_normalize.c)
// and the SPICE approximation's synonym lookups.
#pragma once
#include "eval/eval.h"
#include "eval/ngrams.h"

struct Meteor {
    Vocab function_words;       // english.function.words
    Vocab syn_words;            // english.synsets: word -> id
    int** synsets;              // [id] sorted synset offsets
    int* n_synsets;
    Vocab exc_forms;            // english.exceptions: inflected form -> id
    char*** exc_bases;          // [id] base forms
    int* n_exc_bases;
    Vocab nbp;                  // english.nonbreaking.prefixes
    char* nbp_numeric_only;     // [id] 1: #NUMERIC_ONLY#
    char* para_path;            // paraphrase-en.gz, NULL without the module
    // the paraphrase table restricted to one corpus's words (a trie over reference phrases)
    int para_loaded;
    int para_used;              // the last meteor_score ran the paraphrase module
    uint64_t* para_child_keys;  // (node << 32 | word) + 1, 0 empty
    uint32_t* para_child_vals;
    size_t para_child_cap;
    uint32_t para_n_nodes;
    uint32_t* para_emit_start;  // [node + 1] into para_emit
    uint32_t* para_emit;        // paraphrase indices in file order
    uint32_t* para_phrases;     // word ids of all paraphrases
    uint32_t* para_phrase_start;
};

// Loads the entries of the paraphrase table whose words all occur in `corpus`.
int meteor_load_paraphrases(Meteor* m, const Vocab* corpus, char* err, size_t err_cap);
// Lower-cases one code point as Java's String.toLowerCase does for the scripts captions use.
uint32_t java_lower(uint32_t c);
