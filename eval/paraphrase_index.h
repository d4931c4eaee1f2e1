// A compact index of METEOR's paraphrase table (paraphrase-en.gz: 5.3 M entries, 272 MB of text),
// so that a run reads 50 MB of arrays instead of decompressing and splitting the whole table.
// It keeps exactly what the scorer uses: the table's words, its distinct phrases as word ids, and
// per phrase (as the reference side) its paraphrases in file order. Entries with a phrase of more
// than PARA_MAX_WORDS words are left out (the scorer never keeps them).
//
// Built from the table at first use and cached beside it (<table>.tipcap-index), or in
// $XDG_CACHE_HOME/tipcap (~/.cache/tipcap) where that folder cannot be written; written to a
// temporary and renamed. An index is used only when its version and the table's identity (file
// size, the gzip trailer's CRC-32 and length) match and the checksum of its contents is right;
// otherwise it is rebuilt.
#pragma once
#include <stddef.h>
#include <stdint.h>

enum { PARA_MAX_WORDS = 64 };

typedef struct {
    uint32_t n_words, n_phrases;
    uint64_t n_phrase_words, n_entries;
    const uint32_t* word_offsets;  // [n_words + 1] into word_bytes
    const char* word_bytes;
    const uint8_t* phrase_len;     // [n_phrases] words per phrase; phrase p starts after those before it
    const uint16_t* phrase_words;  // [n_phrase_words] word ids
    const uint32_t* para_count;    // [n_phrases] paraphrases of phrase p (as the reference side)
    const uint32_t* para;          // [n_entries] paraphrase phrase ids, grouped by reference phrase, file order within
    void* storage;                 // the mapped file or the built image
    size_t storage_len;
    int mapped;
} ParaIndex;

// Opens the valid index of the table at table_path, building (and caching) it when there is
// none. Returns 1, or 0 with a message in err (the table is unreadable or not a complete gzip file).
int para_index_open(const char* table_path, ParaIndex* ix, char* err, size_t err_cap);
void para_index_close(ParaIndex* ix);
// Where the index of table_path is looked for, in order (beside the table, then the cache
// folder); each a malloc'd path, NULL where there is none.
void para_index_paths(const char* table_path, char* paths[2]);
