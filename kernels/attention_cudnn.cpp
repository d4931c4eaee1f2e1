// cuDNN's fused flash attention (see attention_cudnn.h): one cudnn-frontend graph per shape,
// direction, causality and padding, built on first use and cached (building takes up to a second;
// executing is a single fused kernel launch). A graph cuDNN refuses (validation, support check or
// plans fail: a shape, GPU or cuDNN version it has no engine for) is not an error: that shape runs
// on tipcap's kernels instead, and the first refusal is logged with cuDNN's reason. Runs on the default stream, like the rest of the
// CUDA backend. Host code only, built by the C++ compiler into the CUDA library (not under the CPU
// emulation: it has no cuDNN).
#include <cublas_v2.h>  // for common/cuda_check.h
#include <cuda_runtime.h>
#include <cudnn.h>
#define CUDNN_FRONTEND_SKIP_JSON_LIB  // the graphs are built in code, never (de)serialised
#include <cudnn_frontend.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <memory>
#include <tuple>
#include <unordered_map>

#include "common/check.h"
#include "common/cuda_check.h"
#include "common/log.h"
#include "kernels/attention.h"
#include "kernels/attention_cudnn.h"

namespace fe = cudnn_frontend;

static void cudnn_check(cudnnStatus_t status, const char* file, int line) {
    if (status != CUDNN_STATUS_SUCCESS) fatal_at(file, line, "cuDNN: %s", cudnnGetErrorString(status));
}
#define cudnnCheck(status) cudnn_check((status), __FILE__, __LINE__)

static void frontend_check(const fe::error_object& e, const char* file, int line) {
    if (!e.is_good()) fatal_at(file, line, "cuDNN frontend: %s", e.err_msg.c_str());
}
#define frontendCheck(e) frontend_check((e), __FILE__, __LINE__)

// Tensor ids of the variant packs.
enum { UID_Q = 1, UID_K, UID_V, UID_O, UID_STATS, UID_DO, UID_DQ, UID_DK, UID_DV, UID_SEQ_Q, UID_SEQ_KV };

typedef std::tuple<int, int, int, int, int, int, int> GraphKey;  // backward?, B, T, H, hs, causal, padded

static cudnnHandle_t handle;
static std::map<GraphKey, std::shared_ptr<fe::graph::Graph>> graphs;  // nullptr: cuDNN refused the shape
static void* workspace;        // device, grown to the largest graph's need
static int64_t workspace_bytes;
static int* seq_len_q;         // device [B] of T (every query row is a real row), grown on demand
static int seq_len_q_B, seq_len_q_T;

// q, k or v of every token inside qkv [B,T,3C] as a [B,H,T,hs] view (offsets by the pointer); and
// out, dout [B,T,C] the same way with row stride C.
static std::vector<int64_t> qkv_strides(int H, int T, int hs) {
    return {(int64_t)3 * H * hs * T, hs, (int64_t)3 * H * hs, 1};
}
static std::vector<int64_t> out_strides(int H, int T, int hs) { return {(int64_t)H * hs * T, hs, (int64_t)H * hs, 1}; }

static std::shared_ptr<fe::graph::Tensor_attributes> bf16_tensor(fe::graph::Graph& g, const char* name, int64_t uid,
                                                                  int B, int H, int T, int hs,
                                                                  const std::vector<int64_t>& strides) {
    return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim({B, H, T, hs}).set_stride(strides));
}

// The softmax statistics lse [B,H,T] (fp32), as the forward writes them and the backward reads them.
static fe::graph::Tensor_attributes& stats_layout(fe::graph::Tensor_attributes& t, int B, int H, int T) {
    return t.set_uid(UID_STATS).set_data_type(fe::DataType_t::FLOAT).set_dim({B, H, T, 1})
        .set_stride({(int64_t)H * T, T, 1, 1});
}

static std::shared_ptr<fe::graph::Tensor_attributes> seq_len_tensor(fe::graph::Graph& g, const char* name, int64_t uid,
                                                                     int B) {
    return g.tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim({B, 1, 1, 1})
                        .set_stride({1, 1, 1, 1}).set_data_type(fe::DataType_t::INT32));
}

// Key padding (forward and backward options alike): every query row is real, keys j < key_len[b].
template <typename Options> static void set_key_padding(Options& options, fe::graph::Graph& g, int B) {
    options.set_padding_mask(true).set_seq_len_q(seq_len_tensor(g, "seq_len_q", UID_SEQ_Q, B))
        .set_seq_len_kv(seq_len_tensor(g, "seq_len_kv", UID_SEQ_KV, B));
}

