#include "train/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "kernels/philox.h"

// One transformer stack (pre-LN GPT-2 blocks + final layer norm), used for the decoder, the
// prompt interaction encoder and the optional mapper. Activations are sized for max_N rows.
// Block l's parameters are 12 consecutive tensors from `first + 12 l` in the order of
// BLOCK_TENSORS; the final layer norm's weight and bias follow the last block.
typedef struct {
    int L, C, H, causal;
    int first;                   // index of block 0's first tensor
    int max_N;
    void** residual;             // [L+1] act [N,C]; residual[0] is the input
    void** ln1;                  // [L] act [N,C]
    float** ln1_mean;            // [L] [N]
    float** ln1_rstd;
    void** qkv;                  // [L] act [N,3C]
    void** atty;                 // [L] act [N,C]
    float** lse;                 // [L] [B,H,T]
    void** residual2;            // [L] act [N,C] residual + attention
    void** ln2;
    float** ln2_mean;
    float** ln2_rstd;
    void** fch_pre;              // [L] act [N,4C] before GELU
    void** fch;                  // [L] act [N,4C] after GELU
    void* scratch;               // act [N,C] attention / MLP projections, not kept
    void* out;                   // act [N,C] final layer norm output
    float* out_mean;
    float* out_rstd;
    void* dresidual;             // act [N,C] gradient of the residual stream; after backward: d input
    void* dC;                    // act [N,C]
    void* d3C;                   // act [N,3C]
    void* d4C;                   // act [N,4C]
} Stack;

enum { LN1_W, LN1_B, QKV_W, QKV_B, PROJ_W, PROJ_B, LN2_W, LN2_B, FC_W, FC_B, FCPROJ_W, FCPROJ_B, BLOCK_TENSORS };

struct Model {
    Backend* be;
    ModelConfig cfg;
    int Vp;                      // vocabulary padded to a multiple of 128
    int n_params, cap_params;
    ParamInfo* params;
    size_t total;
    float* master;               // fp32 [total]
    void* params_act;            // act [total]; == master when act is fp32
    float* grads;                // fp32 [total]
    float* adam_m;
    float* adam_v;
    float label_smoothing;
    int32_t* vocab;              // [vocab_size] GPT-2 id of each token id

    int max_B, max_L, max_T, max_S, max_bags, max_bag_ids;
    // tensor indices
    int p_mu, p_chol, p_fc1_w, p_fc1_b, p_fc2_w, p_fc2_b, p_lin_w, p_lin_b, p_map_pos;
    int p_prompt_w, p_prompt_b, p_type, p_wte, p_wpe;
    Stack mapper, inter, dec;

    // activations
    float* t;                    // [B,D] input embeddings
    float* x;                    // [B,D] mapped (fp32)
    float* z;                    // [B,D] noise
    float* norm;                 // [B]
    void* x_act;                 // act [B,D]
    void* h1_pre;                // act [B,H1]
    void* h1;                    // act [B,H1]
    void* p;                     // act [B,K*C] prefix (MLP) or the mapper's linear output
    void* bag;                   // act [bags,C] mean token embedding per prompt word
    void* q;                     // act [bags,C] projected prompt tokens
    void* logits;                // act [B*T,Vp]
    float* losses;               // [B*T]
    int* tokens;                 // [B,L]
    int* targets;                // [B,T]
    int* prompts;                // [B,M]
    int* bag_ids;
    int* bag_offsets;
    int* key_len;                // [B] interaction encoder
    int* pos_dec;                // [max_T] 0..T-1
    int* pos_int;                // [max_S] 0..K-1 then K
    int* pos_map;                // [K]
    int* pos_dec_host;
    int* pos_int_host;
    // gradients of activations
    void* ddec_out;              // act [B*T,C]
    void* dint_out;              // act [B*S,C]
    float* dq_f32;               // [bags,C]
    void* dq;                    // act [bags,C]
    void* dbag;                  // act [bags,C]
    void* dp;                    // act [B,K*C]
    void* dh1;                   // act [B,H1]
    void* dx_act;                // act [B,D]
    float* dx;                   // [B,D]
    float* host_losses;          // [B*T]
};

