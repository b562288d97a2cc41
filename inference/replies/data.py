"""Reply training pairs: load them from JSONL and turn a conversation into model input text."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.replies.errors import ReplyDataError

# The two sides of a support conversation; the model input is tagged with them.
SPEAKERS = ("customer", "agent")


@dataclass(frozen=True)
class Turn:
    speaker: str
    text: str


@dataclass(frozen=True)
class ReplyPair:
    context: tuple[Turn, ...]
    reply: str


def parse_turn(raw: Any) -> Turn:
    """Validate one ``{"speaker", "text"}`` mapping (or a Turn) and return a Turn."""
    if isinstance(raw, Turn):
        return raw
    if not isinstance(raw, dict):
        raise ReplyDataError(f"a turn must be an object with speaker and text, got {type(raw).__name__}")
    speaker, text = raw.get("speaker"), raw.get("text")
    if not isinstance(speaker, str) or speaker.strip().lower() not in SPEAKERS:
        raise ReplyDataError(f"turn speaker must be one of {', '.join(SPEAKERS)}, got {speaker!r}")
    if not isinstance(text, str):
        raise ReplyDataError(f"turn text must be a string, got {type(text).__name__}")
    return Turn(speaker=speaker.strip().lower(), text=" ".join(text.split()))


def parse_context(raw: Any) -> tuple[Turn, ...]:
    """Validate a conversation context: a non-empty list of turns, oldest first."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ReplyDataError("context must be a non-empty list of turns")
    return tuple(parse_turn(turn) for turn in raw)


def parse_pair(raw: Any) -> ReplyPair:
    if not isinstance(raw, dict):
        raise ReplyDataError(f"expected a JSON object, got {type(raw).__name__}")
    if "context" not in raw:
        raise ReplyDataError("missing field 'context'")
    if "reply" not in raw:
        raise ReplyDataError("missing field 'reply'")
    reply = raw["reply"]
    if not isinstance(reply, str) or not reply.strip():
        raise ReplyDataError("'reply' must be a non-empty string")
    return ReplyPair(context=parse_context(raw["context"]), reply=" ".join(reply.split()))


def load_reply_pairs(path: str | Path, limit: int | None = None) -> list[ReplyPair]:
    """Read ``{"context": [{"speaker", "text"}...], "reply"}`` lines; blank lines are skipped.

    Raises ReplyDataError naming the file, line number and reason of the first bad line,
    because a silently skipped line would change what the model learns.
    """
    path = Path(path)
    if not path.is_file():
        raise ReplyDataError(f"{path}: no such file")
    pairs: list[ReplyPair] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReplyDataError(f"{path}:{number}: invalid JSON ({exc.msg})") from None
            try:
                pairs.append(parse_pair(raw))
            except ReplyDataError as exc:
                raise ReplyDataError(f"{path}:{number}: {exc}") from None
            if limit is not None and len(pairs) >= limit:
                break
    if not pairs:
        raise ReplyDataError(f"{path}: no reply pairs")
    return pairs


def tag_turn(turn: Turn) -> str:
    return f"{turn.speaker}: {turn.text}"


def format_context(context: Sequence[Turn], max_turns: int) -> str:
    """Speaker-tagged text of the last ``max_turns`` turns, oldest first."""
    return " ".join(tag_turn(turn) for turn in context[-max_turns:])


def build_source(context: Sequence[Turn], tokenizer: Any, max_tokens: int, max_turns: int) -> str:
    """Model input for a context, cut from the left to fit ``max_tokens`` tokens.

    Whole turns are dropped oldest first, because the newest turns decide the reply;
    only when the newest turn alone is too long are its first tokens cut.
    ``max_tokens`` counts special tokens the tokenizer adds.
    """
    budget = max_tokens - tokenizer.num_special_tokens_to_add(pair=False)
    kept: list[str] = []
    used = 0
    for turn in reversed(context[-max_turns:]):
        text = tag_turn(turn)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if used + len(ids) <= budget:
            kept.append(text)
            used += len(ids)
            continue
        if not kept:
            # The newest turn alone is too long: keep its end, the part next to the reply.
            kept.append(tokenizer.decode(ids[len(ids) - budget :]))
        break
    return " ".join(reversed(kept))


def data_hash(pairs: Iterable[ReplyPair]) -> str:
    """sha256 of the pairs in a canonical form, so an artifact records exactly what it saw."""
    digest = hashlib.sha256()
    for pair in pairs:
        record = {
            "context": [[t.speaker, t.text] for t in pair.context],
            "reply": pair.reply,
        }
        digest.update(json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
