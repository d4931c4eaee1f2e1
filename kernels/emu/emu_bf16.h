// bfloat16 under the CUDA emulation: __nv_bfloat16 and __nv_bfloat162 with the constructors,
// conversions and operators of cuda_bf16.h, bit-exact with CUDA: float -> bf16 rounds to nearest
// even and turns every NaN into the canonical 0x7FFF; arithmetic is done in fp32 and rounded once
// (exact for +, -, *, / since fp32 carries more than twice bf16's precision).
// Included by cuda_emu.h.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <limits>

struct __nv_bfloat16_raw {
    unsigned short x;
};
struct __align__(4) __nv_bfloat162_raw {
    unsigned short x, y;
};

// ---------------------------------------------------------------- rounding
inline unsigned short emu_float_to_bf16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
    // Adding 0x7FFF plus the kept part's lowest bit carries into the kept part exactly when the
    // dropped half is above one half, or one half with an odd kept part.
    return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float emu_bf16_bits_to_float(unsigned short h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}
// Integers round once to 8 significant bits, nearest even.
inline unsigned short emu_uint64_to_bf16_bits(unsigned long long m, bool negative) {
    int shift = m ? 64 - __builtin_clzll(m) - 8 : 0;
    if (shift > 0) {
        unsigned long long kept = m >> shift, rem = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
        if (rem > half || (rem == half && (kept & 1))) kept++;
        m = kept << shift;  // at most 9 significant bits: exact as a float
    }
    float f = (float)m;
    return emu_float_to_bf16_bits(negative ? -f : f);
}
inline unsigned short emu_int64_to_bf16_bits(long long v) {
    return emu_uint64_to_bf16_bits(v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, v < 0);
}
// double -> bf16 as CUDA does it on the host: round to float with the sticky bit kept in the
// lowest mantissa bit (round to odd), then to bf16, which makes one rounding of the double.
inline unsigned short emu_double_to_bf16_bits(double d) {
    float f = (float)d;
    uint32_t u;
    memcpy(&u, &f, 4);
    bool not_nan = (u << 1) <= 0xff000000u;
    if (d > 0.0 && (double)f > d) u--;
    if (d < 0.0 && (double)f < d) u--;
    if ((double)f != d && not_nan) u |= 1u;
    memcpy(&f, &u, 4);
    return emu_float_to_bf16_bits(f);
}
// bf16 -> integer: truncation, NaN -> 0, saturated at the type's range (as __bfloat162int_rz).
template <typename I>
inline I emu_float_to_int_rz(float f) {
    if (f != f) return 0;
    if (f >= (float)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    if (f <= (float)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    return (I)f;
}

// ---------------------------------------------------------------- types
struct __align__(2) __nv_bfloat16 {
protected:
    unsigned short __x;

public:
    __nv_bfloat16() = default;
    constexpr __nv_bfloat16(const __nv_bfloat16_raw& r) : __x(r.x) {}
    __nv_bfloat16& operator=(const __nv_bfloat16_raw& r) { __x = r.x; return *this; }
    operator __nv_bfloat16_raw() const { return __nv_bfloat16_raw{__x}; }

    __nv_bfloat16(float f) : __x(emu_float_to_bf16_bits(f)) {}
    __nv_bfloat16(double d) : __x(emu_double_to_bf16_bits(d)) {}
    __nv_bfloat16& operator=(float f) { __x = emu_float_to_bf16_bits(f); return *this; }
    __nv_bfloat16& operator=(double d) { __x = emu_double_to_bf16_bits(d); return *this; }
    operator float() const { return emu_bf16_bits_to_float(__x); }

    __nv_bfloat16(short v) : __x(emu_int64_to_bf16_bits(v)) {}
    __nv_bfloat16(unsigned short v) : __x(emu_int64_to_bf16_bits(v)) {}
    __nv_bfloat16(int v) : __x(emu_int64_to_bf16_bits(v)) {}
    __nv_bfloat16(unsigned int v) : __x(emu_int64_to_bf16_bits(v)) {}
    __nv_bfloat16(long v) : __x(emu_int64_to_bf16_bits(v)) {}
    __nv_bfloat16(unsigned long v) : __x(emu_uint64_to_bf16_bits(v, false)) {}
    __nv_bfloat16(long long v) : __x(emu_int64_to_bf16_bits(v)) {}
    __nv_bfloat16(unsigned long long v) : __x(emu_uint64_to_bf16_bits(v, false)) {}
    __nv_bfloat16& operator=(short v) { return *this = __nv_bfloat16(v); }
    __nv_bfloat16& operator=(unsigned short v) { return *this = __nv_bfloat16(v); }
    __nv_bfloat16& operator=(int v) { return *this = __nv_bfloat16(v); }
    __nv_bfloat16& operator=(unsigned int v) { return *this = __nv_bfloat16(v); }
    __nv_bfloat16& operator=(long long v) { return *this = __nv_bfloat16(v); }
    __nv_bfloat16& operator=(unsigned long long v) { return *this = __nv_bfloat16(v); }

    operator signed char() const { return emu_float_to_int_rz<signed char>(float(*this)); }
    operator unsigned char() const { return emu_float_to_int_rz<unsigned char>(float(*this)); }
    operator char() const { return emu_float_to_int_rz<char>(float(*this)); }
    operator short() const { return emu_float_to_int_rz<short>(float(*this)); }
    operator unsigned short() const { return emu_float_to_int_rz<unsigned short>(float(*this)); }
    operator int() const { return emu_float_to_int_rz<int>(float(*this)); }
    operator unsigned int() const { return emu_float_to_int_rz<unsigned int>(float(*this)); }
    operator long() const { return emu_float_to_int_rz<long>(float(*this)); }
    operator unsigned long() const { return emu_float_to_int_rz<unsigned long>(float(*this)); }
    operator long long() const { return emu_float_to_int_rz<long long>(float(*this)); }
    operator unsigned long long() const { return emu_float_to_int_rz<unsigned long long>(float(*this)); }
    constexpr operator bool() const { return (__x & 0x7fffu) != 0; }
};

struct __align__(4) __nv_bfloat162 {
    __nv_bfloat16 x, y;
    __nv_bfloat162() = default;
    constexpr __nv_bfloat162(const __nv_bfloat16& a, const __nv_bfloat16& b) : x(a), y(b) {}
    __nv_bfloat162(const __nv_bfloat162_raw& r) : x(__nv_bfloat16_raw{r.x}), y(__nv_bfloat16_raw{r.y}) {}
    __nv_bfloat162& operator=(const __nv_bfloat162_raw& r) { return *this = __nv_bfloat162(r); }
    operator __nv_bfloat162_raw() const {
        return __nv_bfloat162_raw{__nv_bfloat16_raw(x).x, __nv_bfloat16_raw(y).x};
    }
};
typedef __nv_bfloat16 nv_bfloat16;
typedef __nv_bfloat162 nv_bfloat162;

// ---------------------------------------------------------------- conversions
inline __nv_bfloat16 emu_bf16_from_bits(unsigned short h) { return __nv_bfloat16(__nv_bfloat16_raw{h}); }
inline __nv_bfloat16 __float2bfloat16(float f) { return emu_bf16_from_bits(emu_float_to_bf16_bits(f)); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline __nv_bfloat16 __double2bfloat16(double d) { return emu_bf16_from_bits(emu_double_to_bf16_bits(d)); }
inline float __bfloat162float(__nv_bfloat16 h) { return emu_bf16_bits_to_float(__nv_bfloat16_raw(h).x); }
inline __nv_bfloat16 __int2bfloat16_rn(int v) { return __nv_bfloat16(v); }
inline __nv_bfloat16 __uint2bfloat16_rn(unsigned int v) { return __nv_bfloat16(v); }
inline __nv_bfloat16 __ll2bfloat16_rn(long long v) { return __nv_bfloat16(v); }
inline int __bfloat162int_rz(__nv_bfloat16 h) { return emu_float_to_int_rz<int>(__bfloat162float(h)); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return __nv_bfloat16_raw(h).x; }
inline short __bfloat16_as_short(__nv_bfloat16 h) { return (short)__nv_bfloat16_raw(h).x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return emu_bf16_from_bits(u); }
inline __nv_bfloat16 __short_as_bfloat16(short s) { return emu_bf16_from_bits((unsigned short)s); }

inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
    return __nv_bfloat162(__float2bfloat16(a), __float2bfloat16(b));
}
inline __nv_bfloat162 __float2bfloat162_rn(float a) { return __floats2bfloat162_rn(a, a); }
inline __nv_bfloat162 __float22bfloat162_rn(float2 f) { return __floats2bfloat162_rn(f.x, f.y); }
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return float2{__bfloat162float(h.x), __bfloat162float(h.y)}; }
inline float __low2float(__nv_bfloat162 h) { return __bfloat162float(h.x); }
inline float __high2float(__nv_bfloat162 h) { return __bfloat162float(h.y); }
inline __nv_bfloat16 __low2bfloat16(__nv_bfloat162 h) { return h.x; }
inline __nv_bfloat16 __high2bfloat16(__nv_bfloat162 h) { return h.y; }
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 a, __nv_bfloat16 b) { return __nv_bfloat162(a, b); }
inline __nv_bfloat162 __bfloat162bfloat162(__nv_bfloat16 a) { return __nv_bfloat162(a, a); }