// ---------------------------------------------------------------- parameters
static int add_param(Model* m, const char* name, int ndim, int64_t d0, int64_t d1, int decay, ParamGroup group) {
    if (m->n_params == m->cap_params)
        m->params = reallocCheck(m->params, (size_t)(m->cap_params = m->cap_params ? 2 * m->cap_params : 256) * sizeof(ParamInfo));
    ParamInfo* p = &m->params[m->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->numel = (size_t)d0 * (size_t)(ndim > 1 ? d1 : 1);
    p->offset = m->total;
    p->decay = decay;
    p->group = group;
    p->trainable = 1;
    m->total += p->numel;
    return m->n_params++;
}

static int add_stack_params(Model* m, const char* prefix, int L, int C, ParamGroup group) {
    int first = m->n_params;
    char name[80];
    for (int l = 0; l < L; l++) {
#define P(suffix, nd, a, b, decay) \
    snprintf(name, sizeof name, "%s.h.%d.%s", prefix, l, suffix); add_param(m, name, nd, a, b, decay, group)
        P("ln_1.weight", 1, C, 0, 0);
        P("ln_1.bias", 1, C, 0, 0);
        P("attn.qkv.weight", 2, 3 * C, C, 1);
        P("attn.qkv.bias", 1, 3 * C, 0, 0);
        P("attn.proj.weight", 2, C, C, 1);
        P("attn.proj.bias", 1, C, 0, 0);
        P("ln_2.weight", 1, C, 0, 0);
        P("ln_2.bias", 1, C, 0, 0);
        P("mlp.fc.weight", 2, 4 * C, C, 1);
        P("mlp.fc.bias", 1, 4 * C, 0, 0);
        P("mlp.proj.weight", 2, C, 4 * C, 1);
        P("mlp.proj.bias", 1, C, 0, 0);
#undef P
    }
    snprintf(name, sizeof name, "%s.ln_f.weight", prefix);
    add_param(m, name, 1, C, 0, 0, group);
    snprintf(name, sizeof name, "%s.ln_f.bias", prefix);
    add_param(m, name, 1, C, 0, 0, group);
    return first;
}

static void* param_act(const Model* m, int i) {
    return (char*)m->params_act + m->params[i].offset * dtype_size(m->be->act);
}

// Gradient of tensor i, or NULL when it does not train (ops skip the parameter gradient then).
static float* param_grad(const Model* m, int i) {
    return m->params[i].trainable ? m->grads + m->params[i].offset : NULL;
}

// ---------------------------------------------------------------- stacks
static void* act_alloc(Model* m, size_t n) { return m->be->alloc(m->be, n * dtype_size(m->be->act)); }
static float* f32_alloc(Model* m, size_t n) { return m->be->alloc(m->be, n * sizeof(float)); }

static void stack_alloc(Model* m, Stack* s, int L, int C, int H, int causal, int first, int max_N) {
    s->L = L;
    s->C = C;
    s->H = H;
    s->causal = causal;
    s->first = first;
    s->max_N = max_N;
    size_t N = (size_t)max_N;
    s->residual = callocCheck((size_t)L + 1, sizeof(void*));
#define ARR(field, type) s->field = callocCheck((size_t)(L ? L : 1), sizeof(type))
    ARR(ln1, void*); ARR(ln1_mean, float*); ARR(ln1_rstd, float*); ARR(qkv, void*); ARR(atty, void*);
    ARR(lse, float*); ARR(residual2, void*); ARR(ln2, void*); ARR(ln2_mean, float*); ARR(ln2_rstd, float*);
    ARR(fch_pre, void*); ARR(fch, void*);
#undef ARR
    for (int l = 0; l <= L; l++) s->residual[l] = act_alloc(m, N * C);
    for (int l = 0; l < L; l++) {
        s->ln1[l] = act_alloc(m, N * C);
        s->ln1_mean[l] = f32_alloc(m, N);
        s->ln1_rstd[l] = f32_alloc(m, N);
        s->qkv[l] = act_alloc(m, N * 3 * C);
        s->atty[l] = act_alloc(m, N * C);
        s->lse[l] = f32_alloc(m, N * H);
        s->residual2[l] = act_alloc(m, N * C);
        s->ln2[l] = act_alloc(m, N * C);
        s->ln2_mean[l] = f32_alloc(m, N);
        s->ln2_rstd[l] = f32_alloc(m, N);
        s->fch_pre[l] = act_alloc(m, N * 4 * C);
        s->fch[l] = act_alloc(m, N * 4 * C);
    }
    s->scratch = act_alloc(m, N * C);
    s->out = act_alloc(m, N * C);
    s->out_mean = f32_alloc(m, N);
    s->out_rstd = f32_alloc(m, N);
    s->dresidual = act_alloc(m, N * C);
    s->dC = act_alloc(m, N * C);
    s->d3C = act_alloc(m, N * 3 * C);
    s->d4C = act_alloc(m, N * 4 * C);
}

static void stack_free(Model* m, Stack* s) {
    Backend* be = m->be;
    for (int l = 0; l <= s->L; l++) be->free(be, s->residual[l]);
    for (int l = 0; l < s->L; l++) {
        void* bufs[] = {s->ln1[l], s->ln1_mean[l], s->ln1_rstd[l], s->qkv[l], s->atty[l], s->lse[l], s->residual2[l],
                        s->ln2[l], s->ln2_mean[l], s->ln2_rstd[l], s->fch_pre[l], s->fch[l]};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) be->free(be, bufs[i]);
    }
    void* bufs[] = {s->scratch, s->out, s->out_mean, s->out_rstd, s->dresidual, s->dC, s->d3C, s->d4C};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) be->free(be, bufs[i]);
    free(s->residual); free(s->ln1); free(s->ln1_mean); free(s->ln1_rstd); free(s->qkv); free(s->atty);
    free(s->lse); free(s->residual2); free(s->ln2); free(s->ln2_mean); free(s->ln2_rstd); free(s->fch_pre);
    free(s->fch);
}

// Key/value caches of the decoder for incremental decoding: [layers] act [rows, Tmax, C] each.
typedef struct {
    int rows, Tmax;
    void** k;
    void** v;
    void* spare;       // act [rows, Tmax, C]: the target of a reorder, swapped in afterwards
    int* select;       // device [rows]
} KVCache;

