"""Keras' progress bar knows the number of steps in the first epoch of a filtered dataset."""

import re

import numpy as np

from lean_kd._keras import keras, tf
from lean_kd.training.progress import StepsProgbar


def _fit(expected_steps: int, capsys) -> list[str]:
    """Two epochs over 40 rows of which a filter keeps 36 (9 batches of 4); the bar's counts."""
    x = np.linspace(0, 1, 40, dtype=np.float32).reshape(40, 1)
    data = tf.data.Dataset.from_tensor_slices((x, x)).filter(lambda a, b: a[0] < 0.9).batch(4)
    assert data.cardinality() == tf.data.UNKNOWN_CARDINALITY  # what the pipeline's filter does
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(data, epochs=2, callbacks=[StepsProgbar(expected_steps)], verbose=1)
    return re.findall(r"(\d+)/(\w+) \[", capsys.readouterr().out)


def test_first_epoch_shows_the_expected_total(capsys):
    counts = _fit(9, capsys)
    assert counts and all(total == "9" for _, total in counts)


def test_an_epoch_with_fewer_batches_corrects_the_total(capsys):
    counts = _fit(10, capsys)  # e.g. a file that could not be read: one batch fewer
    assert counts[0] == ("1", "10") and ("9", "9") in counts
    assert "Unknown" not in {total for _, total in counts}
