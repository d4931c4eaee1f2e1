// Initialises the decoder from a Hugging Face GPT-2 checkpoint (model.safetensors of gpt2,
// gpt2-medium, ...; tensor names with or without the "transformer." prefix). Conv1D weights are
// stored [in, out] there and transposed into tipcap's [out, in]; wpe's first max_len rows are
// used; the vocabulary, width and layer count must match the model's config.
#pragma once
#include <stddef.h>

#include "train/model.h"

int model_load_gpt2(Model* m, const char* path, char* err, size_t err_size);
