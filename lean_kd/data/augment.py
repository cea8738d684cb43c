"""Training-time augmentation on batches: mixup (waveforms + targets) and SpecAugment.

Both are pure TensorFlow functions of a batch and a stateless seed, so they run inside tf.data
and give the same result for the same seed.
"""

from __future__ import annotations

from lean_kd._keras import tf


def _beta(shape: tf.TensorShape, alpha: float, seed: tf.Tensor) -> tf.Tensor:
    """Beta(alpha, alpha) samples from two stateless gammas."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    a = tf.random.stateless_gamma(shape, seed=seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma(shape, seed=seeds[1], alpha=alpha)
    return a / (a + b)


def mixup(
    waveform: tf.Tensor, labels: tf.Tensor, *, alpha: float, seed: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mix each example with a random partner of the same batch.

    ``waveform`` ``[B, samples]``, ``labels`` ``[B, C]``; weights ``lam ~ Beta(alpha, alpha)``
    per example, applied alike to waveforms and targets (soft targets for both single- and
    multi-label data).
    """
    batch = tf.shape(waveform)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    lam = _beta([batch], alpha, seeds[0])  # [B]
    partner = tf.argsort(tf.random.stateless_uniform([batch], seed=seeds[1]))  # permutation
    lam_w = lam[:, None]
    mixed_wave = lam_w * waveform + (1.0 - lam_w) * tf.gather(waveform, partner)
    mixed_labels = lam_w * labels + (1.0 - lam_w) * tf.gather(labels, partner)
    return mixed_wave, mixed_labels


def _mask(length: int, count: int, width: int, batch: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """``[B, length]`` float mask with ``count`` zeroed bands of width <= ``width`` each."""
    keep = tf.ones([batch, length])
    for i in range(count):
        s = tf.random.experimental.stateless_fold_in(seed, i)
        width_seed, start_seed = tf.unstack(tf.random.experimental.stateless_split(s, 2))
        widths = tf.random.stateless_uniform(
            [batch, 1], seed=width_seed, minval=0, maxval=width + 1, dtype=tf.int32
        )
        starts = tf.random.stateless_uniform(
            [batch, 1], seed=start_seed, minval=0, maxval=length, dtype=tf.int32
        )
        positions = tf.range(length)[None, :]  # [1, length]
        band = (positions >= starts) & (positions < starts + widths)
        keep = keep * (1.0 - tf.cast(band, tf.float32))
    return keep


def spec_augment(
    log_mel: tf.Tensor,
    *,
    time_masks: int,
    time_mask_frames: int,
    freq_masks: int,
    freq_mask_bins: int,
    seed: tf.Tensor,
) -> tf.Tensor:
    """SpecAugment (Park et al. 2019) time and frequency masking of ``[B, frames, mel]``.

    Masked cells are set to the per-example mean so that a mask does not inject a value far
    below the log-mel floor.
    """
    shape = tf.shape(log_mel)
    frames, bins = log_mel.shape[1], log_mel.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    keep_t = _mask(frames, time_masks, time_mask_frames, shape[0], seeds[0])[:, :, None]
    keep_f = _mask(bins, freq_masks, freq_mask_bins, shape[0], seeds[1])[:, None, :]
    keep = keep_t * keep_f  # [B, frames, bins]
    fill = tf.reduce_mean(log_mel, axis=[1, 2], keepdims=True)
    return log_mel * keep + fill * (1.0 - keep)