// Test hook: TIPCAP_CUDNN_REFUSE=forward|backward|both makes every graph of that direction count
// as refused, so that the fallback runs on any GPU.
static bool refusal_injected(int backward) {
    const char* v = getenv("TIPCAP_CUDNN_REFUSE");
    if (!v) return false;
    return !strcmp(v, "both") || !strcmp(v, backward ? "backward" : "forward");
}

// The first refusal is logged; later ones would repeat it for every new shape.
static void note_refusal(int backward, int B, int T, int H, int hs, int causal, const std::string& why) {
    static bool said;
    if (said) return;
    said = true;
    LOG_WARN("cuDNN attention: no %s engine for B=%d T=%d H=%d head size %d%s (%s); such shapes use tipcap's "
             "kernels", backward ? "backward" : "forward", B, T, H, hs, causal ? " causal" : "", why.c_str());
}

// The cached graph of the key, built on first use; nullptr when cuDNN refuses it.
static std::shared_ptr<fe::graph::Graph> build_graph(int backward, int B, int T, int H, int hs, int causal, int padded) {
    GraphKey key(backward, B, T, H, hs, causal, padded);
    auto it = graphs.find(key);
    if (it != graphs.end()) return it->second;
    if (!handle) cudnnCheck(cudnnCreate(&handle));

    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    const std::vector<int64_t> in_s = qkv_strides(H, T, hs), out_s = out_strides(H, T, hs);
    auto Q = bf16_tensor(*g, "Q", UID_Q, B, H, T, hs, in_s);
    auto K = bf16_tensor(*g, "K", UID_K, B, H, T, hs, in_s);
    auto V = bf16_tensor(*g, "V", UID_V, B, H, T, hs, in_s);
    const float scale = 1.0f / sqrtf((float)hs);
    if (!backward) {
        auto options = fe::graph::SDPA_attributes().set_name("attention_forward").set_generate_stats(true)
                           .set_attn_scale(scale).set_causal_mask(causal != 0);
        if (padded) set_key_padding(options, *g, B);
        auto [O, stats] = g->sdpa(Q, K, V, options);
        O->set_output(true).set_uid(UID_O).set_dim({B, H, T, hs}).set_stride(out_s);
        stats_layout(stats->set_output(true), B, H, T);
    } else {
        auto O = bf16_tensor(*g, "O", UID_O, B, H, T, hs, out_s);
        auto dO = bf16_tensor(*g, "dO", UID_DO, B, H, T, hs, out_s);
        auto options = fe::graph::SDPA_backward_attributes().set_name("attention_backward").set_attn_scale(scale)
                           .set_causal_mask(causal != 0).set_deterministic_algorithm(true);
        if (padded) set_key_padding(options, *g, B);
        fe::graph::Tensor_attributes stats_in;
        auto stats = g->tensor(stats_layout(stats_in.set_name("stats"), B, H, T));
        auto [dQ, dK, dV] = g->sdpa_backward(Q, K, V, O, dO, stats, options);
        dQ->set_output(true).set_uid(UID_DQ).set_dim({B, H, T, hs}).set_stride(in_s);
        dK->set_output(true).set_uid(UID_DK).set_dim({B, H, T, hs}).set_stride(in_s);
        dV->set_output(true).set_uid(UID_DV).set_dim({B, H, T, hs}).set_stride(in_s);
    }
    fe::error_object e;
    if (refusal_injected(backward)) e = {fe::error_code_t::GRAPH_NOT_SUPPORTED, "refused by TIPCAP_CUDNN_REFUSE"};
    if (e.is_good()) e = g->validate();
    if (e.is_good()) e = g->build_operation_graph(handle);
    if (e.is_good()) e = g->create_execution_plans({fe::HeurMode_t::A});
    if (e.is_good()) e = g->check_support(handle);
    if (e.is_good()) e = g->build_plans(handle);
    if (!e.is_good()) {
        note_refusal(backward, B, T, H, hs, causal, e.err_msg);
        graphs.emplace(key, nullptr);
        return nullptr;
    }
    int64_t need = 0;
    frontendCheck(g->get_workspace_size(need));
    if (need > workspace_bytes) {
        cudaCheck(cudaDeviceSynchronize());  // earlier graphs may still use the old workspace
        cudaCheck(cudaFree(workspace));
        cudaCheck(cudaMalloc(&workspace, (size_t)need));
        workspace_bytes = need;
    }
    graphs.emplace(key, g);
    return g;
}

