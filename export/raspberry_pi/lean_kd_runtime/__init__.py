"""lean_kd_runtime: the TensorFlow-free code that runs and measures TFLite audio classifiers.

Errors, audio checks and windows, clip metrics, TFLite graph and metadata reading, the
interpreter, timing, the memory probe and the benchmark report schema. Both lean_kd (on the
host) and lean_kd_pi (on a device) import it, so both measure and score with the same code.
It needs numpy, soundfile and a TFLite runtime, and never imports TensorFlow, lean_kd or
lean_kd_pi. It lives beside lean_kd_pi so that the folder export/raspberry_pi, copied to a
device, holds everything the runner needs.
"""
