"""Knowledge distillation: losses selected by name (:mod:`lean_kd.distill.losses`).

Submodules import TensorFlow; importing this package does not.
"""
