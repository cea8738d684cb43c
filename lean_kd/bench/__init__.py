"""On-device benchmarks of TFLite files: latency, real-time factor, peak memory, size, MACs.

``run_benchmark`` (lean_kd.bench.benchmark) measures a model, optionally against a baseline in
the same run; ``lean_kd.bench.schema`` documents and validates the JSON report it returns,
which the device runners in export/ (Raspberry Pi, Android) write too. Importing this package
is cheap; the submodules load ai-edge-litert, never TensorFlow.
"""
