"""Models: the contract every model follows, the registry, teachers and students.

``lean_kd.models.registry`` builds any model by name (``build``, ``names``, ``describe``,
``load_model``). Submodules import TensorFlow; import them directly, not from here, so that
``import lean_kd.models`` stays cheap.
"""
