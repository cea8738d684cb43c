"""Teacher-output cache: run the teacher once, distill many epochs from stored outputs.

For each example of the cached splits the teacher sees ``crops_per_clip`` fixed crops (offsets
spread evenly over the clip); their logits and embeddings are stored in sharded ``.npz`` files
keyed by example id and crop, next to ``cache.json`` which records what the cache was built
from (dataset fingerprint, class list, teacher, crop length). Training then cuts the same crops
(:class:`lean_kd.data.pipeline.CropTable`) and reads the teacher's outputs instead of running it.

Shards are written atomically and the metadata last, so an interrupted build resumes where it
stopped and a half-written cache is never mistaken for a complete one.

A build can be split among processes or hosts (``lean-kd cache-teacher --shard I/N``): part I
computes every N-th shard file starting at I and records what it was built from in
``part-I-of-N.json``. The part that finds all N records present checks that they agree (same
dataset fingerprint, classes, teacher, crops) and writes ``cache.json``; a build without
``--shard`` over a folder holding all the parts' files does the same (and computes any shard
file still missing).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lean_kd.audio.io import load_audio
from lean_kd.config import AudioConfig, from_dict, to_dict
from lean_kd.data.index import DatasetIndex, Example
from lean_kd.data.pipeline import CropTable
from lean_kd.errors import AudioInputError, DataError
from lean_kd.files import atomic_path, write_atomic

logger = logging.getLogger(__name__)

META_FILE = "cache.json"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class CacheMeta:
    """What a teacher cache was built from; a mismatch makes the cache unusable."""

    dataset_fingerprint: str
    class_names: tuple[str, ...]
    teacher: str
    splits: tuple[str, ...]
    crops_per_clip: int
    clip_samples: int
    sample_rate: int
    num_shards: int = 0
    skipped: tuple[str, ...] = ()  # files that could not be read
    version: int = FORMAT_VERSION


def crop_offsets(num_samples: int, *, clip_samples: int, crops: int) -> np.ndarray:
    """``crops`` offsets spread evenly from the start to the end of the clip (0 if short)."""
    excess = max(0, num_samples - clip_samples)
    return np.round(np.linspace(0, excess, crops)).astype(np.int32)


def _crops(waveform: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
    padded = np.pad(waveform, (0, max(0, length - len(waveform))))
    return np.stack([padded[o : o + length] for o in offsets])  # [K, length]


def build_teacher_cache(
    teacher,
    index: DatasetIndex,
    out_dir: Path,
    *,
    audio: AudioConfig,
    teacher_name: str,
    splits: Sequence[str] = ("train", "val"),
    crops_per_clip: int = 4,
    shard_size: int = 256,
    batch_clips: int = 16,
    strict: bool = False,
    progress: bool = True,
    part: tuple[int, int] | None = None,
) -> Path:
    """Run ``teacher`` over ``splits`` of ``index`` and store its outputs under ``out_dir``;
    ``part=(i, n)``: only part ``i`` of ``n`` (see the module docstring)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    examples = [e for split in splits for e in index.split(split)]
    shards = [examples[i : i + shard_size] for i in range(0, len(examples), shard_size)]
    mine = range(len(shards)) if part is None else range(part[0], len(shards), part[1])
    skipped: list[str] = []
    bar = tqdm(
        total=sum(len(shards[n]) for n in mine),
        desc="cache teacher",
        unit="clip",
        disable=not progress,
    )
    for number in mine:
        path = out_dir / f"shard-{number:05d}.npz"
        if path.is_file():  # written by an earlier, interrupted run
            skipped += list(np.load(path)["skipped"])
            bar.update(len(shards[number]))
            continue
        arrays = _run_shard(
            teacher, shards[number], audio, crops_per_clip, batch_clips, strict, bar
        )
        skipped += list(arrays["skipped"])
        save_npz(path, arrays)
    bar.close()
    meta = CacheMeta(
        dataset_fingerprint=index.fingerprint(),
        class_names=index.class_names,
        teacher=teacher_name,
        splits=tuple(splits),
        crops_per_clip=crops_per_clip,
        clip_samples=audio.clip_samples,
        sample_rate=audio.sample_rate,
        num_shards=len(shards),
        skipped=tuple(skipped),
    )
    if part is not None:
        write_atomic(
            out_dir / f"part-{part[0]}-of-{part[1]}.json", json.dumps(to_dict(meta), indent=1)
        )
        waiting = [
            i for i in range(part[1]) if not (out_dir / f"part-{i}-of-{part[1]}.json").is_file()
        ]
        if waiting:
            logger.info("Teacher cache part %d/%d done; waiting for part(s) %s", *part, waiting)
            return out_dir
    meta = _merged(out_dir, meta)
    write_atomic(out_dir / META_FILE, json.dumps(to_dict(meta), indent=1))
    if meta.skipped:
        logger.warning("Teacher cache: %d unreadable file(s) skipped", len(meta.skipped))
    return out_dir


