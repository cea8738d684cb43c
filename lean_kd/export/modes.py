"""Names of the export modes, without TensorFlow: the CLI and recipes validate against them.

See :mod:`lean_kd.export.quantize` for what each mode does.
"""

from __future__ import annotations

QUANT_MODES = ("float32", "float16", "dynamic", "int8", "int16x8")
CALIBRATED_MODES = ("int8", "int16x8")
# How LSTMs are stored under int8: hybrid = int8 weights with float activations (the default;
# faster and closer to Keras than the integer kernel), int8 = full integer, float = float32.
LSTM_MODES = ("hybrid", "int8", "float")
