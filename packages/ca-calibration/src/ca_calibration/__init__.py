"""Optimizing Calibration by Gaining Aware of Prediction Correctness (Liu et al. 2024): the correctness-aware per-sample temperature calibrator."""
