"""Models: YAMNet (pretrained AudioSet teacher/backbone) and, later, the students and a registry.

Submodules import TensorFlow; import them directly (``lean_kd.models.yamnet``), not from here.
"""
