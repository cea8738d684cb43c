"""Names of the export modes, without TensorFlow: the CLI and recipes validate against them.

See :mod:`lean_kd.export.quantize` for what each mode does.
"""

from __future__ import annotations

QUANT_MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
CALIBRATED_MODES = ("int8", "int16x8")
# Modes whose LSTM and DFT forms are chosen (LSTM_MODES, DFT_MODES): int8 (integer conv trunk)
# and dynamic (int8 weights, float activations, each input row quantized on the fly by
# XNNPACK: the official YAMNet file's form).
LAYOUT_MODES = ("int8", "dynamic")
# How LSTMs are exported under int8: unrolled = a batched input projection and an unrolled
# recurrence run by XNNPACK with int8 weights (lean_kd.export.unrolled_lstm), hybrid = the fused
# op with int8 weights and float activations, int8 = the fused op in full integer, float = the
# fused op in float32; auto (the default) = unrolled when XNNPACK's per-op copies of the
# recurrent weights stay small (lean_tiny), else hybrid (LEAN).
LSTM_MODES = ("auto", "unrolled", "hybrid", "int8", "float")
# How the log-mel frontend's DFT is computed under int8: fft (the default) = the FFT as two float
# matrix-product stages that XNNPACK runs (exact, lean_kd.audio.features.log_mel_fft); rfft =
# TFLite's float RFFT2D + COMPLEX_ABS on the builtin kernels (exact, slower); int8 = one matrix
# product with int8 weights that XNNPACK runs as a dynamically quantized GEMM, as the official
# YAMNet's frontend (each frame is quantized to 8 bits on the fly, which lifts empty bands next
# to loud ones).
DFT_MODES = ("fft", "rfft", "int8")
DFT_TRANSFORMS = {"fft": "fft", "rfft": "rfft", "int8": "dft"}  # -> LogMelSpectrogram.transform
