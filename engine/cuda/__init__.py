"""CUDA preprocessing: kernel sources, their NumPy references, NVRTC compilation and (on a GPU) launching."""
