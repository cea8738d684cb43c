"""lean_kd_pi: run lean_kd's TFLite audio classifiers on a Raspberry Pi (or any Linux/macOS box).

Three modes, ``python -m lean_kd_pi bench|eval|stream``. Needs only numpy, soundfile and
ai-edge-litert (or tflite-runtime); soxr and sounddevice are used when installed. It must never
import TensorFlow or lean_kd: the pieces it shares with lean_kd (report schema, metadata reader,
timing, memory probe, windowing) are verbatim copies that lean_kd's tests compare.
"""

__version__ = "0.1.0"
