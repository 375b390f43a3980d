// Inputs made by resizing uint8 pixels, one thread per output pixel, then (x - mean) * scale, HWC -> planar:
// - letterbox_normalise, the detector's: resize (OpenCV INTER_AREA when `shrink` says, INTER_LINEAR
//   otherwise: engine.preprocess.shrinks_by_area) top-left into a black canvas;
// - crop_normalise, the landmark model's: a rectangle of the image (the square crop), grey (cv2.COLOR_RGB2GRAY)
//   when `grey_out`, resized INTER_LINEAR to the model's size (what cv2.dnn.blobFromImages does).
// `swap_rb` writes the planes in BGR order, for a model that takes BGR.
// Bilinear is OpenCV's fixed-point maths with the shifts of its SIMD code, so results agree with cv2.resize
// to the level. The suite runs this source on the CPU (tests/cuda_emulation.py) against the OpenCV path.

#define COEF_BITS 11
#define MAX_AREA_TAPS 64

struct LinearTap {
    int first, second, w0, w1;
};

__device__ LinearTap linear_tap(int d, int src, int dst) {
    float f = (float)((d + 0.5) * ((double)src / dst) - 0.5);
    float floor_f = floorf(f);
    int first = (int)floor_f;
    float frac = f - floor_f;
    if (first < 0) { first = 0; frac = 0.f; }
    if (first >= src - 1) { first = src - 1; frac = 0.f; }
    LinearTap tap;
    tap.first = first;
    tap.second = min(first + 1, src - 1);
    tap.w0 = __float2int_rn((1.f - frac) * (float)(1 << COEF_BITS));
    tap.w1 = __float2int_rn(frac * (float)(1 << COEF_BITS));
    return tap;
}

__device__ int linear_blend(int p00, int p01, int p10, int p11, LinearTap tx, LinearTap ty) {
    int top = p00 * tx.w0 + p01 * tx.w1;
    int bottom = p10 * tx.w0 + p11 * tx.w1;
    return min(max((((ty.w0 * (top >> 4)) >> 16) + ((ty.w1 * (bottom >> 4)) >> 16) + 2) >> 2, 0), 255);
}

// OpenCV's RGB -> grey for uint8: fixed point with 14 fractional bits.
__device__ int grey(const unsigned char* pixel) {
    return (pixel[0] * 4899 + pixel[1] * 9617 + pixel[2] * 1868 + (1 << 13)) >> 14;
}

// OpenCV's computeResizeAreaTab for one output index: source indices and overlap weights.
__device__ int area_taps(int d, int src, int dst, int* index, float* weight) {
    double scale = (double)src / dst;
    double f1 = d * scale, f2 = f1 + scale;
    double cell = fmin(scale, src - f1);
    int s2 = min((int)floor(f2), src - 1);
    int s1 = min((int)ceil(f1), s2);
    int n = 0;
    if (s1 - f1 > 1e-3) { index[n] = s1 - 1; weight[n++] = (float)((s1 - f1) / cell); }
    for (int s = s1; s < s2 && n < MAX_AREA_TAPS - 1; ++s) { index[n] = s; weight[n++] = (float)(1.0 / cell); }
    if (f2 - s2 > 1e-3) { index[n] = s2; weight[n++] = (float)(fmin(fmin(f2 - s2, 1.0), cell) / cell); }
    return n;
}

extern "C" __global__ void letterbox_normalise(
    const unsigned char* src, int src_w, int src_h, int src_pitch,
    float* dst, int dst_w, int dst_h, int resized_w, int resized_h, int shrink,
    float mean, float scale, int swap_rb)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    float value[3] = {0.f, 0.f, 0.f};
    if (x < resized_w && y < resized_h) {
        if (shrink) {
            int xi[MAX_AREA_TAPS], yi[MAX_AREA_TAPS];
            float xw[MAX_AREA_TAPS], yw[MAX_AREA_TAPS];
            int nx = area_taps(x, src_w, resized_w, xi, xw);
            int ny = area_taps(y, src_h, resized_h, yi, yw);
            for (int c = 0; c < 3; ++c) {
                float sum = 0.f;
                for (int i = 0; i < nx; ++i) {
                    float column = 0.f;
                    for (int j = 0; j < ny; ++j)
                        column += yw[j] * (float)src[(size_t)yi[j] * src_pitch + xi[i] * 3 + c];
                    sum += xw[i] * column;
                }
                value[c] = fminf(fmaxf(rintf(sum), 0.f), 255.f);
            }
        } else {
            LinearTap tx = linear_tap(x, src_w, resized_w);
            LinearTap ty = linear_tap(y, src_h, resized_h);
            const unsigned char* r0 = src + (size_t)ty.first * src_pitch;
            const unsigned char* r1 = src + (size_t)ty.second * src_pitch;
            for (int c = 0; c < 3; ++c)
                value[c] = (float)linear_blend(r0[tx.first * 3 + c], r0[tx.second * 3 + c],
                                               r1[tx.first * 3 + c], r1[tx.second * 3 + c], tx, ty);
        }
    }
    size_t plane = (size_t)dst_w * dst_h;
    size_t at = (size_t)y * dst_w + x;
    for (int c = 0; c < 3; ++c)
        dst[c * plane + at] = (value[swap_rb ? 2 - c : c] - mean) * scale;
}

extern "C" __global__ void crop_normalise(
    const unsigned char* src, int src_pitch, int crop_x, int crop_y, int crop_w, int crop_h,
    float* dst, int dst_w, int dst_h, int grey_out, float mean, float scale, int swap_rb)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    LinearTap tx = linear_tap(x, crop_w, dst_w);
    LinearTap ty = linear_tap(y, crop_h, dst_h);
    const unsigned char* r0 = src + (size_t)(crop_y + ty.first) * src_pitch + (size_t)crop_x * 3;
    const unsigned char* r1 = src + (size_t)(crop_y + ty.second) * src_pitch + (size_t)crop_x * 3;
    size_t plane = (size_t)dst_w * dst_h;
    size_t at = (size_t)y * dst_w + x;
    if (grey_out) {
        int value = linear_blend(grey(r0 + tx.first * 3), grey(r0 + tx.second * 3),
                                 grey(r1 + tx.first * 3), grey(r1 + tx.second * 3), tx, ty);
        dst[at] = ((float)value - mean) * scale;
        return;
    }
    for (int c = 0; c < 3; ++c) {
        int s = swap_rb ? 2 - c : c;
        int value = linear_blend(r0[tx.first * 3 + s], r0[tx.second * 3 + s],
                                 r1[tx.first * 3 + s], r1[tx.second * 3 + s], tx, ty);
        dst[c * plane + at] = ((float)value - mean) * scale;
    }
}
