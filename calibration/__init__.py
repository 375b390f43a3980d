"""INT8: calibration data through the inference preprocessing, Q/DQ graphs, the TensorRT calibrator, parity."""