// residual[0] must hold the input ([B,T,C]); writes s->out. With a cache, the T tokens of each row
// sit at positions past .. past+T-1 and attend to the cached ones too (causal stacks only).
static void stack_forward(Model* m, Stack* s, int B, int T, const int* key_len, KVCache* cache, int past) {
    Backend* be = m->be;
    int N = B * T, C = s->C, lnf = s->first + BLOCK_TENSORS * s->L;
    if (s->L == 0) {
        be->layernorm_forward(be, s->out, s->out_mean, s->out_rstd, s->residual[0], param_act(m, lnf),
                              param_act(m, lnf + 1), N, C);
        return;
    }
    for (int l = 0; l < s->L; l++) {
        int w = s->first + BLOCK_TENSORS * l;
        if (l == 0)
            be->layernorm_forward(be, s->ln1[0], s->ln1_mean[0], s->ln1_rstd[0], s->residual[0], param_act(m, w + LN1_W),
                                  param_act(m, w + LN1_B), N, C);
        be->matmul_forward(be, s->qkv[l], NULL, s->ln1[l], param_act(m, w + QKV_W), param_act(m, w + QKV_B), N, C, 3 * C);
        if (cache)
            be->attention_forward_cached(be, s->atty[l], s->qkv[l], cache->k[l], cache->v[l], past, B, T, cache->Tmax, C,
                                         s->H);
        else
            be->attention_forward(be, s->atty[l], s->lse[l], s->qkv[l], key_len, B, T, C, s->H, s->causal);
        be->matmul_forward(be, s->scratch, NULL, s->atty[l], param_act(m, w + PROJ_W), param_act(m, w + PROJ_B), N, C, C);
        be->residual_layernorm_forward(be, s->residual2[l], s->ln2[l], s->ln2_mean[l], s->ln2_rstd[l], s->residual[l],
                                       s->scratch, param_act(m, w + LN2_W), param_act(m, w + LN2_B), N, C);
        be->matmul_forward(be, s->fch[l], s->fch_pre[l], s->ln2[l], param_act(m, w + FC_W), param_act(m, w + FC_B), N, C, 4 * C);
        be->matmul_forward(be, s->scratch, NULL, s->fch[l], param_act(m, w + FCPROJ_W), param_act(m, w + FCPROJ_B), N, 4 * C, C);
        if (l + 1 < s->L) {
            int next = w + BLOCK_TENSORS;
            be->residual_layernorm_forward(be, s->residual[l + 1], s->ln1[l + 1], s->ln1_mean[l + 1], s->ln1_rstd[l + 1],
                                           s->residual2[l], s->scratch, param_act(m, next + LN1_W),
                                           param_act(m, next + LN1_B), N, C);
        } else {
            be->residual_layernorm_forward(be, s->residual[s->L], s->out, s->out_mean, s->out_rstd, s->residual2[l],
                                           s->scratch, param_act(m, lnf), param_act(m, lnf + 1), N, C);
        }
    }
}

// From dout (act [N,C], the gradient of s->out) to s->dresidual = the gradient of the input.
static void stack_backward(Model* m, Stack* s, const void* dout, int B, int T, const int* key_len) {
    Backend* be = m->be;
    int N = B * T, C = s->C, lnf = s->first + BLOCK_TENSORS * s->L;
    be->zero(be, s->dresidual, (size_t)N * C * dtype_size(be->act));
    be->layernorm_backward(be, s->dresidual, param_grad(m, lnf), param_grad(m, lnf + 1), dout, s->residual[s->L],
                           param_act(m, lnf), s->out_mean, s->out_rstd, N, C);
    for (int l = s->L - 1; l >= 0; l--) {
        int w = s->first + BLOCK_TENSORS * l;
        // residual[l+1] = residual2 + MLP(ln2(residual2)): dresidual reaches both terms
        be->matmul_backward(be, s->d4C, param_grad(m, w + FCPROJ_W), param_grad(m, w + FCPROJ_B), s->dresidual, NULL, NULL,
                            s->fch[l], param_act(m, w + FCPROJ_W), N, 4 * C, C);
        be->matmul_backward(be, s->dC, param_grad(m, w + FC_W), param_grad(m, w + FC_B), s->d4C, s->fch_pre[l], s->d4C,
                            s->ln2[l], param_act(m, w + FC_W), N, C, 4 * C);
        be->layernorm_backward(be, s->dresidual, param_grad(m, w + LN2_W), param_grad(m, w + LN2_B), s->dC, s->residual2[l],
                               param_act(m, w + LN2_W), s->ln2_mean[l], s->ln2_rstd[l], N, C);
        // residual2 = residual[l] + attention(ln1(residual[l]))
        be->matmul_backward(be, s->dC, param_grad(m, w + PROJ_W), param_grad(m, w + PROJ_B), s->dresidual, NULL, NULL,
                            s->atty[l], param_act(m, w + PROJ_W), N, C, C);
        be->attention_backward(be, s->d3C, s->dC, s->atty[l], s->lse[l], s->qkv[l], key_len, B, T, C, s->H, s->causal);
        be->matmul_backward(be, s->dC, param_grad(m, w + QKV_W), param_grad(m, w + QKV_B), s->d3C, NULL, NULL, s->ln1[l],
                            param_act(m, w + QKV_W), N, C, 3 * C);
        be->layernorm_backward(be, s->dresidual, param_grad(m, w + LN1_W), param_grad(m, w + LN1_B), s->dC, s->residual[l],
                               param_act(m, w + LN1_W), s->ln1_mean[l], s->ln1_rstd[l], N, C);
    }
}