// ---------------------------------------------------------------- arithmetic
inline __nv_bfloat16 __hadd(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(__bfloat162float(a) + __bfloat162float(b)); }
inline __nv_bfloat16 __hsub(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(__bfloat162float(a) - __bfloat162float(b)); }
inline __nv_bfloat16 __hmul(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(__bfloat162float(a) * __bfloat162float(b)); }
inline __nv_bfloat16 __hdiv(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(__bfloat162float(a) / __bfloat162float(b)); }
// a * b is exact in double and the sum rounds once there; __double2bfloat16 then rounds once more
// without double-rounding error (round to odd).
inline __nv_bfloat16 __hfma(__nv_bfloat16 a, __nv_bfloat16 b, __nv_bfloat16 c) {
    return __double2bfloat16((double)__bfloat162float(a) * (double)__bfloat162float(b) + (double)__bfloat162float(c));
}
inline __nv_bfloat16 __hneg(__nv_bfloat16 a) { return emu_bf16_from_bits((unsigned short)(__bfloat16_as_ushort(a) ^ 0x8000u)); }
inline __nv_bfloat16 __habs(__nv_bfloat16 a) { return emu_bf16_from_bits((unsigned short)(__bfloat16_as_ushort(a) & 0x7fffu)); }
inline __nv_bfloat16 __hmax(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(fmaxf(__bfloat162float(a), __bfloat162float(b))); }
inline __nv_bfloat16 __hmin(__nv_bfloat16 a, __nv_bfloat16 b) { return __float2bfloat16(fminf(__bfloat162float(a), __bfloat162float(b))); }
inline bool __hisnan(__nv_bfloat16 a) { return (__bfloat16_as_ushort(a) & 0x7fffu) > 0x7f80u; }
inline int __hisinf(__nv_bfloat16 a) {
    unsigned short u = __bfloat16_as_ushort(a);
    return u == 0x7f80u ? 1 : (u == 0xff80u ? -1 : 0);
}
inline __nv_bfloat162 __hadd2(__nv_bfloat162 a, __nv_bfloat162 b) { return __nv_bfloat162(__hadd(a.x, b.x), __hadd(a.y, b.y)); }
inline __nv_bfloat162 __hsub2(__nv_bfloat162 a, __nv_bfloat162 b) { return __nv_bfloat162(__hsub(a.x, b.x), __hsub(a.y, b.y)); }
inline __nv_bfloat162 __hmul2(__nv_bfloat162 a, __nv_bfloat162 b) { return __nv_bfloat162(__hmul(a.x, b.x), __hmul(a.y, b.y)); }
inline __nv_bfloat162 __h2div(__nv_bfloat162 a, __nv_bfloat162 b) { return __nv_bfloat162(__hdiv(a.x, b.x), __hdiv(a.y, b.y)); }
inline __nv_bfloat162 __hfma2(__nv_bfloat162 a, __nv_bfloat162 b, __nv_bfloat162 c) {
    return __nv_bfloat162(__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y));
}
inline __nv_bfloat162 __hneg2(__nv_bfloat162 a) { return __nv_bfloat162(__hneg(a.x), __hneg(a.y)); }

