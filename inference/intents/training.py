"""Training an intent model: linear probe on frozen embeddings (fast mode), optionally
followed by fine-tuning the whole encoder (full mode); then calibration, the
out-of-scope threshold and an atomically written artifact."""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ..artifact import CONFIG_FILE, METRICS_FILE, library_versions, write_atomically, write_json
from ..embed_cache import cached_encode
from ..encoder import (
    TOKENIZER_FILES,
    SentenceEncoder,
    TextTokenizer,
    length_sorted_batches,
    model_fingerprint,
)
from ..runtime import (
    INTENT_PRECISION_BACKENDS,
    apply_torch_threads,
    autocast,
    autocast_dtype,
    choose_device,
    choose_intent_precision,
    choose_threads,
)
from .artifact import ENCODER_CONFIG_FILE, WEIGHTS_FILE
from .calibration import choose_oos_rule, fit_temperature, oos_score, review_threshold, softmax, top_in_scope
from .config import DEFAULT_EPOCHS, ModelConfig, TrainConfig
from .data import OOS_LABEL, Example, data_fingerprint, validate_examples
from .model import IntentModel

Progress = Callable[[float, str], None]

# L2 strengths (on the mean loss) of the linear probe that starts full-mode fine-tuning.
FULL_PROBE_L2_GRID = (1e-3, 1e-4, 1e-5)