// ---------------------------------------------------------------- model
Model* model_create(Backend* be, const ModelConfig* cfg, int max_batch, int max_caption_len) {
    const ModelConfig* c = cfg;
    if (c->width % c->dec_heads || c->width % c->int_heads)
        FATAL("model: width %d is not a multiple of the heads (%d decoder, %d interaction)", c->width, c->dec_heads, c->int_heads);
    if (c->prefix_len + max_caption_len > c->max_len)
        FATAL("model: %d prefix tokens + %d caption tokens exceed the decoder's %d positions", c->prefix_len,
              max_caption_len, c->max_len);
    Model* m = callocCheck(1, sizeof(Model));
    m->be = be;
    m->cfg = *cfg;
    m->Vp = (c->vocab_size + 127) / 128 * 128;
    int D = c->clip_dim, K = c->prefix_len, C = c->width;

    m->p_mu = add_param(m, "gap.mu", 1, D, 0, 0, GROUP_GAP);
    m->p_chol = add_param(m, "gap.chol", 2, D, D, 0, GROUP_GAP);
    m->p_fc1_w = m->p_fc1_b = m->p_fc2_w = m->p_fc2_b = m->p_lin_w = m->p_lin_b = m->p_map_pos = -1;
    int mapper_first = -1;
    if (c->map_layers == 0) {
        m->p_fc1_w = add_param(m, "projector.fc1.weight", 2, c->proj_hidden, D, 1, GROUP_PROJECTOR);
        m->p_fc1_b = add_param(m, "projector.fc1.bias", 1, c->proj_hidden, 0, 0, GROUP_PROJECTOR);
        m->p_fc2_w = add_param(m, "projector.fc2.weight", 2, (int64_t)K * C, c->proj_hidden, 1, GROUP_PROJECTOR);
        m->p_fc2_b = add_param(m, "projector.fc2.bias", 1, (int64_t)K * C, 0, 0, GROUP_PROJECTOR);
    } else {
        m->p_lin_w = add_param(m, "projector.linear.weight", 2, (int64_t)K * C, D, 1, GROUP_PROJECTOR);
        m->p_lin_b = add_param(m, "projector.linear.bias", 1, (int64_t)K * C, 0, 0, GROUP_PROJECTOR);
        m->p_map_pos = add_param(m, "projector.pos", 2, K, C, 1, GROUP_PROJECTOR);
        mapper_first = add_stack_params(m, "projector", c->map_layers, C, GROUP_PROJECTOR);
    }
    m->p_prompt_w = add_param(m, "prompt.proj.weight", 2, C, C, 1, GROUP_PROMPT);
    m->p_prompt_b = add_param(m, "prompt.proj.bias", 1, C, 0, 0, GROUP_PROMPT);
    m->p_type = add_param(m, "interaction.type", 2, K + 1, C, 1, GROUP_INTERACTION);
    int inter_first = add_stack_params(m, "interaction", c->int_layers, C, GROUP_INTERACTION);
    m->p_wte = add_param(m, "decoder.wte", 2, m->Vp, C, 1, GROUP_DECODER);
    m->p_wpe = add_param(m, "decoder.wpe", 2, c->max_len, C, 1, GROUP_DECODER);
    int dec_first = add_stack_params(m, "decoder", c->dec_layers, C, GROUP_DECODER);

    m->master = f32_alloc(m, m->total);
    m->params_act = be->act == DTYPE_F32 ? (void*)m->master : act_alloc(m, m->total);
    m->grads = f32_alloc(m, m->total);
    m->adam_m = f32_alloc(m, m->total);
    m->adam_v = f32_alloc(m, m->total);

    int B = max_batch, M = c->max_prompts;
    m->max_B = B;
    m->max_L = max_caption_len;
    m->max_T = K + max_caption_len;
    m->max_S = K + M;
    m->max_bags = B * M;
    m->max_bag_ids = m->max_bags * 16;
    int T = m->max_T, S = m->max_S;
    if (c->map_layers > 0) stack_alloc(m, &m->mapper, c->map_layers, C, c->int_heads, 0, mapper_first, B * K);
    stack_alloc(m, &m->inter, c->int_layers, C, c->int_heads, 0, inter_first, B * S);
    stack_alloc(m, &m->dec, c->dec_layers, C, c->dec_heads, 1, dec_first, B * T);

    size_t BD = (size_t)B * D;
    m->t = f32_alloc(m, BD);
    m->x = f32_alloc(m, BD);
    m->z = f32_alloc(m, BD);
    m->norm = f32_alloc(m, (size_t)B);
    m->x_act = act_alloc(m, BD);
    m->h1_pre = act_alloc(m, (size_t)B * (c->proj_hidden > 0 ? c->proj_hidden : 1));
    m->h1 = act_alloc(m, (size_t)B * (c->proj_hidden > 0 ? c->proj_hidden : 1));
    m->p = act_alloc(m, (size_t)B * K * C);
    size_t bags = (size_t)(m->max_bags ? m->max_bags : 1);
    m->bag = act_alloc(m, bags * C);
    m->q = act_alloc(m, bags * C);
    m->logits = act_alloc(m, (size_t)B * T * m->Vp);
    m->losses = f32_alloc(m, (size_t)B * T);
    m->tokens = be->alloc(be, sizeof(int) * (size_t)B * max_caption_len + sizeof(int));
    m->targets = be->alloc(be, sizeof(int) * (size_t)B * T);
    m->prompts = be->alloc(be, sizeof(int) * (bags + 1));
    m->bag_ids = be->alloc(be, sizeof(int) * (size_t)(m->max_bag_ids + 1));
    m->bag_offsets = be->alloc(be, sizeof(int) * (bags + 1));
    m->key_len = be->alloc(be, sizeof(int) * (size_t)B);
    m->pos_dec = be->alloc(be, sizeof(int) * (size_t)T);
    m->pos_int = be->alloc(be, sizeof(int) * (size_t)S);
    m->pos_map = be->alloc(be, sizeof(int) * (size_t)K);
    m->pos_dec_host = mallocCheck(sizeof(int) * (size_t)T);
    m->pos_int_host = mallocCheck(sizeof(int) * (size_t)S);
    for (int i = 0; i < T; i++) m->pos_dec_host[i] = i;
    for (int i = 0; i < S; i++) m->pos_int_host[i] = i < K ? i : K;
    be->upload(be, m->pos_dec, m->pos_dec_host, sizeof(int) * (size_t)T);
    be->upload(be, m->pos_int, m->pos_int_host, sizeof(int) * (size_t)S);
    be->upload(be, m->pos_map, m->pos_dec_host, sizeof(int) * (size_t)K);

    m->ddec_out = act_alloc(m, (size_t)B * T * C);
    m->dint_out = act_alloc(m, (size_t)B * S * C);
    m->dq_f32 = f32_alloc(m, bags * C);
    m->dq = act_alloc(m, bags * C);
    m->dbag = act_alloc(m, bags * C);
    m->dp = act_alloc(m, (size_t)B * K * C);
    m->dh1 = act_alloc(m, (size_t)B * (c->proj_hidden > 0 ? c->proj_hidden : 1));
    m->dx_act = act_alloc(m, BD);
    m->dx = f32_alloc(m, BD);
    m->host_losses = mallocCheck(sizeof(float) * (size_t)B * T);
    m->vocab = mallocCheck(sizeof(int32_t) * (size_t)c->vocab_size);
    for (int i = 0; i < c->vocab_size; i++) m->vocab[i] = i;
    model_set_trainable(m, 0, 1);
    return m;
}