inline __nv_bfloat16 operator+(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hadd(a, b); }
inline __nv_bfloat16 operator-(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hsub(a, b); }
inline __nv_bfloat16 operator*(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hmul(a, b); }
inline __nv_bfloat16 operator/(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __hdiv(a, b); }
inline __nv_bfloat16& operator+=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hadd(a, b); }
inline __nv_bfloat16& operator-=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hsub(a, b); }
inline __nv_bfloat16& operator*=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hmul(a, b); }
inline __nv_bfloat16& operator/=(__nv_bfloat16& a, const __nv_bfloat16& b) { return a = __hdiv(a, b); }
inline __nv_bfloat16 operator+(const __nv_bfloat16& a) { return a; }
inline __nv_bfloat16 operator-(const __nv_bfloat16& a) { return __hneg(a); }
inline __nv_bfloat16& operator++(__nv_bfloat16& a) { return a = __hadd(a, __nv_bfloat16(1.0f)); }
inline __nv_bfloat16& operator--(__nv_bfloat16& a) { return a = __hsub(a, __nv_bfloat16(1.0f)); }
inline __nv_bfloat16 operator++(__nv_bfloat16& a, int) { __nv_bfloat16 old = a; ++a; return old; }
inline __nv_bfloat16 operator--(__nv_bfloat16& a, int) { __nv_bfloat16 old = a; --a; return old; }
inline bool operator==(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __bfloat162float(a) == __bfloat162float(b); }
inline bool operator!=(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __bfloat162float(a) != __bfloat162float(b); }
inline bool operator<(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __bfloat162float(a) < __bfloat162float(b); }
inline bool operator>(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __bfloat162float(a) > __bfloat162float(b); }
inline bool operator<=(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __bfloat162float(a) <= __bfloat162float(b); }
inline bool operator>=(const __nv_bfloat16& a, const __nv_bfloat16& b) { return __bfloat162float(a) >= __bfloat162float(b); }

