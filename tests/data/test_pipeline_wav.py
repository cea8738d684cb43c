"""The tf.data pipeline decodes PCM16 WAVs in the graph and other files through soundfile."""

import numpy as np
import soundfile

from lean_kd.audio.io import load_audio
from lean_kd.config import AudioConfig, PipelineConfig
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.data.pipeline import AudioPipeline


def test_graph_and_fallback_files_mix_in_split_order(tmp_path):
    t = np.arange(12000) / 8000
    clip = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # 1.5 s at 8 kHz
    paths = [tmp_path / "a.wav", tmp_path / "b.flac", tmp_path / "c.wav", tmp_path / "d.wav"]
    soundfile.write(paths[0], clip, 8000, subtype="PCM_16")  # graph route
    soundfile.write(paths[1], clip[::-1], 8000)  # fallback (FLAC)
    soundfile.write(paths[2], 0.5 * clip, 16000, subtype="PCM_16")  # graph route, no resampling
    paths[3].write_bytes(paths[0].read_bytes()[:44])  # header without samples: broken
    examples = tuple(Example(str(p), (i % 2,), "test") for i, p in enumerate(paths))
    pl = AudioPipeline(
        DatasetIndex("mix", ("x", "y"), examples),
        audio=AudioConfig(sample_rate=16000, clip_seconds=1.0),
        features=None,
        pipeline=PipelineConfig(batch_size=4),
    )
    ((inputs, labels),) = list(pl.dataset("test", training=False))
    waves = inputs["waveform"].numpy()
    assert waves.shape == (3, 16000)
    np.testing.assert_array_equal(labels.numpy(), [[1, 0], [0, 1], [1, 0]])
    for wave, path in zip(waves, paths):
        full = load_audio(path, sample_rate=16000)
        start = (len(full) - 16000) // 2 if len(full) > 16000 else 0
        expected = np.pad(full, [0, max(0, 16000 - len(full))])[start : start + 16000]
        np.testing.assert_allclose(wave, expected, atol=2e-3)
    assert len(pl.broken) == 1 and "d.wav" in pl.broken.summary()