void model_free(Model* m) {
    if (!m) return;
    Backend* be = m->be;
    if (m->cfg.map_layers > 0) stack_free(m, &m->mapper);
    stack_free(m, &m->inter);
    stack_free(m, &m->dec);
    void* bufs[] = {m->grads, m->adam_m, m->adam_v, m->t, m->x, m->z, m->norm, m->x_act, m->h1_pre, m->h1, m->p,
                    m->bag, m->q, m->logits, m->losses, m->tokens, m->targets, m->prompts, m->bag_ids, m->bag_offsets,
                    m->key_len, m->pos_dec, m->pos_int, m->pos_map, m->ddec_out, m->dint_out, m->dq_f32, m->dq,
                    m->dbag, m->dp, m->dh1, m->dx_act, m->dx};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) be->free(be, bufs[i]);
    if (m->params_act != (void*)m->master) be->free(be, m->params_act);
    be->free(be, m->master);
    free(m->pos_dec_host);
    free(m->pos_int_host);
    free(m->host_losses);
    free(m->vocab);
    free(m->params);
    free(m);
}

const ModelConfig* model_config(const Model* m) { return &m->cfg; }
Backend* model_backend(const Model* m) { return m->be; }
int model_num_params(const Model* m) { return m->n_params; }
const ParamInfo* model_param(const Model* m, int i) { return &m->params[i]; }
size_t model_total_params(const Model* m) { return m->total; }
float* model_grads(Model* m) { return m->grads; }
float* model_adam_m(Model* m) { return m->adam_m; }
float* model_adam_v(Model* m) { return m->adam_v; }
void model_set_label_smoothing(Model* m, float eps) { m->label_smoothing = eps; }
void model_set_vocab(Model* m, const int32_t* gpt2_ids) {
    memcpy(m->vocab, gpt2_ids, sizeof(int32_t) * (size_t)m->cfg.vocab_size);
}
const int32_t* model_vocab(const Model* m) { return m->vocab; }

const ParamInfo* model_find_param(const Model* m, const char* name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

void model_set_trainable(Model* m, int train_gap, int train_decoder) {
    for (int i = 0; i < m->n_params; i++) {
        ParamGroup g = m->params[i].group;
        m->params[i].trainable = g == GROUP_GAP ? train_gap : g == GROUP_DECODER ? train_decoder : 1;
    }
}

static void sync_act_copy(Model* m) {
    if (m->params_act != (void*)m->master) m->be->cast_to_act(m->be, m->params_act, m->master, m->total);
}

void model_get_params(Model* m, float* host) { model_get_range(m, 0, m->total, host); }

void model_get_range(Model* m, size_t offset, size_t n, float* host) {
    m->be->download(m->be, host, m->master + offset, n * sizeof(float));
}

void model_set_params(Model* m, const float* host) {
    m->be->upload(m->be, m->master, host, m->total * sizeof(float));
    sync_act_copy(m);
}

static int is_residual_projection(const char* name) {
    return strstr(name, "attn.proj.weight") || strstr(name, "mlp.proj.weight");
}

void model_init_random(Model* m, uint64_t seed) {
    float* host = callocCheck(m->total, sizeof(float));
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo* p = &m->params[i];
        float* w = host + p->offset;
        if (p->group == GROUP_GAP) continue;  // mu = 0, L = 0 until model_set_gap
        if (strstr(p->name, "ln_") && strstr(p->name, ".weight")) {
            for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
        } else if (i == m->p_prompt_w) {
            // identity: a prompt token starts as the mean token embedding of its word, on the scale
            // of the other inputs of the interaction encoder (a random projection would shrink it
            // far below the type embedding and bury which word it is)
            for (int r = 0; r < m->cfg.width; r++) w[(size_t)r * m->cfg.width + r] = 1.0f;
        } else if (p->ndim == 2) {
            int layers = p->group == GROUP_DECODER ? m->cfg.dec_layers
                         : p->group == GROUP_INTERACTION ? m->cfg.int_layers : (m->cfg.map_layers ? m->cfg.map_layers : 1);
            float std = 0.02f;
            if (is_residual_projection(p->name)) std = 0.02f / sqrtf(2.0f * (float)layers);
            // the projector's input layers: 1/sqrt(fan in), as nn.Linear (ClipCap), so that the
            // prefix carries the embedding at the scale of the tokens instead of 0.02^2 of it
            if (i == m->p_fc1_w || i == m->p_fc2_w || i == m->p_lin_w) std = 1.0f / sqrtf((float)p->shape[1]);
            for (size_t j = 0; j < p->numel; j++) w[j] = std * philox_normal(seed, (uint64_t)i, j);
            if (i == m->p_wte)  // the padded vocabulary rows stay zero: no token ever uses them
                memset(w + (size_t)m->cfg.vocab_size * m->cfg.width, 0,
                       sizeof(float) * (size_t)(m->Vp - m->cfg.vocab_size) * m->cfg.width);
        }
    }
    model_set_params(m, host);
    free(host);
}

void model_set_gap(Model* m, const float* mu, const float* chol) {
    const ParamInfo* pm = &m->params[m->p_mu];
    const ParamInfo* pl = &m->params[m->p_chol];
    m->be->upload(m->be, m->master + pm->offset, mu, pm->numel * sizeof(float));
    m->be->upload(m->be, m->master + pl->offset, chol, pl->numel * sizeof(float));
    sync_act_copy(m);
}

void model_zero_grad(Model* m) { m->be->zero(m->be, m->grads, m->total * sizeof(float)); }

