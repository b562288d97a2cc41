"""Artifact directories: written atomically, sealed with checksums, verified on load."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from inference.artifact import sha256_file, write_json  # one way to hash and write artifact files
from inference.replies.config import ArtifactConfig
from inference.replies.errors import ArtifactError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CHECKSUMS_FILE = "checksums.json"


def seal(directory: Path) -> None:
    """Write checksums.json covering every other file in the directory."""
    sums = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS_FILE
    }
    write_json(directory / CHECKSUMS_FILE, sums)


def verify(directory: str | Path) -> ArtifactConfig:
    """Check every file against checksums.json and return the artifact's config.

    A model that loads from a half-copied or edited directory would serve wrong
    replies quietly, so any difference is an error.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such model directory")
    sums_path = directory / CHECKSUMS_FILE
    if not sums_path.is_file():
        raise ArtifactError(f"{directory}: not a reply-model artifact (no {CHECKSUMS_FILE})")
    try:
        sums = json.loads(sums_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{directory}: {CHECKSUMS_FILE} is unreadable ({exc})") from None
    for name, expected in sums.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"{directory}: damaged artifact, {name} is missing")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{directory}: damaged artifact, checksum of {name} does not match")
    if CONFIG_FILE not in sums:
        raise ArtifactError(f"{directory}: {CONFIG_FILE} is not covered by {CHECKSUMS_FILE}")
    return ArtifactConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")))


def read_kind(directory: str | Path) -> str:
    """The kind named in an artifact's config.json, unverified: loaders verify."""
    try:
        return str(json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))["kind"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{directory}: not a reply-model artifact ({exc})") from None


@contextlib.contextmanager
def atomic_artifact(out_dir: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``out_dir``; on success seal it and rename it
    into place, so readers never see a half-written model. On error nothing is left."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ArtifactError(f"{out_dir} exists and is not empty; choose another directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        seal(tmp)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
