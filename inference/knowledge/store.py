"""Passage texts kept on disk: one JSON line each, read through mmap on demand, so
a 100,000-passage index does not hold its text in memory."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np

from .passages import Passage


def write_passages(path: Path, passages: list[Passage]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")


class PassageStore:
    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        size = path.stat().st_size
        if size == 0:
            self._mm = None
            self._starts = np.zeros(1, dtype=np.int64)
            return
        self._mm = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        ends = np.flatnonzero(np.frombuffer(self._mm, dtype=np.uint8) == 10)  # one "\n" per passage
        self._starts = np.concatenate(([0], ends + 1)).astype(np.int64)

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