def _merged(out_dir: Path, meta: CacheMeta) -> CacheMeta:
    """``meta`` for the whole cache: every part record must match it (except what it skipped),
    every shard file must exist; ``skipped`` gathered from all shard files."""
    for record in sorted(out_dir.glob("part-*-of-*.json")):
        other = from_dict(CacheMeta, json.loads(record.read_text()), where=str(record))
        differs = [
            f.name
            for f in dataclasses.fields(CacheMeta)
            if f.name != "skipped" and getattr(other, f.name) != getattr(meta, f.name)
        ]
        if differs:
            raise DataError(
                f"{record}: this part of the teacher cache was built with other {', '.join(differs)} "
                f"({', '.join(str(getattr(other, name))[:40] for name in differs)}; expected "
                f"{', '.join(str(getattr(meta, name))[:40] for name in differs)}); rebuild it"
            )
    skipped: list[str] = []
    for number in range(meta.num_shards):
        path = out_dir / f"shard-{number:05d}.npz"
        if not path.is_file():
            raise DataError(
                f"{out_dir}: shard file {path.name} is missing; run the part that writes it"
            )
        skipped += list(np.load(path)["skipped"])
    return dataclasses.replace(meta, skipped=tuple(skipped))


def _run_shard(
    teacher, shard, audio, crops_per_clip, batch_clips, strict, bar
) -> dict[str, np.ndarray]:
    ids, offsets, logits, embeddings, skipped = [], [], [], [], []
    for batch in _batches(shard, batch_clips):
        waves, batch_ids, batch_offsets = [], [], []
        for example in batch:
            try:
                wave = load_audio(example.path, sample_rate=audio.sample_rate)
            except AudioInputError:
                if strict:
                    raise
                skipped.append(example.path)
                continue
            offs = crop_offsets(len(wave), clip_samples=audio.clip_samples, crops=crops_per_clip)
            waves.append(_crops(wave, offs, audio.clip_samples))
            batch_ids.append(example_key(example))
            batch_offsets.append(offs)
        bar.update(len(batch))
        if not waves:
            continue
        out = teacher(np.concatenate(waves), training=False)  # [n*K, samples] -> dict
        k = crops_per_clip
        logits.append(out["logits"].numpy().reshape(len(waves), k, -1))
        embeddings.append(out["embeddings"].numpy().reshape(len(waves), k, -1))
        ids += batch_ids
        offsets += batch_offsets
    if not ids:
        raise DataError(
            f"No readable file in a shard of {len(shard)} examples (first: {shard[0].path})"
        )
    return {
        "ids": np.array(ids),
        "offsets": np.stack(offsets),
        "logits": np.concatenate(logits).astype(np.float32),
        "embeddings": np.concatenate(embeddings).astype(np.float32),
        "skipped": np.array(skipped, dtype=str),
    }


def _batches(items: Sequence[Example], size: int) -> Iterator[Sequence[Example]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def example_key(example: Example) -> str:
    """The cache key of an example: its id, or its path when the adapter gave none."""
    return example.example_id or example.path


class TeacherCache:
    """A built cache, checked against the dataset and classes it is used with."""

    def __init__(self, directory: Path, *, index: DatasetIndex) -> None:
        directory = Path(directory)
        meta_path = directory / META_FILE
        if not meta_path.is_file():
            raise DataError(
                f"{directory}: no {META_FILE}; the teacher cache is missing or incomplete"
            )
        self.meta = from_dict(CacheMeta, json.loads(meta_path.read_text()), where=str(meta_path))
        if tuple(index.class_names) != tuple(self.meta.class_names):
            raise DataError(
                f"{directory}: the teacher cache was built for classes {list(self.meta.class_names)[:5]}..., "
                f"not for this dataset's {list(index.class_names)[:5]}...; rebuild it"
            )
        if index.fingerprint() != self.meta.dataset_fingerprint:
            raise DataError(
                f"{directory}: the teacher cache was built from another dataset or split "
                f"(fingerprint {self.meta.dataset_fingerprint[:12]}, this dataset "
                f"{index.fingerprint()[:12]}); rebuild it"
            )
        self.directory, self.index = directory, index
        self._rows = self._load()

    def _load(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        rows = {}
        for number in range(self.meta.num_shards):
            with np.load(self.directory / f"shard-{number:05d}.npz") as shard:
                for i, key in enumerate(shard["ids"]):
                    rows[str(key)] = (
                        shard["offsets"][i],
                        shard["logits"][i],
                        shard["embeddings"][i],
                    )
        return rows

    def crop_table(self, examples: Sequence[Example], *, targets: str = "crop") -> CropTable:
        """Offsets and teacher outputs of ``examples`` in their order, for the pipeline;
        ``targets="clip"``: every crop gets the mean of its clip's teacher logits."""
        skipped = set(self.meta.skipped)  # unreadable files: the pipeline drops them too
        missing = [
            example_key(e)
            for e in examples
            if example_key(e) not in self._rows and e.path not in skipped
        ]
        if missing:
            raise DataError(
                f"{self.directory}: {len(missing)} example(s) are not in the teacher cache "
                f"(first: {missing[0]}); cached splits are {list(self.meta.splits)}"
            )
        blank = tuple(np.zeros_like(a) for a in next(iter(self._rows.values())))
        offsets, logits, embeddings = zip(
            *(self._rows.get(example_key(e), blank) for e in examples)
        )
        logits = np.stack(logits)  # [N, K, C]
        if targets == "clip":
            logits = np.broadcast_to(logits.mean(axis=1, keepdims=True), logits.shape).copy()
        return CropTable(
            np.stack(offsets),
            {"teacher_logits": logits, "teacher_embeddings": np.stack(embeddings)},
        )


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
