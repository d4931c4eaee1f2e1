// Entity vocabulary and entity extraction for prompts.
// A caption's entities are the vocabulary entries it mentions: the caption is lower-cased and
// split into words (letters and digits; anything else separates), plurals and irregular forms
// are folded to their base form (WordNet's morphology exceptions, then WordNet's noun suffix
// rules: -s, -ses, -ves, -xes, -zes, -ches, -shes, -men, -ies), and multi-word entries ("fire
// hydrant") are matched as one, longest first (the last word of an entry may be inflected). A word folds only to a form that is in the
// vocabulary, so "bus" stays "bus". Each entity is reported once, in order of first mention.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct EntityIndex EntityIndex;  // lookup tables (words -> entry), opaque

typedef struct {
    int n;                     // entries
    char** words;              // [n] as in the file (lower-cased), e.g. "fire hydrant"
    int32_t* token_offsets;    // [n + 1]
    int32_t* tokens;           // GPT-2 ids of " " + words[i]: tokens[token_offsets[i] .. token_offsets[i+1])
    EntityIndex* index;
} EntityVocab;

// Loads a vocabulary: a JSON object {"name": index, ...} (entries ordered by index, as the VinVL
// class list), a JSON array of names, or a text file with one name per line (the first of
// comma-separated synonyms). Morphology exceptions come from `exceptions_path` (WordNet's
// exception list as pairs of lines "base" / "form form ..."); NULL loads the shipped one
// (data/meteor/english.exceptions, shared with the evaluator's METEOR).
// `tok` may be NULL (then no tokens are filled). Returns 0, or -1 with a message in err.
int entity_vocab_load(const char* path, const char* exceptions_path, Tokenizer* tok,
                      EntityVocab* v, char* err, size_t err_size);
// The shipped default: data/vocab/vinvl_vg_coco_oi_1848.json.
char* entity_vocab_default_path(void);
void entity_vocab_free(EntityVocab* v);
// Entry index of a name (exact, after lower-casing), or -1.
int entity_vocab_find(const EntityVocab* v, const char* name);

// Entities of a caption: writes at most `cap` entry indices to out, returns how many were found
// (which may exceed cap; only the first cap are written).
int entities_extract(const EntityVocab* v, const char* caption, int32_t* out, int cap);

// The base form of one lower-case word under the vocabulary's morphology (a vocabulary word if
// a folding reaches one, otherwise the word itself); writes into buf (NUL-terminated).
void entity_fold_word(const EntityVocab* v, const char* word, char* buf, size_t buf_size);

#ifdef __cplusplus
}
#endif
