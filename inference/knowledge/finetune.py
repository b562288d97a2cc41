"""Fine-tuning the sentence encoder on the team's own question -> article pairs (from
"Was this helpful?" votes), with the multiple-negatives ranking loss of
sentence-transformers written in plain torch: each question against its article's
passage and, as negatives, the other passages in the batch."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inference.artifact import write_atomically
from inference.encoder import TOKENIZER_FILES, SentenceEncoder, mean_pool


@dataclass
class FineTuneConfig:
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 2e-5
    scale: float = 20.0  # cosine similarities times this are the logits (sentence-transformers' default)
    warmup: float = 0.1  # share of the steps with a rising learning rate
    seed: int = 13
    min_pairs: int = 8  # fewer pairs than this: nothing to learn from

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("fine-tuning needs epochs >= 1 and batch_size >= 2 (the batch holds the negatives)")
        if self.learning_rate <= 0 or self.scale <= 0:
            raise ValueError("learning_rate and scale must be > 0")


def training_pairs(index, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """(question, passage text): for each (question, article id), that article's passage
    closest to the question by the index's current encoder. Unknown articles are left out."""
    rows_of: dict[str, list[int]] = {}
    ids = [a["id"] for a in index.articles]
    for row, art in enumerate(index.passage_article):
        rows_of.setdefault(ids[int(art)], []).append(row)
    known = [(q, a) for q, a in pairs if q.strip() and a in rows_of]
    if not known:
        return []
    vectors = index.encoder.encode([q for q, _ in known])  # (pairs, hidden)
    out = []
    for (question, article), vector in zip(known, vectors, strict=True):
        rows = np.array(rows_of[article])
        best = rows[int(np.argmax(index._dense_scores(vector)[rows]))]
        out.append((question, index.passages[int(best)].search_text))
    return out


def fine_tune(
    encoder: SentenceEncoder,
    pairs: Sequence[tuple[str, str]],
    out_dir: str | Path,
    config: FineTuneConfig | None = None,
) -> Path:
    """Train a copy of the encoder on (question, passage) pairs and write it, with its
    tokenizer, as a model directory SentenceEncoder loads. The given encoder is unchanged."""
    import copy

    config = config or FineTuneConfig()
    config.validate()
    if len(pairs) < config.min_pairs:
        raise ValueError(f"fine-tuning needs at least {config.min_pairs} question-article pairs, got {len(pairs)}")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    model = copy.deepcopy(encoder.model).to(encoder.device)
    model.train()
    steps = config.epochs * -(-len(pairs) // config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    warm = max(1, int(steps * config.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
    )
    loss_fn = nn.CrossEntropyLoss()

    def embed(texts: list[str]) -> torch.Tensor:
        input_ids, mask = encoder.tokenizer.pad(encoder.tokenizer.ids(texts))  # (batch, seq) each
        mask_t = torch.from_numpy(mask).to(encoder.device)
        hidden = model(
            input_ids=torch.from_numpy(input_ids).to(encoder.device), attention_mask=mask_t
        ).last_hidden_state
        return mean_pool(hidden, mask_t)  # (batch, hidden), unit vectors

    order = list(pairs)
    for _ in range(config.epochs):
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:
                continue  # one pair has no negatives
            questions = embed([q for q, _ in batch])
            passages = embed([p for _, p in batch])
            logits = config.scale * questions @ passages.T  # (batch, batch): the diagonal is right
            loss = loss_fn(logits, torch.arange(len(batch), device=encoder.device))
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    model.eval()

    def build(tmp: Path) -> None:
        model.save_pretrained(str(tmp), safe_serialization=True)
        for name in TOKENIZER_FILES:
            src = encoder.model_dir / name
            if src.is_file():
                shutil.copy2(src, tmp / name)

    return write_atomically(Path(out_dir), build)