// Mapping, projector and interaction encoder: m->inter.out [B,S,C] holds the decoder's prefix in
// the first K rows of each sequence.
static void encode_prefix(Model* m, const ModelBatch* b) {
    Backend* be = m->be;
    const ModelConfig* c = &m->cfg;
    int B = b->B, D = c->clip_dim, K = c->prefix_len, C = c->width;
    int S = K + b->M;
    if (B > m->max_B || b->L > m->max_L || b->M > c->max_prompts)
        FATAL("model: batch %d x %d tokens x %d prompts exceeds the model's %d x %d x %d", B, b->L, b->M, m->max_B,
              m->max_L, c->max_prompts);
    if (b->n_bags > m->max_bags || (b->n_bags && b->bag_offsets[b->n_bags] > m->max_bag_ids))
        FATAL("model: %d prompt words with %d tokens exceed the buffers (%d words, %d tokens)", b->n_bags,
              b->n_bags ? b->bag_offsets[b->n_bags] : 0, m->max_bags, m->max_bag_ids);

    // 1. the Gaussian mapping (training) or the image embedding as it is (inference)
    be->upload(be, m->t, b->emb, sizeof(float) * (size_t)B * D);
    const float* x = m->t;
    if (b->gap_noise) {
        be->gap_sample_forward(be, m->x, m->z, m->norm, m->t, m->master + m->params[m->p_mu].offset,
                               m->master + m->params[m->p_chol].offset, B, D, b->noise_seed, b->noise_stream, b->row0);
        x = m->x;
    }
    be->cast_to_act(be, m->x_act, x, (size_t)B * D);

    // 2. prefix projector -> p [B,K,C]
    void* prefix;
    if (c->map_layers == 0) {
        be->matmul_forward(be, m->h1, m->h1_pre, m->x_act, param_act(m, m->p_fc1_w), param_act(m, m->p_fc1_b), B, D,
                           c->proj_hidden);
        be->matmul_forward(be, m->p, NULL, m->h1, param_act(m, m->p_fc2_w), param_act(m, m->p_fc2_b), B, c->proj_hidden,
                           K * C);
        prefix = m->p;
    } else {
        be->matmul_forward(be, m->p, NULL, m->x_act, param_act(m, m->p_lin_w), param_act(m, m->p_lin_b), B, D, K * C);
        be->embedding_forward(be, m->mapper.residual[0], m->p, K, NULL, NULL, param_act(m, m->p_map_pos), m->pos_map,
                              B, K, K, C);
        stack_forward(m, &m->mapper, B, K, NULL, NULL, 0);
        prefix = m->mapper.out;
    }

    // 3. prompt words -> q [n_bags,C]; interaction input [p; q of the row's words] + type rows
    if (b->n_bags > 0) {
        be->upload(be, m->bag_offsets, b->bag_offsets, sizeof(int) * (size_t)(b->n_bags + 1));
        be->upload(be, m->bag_ids, b->bag_ids, sizeof(int) * (size_t)b->bag_offsets[b->n_bags]);
        be->bag_mean_forward(be, m->bag, param_act(m, m->p_wte), m->bag_ids, m->bag_offsets, b->n_bags, C);
        be->matmul_forward(be, m->q, NULL, m->bag, param_act(m, m->p_prompt_w), param_act(m, m->p_prompt_b), b->n_bags,
                           C, C);
    }
    int* key_len_host = mallocCheck(sizeof(int) * (size_t)B);
    for (int r = 0; r < B; r++) {
        key_len_host[r] = K;
        for (int j = 0; j < b->M; j++) key_len_host[r] += b->prompts[r * b->M + j] >= 0;
    }
    if (b->M > 0) be->upload(be, m->prompts, b->prompts, sizeof(int) * (size_t)B * b->M);
    be->upload(be, m->key_len, key_len_host, sizeof(int) * (size_t)B);
    free(key_len_host);
    be->embedding_forward(be, m->inter.residual[0], prefix, K, m->prompts, m->q, param_act(m, m->p_type), m->pos_int,
                          B, S, K, C);
    stack_forward(m, &m->inter, B, S, m->key_len, NULL, 0);
}

// Uploads the batch and runs everything up to the logits.
static void forward(Model* m, const ModelBatch* b) {
    Backend* be = m->be;
    const ModelConfig* c = &m->cfg;
    int B = b->B, K = c->prefix_len, C = c->width;
    int T = K + b->L, S = K + b->M;
    encode_prefix(m, b);
    // 4. decoder over [first K rows of the interaction output; caption tokens]
    if (b->L > 0) be->upload(be, m->tokens, b->tokens, sizeof(int) * (size_t)B * b->L);
    be->embedding_forward(be, m->dec.residual[0], m->inter.out, S, m->tokens, param_act(m, m->p_wte),
                          param_act(m, m->p_wpe), m->pos_dec, B, T, K, C);
    stack_forward(m, &m->dec, B, T, NULL, NULL, 0);
    be->matmul_forward(be, m->logits, NULL, m->dec.out, param_act(m, m->p_wte), NULL, B * T, C, m->Vp);
}

static double loss_and_grad(Model* m, const ModelBatch* b, float dloss_scale, long* n_tokens) {
    Backend* be = m->be;
    int N = b->B * (m->cfg.prefix_len + b->L);
    be->upload(be, m->targets, b->targets, sizeof(int) * (size_t)N);
    be->crossentropy_forward_backward(be, m->losses, m->logits, m->targets, b->targets, N, m->cfg.vocab_size, m->Vp,
                                      m->label_smoothing, dloss_scale);
    be->download(be, m->host_losses, m->losses, sizeof(float) * (size_t)N);
    double sum = 0;
    long count = 0;
    for (int i = 0; i < N; i++) {
        if (b->targets[i] < 0) continue;
        sum += m->host_losses[i];
        count++;
    }
    if (n_tokens) *n_tokens = count;
    return sum;
}

double model_forward_loss(Model* m, const ModelBatch* b, long* n_tokens) {
    if (!b->targets) FATAL("model_forward_loss: the batch has no targets");
    forward(m, b);
    return loss_and_grad(m, b, 0.0f, n_tokens);
}

