"""Training: Keras ``fit`` for teachers and students, quantization-aware training, and the
settings, metrics, callbacks and tf.distribute strategies they use.

The modules take settings objects and pipelines, never a whole recipe: turning a recipe into
a training run is :mod:`lean_kd.run.experiment`'s job.
"""