// Every query row is real: seq_len_q[b] = T.
static int* query_lengths(int B, int T) {
    if (B > seq_len_q_B || T != seq_len_q_T) {
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaFree(seq_len_q));
        cudaCheck(cudaMalloc((void**)&seq_len_q, (size_t)B * sizeof(int)));
        std::vector<int> host((size_t)B, T);
        cudaCheck(cudaMemcpy(seq_len_q, host.data(), (size_t)B * sizeof(int), cudaMemcpyHostToDevice));
        seq_len_q_B = B;
        seq_len_q_T = T;
    }
    return seq_len_q;
}

static int cudnn_takes(int C, int H) {
    const int hs = C / H;
    return H > 0 && C % H == 0 && hs % 8 == 0 && hs <= 128;
}

// Scratch for a backward that cuDNN refuses after its forward ran: tipcap's forward recomputed, so
// that tipcap's backward reads the output and statistics of its own forward.
static void* fallback_out;  // device [B,T,C] bf16
static float* fallback_lse; // device [B,H,T]
static size_t fallback_rows;
static void fallback_forward(const void* qkv, const int* key_len, int B, int T, int C, int H, int causal) {
    size_t rows = (size_t)B * T;
    if (rows > fallback_rows) {
        cudaCheck(cudaDeviceSynchronize());
        cudaCheck(cudaFree(fallback_out));
        cudaCheck(cudaFree(fallback_lse));
        cudaCheck(cudaMalloc(&fallback_out, rows * C * sizeof(uint16_t)));
        cudaCheck(cudaMalloc((void**)&fallback_lse, rows * H * sizeof(float)));
        fallback_rows = rows;
    }
    attention_forward_cuda(fallback_out, fallback_lse, qkv, key_len, B, T, C, H, causal, DTYPE_BF16);
}

extern "C" void attention_forward_backend_cudnn(Backend* be, void* out, float* lse, const void* qkv, const int* key_len,
                                                int B, int T, int C, int H, int causal) {
    if (!cudnn_takes(C, H)) {
        attention_forward_cuda(out, lse, qkv, key_len, B, T, C, H, causal, be->act);
        return;
    }
    const int hs = C / H;
    auto g = build_graph(0, B, T, H, hs, causal, key_len != NULL);
    if (!g) {
        attention_forward_cuda(out, lse, qkv, key_len, B, T, C, H, causal, be->act);
        return;
    }
    uint16_t* x = (uint16_t*)qkv;  // bf16 bits
    std::unordered_map<int64_t, void*> pack = {{UID_Q, x}, {UID_K, x + C}, {UID_V, x + 2 * C}, {UID_O, out},
                                               {UID_STATS, lse}};
    if (key_len) {
        pack[UID_SEQ_Q] = query_lengths(B, T);
        pack[UID_SEQ_KV] = (void*)key_len;
    }
    frontendCheck(g->execute(handle, pack, workspace));
    cudaCheckLaunch();
}

extern "C" void attention_backward_backend_cudnn(Backend* be, void* dqkv, const void* dout, const void* out,
                                                 const float* lse, const void* qkv, const int* key_len, int B, int T,
                                                 int C, int H, int causal) {
    if (!cudnn_takes(C, H)) {
        attention_backward_cuda(dqkv, dout, out, lse, qkv, key_len, B, T, C, H, causal, be->act);
        return;
    }
    const int hs = C / H;
    auto g = build_graph(1, B, T, H, hs, causal, key_len != NULL);
    if (!g) {
        if (build_graph(0, B, T, H, hs, causal, key_len != NULL)) {  // out and lse came from cuDNN
            fallback_forward(qkv, key_len, B, T, C, H, causal);
            out = fallback_out;
            lse = fallback_lse;
        }
        attention_backward_cuda(dqkv, dout, out, lse, qkv, key_len, B, T, C, H, causal, be->act);
        return;
    }
    uint16_t* x = (uint16_t*)qkv;  // bf16 bits
    uint16_t* dx = (uint16_t*)dqkv;
    std::unordered_map<int64_t, void*> pack = {
        {UID_Q, x},      {UID_K, x + C},       {UID_V, x + 2 * C},        {UID_O, (void*)out},
        {UID_DO, (void*)dout}, {UID_STATS, (void*)lse}, {UID_DQ, dx}, {UID_DK, dx + C}, {UID_DV, dx + 2 * C}};
    if (key_len) {  // the gradients of masked keys are zero: cleared here, as cuDNN may skip them
        cudaCheck(cudaMemsetAsync(dqkv, 0, (size_t)B * T * 3 * C * sizeof(uint16_t)));
        pack[UID_SEQ_Q] = query_lengths(B, T);
        pack[UID_SEQ_KV] = (void*)key_len;
    }
    frontendCheck(g->execute(handle, pack, workspace));
    cudaCheckLaunch();
}