def train_intent_model(
    train: list[Example],
    out_dir: str | Path,
    *,
    val: list[Example] | None = None,
    config: TrainConfig | None = None,
    progress: Progress | None = None,
) -> Path:
    """Train, calibrate and save a model directory at out_dir; returns its path.
    Without `val`, a stratified validation part is split off `train` (seeded)."""
    config = config or TrainConfig()
    config.validate()
    report = progress or (lambda fraction, stage: None)
    validate_examples(train)
    if val is not None and len(val) == 0:
        val = None
    split_off = val is None
    if val is not None:
        validate_examples(val)
    else:
        train, val = stratified_split(train, config.val_fraction, config.seed)
    started = time.perf_counter()
    _seed_everything(config.seed)
    device = choose_device(config.device)
    apply_torch_threads(choose_threads(config.threads))

    labels = sorted({ex.intent for ex in train})
    index = {label: i for i, label in enumerate(labels)}
    oos_index = index.get(OOS_LABEL)
    # Validation queries whose intent was never trained cannot be scored, except
    # out-of-scope ones, which are exactly what the threshold must catch.
    val = [ex for ex in val if ex.intent in index or ex.intent == OOS_LABEL]
    y_train = np.array([index[ex.intent] for ex in train])
    val_is_oos = np.array([ex.intent == OOS_LABEL for ex in val], dtype=bool)
    y_val = np.array([index.get(ex.intent, -1) for ex in val])

    report(0.0, "loading base model")
    encoder = SentenceEncoder(config.base_model, device=device, max_length=config.max_length)
    full = config.mode == "full"
    embed_share = 0.1 if full else 0.7
    report(0.02, "encoding utterances")
    x_train = cached_encode(encoder, [ex.text for ex in train])
    report(embed_share * 0.85, "encoding validation utterances")
    x_val = cached_encode(encoder, [ex.text for ex in val])
    report(embed_share, "training classification head")
    head_epochs = DEFAULT_EPOCHS["fast"] if full else config.resolved_epochs()
    if full:
        # The probe that starts fine-tuning keeps its earlier L2 grid, fit from zero:
        # with the fast mode's C grid, CLINC150 validation accuracy after
        # fine-tuning fell from 96.42 % to 96.26 % (docs/benchmarks.md).
        c_grid, warm_start = tuple(1.0 / (2.0 * l2 * len(x_train)) for l2 in FULL_PROBE_L2_GRID), False
    else:
        c_grid, warm_start = config.head_c_grid, True
    head, head_c, probe_acc = fit_head(x_train, y_train, x_val, y_val, c_grid, head_epochs, warm_start=warm_start)

    model = IntentModel(encoder.model, len(labels))
    model.head.load_state_dict(head.state_dict())
    model.to(device)
    history: list[dict[str, float]] = []
    if full:
        history = finetune(
            model,
            encoder.tokenizer,
            train,
            y_train,
            val,
            y_val,
            config,
            device,
            lambda f: report(embed_share + 0.05 + f * 0.75, "fine-tuning encoder"),
        )
    report(0.9, "calibrating")
    val_logits = (
        predict_logits(model, encoder.tokenizer, [ex.text for ex in val], device)
        if full
        else x_val @ head.weight.detach().numpy().T + head.bias.detach().numpy()
    )
    scored = y_val >= 0
    temperature = fit_temperature(val_logits[scored], y_val[scored])
    probs = softmax(val_logits, temperature)
    decision, candidates = choose_oos_rule(
        val_logits, temperature, y_val, val_is_oos, oos_index, config.in_scope_reject_rate
    )
    top = probs.argmax(axis=1)
    in_scope_val = scored & ~val_is_oos
    _, top_in, top_prob = top_in_scope(probs, oos_index)
    review_at = review_threshold(
        top_prob[in_scope_val], top_in[in_scope_val] == y_val[in_scope_val], config.review_accuracy_target
    )
    refit = bool(not full and split_off and config.refit_on_all and scored.any())
    held_out_head = None
    if refit:
        held_out_head = copy.deepcopy(head)
        # Temperature and thresholds stay as chosen on the held-out part: the head
        # refit on all examples is a little more confident, so it rejects no more.
        report(0.91, "refitting the head on all examples")
        head = refit_head(
            head,
            np.concatenate([x_train, x_val[scored]]),
            np.concatenate([y_train, y_val[scored]]),
            head_c,
            head_epochs,
        )
        model.head.load_state_dict(head.state_dict())
        top = (x_val @ head.weight.detach().numpy().T + head.bias.detach().numpy()).argmax(axis=1)
    train_seconds = time.perf_counter() - started

    metrics: dict[str, Any] = {
        "validation_examples": len(val),
        "validation_oos_examples": int(val_is_oos.sum()),
        "validation_accuracy_before_threshold": float((top[scored] == y_val[scored]).mean()) if scored.any() else None,
        "validation_in_scope_accuracy": decision.in_scope_accuracy,
        "validation_oos_recall": decision.oos_recall,
        "linear_probe_validation_accuracy": probe_acc,
        "head_c": head_c,
        "head_refit_on_all": refit,
        "review_threshold": review_at,
        "review_accuracy_target": config.review_accuracy_target,
        "temperature": temperature,
        "threshold": decision.threshold,
        "threshold_rule": decision.rule,
        "oos_score": decision.score,
        "oos_rule_candidates": [
            {
                "score": c.score,
                "threshold": c.threshold,
                "validation_in_scope_accuracy": c.in_scope_accuracy,
                "validation_oos_recall": c.oos_recall,
            }
            for c in candidates
        ],
        "train_seconds": round(train_seconds, 2),
        "epochs": history,
        "device": device,
        "threads": torch.get_num_threads(),
    }
    model_config = ModelConfig(
        labels=labels,
        threshold=decision.threshold,
        temperature=temperature,
        max_length=config.max_length,
        hidden_size=int(encoder.model.config.hidden_size),
        base_model=str(config.base_model or encoder.model_dir),
        base_model_sha256=model_fingerprint(encoder.model_dir),
        mode=config.mode,
        backend=config.backend,
        train=dataclasses.asdict(config),
        train_data_sha256=data_fingerprint(train),
        val_data_sha256=data_fingerprint(val),
        threshold_rule=decision.rule,
        oos_score=decision.score,
        review_threshold=review_at,
        versions=_versions(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )

    def build(tmp: Path) -> None:
        report(0.93, "saving")
        model.cpu().eval()
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS_FILE))
        (tmp / "encoder").mkdir()
        encoder.model.config.to_json_file(str(tmp / ENCODER_CONFIG_FILE))
        for name in TOKENIZER_FILES:
            if (encoder.model_dir / name).is_file():
                shutil.copy2(encoder.model_dir / name, tmp / name)
        if config.export_onnx:
            report(0.95, "exporting ONNX")
            from .export import StaticInt8Options, calibration_batches, export_onnx

            options = StaticInt8Options(
                calibration=config.int8_calibration,
                per_channel=config.int8_per_channel,
                keep_layers_fp32=tuple(config.int8_keep_layers_fp32),
            )
            calibration = (
                calibration_batches(
                    encoder.tokenizer, [ex.text for ex in train], options.calibration_queries, config.seed
                )
                if config.int8_static
                else []
            )
            model_config.onnx_files = export_onnx(
                model,
                tmp,
                int(encoder.model.config.num_attention_heads),
                model_config.hidden_size,
                calibration,
                options,
            )
            report(0.97, "measuring int8 on validation")
            check = _int8_check(tmp, model_config, val, held_out_head)
            metrics["int8_check"] = check
            model_config.precision = choose_intent_precision(
                check.get("validation_accuracy", {}), config.int8_max_accuracy_loss
            )
            metrics["precision"] = model_config.precision
        write_json(tmp / CONFIG_FILE, model_config.to_dict())
        write_json(tmp / METRICS_FILE, metrics)

    path = write_atomically(Path(out_dir), build)
    report(1.0, "done")
    return path


