"""The index on disk: a directory written atomically and sealed with sha256
checksums (inference.artifact), refused on load when anything is missing or altered."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from inference import artifact
from inference.artifact import ArtifactError

from .config import INDEX_KIND, IndexConfig
from .passages import Article

ENCODER_DIR = "encoder"  # only in an index built with a fine-tuned encoder
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


def verify(path: str | Path) -> tuple[IndexConfig, str]:
    """Check the directory against its checksums; returns (config, index id), the id
    being the first 12 hex of a hash over all file checksums."""
    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path} is not a knowledge index (it does not exist).")
    index_id = artifact.verify(path, required=REQUIRED_FILES)
    try:
        config = IndexConfig.from_dict(json.loads((path / CONFIG_FILE).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path} is damaged: {CONFIG_FILE} is not a valid index config ({exc}).") from exc
    if config.kind != INDEX_KIND:
        raise ArtifactError(f"{path} is a {config.kind!r} artifact, not a knowledge index.")
    return config, index_id
