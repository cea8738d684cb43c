"""Dataset indexes, adapters for on-disk layouts, tf.data pipelines and the synthetic dataset."""
