"""The intent classifier network: encoder -> mean pooling -> unit vector -> linear
head. Fast and full mode produce the same network, so serving has one code path."""

from __future__ import annotations

import torch
from torch import nn

from ..encoder import mean_pool


class IntentModel(nn.Module):
    def __init__(self, encoder: nn.Module, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(int(encoder.config.hidden_size), num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, seq) token ids and mask -> (batch, num_labels) raw logits
        (temperature is applied outside, so it can change without re-exporting)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(mean_pool(hidden, attention_mask))  # (batch, hidden) -> (batch, labels)
