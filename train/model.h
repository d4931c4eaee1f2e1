// The TIPCap model on a Backend:
//
//   text embedding t [B,D] --Gaussian mapping--> x = normalize(t + mu + L z)   (training)
//   image embedding v [B,D] ---------------------> x = v                         (inference)
//   x --prefix projector (MLP D -> H1 -> K*C, or linear + transformer mapper)--> p [B,K,C]
//   entity words --mean of the decoder's token embeddings, projected--> q [n_words,C]
//   [p; q of the row's words] + type/position embeddings --interaction encoder (bidirectional,
//       key padding)--> e [B,K+M,C]; its first K rows prefix the decoder
//   [e_0..e_{K-1}; caption tokens] + wpe --GPT-2 decoder (causal)--> logits [B,T,Vp]
//   loss: cross-entropy on caption tokens and EOT (targets -1 elsewhere), mean over them
//
// All parameters live in one fp32 buffer (master weights) with an act-typed copy for compute,
// one fp32 gradient buffer and the AdamW moments; ParamInfo says where each tensor is.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int clip_dim;         // D
    int prefix_len;       // K
    int width;            // C (decoder and interaction encoder)
    int vocab_size;       // V: output tokens (50257 for all of GPT-2's; fewer for a corpus vocabulary)
    int max_len;          // decoder positions (rows of wpe), >= K + caption slots
    int dec_layers, dec_heads;
    int int_layers, int_heads;   // prompt interaction encoder
    int map_layers;       // 0: MLP projector; > 0: linear + this many transformer mapper layers
    int proj_hidden;      // MLP hidden width
    int max_prompts;      // M, prompt slots per row
} ModelConfig;

typedef enum { GROUP_GAP, GROUP_PROJECTOR, GROUP_PROMPT, GROUP_INTERACTION, GROUP_DECODER } ParamGroup;

typedef struct {
    char name[80];        // e.g. "decoder.h.3.attn.qkv.weight"
    size_t offset, numel; // in elements of the flat buffers
    int ndim;
    int64_t shape[2];
    int decay;            // weight decay applies (matrices and embeddings)
    ParamGroup group;
    int trainable;
} ParamInfo;

typedef struct Model Model;

// One batch as the model sees it (host arrays).
typedef struct {
    int B;                  // rows
    int L;                  // caption token slots; the decoder runs over T = K + L positions
    const float* emb;       // [B,D] text embeddings (with gap noise) or image embeddings (without)
    const int* tokens;      // [B,L] caption tokens, -1 padding
    const int* targets;     // [B,K+L] next-token targets, -1 ignored; NULL for no loss
    int M;                  // prompt slots used by this batch (<= max_prompts)
    const int* prompts;     // [B,M] index of a prompt word (a bag), -1 empty
    int n_bags;             // prompt words in this batch
    const int* bag_offsets; // [n_bags+1]
    const int* bag_ids;     // [bag_offsets[n_bags]] GPT-2 ids of each word
    int gap_noise;          // 1: x = normalize(t + mu + L z); 0: x = emb as given
    uint64_t noise_seed;    // z for row b is philox_normal(noise_seed, noise_stream, (row0 + b) * D + d)
    uint64_t noise_stream;
    uint64_t row0;          // global index of row 0 (data parallel: the same z for the same sample)
} ModelBatch;

Model* model_create(Backend* be, const ModelConfig* cfg, int max_batch, int max_caption_len);
void model_free(Model* m);
const ModelConfig* model_config(const Model* m);
Backend* model_backend(const Model* m);

int model_num_params(const Model* m);
const ParamInfo* model_param(const Model* m, int i);
const ParamInfo* model_find_param(const Model* m, const char* name);
size_t model_total_params(const Model* m);

// The GPT-2 id of each of the model's token ids ([vocab_size]; the identity unless set), saved
// with the weights so that inference can decode to text.
void model_set_vocab(Model* m, const int32_t* gpt2_ids);
const int32_t* model_vocab(const Model* m);

// GPT-2 style initialisation: N(0, 0.02) matrices and embeddings, residual projections scaled by
// 1/sqrt(2 * layers), zero biases, unit layer-norm gains; mu = 0, L = 0 (set by model_set_gap).
void model_init_random(Model* m, uint64_t seed);
// The Gaussian of the mapping: mu [D], lower-triangular L [D,D] (host, fp32).
void model_set_gap(Model* m, const float* mu, const float* chol);
// Which groups train (the gap only when learnable, the decoder unless frozen).
void model_set_trainable(Model* m, int train_gap, int train_decoder);

// Host <-> device copies of the fp32 master weights (n = model_total_params floats).
void model_get_params(Model* m, float* host);
// n master weights from element `offset` (ParamInfo.offset) to the host.
void model_get_range(Model* m, size_t offset, size_t n, float* host);
void model_set_params(Model* m, const float* host);

// Label smoothing of the cross-entropy (0 by default).
void model_set_label_smoothing(Model* m, float eps);
// Zeroes the gradients (start of an optimiser step).
void model_zero_grad(Model* m);
// Forward and backward of one micro-batch; gradients accumulate. dloss_scale multiplies the
// gradient of the summed token losses (1 / number of target tokens of the whole step).
// Returns the sum of the token losses of this micro-batch and writes their count.
double model_forward_backward(Model* m, const ModelBatch* batch, float dloss_scale, long* n_tokens);
// Forward only; returns the summed token loss (for validation).
double model_forward_loss(Model* m, const ModelBatch* batch, long* n_tokens);
// The fp32 gradient buffer (device) and its length, for all-reduce and clipping.
float* model_grads(Model* m);
// AdamW over trainable tensors; returns the gradient norm before clipping.
double model_adamw_step(Model* m, float lr, float beta1, float beta2, float eps, float weight_decay,
                        float clip_norm, int t);
// ---- inference: the prefix once, then one token per step, with a key/value cache.
// Every row decodes in step (the same position); rows can be reordered or duplicated between
// steps (beam search). Token ids are GPT-2 ids of the model's vocabulary.
typedef struct ModelDecoder ModelDecoder;
// Caches for up to `rows` sequences; top-k queries of at most k_max.
ModelDecoder* model_decoder_create(Model* m, int rows, int k_max);
void model_decoder_free(Model* m, ModelDecoder* d);
// Encodes the batch's rows (emb as given, gap_noise 0; prompts) into the prefix, runs the decoder over
// the K prefix positions, and returns for each row the top-k log-probabilities and ids of the first
// caption token: values, ids host [B,k].
void model_decode_prefix(Model* m, ModelDecoder* d, const ModelBatch* b, int k, float* values, int* ids);
// Row i of the caches becomes old row src[i] (host), for i < n; n rows are in use afterwards.
void model_decode_select(Model* m, ModelDecoder* d, const int* src, int n);
// Feeds one token per row (host [n]) at the next position; top-k of the following token as above.
void model_decode_step(Model* m, ModelDecoder* d, const int* tokens, int k, float* values, int* ids);
// The decoder's prefix (the first K rows of the interaction encoder's output) for a batch: fp32,
// host [B,K,C].
void model_prefix(Model* m, const ModelBatch* b, float* out);
// Full forward without cache: logits (fp32, host) [B, K+L, Vp] of the batch (tests, checks).
void model_logits_rows(Model* m, const ModelBatch* b, float* out);
int model_padded_vocab(const Model* m);

// The optimiser moments (device), for checkpoints.
float* model_adam_m(Model* m);
float* model_adam_v(Model* m);

#ifdef __cplusplus
}
#endif