double model_forward_backward(Model* m, const ModelBatch* b, float dloss_scale, long* n_tokens) {
    Backend* be = m->be;
    const ModelConfig* c = &m->cfg;
    int B = b->B, D = c->clip_dim, K = c->prefix_len, C = c->width;
    int T = K + b->L, S = K + b->M;
    size_t act = dtype_size(be->act);
    if (!b->targets) FATAL("model_forward_backward: the batch has no targets");
    forward(m, b);
    double loss = loss_and_grad(m, b, dloss_scale, n_tokens);

    // LM head (tied to wte) and decoder
    be->matmul_backward(be, m->ddec_out, param_grad(m, m->p_wte), NULL, m->logits, NULL, NULL, m->dec.out,
                        param_act(m, m->p_wte), B * T, C, m->Vp);
    stack_backward(m, &m->dec, m->ddec_out, B, T, NULL);
    be->zero(be, m->dint_out, (size_t)B * S * C * act);
    be->embedding_backward(be, m->dint_out, S, param_grad(m, m->p_wte), param_grad(m, m->p_wpe), m->dec.dresidual,
                           m->tokens, b->tokens, m->pos_dec, m->pos_dec_host, B, T, K, C, m->Vp, c->max_len);

    // interaction encoder, then split its input gradient into prefix and prompt parts
    stack_backward(m, &m->inter, m->dint_out, B, S, m->key_len);
    if (b->n_bags > 0) be->zero(be, m->dq_f32, sizeof(float) * (size_t)b->n_bags * C);
    be->embedding_backward(be, m->dp, K, b->n_bags > 0 ? m->dq_f32 : NULL, param_grad(m, m->p_type), m->inter.dresidual,
                           m->prompts, b->prompts, m->pos_int, m->pos_int_host, B, S, K, C, b->n_bags, K + 1);
    if (b->n_bags > 0) {
        be->cast_to_act(be, m->dq, m->dq_f32, (size_t)b->n_bags * C);
        be->matmul_backward(be, m->dbag, param_grad(m, m->p_prompt_w), param_grad(m, m->p_prompt_b), m->dq, NULL, NULL,
                            m->bag, param_act(m, m->p_prompt_w), b->n_bags, C, C);
        float* dwte = param_grad(m, m->p_wte);
        if (dwte) be->bag_mean_backward(be, dwte, m->dbag, b->bag_ids, b->bag_offsets, b->n_bags, C, m->Vp);
    }

    // prefix projector, down to the mapped embedding when the Gaussian trains
    int gap_trains = b->gap_noise && m->params[m->p_mu].trainable;
    void* dx_act = gap_trains ? m->dx_act : NULL;
    if (c->map_layers == 0) {
        be->matmul_backward(be, m->dh1, param_grad(m, m->p_fc2_w), param_grad(m, m->p_fc2_b), m->dp, NULL, NULL, m->h1,
                            param_act(m, m->p_fc2_w), B, c->proj_hidden, K * C);
        be->matmul_backward(be, dx_act, param_grad(m, m->p_fc1_w), param_grad(m, m->p_fc1_b), m->dh1, m->h1_pre, m->dh1,
                            m->x_act, param_act(m, m->p_fc1_w), B, D, c->proj_hidden);
    } else {
        stack_backward(m, &m->mapper, m->dp, B, K, NULL);
        be->embedding_backward(be, m->dp, K, NULL, param_grad(m, m->p_map_pos), m->mapper.dresidual, NULL, NULL,
                               m->pos_map, m->pos_dec_host, B, K, K, C, 0, K);
        be->matmul_backward(be, dx_act, param_grad(m, m->p_lin_w), param_grad(m, m->p_lin_b), m->dp, NULL, NULL,
                            m->x_act, param_act(m, m->p_lin_w), B, D, K * C);
    }
    if (gap_trains) {
        be->cast_to_f32(be, m->dx, m->dx_act, (size_t)B * D);
        be->gap_sample_backward(be, NULL, param_grad(m, m->p_mu), param_grad(m, m->p_chol), m->dx, m->x, m->z, m->norm,
                                B, D);
    }
    return loss;
}

double model_adamw_step(Model* m, float lr, float beta1, float beta2, float eps, float weight_decay, float clip_norm,
                        int t) {
    Backend* be = m->be;
    double norm = sqrt(be->sum_squares(be, m->grads, m->total));
    float scale = (clip_norm > 0 && norm > clip_norm) ? (float)(clip_norm / norm) : 1.0f;
    for (int i = 0; i < m->n_params; i++) {
        const ParamInfo* p = &m->params[i];
        if (!p->trainable) continue;
        void* act_copy = m->params_act == (void*)m->master ? NULL : param_act(m, i);
        be->adamw_update(be, m->master + p->offset, act_copy, m->grads + p->offset, m->adam_m + p->offset,
                         m->adam_v + p->offset, p->numel, lr, beta1, beta2, eps, p->decay ? weight_decay : 0.0f, scale, t);
    }
    return norm;
}

// ---------------------------------------------------------------- incremental decoding
struct ModelDecoder {
    KVCache cache;
    int n;                 // rows in use
    int pos;               // next position to fill (all rows in step)
    void* last;            // act [rows, C] the final hidden state of each row's newest token
    int* last_idx;         // device [rows] rows of dec.out to gather (prefix: b*K + K-1)
    float* top_values;     // device [rows, k_max]
    int* top_ids;
    int k_max;
};

ModelDecoder* model_decoder_create(Model* m, int rows, int k_max) {
    Backend* be = m->be;
    const ModelConfig* c = &m->cfg;
    if (rows > m->max_B) FATAL("model: %d decoding rows exceed the model's batch of %d", rows, m->max_B);
    ModelDecoder* d = callocCheck(1, sizeof(ModelDecoder));
    d->cache.rows = rows;
    d->cache.Tmax = m->max_T;
    size_t per_layer = (size_t)rows * m->max_T * c->width;
    d->cache.k = callocCheck((size_t)c->dec_layers, sizeof(void*));
    d->cache.v = callocCheck((size_t)c->dec_layers, sizeof(void*));
    for (int l = 0; l < c->dec_layers; l++) {
        d->cache.k[l] = act_alloc(m, per_layer);
        d->cache.v[l] = act_alloc(m, per_layer);
    }
    d->cache.spare = act_alloc(m, per_layer);
    d->cache.select = be->alloc(be, sizeof(int) * (size_t)rows);
    d->last = act_alloc(m, (size_t)rows * c->width);
    d->last_idx = be->alloc(be, sizeof(int) * (size_t)rows);
    d->k_max = k_max;
    d->top_values = f32_alloc(m, (size_t)rows * k_max);
    d->top_ids = be->alloc(be, sizeof(int) * (size_t)rows * k_max);
    return d;
}

