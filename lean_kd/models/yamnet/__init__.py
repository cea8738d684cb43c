"""YAMNet: the network as Keras layers, its pretrained weights (official TFLite, .h5 or
SavedModel), the AudioSet class map, the fine-tunable teacher and the AudioSet classifier."""
