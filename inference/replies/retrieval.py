"""Retrieval baseline: answer with the agent replies of the most similar past contexts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from inference.replies.artifact import CONFIG_FILE, verify, write_json
from inference.replies.config import ArtifactConfig
from inference.replies.data import ReplyPair, format_context, parse_context
from inference.replies.embedding import ContextEmbedder
from inference.replies.errors import ArtifactError
from inference.replies.suggestions import Suggestion, dedupe
from inference.runtime import limit_threads

EMBEDDINGS_FILE = "embeddings.safetensors"
REPLIES_FILE = "replies.json"
ENCODER_DIR = "encoder"


class RetrievalSuggester:
    def __init__(
        self,
        embedder: ContextEmbedder,
        embeddings: torch.Tensor,
        replies: Sequence[str],
        config: ArtifactConfig,
    ) -> None:
        if embeddings.shape[0] != len(replies):
            raise ArtifactError(f"{embeddings.shape[0]} embeddings for {len(replies)} replies")
        self.embedder = embedder
        self.embeddings = embeddings  # (n_pairs, hidden), unit rows
        self.replies = list(replies)
        self.config = config

    @classmethod
    def build(
        cls,
        pairs: Sequence[ReplyPair],
        config: ArtifactConfig,
        embedder: ContextEmbedder,
    ) -> RetrievalSuggester:
        turns = config.train.retrieval_turns
        embeddings = embedder.embed([format_context(p.context, turns) for p in pairs])
        return cls(embedder, embeddings, [p.reply for p in pairs], config)

    def save(self, directory: Path) -> None:
        """Write into ``directory`` (the caller makes it atomic and seals it)."""
        write_json(directory / CONFIG_FILE, self.config.to_dict())
        save_file(
            {"embeddings": self.embeddings.contiguous()},
            str(directory / EMBEDDINGS_FILE),
        )
        write_json(directory / REPLIES_FILE, self.replies)
        # The encoder travels with the index: the embeddings mean nothing without it.
        self.embedder.save(directory / ENCODER_DIR)

    @classmethod
    def load(cls, directory: str | Path, threads: int | None = None) -> RetrievalSuggester:
        directory = Path(directory)
        config = verify(directory)
        if config.kind != "retrieval":
            raise ArtifactError(f"{directory} holds a {config.kind} model, not a retrieval index")
        limit_threads(threads)
        embedder = ContextEmbedder.load(directory / ENCODER_DIR, max_len=config.train.max_source_len)
        embeddings = load_file(str(directory / EMBEDDINGS_FILE))["embeddings"]
        replies = json.loads((directory / REPLIES_FILE).read_text(encoding="utf-8"))
        return cls(embedder, embeddings, replies, config)

    def suggest(
        self,
        context: Sequence[dict[str, Any]],
        n: int = 3,
        timeout_s: float | None = None,
    ) -> list[Suggestion]:
        """Up to ``n`` distinct replies of the nearest past contexts, best first, scored
        by cosine similarity. ``timeout_s`` is accepted for a common signature: one
        embedding and one matrix product have no loop that could run long."""
        turns = parse_context(context)
        query = self.embedder.embed([format_context(turns, self.config.train.retrieval_turns)])[0]
        scores = self.embeddings @ query  # (n_pairs,)
        # Many neighbours share a reply; look deep enough to find n distinct ones.
        top = torch.topk(scores, k=min(len(self.replies), max(n * 10, 20)))
        candidates = (
            Suggestion(self.replies[i], round(float(s), 6))
            for s, i in zip(top.values, top.indices.tolist(), strict=True)
        )
        return dedupe(candidates, n)