def stratified_split(examples: Sequence[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out `fraction` of each intent (at least one, and never an intent's
    only example) for validation."""
    rng = random.Random(seed)
    by_intent: dict[str, list[Example]] = {}
    for ex in examples:
        by_intent.setdefault(ex.intent, []).append(ex)
    train, val = [], []
    for intent in sorted(by_intent):
        group = by_intent[intent][:]
        rng.shuffle(group)
        n_val = min(len(group) - 1, max(1, round(len(group) * fraction)))
        val += group[:n_val]
        train += group[n_val:]
    return train, val


def fit_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    c_grid: Sequence[float],
    iterations: int,
    *,
    warm_start: bool = True,
) -> tuple[nn.Linear, float, float]:
    """Multinomial logistic regression on unit-length embeddings, fit with full-batch
    L-BFGS (convex, so deterministic and quick): (head, chosen C, its validation
    accuracy). C is scikit-learn's inverse L2 strength (see TrainConfig.head_c_grid),
    picked on validation accuracy; ties go to the stronger regularisation, which
    keeps confidence lower on unfamiliar input. The grid is walked from strong to
    weak regularisation, each fit starting from the previous solution (from zero
    without `warm_start`)."""
    xv = torch.from_numpy(x_val)
    scored = torch.from_numpy(y_val >= 0)
    yv = torch.from_numpy(y_val).long()
    num_labels = int(y_train.max()) + 1
    head = nn.Linear(x_train.shape[1], num_labels)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    best: tuple[float, float, nn.Linear] | None = None
    zero = copy.deepcopy(head)
    for c in sorted(c_grid):
        head = refit_head(head if warm_start else zero, x_train, y_train, c, iterations)
        with torch.inference_mode():
            acc = float((head(xv).argmax(1)[scored] == yv[scored]).float().mean()) if scored.any() else 0.0
        if best is None or acc > best[0] + 1e-9:
            best = (acc, c, copy.deepcopy(head))
    assert best is not None
    acc, c, head = best
    return head, c, acc


def refit_head(start: nn.Linear, x_train: np.ndarray, y_train: np.ndarray, c: float, iterations: int) -> nn.Linear:
    """A copy of `start` fit by L-BFGS to minimise mean cross-entropy + |W|^2 / (2 C n),
    scikit-learn's LogisticRegression objective divided by n."""
    x = torch.from_numpy(x_train)
    y = torch.from_numpy(y_train).long()
    l2 = 1.0 / (2.0 * c * len(x))
    head = copy.deepcopy(start)
    opt = torch.optim.LBFGS(
        head.parameters(),
        lr=1.0,
        max_iter=iterations,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(x), y) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def finetune(
    model: IntentModel,
    tokenizer: TextTokenizer,
    train: list[Example],
    y_train: np.ndarray,
    val: list[Example],
    y_val: np.ndarray,
    config: TrainConfig,
    device: str,
    progress: Callable[[float], None],
) -> list[dict[str, float]]:
    """Fine-tune encoder and head together (the head starts from the linear probe,
    which keeps early updates from wrecking the pretrained features). Batches group
    similar lengths and pad only to the batch's longest; the epoch with the best
    validation accuracy is kept."""
    rng = np.random.default_rng(config.seed)
    ids = tokenizer.ids([ex.text for ex in train])
    lengths = [len(x) for x in ids]
    epochs = config.resolved_epochs()
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, int(total * config.warmup_fraction))
    # The word-embedding matrix is half of MiniLM's parameters but barely moves in
    # fine-tuning; frozen, the CPU optimiser step drops from ~160 ms to ~15 ms.
    model.encoder.get_input_embeddings().weight.requires_grad_(False)
    params = [
        {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": config.lr},
        {"params": list(model.head.parameters()), "lr": config.lr * config.head_lr_multiplier},
    ]
    opt = torch.optim.AdamW(params, weight_decay=config.weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    loss_fn = nn.functional.cross_entropy
    # fp16 (GPUs without bf16) needs loss scaling against gradient underflow.
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(device) == torch.float16)
    scored = y_val >= 0
    best_acc, best_state = -1.0, None
    history = []
    step = 0
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        running = 0.0
        for batch in _bucketed_batches(lengths, config.batch_size, rng):
            input_ids, mask = tokenizer.pad([ids[i] for i in batch])
            input_t = torch.from_numpy(input_ids).to(device)
            mask_t = torch.from_numpy(mask).to(device)
            target = torch.from_numpy(y_train[batch]).long().to(device)
            with autocast(device):
                logits = model(input_t, mask_t)
            loss = loss_fn(logits.float(), target, label_smoothing=config.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            sched.step()
            running += loss.detach().item()
            step += 1
            progress(step / total)
        logits = predict_logits(model, tokenizer, [ex.text for ex in val], device)
        acc = float((logits.argmax(1)[scored] == y_val[scored]).mean()) if scored.any() else 0.0
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": running / steps_per_epoch,
                "val_accuracy": acc,
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        if acc > best_acc:
            best_acc = acc
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def predict_logits(
    model: IntentModel, tokenizer: TextTokenizer, texts: list[str], device: str, batch_size: int = 128
) -> np.ndarray:
    """(len(texts), labels) raw logits, in input order."""
    model.eval()
    ids = tokenizer.ids(texts)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for batch in length_sorted_batches([len(x) for x in ids], batch_size):
            input_ids, mask = tokenizer.pad([ids[i] for i in batch])
            logits = model(torch.from_numpy(input_ids).to(device), torch.from_numpy(mask).to(device))
            if out is None:
                out = np.zeros((len(texts), logits.shape[1]), dtype=np.float32)
            out[batch] = logits.float().cpu().numpy()
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def _bucketed_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, sort by length within pools of 50 batches, shuffle the batches:
    random enough for SGD, with little padding."""
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        part = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [np.array(part[j : j + batch_size]) for j in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _int8_check(
    model_dir: Path, config: ModelConfig, val: list[Example], held_out_head: nn.Linear | None = None
) -> dict[str, Any]:
    """What each ONNX precision scores on validation, served as a Predictor serves
    (temperature, the out-of-scope rule): accuracy and top-1 agreement with fp32,
    per precision ("fp32", "int8-dynamic", "int8-static"). `held_out_head`: a head
    that has not seen the validation queries (fast mode refits the served one on
    them, which would leave nothing for quantization to lose), applied to each
    graph's sentence vectors."""
    from .export import EMBEDDING_OUTPUT
    from .predictor import OnnxRunner, decide, run_batched

    val = [ex for ex in val if ex.intent in config.labels or ex.intent == OOS_LABEL]
    if not val:
        return {}
    tokenizer = TextTokenizer(model_dir / "tokenizer.json", config.max_length)
    texts = [ex.text for ex in val]
    oos_index = config.labels.index(OOS_LABEL) if OOS_LABEL in config.labels else None
    in_scope = np.array([i for i, label in enumerate(config.labels) if label != OOS_LABEL])
    accuracy: dict[str, float] = {}
    agreement: dict[str, float] = {}
    reference: list[str] = []
    for precision, backend in INTENT_PRECISION_BACKENDS.items():
        if backend not in config.onnx_files:
            continue
        runner = OnnxRunner(model_dir / config.onnx_files[backend], threads=None)
        if held_out_head is None:
            logits = runner.logits(tokenizer, texts, batch_size=8)
        else:

            def vectors(ids: np.ndarray, mask: np.ndarray, session=runner.session) -> np.ndarray:
                return session.run([EMBEDDING_OUTPUT], {"input_ids": ids, "attention_mask": mask})[0]

            weight, bias = held_out_head.weight.detach().numpy(), held_out_head.bias.detach().numpy()
            logits = run_batched(vectors, tokenizer, texts, 8) @ weight.T + bias  # (val, hidden) -> (val, labels)
        scores = oos_score(logits, config.temperature, oos_index, config.oos_score)
        predictions = decide(
            logits, scores, config.labels, config.temperature, config.threshold, oos_index, in_scope, top_k=1
        )
        served = [p.intent for p in predictions]
        reference = reference or served
        accuracy[precision] = float(np.mean([p == ex.intent for p, ex in zip(served, val, strict=True)]))
        agreement[precision] = float(np.mean([a == b for a, b in zip(served, reference, strict=True)]))
    return {"validation_examples": len(val), "validation_accuracy": accuracy, "agreement_with_fp32": agreement}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _versions() -> dict[str, str]:
    return library_versions("torch", "transformers", "onnxruntime", "numpy")
