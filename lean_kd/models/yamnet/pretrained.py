"""Where YAMNet's pretrained weights come from: a named file, $LEAN_KD_YAMNET, the user cache,
or a checked download of the official file listed in ``pretrained.yaml`` (package data beside
this module, so that an installed lean_kd finds it too).

Downloads go to a temporary file in the cache folder and are renamed into place only after the
sha256 matches, so an interrupted or tampered download never looks like a cached file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from lean_kd.config import from_dict
from lean_kd.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

ENV_WEIGHTS = "LEAN_KD_YAMNET"
ENV_CACHE = "LEAN_KD_CACHE"
YAMNET_ENTRY = "yamnet_tflite"
REGISTRY_PATH = Path(__file__).with_name("pretrained.yaml")
_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class PretrainedFile:
    """One downloadable file of the pretrained-weight registry."""

    url: str
    sha256: str
    filename: str  # path below the cache folder
    description: str = ""
    license: str = ""


def load_registry(path: str | Path = REGISTRY_PATH) -> dict[str, PretrainedFile]:
    """The registry YAML as ``{name: PretrainedFile}``; unknown keys are errors."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Pretrained-weight registry {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ModelError(f"Pretrained-weight registry {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(
            f"Pretrained-weight registry {path}: expected a mapping of names to entries"
        )
    try:
        return {
            name: from_dict(PretrainedFile, entry, where=f"{path}: {name}")
            for name, entry in data.items()
        }
    except ConfigError as exc:
        raise ModelError(str(exc)) from None


def cache_dir() -> Path:
    """The user cache: ``$LEAN_KD_CACHE`` or ``~/.cache/lean_kd``."""
    override = os.environ.get(ENV_CACHE)
    return Path(override) if override else Path.home() / ".cache" / "lean_kd"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(entry: PretrainedFile, dest: Path, *, timeout_seconds: float = 60.0) -> Path:
    """Fetch ``entry.url`` into ``dest`` if its sha256 matches; raises :class:`ModelError` otherwise."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading %s to %s", entry.url, dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(entry.url, timeout=timeout_seconds) as response,
        ):
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                out.write(chunk)
        actual = sha256_of(tmp)
        if actual != entry.sha256:
            raise ModelError(
                f"{entry.url}: sha256 {actual} does not match the expected {entry.sha256}"
            )
        tmp.replace(dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ModelError(f"Could not download {entry.url}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def resolve_yamnet_weights(
    source: str | Path | None = None, *, registry: str | Path = REGISTRY_PATH
) -> str:
    """The weights to load: ``source`` if given, else $LEAN_KD_YAMNET, the cache, a download.

    Returns a local path or a TF-Hub handle as a string.
    """
    if source is not None:
        return str(source)
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        if "://" not in env and not Path(env).exists():
            raise ModelError(f"${ENV_WEIGHTS} names {env}, which does not exist")
        return env
    entries = load_registry(registry)
    if YAMNET_ENTRY not in entries:
        raise ModelError(f"Pretrained-weight registry {registry} has no {YAMNET_ENTRY!r} entry")
    entry = entries[YAMNET_ENTRY]
    cached = cache_dir() / entry.filename
    if cached.is_file():
        return str(cached)
    try:
        return str(download(entry, cached))
    except ModelError as exc:
        raise ModelError(
            f"No YAMNet weights found: set ${ENV_WEIGHTS} to a yamnet.tflite, yamnet.h5 or SavedModel, "
            f"or place the official file at {cached}. {exc}"
        ) from None
