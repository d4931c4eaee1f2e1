// Philox4x32-10 counter-based random numbers (Salmon et al., SC'11) with Box-Muller normals.
// One header for host C, CUDA and the CUDA emulation, so the CPU and the GPU draw the same
// numbers for the same (seed, stream, index): element `index` of stream `stream` is a pure
// function of the three, with no state to carry between calls or threads.
// Box-Muller runs in double precision and rounds once to float, so that the CPU's libm and
// CUDA's math library give the same float (they could differ only when a double lands within
// one double ulp of a float rounding boundary: about 2^-29 per number).
#pragma once
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__) || defined(TIPCAP_CUDA_EMU)
#define PHILOX_FN __host__ __device__ static inline
#else
#define PHILOX_FN static inline
#endif

typedef struct { uint32_t v[4]; } Philox4x32;

PHILOX_FN uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

// Ten rounds of Philox4x32 on counter `ctr` with key `key`.
PHILOX_FN Philox4x32 philox4x32_10(Philox4x32 ctr, uint32_t key0, uint32_t key1) {
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = philox_mulhilo(0xD2511F53u, ctr.v[0], &hi0);
        uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, ctr.v[2], &hi1);
        Philox4x32 next;
        next.v[0] = hi1 ^ ctr.v[1] ^ key0;
        next.v[1] = lo1;
        next.v[2] = hi0 ^ ctr.v[3] ^ key1;
        next.v[3] = lo0;
        ctr = next;
        key0 += 0x9E3779B9u;
        key1 += 0xBB67AE85u;
    }
    return ctr;
}

// Four uniform 32-bit words for block `block` (= index / 4) of `stream` under `seed`.
PHILOX_FN Philox4x32 philox_block(uint64_t seed, uint64_t stream, uint64_t block) {
    Philox4x32 ctr;
    ctr.v[0] = (uint32_t)block;
    ctr.v[1] = (uint32_t)(block >> 32);
    ctr.v[2] = (uint32_t)stream;
    ctr.v[3] = (uint32_t)(stream >> 32);
    return philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
}

// Uniform in (0, 1): never 0 or 1, so log() is safe.
PHILOX_FN double philox_uniform_double(uint32_t r) { return ((double)r + 0.5) * (1.0 / 4294967296.0); }

// Element `index` of the uniform stream, in (0, 1).
PHILOX_FN float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    Philox4x32 r = philox_block(seed, stream, index >> 2);
    return (float)philox_uniform_double(r.v[index & 3]);
}

// Element `index` of the standard normal stream: the words of one block pair up as
// (0, 1) and (2, 3), each pair giving a Box-Muller cosine and sine normal.
PHILOX_FN float philox_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    Philox4x32 r = philox_block(seed, stream, index >> 2);
    unsigned lane = (unsigned)(index & 3);
    unsigned pair = lane & 2u;
    double radius = sqrt(-2.0 * log(philox_uniform_double(r.v[pair])));
    double angle = 6.283185307179586476925 * philox_uniform_double(r.v[pair + 1]);
    return (float)(radius * ((lane & 1u) ? sin(angle) : cos(angle)));
}
