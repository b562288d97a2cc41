"""Sentence embeddings for the retrieval baseline: mean-pooled, L2-normalised MiniLM."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from inference.encoder import mean_pool
from inference.runtime import quiet_transformers


class ContextEmbedder:
    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_len: int) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        # Left truncation keeps the newest words of a long context.
        self.tokenizer.truncation_side = "left"
        self.max_len = max_len

    @classmethod
    def load(cls, path: str | Path, max_len: int = 128) -> ContextEmbedder:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        with quiet_transformers():
            model = AutoModel.from_pretrained(str(path), local_files_only=True)
        return cls(model, tokenizer, max_len)

    def save(self, path: Path) -> None:
        with quiet_transformers():
            self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(len(texts), hidden) float32, unit rows, in the order given."""
        # Batching texts of similar length wastes less time on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.model.config.hidden_size)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in index],
                    padding=True,
                    truncation=True,
                    max_length=self.max_len,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state  # (batch, seq, hidden)
                out[index] = mean_pool(hidden, batch["attention_mask"]).float()  # (batch, hidden), unit rows
        return out