inline __nv_bfloat162 operator+(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hadd2(a, b); }
inline __nv_bfloat162 operator-(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hsub2(a, b); }
inline __nv_bfloat162 operator*(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __hmul2(a, b); }
inline __nv_bfloat162 operator/(const __nv_bfloat162& a, const __nv_bfloat162& b) { return __h2div(a, b); }
inline __nv_bfloat162& operator+=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __hadd2(a, b); }
inline __nv_bfloat162& operator-=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __hsub2(a, b); }
inline __nv_bfloat162& operator*=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __hmul2(a, b); }
inline __nv_bfloat162& operator/=(__nv_bfloat162& a, const __nv_bfloat162& b) { return a = __h2div(a, b); }
inline __nv_bfloat162 operator+(const __nv_bfloat162& a) { return a; }
inline __nv_bfloat162 operator-(const __nv_bfloat162& a) { return __hneg2(a); }
inline bool operator==(const __nv_bfloat162& a, const __nv_bfloat162& b) { return a.x == b.x && a.y == b.y; }
inline bool operator!=(const __nv_bfloat162& a, const __nv_bfloat162& b) { return a.x != b.x && a.y != b.y; }
inline bool operator<(const __nv_bfloat162& a, const __nv_bfloat162& b) { return a.x < b.x && a.y < b.y; }
inline bool operator>(const __nv_bfloat162& a, const __nv_bfloat162& b) { return a.x > b.x && a.y > b.y; }
inline bool operator<=(const __nv_bfloat162& a, const __nv_bfloat162& b) { return a.x <= b.x && a.y <= b.y; }
inline bool operator>=(const __nv_bfloat162& a, const __nv_bfloat162& b) { return a.x >= b.x && a.y >= b.y; }

inline __nv_bfloat16 atomicAdd(__nv_bfloat16* p, __nv_bfloat16 v) {
    unsigned short old = emu_atomic_update((unsigned short*)p, [v](unsigned short bits) {
        return __bfloat16_as_ushort(__hadd(emu_bf16_from_bits(bits), v));
    });
    return emu_bf16_from_bits(old);
}
