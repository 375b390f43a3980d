// Aligned face crop from uint8 pixels, one thread per crop pixel: inverse affine map, bilinear, black outside
// the image (cv2.warpAffine, INTER_LINEAR, BORDER_CONSTANT 0), then (x - mean) * scale, HWC -> planar.
// `m` is the inverse (crop -> image) map; `flip` writes the crop mirrored left to right (the recognizer's
// flipped copy). The suite runs this source on the CPU (tests/cuda_emulation.py) against cv2.warpAffine.

__device__ float tap(const unsigned char* src, int w, int h, int pitch, int x, int y, int c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return 0.f;
    return (float)src[(size_t)y * pitch + x * 3 + c];
}

extern "C" __global__ void warp_normalise(
    const unsigned char* src, int src_w, int src_h, int src_pitch,
    float* dst, int dst_w, int dst_h,
    float m00, float m01, float m02, float m10, float m11, float m12,
    float mean, float scale, int swap_rb, int flip)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dst_w || y >= dst_h) return;
    int u = flip ? dst_w - 1 - x : x;
    float sx = m00 * (float)u + m01 * (float)y + m02;
    float sy = m10 * (float)u + m11 * (float)y + m12;
    float floor_x = floorf(sx), floor_y = floorf(sy);
    int ix = (int)floor_x, iy = (int)floor_y;
    float fx = sx - floor_x, fy = sy - floor_y;
    float value[3];
    for (int c = 0; c < 3; ++c) {
        float p00 = tap(src, src_w, src_h, src_pitch, ix, iy, c);
        float p01 = tap(src, src_w, src_h, src_pitch, ix + 1, iy, c);
        float p10 = tap(src, src_w, src_h, src_pitch, ix, iy + 1, c);
        float p11 = tap(src, src_w, src_h, src_pitch, ix + 1, iy + 1, c);
        float top = p00 + fx * (p01 - p00);
        float bottom = p10 + fx * (p11 - p10);
        value[c] = fminf(fmaxf(rintf(top + fy * (bottom - top)), 0.f), 255.f);
    }
    size_t plane = (size_t)dst_w * dst_h;
    size_t at = (size_t)y * dst_w + x;
    for (int c = 0; c < 3; ++c)
        dst[c * plane + at] = (value[swap_rb ? 2 - c : c] - mean) * scale;
}
