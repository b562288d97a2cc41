"""Train a reply model (seq2seq or retrieval) and write it as a sealed artifact."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers.modeling_outputs import BaseModelOutput

from inference.replies.artifact import METRICS_FILE, atomic_artifact, write_json
from inference.replies.config import (
    ArtifactConfig,
    ReplyTrainConfig,
    library_versions,
    resolve_base_model,
)
from inference.replies.data import ReplyPair, build_source, data_hash
from inference.replies.embedding import ContextEmbedder
from inference.replies.errors import ReplyDataError
from inference.replies.retrieval import RetrievalSuggester
from inference.replies.seq2seq import (
    ReplySuggester,
    base_architecture,
    build_model,
    is_new_weight,
    load_tokenizer,
    restrict_decoder_vocab,
    target_ids,
)
from inference.runtime import choose_reply_device, quiet_transformers


@dataclass(frozen=True)
class TrainProgress:
    step: int
    total_steps: int
    epoch: int
    loss: float
    elapsed_s: float


ProgressCallback = Callable[[TrainProgress], None]


def train_reply_model(
    pairs: Sequence[ReplyPair],
    out_dir: str | Path,
    config: ReplyTrainConfig | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> Path:
    """Train on ``pairs`` and write the artifact to ``out_dir`` atomically; return its path.

    ``config.kind`` picks a seq2seq model or the retrieval baseline. The directory gets
    config.json, the weights (safetensors), the tokenizer, metrics.json and checksums.json.
    """
    config = config or ReplyTrainConfig()
    if config.max_train is not None:
        pairs = pairs[: config.max_train]
    if not pairs:
        raise ReplyDataError("no training pairs")
    base_model = resolve_base_model(config.base_model)
    started = time.monotonic()
    with atomic_artifact(out_dir, overwrite=overwrite) as tmp:
        if config.kind == "retrieval":
            artifact = ArtifactConfig(
                kind="retrieval",
                architecture="retrieval",
                base_model=base_model,
                train=replace(config, base_model=base_model),
                data_hash=data_hash(pairs),
                n_train=len(pairs),
                versions=library_versions(),
            )
            embedder = ContextEmbedder.load(base_model, max_len=config.max_source_len)
            RetrievalSuggester.build(pairs, artifact, embedder).save(tmp)
            metrics: dict[str, float | int] = {"n_train": len(pairs)}
        else:
            suggester, metrics = _train_seq2seq(pairs, config, base_model, progress)
            suggester.save(tmp)
        metrics["train_seconds"] = round(time.monotonic() - started, 1)
        write_json(tmp / METRICS_FILE, metrics)
    return Path(out_dir)


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches: sort shuffled chunks by length so a batch pads little,
    then shuffle the batches so the model does not see lengths in order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def _encoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The encoder's transformer blocks, bottom first, whatever the family calls them."""
    encoder = model.get_encoder()
    for path in ("encoder.layer", "block", "layers", "layer"):
        found: object = encoder
        for name in path.split("."):
            found = getattr(found, name, None)
        if isinstance(found, torch.nn.ModuleList):
            return list(found)
    return []


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def _encode_sources(
    model: torch.nn.Module, sources: Sequence[Sequence[int]], pad: int, device: torch.device, batch_size: int = 64
) -> list[torch.Tensor]:
    """The frozen encoder's last hidden states of each source, unpadded: (len, hidden) each."""
    encoder = model.get_encoder().eval()
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # little padding per batch
    states: list[torch.Tensor | None] = [None] * len(sources)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            input_ids = _pad([sources[i] for i in chunk], pad).to(device)  # (batch, src)
            mask = input_ids != pad
            hidden = encoder(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state  # (batch, src, hidden)
            for row, i in enumerate(chunk):
                states[i] = hidden[row, : int(mask[row].sum())].to("cpu", copy=True)
    return states  # type: ignore[return-value]


def _pad_states(states: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (len, hidden) states into (batch, src, hidden) with zeros after each, and the mask."""
    width = max(s.shape[0] for s in states)
    out = torch.zeros(len(states), width, states[0].shape[1], dtype=states[0].dtype)
    mask = torch.zeros(len(states), width, dtype=torch.long)
    for row, s in enumerate(states):
        out[row, : s.shape[0]] = s
        mask[row, : s.shape[0]] = 1
    return out, mask


def _train_seq2seq(
    pairs: Sequence[ReplyPair],
    config: ReplyTrainConfig,
    base_model: str,
    progress: ProgressCallback | None,
) -> tuple[ReplySuggester, dict[str, float | int]]:
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = choose_reply_device()
    architecture = base_architecture(base_model)
    tokenizer = load_tokenizer(base_model)
    model = build_model(base_model, architecture, config, tokenizer)
    labels = target_ids(tokenizer, [p.reply for p in pairs], architecture, config.max_target_len)
    decoder_vocab = None
    if architecture == "encoder-decoder" and config.decoder_vocab == "replies":
        decoder_vocab = restrict_decoder_vocab(model, tokenizer, [i for ids in labels for i in ids])
        position = {int(t): i for i, t in enumerate(decoder_vocab)}
        labels = [[position[i] for i in ids] for ids in labels]
    model.to(device)
    encoder_layers = _encoder_layers(model)
    if config.freeze_encoder_layers >= len(encoder_layers):
        model.get_encoder().requires_grad_(False)
    if config.freeze_embeddings:
        for embedding in (
            model.get_encoder().get_input_embeddings(),
            model.get_decoder().get_input_embeddings(),
        ):
            embedding.weight.requires_grad_(False)
    for layer in encoder_layers[: config.freeze_encoder_layers]:
        layer.requires_grad_(False)

    sources = [build_source(p.context, tokenizer, config.max_source_len, config.max_turns) for p in pairs]
    source_ids = tokenizer(sources, truncation=True, max_length=config.max_source_len)
    examples = list(zip(source_ids["input_ids"], labels, strict=True))
    pad = tokenizer.pad_token_id
    # A frozen encoder gives each source the same output at every step: compute it once.
    frozen_encoder = not any(p.requires_grad for p in model.get_encoder().parameters())
    encoded = _encode_sources(model, [s for s, _ in examples], pad, device) if frozen_encoder else None

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    new_lr = config.learning_rate * config.new_weights_lr_multiplier
    groups = [
        {"params": [p for n, p in named if not is_new_weight(n)]},
        {"params": [p for n, p in named if is_new_weight(n)], "lr": new_lr},
    ]
    optimizer = torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(pairs) / config.batch_size)
    epochs = max(config.epochs, math.ceil(config.min_steps / steps_per_epoch))
    total_steps = steps_per_epoch * epochs
    warmup = max(1, int(total_steps * config.warmup_ratio))
    # Linear warm-up then linear decay to zero.
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup))),
    )
    lengths = [len(s) + len(t) for s, t in examples]

    model.train()
    if frozen_encoder:
        model.get_encoder().eval()  # its outputs were computed without dropout too
    started = time.monotonic()
    step = 0
    recent: list[float] = []
    with quiet_transformers():
        for epoch in range(epochs):
            for batch in _batches(lengths, config.batch_size, rng):
                label_ids = _pad([examples[i][1] for i in batch], -100).to(device)  # (batch, tgt)
                if encoded is not None:
                    states, mask = _pad_states([encoded[i] for i in batch])  # (batch, src, hidden), (batch, src)
                    loss = model(
                        encoder_outputs=BaseModelOutput(last_hidden_state=states.to(device)),
                        attention_mask=mask.to(device),
                        labels=label_ids,
                    ).loss
                else:
                    input_ids = _pad([examples[i][0] for i in batch], pad)  # (batch, src)
                    loss = model(
                        input_ids=input_ids.to(device),
                        attention_mask=(input_ids != pad).long().to(device),
                        labels=label_ids,
                    ).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                recent = [*recent[-49:], loss.item()]
                if progress is not None:
                    mean = sum(recent) / len(recent)
                    elapsed = time.monotonic() - started
                    progress(TrainProgress(step, total_steps, epoch, mean, elapsed))
    model.eval()

    artifact = ArtifactConfig(
        kind="seq2seq",
        architecture=architecture,
        base_model=base_model,
        train=replace(config, base_model=base_model),
        data_hash=data_hash(pairs),
        n_train=len(pairs),
        versions=library_versions(),
    )
    metrics: dict[str, float | int] = {
        "n_train": len(pairs),
        "steps": step,
        "epochs": epochs,
        "final_train_loss": round(sum(recent) / len(recent), 4),
        "train_loop_seconds": round(time.monotonic() - started, 1),
        "decoder_vocab": len(decoder_vocab) if decoder_vocab is not None else len(tokenizer),
        "encoder_cached": frozen_encoder,
    }
    return ReplySuggester(model, tokenizer, artifact, device, decoder_vocab), metrics
