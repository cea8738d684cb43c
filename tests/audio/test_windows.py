"""Crop/pad to a fixed length and overlapping evaluation windows."""

import numpy as np
import pytest

from lean_kd.audio.windows import fix_length, num_windows, split_windows
from lean_kd.errors import ConfigError


def test_pad_short_clip_with_zeros_at_end():
    x = np.arange(1, 4, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(x, length=5), [1, 2, 3, 0, 0])


def test_center_and_start_crops():
    x = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(x, length=4, mode="center"), [3, 4, 5, 6])
    np.testing.assert_array_equal(fix_length(x, length=4, mode="start"), [0, 1, 2, 3])


def test_random_crop_is_contiguous_and_covers_all_offsets():
    x = np.arange(10, dtype=np.float32)
    rng = np.random.default_rng(0)
    offsets = set()
    for _ in range(200):
        crop = fix_length(x, length=7, mode="random", rng=rng)
        assert len(crop) == 7
        np.testing.assert_array_equal(np.diff(crop), 1)
        offsets.add(int(crop[0]))
    assert offsets == {0, 1, 2, 3}


def test_bad_crop_arguments():
    with pytest.raises(ConfigError, match="length must be > 0"):
        fix_length(np.zeros(3, np.float32), length=0)
    with pytest.raises(ConfigError, match="Unknown crop mode"):
        fix_length(np.zeros(30, np.float32), length=3, mode="middle")
    with pytest.raises(ConfigError, match="rng"):
        fix_length(np.zeros(30, np.float32), length=3, mode="random")


def test_windows_of_3_3_seconds_at_half_overlap():
    rate = 100
    x = np.arange(330, dtype=np.float32)  # 3.3 s at 100 Hz
    wins = split_windows(x, window=rate, hop=rate // 2)
    # starts 0, 0.5, ..., 2.5 s: six windows, the last one zero-padded past 3.3 s
    assert num_windows(330, window=100, hop=50) == 6
    assert wins.shape == (6, 100)
    np.testing.assert_array_equal(wins[1], np.arange(50, 150))
    np.testing.assert_array_equal(wins[5, :80], np.arange(250, 330))
    np.testing.assert_array_equal(wins[5, 80:], 0)


def test_short_clip_gives_one_padded_window():
    wins = split_windows(np.ones(30, np.float32), window=100, hop=50)
    assert wins.shape == (1, 100)
    assert wins.sum() == 30


def test_exact_fit_adds_no_extra_window():
    assert num_windows(200, window=100, hop=50) == 3