void model_decoder_free(Model* m, ModelDecoder* d) {
    if (!d) return;
    Backend* be = m->be;
    for (int l = 0; l < m->cfg.dec_layers; l++) {
        be->free(be, d->cache.k[l]);
        be->free(be, d->cache.v[l]);
    }
    free(d->cache.k);
    free(d->cache.v);
    void* bufs[] = {d->cache.spare, d->cache.select, d->last, d->last_idx, d->top_values, d->top_ids};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) be->free(be, bufs[i]);
    free(d);
}

// LM head on d->last rows and the top-k of their log-softmax, to the host.
static void next_token_topk(Model* m, ModelDecoder* d, int n, int k, float* values, int* ids) {
    Backend* be = m->be;
    if (k > d->k_max) FATAL("model: top-%d exceeds the decoder's %d", k, d->k_max);
    be->matmul_forward(be, m->logits, NULL, d->last, param_act(m, m->p_wte), NULL, n, m->cfg.width, m->Vp);
    be->logsoftmax_topk(be, d->top_values, d->top_ids, m->logits, n, m->cfg.vocab_size, m->Vp, k);
    be->download(be, values, d->top_values, sizeof(float) * (size_t)n * k);
    be->download(be, ids, d->top_ids, sizeof(int) * (size_t)n * k);
}

void model_decode_prefix(Model* m, ModelDecoder* d, const ModelBatch* b, int k, float* values, int* ids) {
    Backend* be = m->be;
    const ModelConfig* c = &m->cfg;
    int B = b->B, K = c->prefix_len, C = c->width, S = K + b->M;
    if (B > d->cache.rows) FATAL("model: %d rows exceed the decoder's %d", B, d->cache.rows);
    encode_prefix(m, b);
    be->embedding_forward(be, m->dec.residual[0], m->inter.out, S, NULL, param_act(m, m->p_wte), param_act(m, m->p_wpe),
                          m->pos_dec, B, K, K, C);
    stack_forward(m, &m->dec, B, K, NULL, &d->cache, 0);
    int* idx = mallocCheck(sizeof(int) * (size_t)B);
    for (int r = 0; r < B; r++) idx[r] = r * K + K - 1;
    be->upload(be, d->last_idx, idx, sizeof(int) * (size_t)B);
    free(idx);
    be->rows_gather(be, d->last, m->dec.out, d->last_idx, B, (size_t)C);
    d->n = B;
    d->pos = K;
    next_token_topk(m, d, B, k, values, ids);
}

void model_decode_select(Model* m, ModelDecoder* d, const int* src, int n) {
    Backend* be = m->be;
    int C = m->cfg.width;
    if (n > d->cache.rows) FATAL("model: %d rows exceed the decoder's %d", n, d->cache.rows);
    be->upload(be, d->cache.select, src, sizeof(int) * (size_t)n);
    size_t row = (size_t)d->cache.Tmax * C;
    for (int l = 0; l < m->cfg.dec_layers; l++) {
        void** bufs[2] = {&d->cache.k[l], &d->cache.v[l]};
        for (int j = 0; j < 2; j++) {
            be->rows_gather(be, d->cache.spare, *bufs[j], d->cache.select, n, row);
            void* old = *bufs[j];
            *bufs[j] = d->cache.spare;
            d->cache.spare = old;
        }
    }
    d->n = n;
}

void model_decode_step(Model* m, ModelDecoder* d, const int* tokens, int k, float* values, int* ids) {
    Backend* be = m->be;
    int n = d->n, C = m->cfg.width;
    if (d->pos >= d->cache.Tmax) FATAL("model: decoding past the %d positions of the decoder", d->cache.Tmax);
    be->upload(be, m->tokens, tokens, sizeof(int) * (size_t)n);
    be->embedding_forward(be, m->dec.residual[0], NULL, 0, m->tokens, param_act(m, m->p_wte), param_act(m, m->p_wpe),
                          m->pos_dec + d->pos, n, 1, 0, C);
    stack_forward(m, &m->dec, n, 1, NULL, &d->cache, d->pos);
    be->copy(be, d->last, m->dec.out, (size_t)n * C * dtype_size(be->act));
    d->pos++;
    next_token_topk(m, d, n, k, values, ids);
}

void model_prefix(Model* m, const ModelBatch* b, float* out) {
    Backend* be = m->be;
    int K = m->cfg.prefix_len, C = m->cfg.width, S = K + b->M;
    encode_prefix(m, b);
    size_t n = (size_t)b->B * S * C;
    float* f = f32_alloc(m, n);
    float* host = mallocCheck(n * sizeof(float));
    be->cast_to_f32(be, f, m->inter.out, n);
    be->download(be, host, f, n * sizeof(float));
    for (int r = 0; r < b->B; r++) memcpy(out + (size_t)r * K * C, host + (size_t)r * S * C, sizeof(float) * (size_t)K * C);
    free(host);
    be->free(be, f);
}

void model_logits_rows(Model* m, const ModelBatch* b, float* out) {
    forward(m, b);
    Backend* be = m->be;
    size_t n = (size_t)b->B * (m->cfg.prefix_len + b->L) * m->Vp;
    float* f = f32_alloc(m, n);
    be->cast_to_f32(be, f, m->logits, n);
    be->download(be, out, f, n * sizeof(float));
    be->free(be, f);
}

int model_padded_vocab(const Model* m) { return m->Vp; }
