// Compiles a CUDA kernel's source as plain C++ for the host (tests/cuda_emulation.py): __global__ and
// __device__ vanish, blockIdx/threadIdx become variables the launcher loops over, and the few CUDA math
// functions the kernels use map to their C++ twins with the same rounding (round half to even).
#pragma once
#include <cmath>
#include <cstddef>

#define __global__
#define __device__

struct dim3 {
    unsigned x, y, z;
};

static dim3 blockIdx, threadIdx, blockDim, gridDim;

using std::ceil;
using std::floor;
using std::fmin;

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float floorf(float x) { return std::floor(x); }
inline float fminf(float a, float b) { return std::fmin(a, b); }
inline float fmaxf(float a, float b) { return std::fmax(a, b); }
inline float rintf(float x) { return std::nearbyint(x); }
inline int __float2int_rn(float x) { return (int)std::nearbyint(x); }
