"""Benchmarks: accuracy, similarity calibration, latency. They may read development data by path."""
