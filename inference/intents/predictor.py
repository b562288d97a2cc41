"""Serving: load a verified model directory once, then classify batches of
utterances. Loading has no side effects beyond memory, and predict() is safe to
call from several threads, so a worker can build a new Predictor and swap it in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from ..artifact import ArtifactError
from ..encoder import TextTokenizer, encoder_from_config, length_sorted_batches
from ..runtime import (
    apply_torch_threads,
    choose_device,
    choose_intent_backend,
    choose_threads,
    env_threads,
    serving_batch_size,
)
from . import artifact
from .calibration import OOS_SCORES, oos_score, softmax
from .config import BACKENDS, ModelConfig
from .data import OOS_LABEL
from .model import IntentModel


@dataclass
class Prediction:
    intent: str  # top in-scope label, or "oos"
    confidence: float  # calibrated probability of the top label
    out_of_scope: bool
    ranking: list[tuple[str, float]] = field(default_factory=list)  # top-k in-scope labels


class OnnxRunner:
    """onnxruntime session with its own thread pool (nothing process-wide)."""

    def __init__(self, path: Path, threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = choose_threads(threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # Spinning workers waiting for work are a loss on a shared CPU: with another
        # process on one of 2 cores, single-query p50 went from 3.6 to 11.7 ms and
        # batched throughput from 400 to 269 q/s (bench/nlu_speed.py machine).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": mask})[0]

    def logits(self, tokenizer: TextTokenizer, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return run_batched(self.run, tokenizer, texts, batch_size)


class TorchRunner:
    def __init__(self, model: IntentModel, device: str) -> None:
        self.model = model.to(device).eval()
        self.device = device

    def run(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(input_ids).to(self.device), torch.from_numpy(mask).to(self.device))
        return logits.float().cpu().numpy()


def run_batched(run, tokenizer: TextTokenizer, texts: list[str], batch_size: int) -> np.ndarray:
    ids = tokenizer.ids(texts)
    out: np.ndarray | None = None
    for batch in length_sorted_batches([len(x) for x in ids], batch_size):
        logits = run(*tokenizer.pad([ids[i] for i in batch]))
        if out is None:
            out = np.empty((len(texts), logits.shape[1]), dtype=np.float32)
        out[batch] = logits
    assert out is not None
    return out


class Predictor:
    """A loaded intent model. Build with Predictor.load(model_dir)."""

    def __init__(
        self, model_dir: Path, config: ModelConfig, model_id: str, backend: str, runner: object, device: str
    ) -> None:
        self.model_dir = model_dir
        self.config = config
        self.model_id = model_id
        self.backend = backend
        self.device = device
        self._runner = runner
        self._tokenizer = TextTokenizer(model_dir / "tokenizer.json", config.max_length)
        self._oos_index = config.labels.index(OOS_LABEL) if OOS_LABEL in config.labels else None
        in_scope = [i for i, label in enumerate(config.labels) if label != OOS_LABEL]
        self._in_scope = np.array(in_scope)
        if config.oos_score not in OOS_SCORES:
            raise ArtifactError(f"{model_dir}: unknown oos_score {config.oos_score!r} in config.json.")

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    @property
    def threshold(self) -> float:
        return self.config.threshold

    @classmethod
    def load(
        cls, model_dir: str | Path, *, device: str | None = None, threads: int | None = None, backend: str | None = None
    ) -> Predictor:
        """Verify checksums, build the chosen backend and warm it up.
        threads: intra-op threads (default $INFERENCE_THREADS, else all cores).
        backend: "onnx" (fp32), "onnx-int8-static", "onnx-int8" (dynamic), "torch"
        or None/"auto" (the artifact's backend, else on CPU the ONNX graph of the
        precision chosen at training time, `config.precision`; torch on CUDA)."""
        model_dir = Path(model_dir)
        config, model_id = artifact.verify(model_dir)
        device = choose_device(device)
        chosen = _choose_backend(backend or config.backend, config, model_dir, device)
        if chosen == "torch":
            # torch's pool is process-wide: only touched when explicitly asked to.
            apply_torch_threads(threads if threads is not None else env_threads())
            encoder = encoder_from_config(model_dir / artifact.ENCODER_CONFIG_FILE)
            model = IntentModel(encoder, len(config.labels))
            try:
                model.load_state_dict(load_file(str(model_dir / artifact.WEIGHTS_FILE)))
            except RuntimeError as exc:
                raise ArtifactError(f"{model_dir} is damaged: weights do not fit the model ({exc}).") from exc
            runner: object = TorchRunner(model, device)
        else:
            runner = OnnxRunner(model_dir / config.onnx_files[chosen], threads)
        predictor = cls(model_dir, config, model_id, chosen, runner, device)
        predictor.predict(["warm up"] * 2)  # first calls allocate; keep that off real traffic
        predictor.predict(["warm up"])
        return predictor

    def logits(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """(len(texts), labels) raw logits."""
        if len(texts) == 1:  # the latency path: no sorting or copying
            return self._runner.run(*self._tokenizer.pad(self._tokenizer.ids(texts)))
        return run_batched(self._runner.run, self._tokenizer, texts, batch_size or serving_batch_size(self.device))

    def oos_scores(self, logits: np.ndarray) -> np.ndarray:
        """(batch,) the score the out-of-scope threshold applies to (config.oos_score)."""
        return oos_score(logits, self.config.temperature, self._oos_index, self.config.oos_score)

    def predict(self, texts: list[str], top_k: int = 3) -> list[Prediction]:
        if not texts:
            return []
        logits = self.logits(list(texts))
        return decide(
            logits,
            self.oos_scores(logits),
            self.config.labels,
            self.config.temperature,
            self.config.threshold,
            self._oos_index,
            self._in_scope,
            top_k,
        )


def decide(
    logits: np.ndarray,
    scores: np.ndarray,
    labels: list[str],
    temperature: float,
    threshold: float,
    oos_index: int | None,
    in_scope: np.ndarray,
    top_k: int,
) -> list[Prediction]:
    """Predictions from (batch, labels) logits and their (batch,) out-of-scope scores.

    A query is out of scope when the trained "oos" label is strictly more probable
    than the top in-scope label, or when its score is strictly below the threshold;
    a tie in either comparison keeps the in-scope answer."""
    probs = softmax(logits, temperature)  # (batch, labels)
    below = scores < threshold
    k = max(1, min(top_k, len(in_scope)))
    in_scope_probs = probs[:, in_scope]  # (batch, in-scope labels)
    order = np.argsort(-in_scope_probs, axis=1)[:, :k]
    results = []
    for row in range(len(logits)):
        ranking = [(labels[in_scope[j]], float(in_scope_probs[row, j])) for j in order[row]]
        top_label, top_p = ranking[0]
        if oos_index is not None and probs[row, oos_index] > top_p:
            results.append(Prediction(OOS_LABEL, float(probs[row, oos_index]), True, ranking))
        elif below[row]:
            results.append(Prediction(OOS_LABEL, top_p, True, ranking))
        else:
            results.append(Prediction(top_label, top_p, False, ranking))
    return results


def _choose_backend(requested: str, config: ModelConfig, model_dir: Path, device: str) -> str:
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested not in ("auto", "torch") and requested not in config.onnx_files:
        raise ArtifactError(
            f"{model_dir} has no {requested} export; retrain with export_onnx=True or use backend='torch'."
        )
    return choose_intent_backend(requested, device, config.onnx_files, config.precision)
