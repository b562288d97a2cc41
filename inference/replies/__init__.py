"""Reply suggestions for agents: a seq2seq model and a retrieval baseline, no Django."""

from __future__ import annotations

from pathlib import Path

from inference.replies.artifact import read_kind
from inference.replies.config import ArtifactConfig, ReplyTrainConfig
from inference.replies.data import ReplyPair, Turn, load_reply_pairs
from inference.replies.errors import (
    ArtifactError,
    ReplyDataError,
    ReplyModelError,
    SuggestionTimeout,
)
from inference.replies.retrieval import RetrievalSuggester
from inference.replies.seq2seq import ReplySuggester
from inference.replies.suggestions import Suggestion
from inference.replies.train import TrainProgress, train_reply_model

__all__ = [
    "ArtifactConfig",
    "ArtifactError",
    "ReplyDataError",
    "ReplyModelError",
    "ReplyPair",
    "ReplySuggester",
    "ReplyTrainConfig",
    "RetrievalSuggester",
    "Suggestion",
    "SuggestionTimeout",
    "TrainProgress",
    "Turn",
    "load_reply_pairs",
    "load_suggester",
    "train_reply_model",
]


def load_suggester(
    directory: str | Path,
    *,
    quantize: bool = False,
    threads: int | None = None,
    device: str | None = None,
) -> ReplySuggester | RetrievalSuggester:
    """Load any reply artifact by the kind its config.json names (and verify it).
    ``quantize`` and ``device`` apply to seq2seq models only."""
    if read_kind(directory) == "retrieval":
        return RetrievalSuggester.load(directory, threads=threads)
    return ReplySuggester.load(directory, quantize=quantize, threads=threads, device=device)
