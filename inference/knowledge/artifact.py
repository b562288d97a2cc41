"""The index on disk: a directory written atomically and sealed with sha256
checksums (inference.artifact), refused on load when anything is missing or altered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from inference.artifact import ArtifactError, sha256_file

from .config import INDEX_KIND, IndexConfig
from .passages import Article

CONFIG_FILE = "config.json"
CHECKSUMS_FILE = "checksums.json"
PASSAGES_FILE = "passages.jsonl"
ARTICLES_FILE = "articles.json"
VECTORS_FILE = "vectors.npy"
SCALES_FILE = "vector_scales.npy"
PASSAGE_ARTICLE_FILE = "passage_article.npy"
PASSAGE_OFFSETS_FILE = "passage_offsets.npy"
BM25_DIR = "bm25"
REQUIRED_FILES = (
    CONFIG_FILE,
    PASSAGES_FILE,
    PASSAGE_OFFSETS_FILE,
    ARTICLES_FILE,
    VECTORS_FILE,
    PASSAGE_ARTICLE_FILE,
)


def articles_fingerprint(articles: Sequence[Article]) -> str:
    h = hashlib.sha256()
    for a in articles:
        h.update(json.dumps([a.id, a.title, a.url, a.locale, a.keywords, a.body], ensure_ascii=False).encode())
    return h.hexdigest()


def _listed_files(sums: dict) -> dict[str, str]:
    # inference.artifact writes {"algorithm": ..., "files": {...}}; a bare mapping is read too.
    files = sums.get("files", sums) if isinstance(sums, dict) else None
    if not isinstance(files, dict):
        raise ValueError("no file list")
    return files


def verify(path: str | Path) -> tuple[IndexConfig, str]:
    """Check the directory against its checksums; returns (config, index id), the id
    being the first 12 hex of a hash over all file checksums."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a knowledge index (it does not exist).")
    sums_path = path / CHECKSUMS_FILE
    if not sums_path.is_file():
        raise ArtifactError(f"{path} is incomplete: {CHECKSUMS_FILE} is missing, so it cannot be trusted.")
    try:
        files = _listed_files(json.loads(sums_path.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise ArtifactError(f"{path} is damaged: {CHECKSUMS_FILE} cannot be read ({exc}).") from exc
    for name in REQUIRED_FILES:
        if name not in files:
            raise ArtifactError(f"{path} is incomplete: {name} is not listed in {CHECKSUMS_FILE}.")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"{path} is incomplete: {name} is missing.")
        if sha256_file(file) != expected:
            raise ArtifactError(f"{path} is damaged: {name} does not match its checksum.")
    try:
        config = IndexConfig.from_dict(json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path} is damaged: {CONFIG_FILE} is not a valid index config ({exc}).") from exc
    if config.kind != INDEX_KIND:
        raise ArtifactError(f"{path} is a {config.kind!r} artifact, not a knowledge index.")
    index_id = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    return config, index_id
