"""Training data for the intent model: read CSV/JSONL files, check them, and say
exactly which line is wrong so an operator can fix the file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# The label reserved for out-of-scope utterances (CLINC150 convention).
OOS_LABEL = "oos"


@dataclass(frozen=True)
class Example:
    text: str
    intent: str


class DataError(ValueError):
    """A training/evaluation file or list is unusable. `line` is 1-based (the
    header of a CSV is line 1) or None when the problem is the data as a whole."""

    def __init__(self, line: int | None, reason: str, source: str | None = None) -> None:
        self.line = line
        self.reason = reason
        self.source = source
        where = source or "data"
        if line is not None:
            where = f"{where} line {line}"
        super().__init__(f"{where}: {reason}")


def load_examples(path: str | Path) -> list[Example]:
    """Read a CSV (header `text,intent`) or JSONL (`{"text", "intent"}` a line)
    file and validate it. Raises DataError(line, reason)."""
    path = Path(path)
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(None, f"cannot read file ({exc.strerror})", name) from exc
    try:
        # utf-8-sig: spreadsheets often write a BOM in front of the header.
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(line, "unreadable encoding (the file must be UTF-8)", name) from exc

    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = _jsonl_rows(content, name)
    else:
        rows = _csv_rows(content, name)
    _check_rows(rows, name)
    return [Example(text, intent) for _, text, intent in rows]


def validate_examples(examples: Sequence[Example]) -> None:
    """Apply the file checks to an in-memory list (line = 1-based position)."""
    rows = []
    for i, ex in enumerate(examples, start=1):
        if not isinstance(ex.text, str) or not isinstance(ex.intent, str):
            raise DataError(i, "text and intent must be strings", "examples")
        rows.append((i, ex.text.strip(), ex.intent.strip()))
    _check_rows(rows, "examples")


def data_fingerprint(examples: Iterable[Example]) -> str:
    """sha256 of the examples in order, recorded in every artifact so a model can
    be traced back to the exact data it was trained on."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(ex.text.encode())
        h.update(b"\x1f")
        h.update(ex.intent.encode())
        h.update(b"\x1e")
    return h.hexdigest()


def _csv_rows(content: str, name: str) -> list[tuple[int, str, str]]:
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(None, "the file is empty", name) from None
    except csv.Error as exc:
        raise DataError(1, f"bad CSV ({exc})", name) from exc
    columns = [c.strip().lower() for c in header]
    for needed in ("text", "intent"):
        if needed not in columns:
            raise DataError(1, f"missing column '{needed}' (the header must be text,intent)", name)
    t_col, i_col = columns.index("text"), columns.index("intent")
    rows = []
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not c.strip() for c in record):
                continue  # blank lines are harmless
            if len(record) <= max(t_col, i_col):
                raise DataError(line, "missing column (expected text,intent)", name)
            rows.append((line, record[t_col].strip(), record[i_col].strip()))
    except csv.Error as exc:
        raise DataError(reader.line_num, f"bad CSV ({exc})", name) from exc
    return rows


def _jsonl_rows(content: str, name: str) -> list[tuple[int, str, str]]:
    rows = []
    for line_no, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(line_no, f"bad JSON ({exc.msg})", name) from exc
        if not isinstance(obj, dict):
            raise DataError(line_no, 'bad JSON (expected an object {"text": ..., "intent": ...})', name)
        for needed in ("text", "intent"):
            if needed not in obj:
                raise DataError(line_no, f"missing column '{needed}'", name)
        text, intent = obj["text"], obj["intent"]
        if not isinstance(text, str) or not isinstance(intent, str):
            raise DataError(line_no, "text and intent must be strings", name)
        rows.append((line_no, text.strip(), intent.strip()))
    return rows


def _check_rows(rows: list[tuple[int, str, str]], name: str) -> None:
    if not rows:
        raise DataError(None, "no examples", name)
    for line, text, intent in rows:
        if not text:
            raise DataError(line, "empty text", name)
        if not intent:
            raise DataError(line, "empty intent", name)
    intents = {intent for _, _, intent in rows if intent != OOS_LABEL}
    if len(intents) < 2:
        only = next(iter(intents), OOS_LABEL)
        raise DataError(None, f"only one intent ('{only}'): a classifier needs at least two", name)
