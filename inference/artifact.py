"""Model directories on disk, the same for every model kind: written atomically,
every file checksummed, and refused on load when anything is missing, altered, not
listed, or listed at a path outside the directory. `digest` is one hash of the whole
artifact, which the product records at activation and checks at load (a swapped
file and a rewritten checksums.json on shared storage are refused too).

checksums.json is `{"algorithm": "sha256", "files": {relative path: sha256}}`. Reply
models written before the toolkit was shared used a flat `{relative path: sha256}`;
those still verify."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CHECKSUMS_FILE = "checksums.json"


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


def read_json(model_dir: Path, name: str) -> Any:
    """A JSON file of an artifact; unreadable means damaged."""
    try:
        return json.loads((model_dir / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{model_dir} is damaged: {name} cannot be read ({exc}).") from exc


def artifact_id(files: dict[str, str]) -> str:
    """Stable id: first 12 hex of a hash over all file checksums."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]


def write_checksums(model_dir: Path) -> str:
    """Record sha256 of every file; returns the artifact's id."""
    files = {
        p.relative_to(model_dir).as_posix(): sha256_file(p)
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.relative_to(model_dir).as_posix() != CHECKSUMS_FILE  # a nested one is listed
    }
    write_json(model_dir / CHECKSUMS_FILE, {"algorithm": "sha256", "files": files})
    return artifact_id(files)


def read_checksums(model_dir: Path) -> dict[str, str]:
    """path -> sha256 from checksums.json, in either format."""
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir} is not a model directory (it does not exist).")
    if not (model_dir / CHECKSUMS_FILE).is_file():
        raise ArtifactError(f"{model_dir} is incomplete: {CHECKSUMS_FILE} is missing, so it cannot be trusted.")
    sums = read_json(model_dir, CHECKSUMS_FILE)
    if isinstance(sums, dict) and "files" in sums:
        if sums.get("algorithm") != "sha256":
            raise ArtifactError(f"{model_dir} is damaged: {CHECKSUMS_FILE} names an unknown algorithm.")
        sums = sums["files"]
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
        raise ArtifactError(f"{model_dir} is damaged: {CHECKSUMS_FILE} is not a map of file checksums.")
    return sums


def digest(model_dir: Path) -> str:
    """sha256 over every file's checksum: the one value that names this artifact's
    content (the database keeps it; see check_digest)."""
    files = read_checksums(Path(model_dir))
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def check_digest(model_dir: Path, expected: str) -> None:
    """Refuse a directory whose content is not the one recorded (`expected`, from digest)."""
    if digest(model_dir) != expected:
        raise ArtifactError(
            f"{model_dir} is not the artifact that was activated: its files or {CHECKSUMS_FILE} were changed."
        )


def _listed_path(model_dir: Path, root: Path, name: str) -> Path:
    """The file a checksums entry names, refused unless it lies inside the directory:
    no absolute path, no `..`, no symbolic link that leads out."""
    pure = PurePosixPath(name)
    if not name or "\\" in name or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        raise ArtifactError(f"{model_dir} is damaged: {CHECKSUMS_FILE} lists {name!r}, a path outside the model.")
    path = model_dir / pure
    if not path.resolve().is_relative_to(root):
        raise ArtifactError(f"{model_dir} is damaged: {name} leads outside the model directory.")
    return path


def _unlisted(model_dir: Path, files: dict[str, str]) -> list[str]:
    """Files (and links) in the directory that checksums.json does not list."""
    found = []
    for folder, dirnames, filenames in os.walk(model_dir):
        here = Path(folder)
        links = [d for d in dirnames if (here / d).is_symlink()]  # os.walk does not enter them
        for name in [*filenames, *links]:
            relative = (here / name).relative_to(model_dir).as_posix()
            if relative != CHECKSUMS_FILE and relative not in files:
                found.append(relative)
    return sorted(found)


def verify(model_dir: Path, required: Iterable[str] = (CONFIG_FILE,)) -> str:
    """Check the directory against checksums.json; returns the artifact's id.
    Every name in `required` must be listed, every listed file present, intact and
    inside the directory, and no other file may be there."""
    model_dir = Path(model_dir)
    files = read_checksums(model_dir)
    root = model_dir.resolve()
    for name in required:
        if name not in files:
            raise ArtifactError(f"{model_dir} is incomplete: {name} is not listed in {CHECKSUMS_FILE}.")
    paths = {name: _listed_path(model_dir, root, name) for name in files}
    unlisted = _unlisted(model_dir, files)
    if unlisted:
        raise ArtifactError(
            f"{model_dir} holds files that {CHECKSUMS_FILE} does not list, so it cannot be trusted: "
            + ", ".join(unlisted[:5])
            + (" ..." if len(unlisted) > 5 else "")
        )
    for name, expected in files.items():
        path = paths[name]
        if not path.is_file():
            raise ArtifactError(f"{model_dir} is damaged or incomplete: {name} is missing.")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{model_dir} is damaged: {name} does not match its checksum.")
    return artifact_id(files)


@contextlib.contextmanager
def atomic_directory(out_dir: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of out_dir to build the artifact in; on success write
    its checksums and move it into place (an older model there is replaced only then),
    so readers never see a half-written model. If the build fails nothing is left.
    overwrite=False refuses an out_dir that exists and is not empty."""
    out_dir = Path(out_dir).resolve()
    if not overwrite and out_dir.exists() and any(out_dir.iterdir()):
        raise ArtifactError(f"{out_dir} exists and is not empty; choose another directory")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
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


def write_atomically(out_dir: Path, build: Callable[[Path], None]) -> Path:
    """atomic_directory for a `build(tmp)` callable; returns the final path."""
    with atomic_directory(out_dir) as tmp:
        build(tmp)
    return Path(out_dir).resolve()


def library_versions(*modules: str) -> dict[str, str]:
    """Python's and each named module's `__version__`, recorded in an artifact's config."""
    versions = {"python": platform.python_version()}
    for name in modules:
        versions[name] = str(importlib.import_module(name).__version__)
    return versions


def config_from_dict(cls, data: dict[str, Any]):
    """A config dataclass from an artifact's config.json: every field without a default
    must be there (KeyError names the missing ones); keys it does not know are ignored,
    so an artifact written by a newer version still loads."""
    fields = dataclasses.fields(cls)
    required = {f.name for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = required - set(data)
    if missing:
        raise KeyError(", ".join(sorted(missing)))
    names = {f.name for f in fields}
    return cls(**{k: v for k, v in data.items() if k in names})
