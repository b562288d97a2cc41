"""On-disk cache of frozen-encoder sentence embeddings, so fast-mode retraining
after feedback only encodes the new utterances (any model kind that embeds texts
with a SentenceEncoder can use it)."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np

from .encoder import SentenceEncoder, model_fingerprint
from .runtime import embed_cache_dir as cache_dir


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cached_encode(encoder: SentenceEncoder, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """encoder.encode(texts), reading and filling a SQLite cache keyed by the base
    model's fingerprint, the max length and the text's sha256. An unusable cache
    (read-only disk, corrupt file) is skipped rather than failing training."""
    dim = encoder.dimension
    out = np.zeros((len(texts), dim), dtype=np.float32)
    name = f"{model_fingerprint(encoder.model_dir)[:16]}-len{encoder.tokenizer.max_length}.sqlite"
    keys = [_key(t) for t in texts]
    found: dict[str, np.ndarray] = {}
    db = None
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(cache_dir() / name, timeout=30)
        db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 900):  # SQLite's bound-parameter limit
            chunk = unique[i : i + 900]
            rows = db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            for key, blob in rows:
                vec = np.frombuffer(blob, dtype=np.float32)
                if vec.shape == (dim,):
                    found[key] = vec
    except sqlite3.Error:
        db = None
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        fresh = encoder.encode([texts[i] for i in missing], batch_size=batch_size)
        for row, i in enumerate(missing):
            found[keys[i]] = fresh[row]
        if db is not None:
            try:
                with db:
                    db.executemany(
                        "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                        [(keys[i], fresh[row].tobytes()) for row, i in enumerate(missing)],
                    )
            except sqlite3.Error:
                pass
    if db is not None:
        db.close()
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out
