// GPT-2 byte-level BPE (encode and decode), built from the original encoder.json and vocab.bpe.
// Gives exactly GPT-2's ids: the text is split by GPT-2's pre-tokenisation pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (Unicode letters, numbers and White_Space as the Python `regex` module defines them), each
// piece's UTF-8 bytes are mapped to tokens and merged by rank. "<|endoftext|>" in the text is
// ordinary text (GPT-2's encoder does not treat it specially); the EOT id is 50256.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/utf8.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GPT2_EOT 50256
#define GPT2_VOCAB_SIZE 50257

typedef struct Tokenizer Tokenizer;

// Loads encoder.json and vocab.bpe. Returns NULL with a message naming the file (and the line
// or key) in err on any problem.
Tokenizer* tokenizer_load(const char* encoder_json, const char* vocab_bpe, char* err, size_t err_size);
// The shipped GPT-2 files (tipcap_data_path("gpt2/...")); exits with a clear error if absent.
Tokenizer* tokenizer_load_default(void);
void tokenizer_free(Tokenizer* tok);
int tokenizer_vocab_size(const Tokenizer* tok);

// Encodes `len` bytes of UTF-8 text. Appends the ids to *ids (grown with realloc; *cap is its
// capacity in ids) and returns the number of ids written, or -1 if the text is not valid UTF-8
// (err then names the byte offset). Not thread-safe: it fills a per-tokenizer cache of words.
long tokenizer_encode(Tokenizer* tok, const char* text, size_t len, int32_t** ids, size_t* cap,
                      char* err, size_t err_size);
// Decodes ids to UTF-8 (NUL-terminated, caller frees; *len_out gets the byte count if not NULL).
// Byte sequences that are not valid UTF-8 (a multi-byte character cut between tokens) become
// U+FFFD, as GPT-2's decode(errors="replace") does. Returns NULL if an id is out of range
// (err names its position).
char* tokenizer_decode(const Tokenizer* tok, const int32_t* ids, size_t n, size_t* len_out,
                       char* err, size_t err_size);
// The raw bytes of one token (not NUL-terminated), for streaming decoders.
const char* tokenizer_token_bytes(const Tokenizer* tok, int32_t id, int* len);

#ifdef __cplusplus
}
#endif
