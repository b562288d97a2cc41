"""Passage texts kept on disk: one JSON line each, read through mmap on demand, so
a 100,000-passage index does not hold its text in memory."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np

from .passages import Passage


def write_passages(path: Path, passages: list[Passage]) -> np.ndarray:
    """Write one JSON line per passage; returns the byte offset where each line
    starts, plus the file's length (saved beside it, so loading reads no text)."""
    starts = [0]
    with path.open("wb") as fh:
        for p in passages:
            line = (json.dumps(p.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
            fh.write(line)
            starts.append(starts[-1] + len(line))
    return np.array(starts, dtype=np.int64)


class PassageStore:
    def __init__(self, path: Path, starts: np.ndarray) -> None:
        size = path.stat().st_size
        if len(starts) < 1 or int(starts[-1]) != size or np.any(np.diff(starts) <= 0):
            raise ValueError(f"{path}: passage offsets do not match the file")
        self._fh = path.open("rb")
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        self._starts = starts

    def __len__(self) -> int:
        return len(self._starts) - 1

    def __getitem__(self, i: int) -> Passage:
        if not 0 <= i < len(self):
            raise IndexError(i)
        raw = self._mm[int(self._starts[i]) : int(self._starts[i + 1]) - 1]
        return Passage(**json.loads(raw))

    def close(self) -> None:
        if self._mm is not None:
            self._mm.close()
        self._fh.close()
