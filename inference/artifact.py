"""Model directories on disk: written atomically, every file checksummed, and
refused on load when anything is missing or altered."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import ModelConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
ENCODER_CONFIG_FILE = "encoder/config.json"
METRICS_FILE = "metrics.json"
CHECKSUMS_FILE = "checksums.json"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, ENCODER_CONFIG_FILE, METRICS_FILE, "tokenizer.json")


class ArtifactError(RuntimeError):
    """A model directory is missing, incomplete or damaged."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_checksums(model_dir: Path) -> str:
    """Record sha256 of every file; returns the artifact's id."""
    files = {
        p.relative_to(model_dir).as_posix(): sha256_file(p)
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS_FILE
    }
    write_json(model_dir / CHECKSUMS_FILE, {"algorithm": "sha256", "files": files})
    return artifact_id(files)


def artifact_id(files: dict[str, str]) -> str:
    """Stable id: first 12 hex of a hash over all file checksums."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]


def verify(model_dir: Path) -> tuple[ModelConfig, str]:
    """Check the directory against checksums.json; returns (config, model id)."""
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir} is not a model directory (it does not exist).")
    sums_path = model_dir / CHECKSUMS_FILE
    if not sums_path.is_file():
        raise ArtifactError(f"{model_dir} is incomplete: {CHECKSUMS_FILE} is missing, so it cannot be trusted.")
    try:
        files: dict[str, str] = json.loads(sums_path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{model_dir} is damaged: {CHECKSUMS_FILE} cannot be read ({exc}).") from exc
    for name in REQUIRED_FILES:
        if name not in files:
            raise ArtifactError(f"{model_dir} is incomplete: {name} is not listed in {CHECKSUMS_FILE}.")
    for name, expected in files.items():
        path = model_dir / name
        if not path.is_file():
            raise ArtifactError(f"{model_dir} is incomplete: {name} is missing.")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{model_dir} is damaged: {name} does not match its checksum.")
    try:
        config = ModelConfig.from_dict(json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{model_dir} is damaged: {CONFIG_FILE} is not a valid model config ({exc}).") from exc
    return config, artifact_id(files)


def write_atomically(out_dir: Path, build: Callable[[Path], None]) -> Path:
    """Build the artifact in a temporary sibling directory, then move it into place.
    If `build` fails nothing appears at out_dir (and an older model there is kept)."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        build(tmp)
        write_checksums(tmp)
        if out_dir.exists():
            # A directory cannot be renamed over a non-empty one: swap via a side name.
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / "model")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
