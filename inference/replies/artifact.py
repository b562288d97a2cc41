"""Reply artifacts: the checks and atomic writing every model kind shares
(inference.artifact), then the reply model's own config."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from inference import artifact as shared
from inference.artifact import CONFIG_FILE, METRICS_FILE, write_json
from inference.replies.config import ArtifactConfig
from inference.replies.errors import ArtifactError

__all__ = ["CONFIG_FILE", "METRICS_FILE", "atomic_artifact", "read_kind", "verify", "write_json"]


@contextlib.contextmanager
def _as_reply_error() -> Iterator[None]:
    """Raise the toolkit's ArtifactError as the reply package's (a ReplyModelError too)."""
    try:
        yield
    except ArtifactError:
        raise
    except shared.ArtifactError as exc:
        raise ArtifactError(str(exc)) from None


def verify(directory: str | Path) -> ArtifactConfig:
    """Check every file against checksums.json and return the artifact's config.

    A model that loads from a half-copied or edited directory would serve wrong
    replies quietly, so any difference is an error.
    """
    directory = Path(directory)
    with _as_reply_error():
        shared.verify(directory, required=(CONFIG_FILE,))
        raw = shared.read_json(directory, CONFIG_FILE)
    return ArtifactConfig.from_dict(raw)


def read_kind(directory: str | Path) -> str:
    """The kind named in an artifact's config.json, unverified: loaders verify."""
    try:
        return str(json.loads((Path(directory) / CONFIG_FILE).read_text(encoding="utf-8"))["kind"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{directory}: not a reply-model artifact ({exc})") from None


@contextlib.contextmanager
def atomic_artifact(out_dir: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``out_dir``; on success seal it and rename it
    into place, so readers never see a half-written model. On error nothing is left.
    An existing, non-empty ``out_dir`` is refused unless ``overwrite``."""
    with _as_reply_error(), shared.atomic_directory(out_dir, overwrite=overwrite) as tmp:
        yield tmp
