"""TFLite export: conversion and quantization (``tflite``), metadata, Keras-vs-TFLite parity.

Submodules import TensorFlow; import them directly (``lean_kd.export.tflite``), not from here.
"""
