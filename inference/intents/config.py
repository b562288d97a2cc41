"""Typed configuration: what the caller asks for (TrainConfig) and what an artifact
records about itself (ModelConfig, saved as config.json in every model directory)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from inference import artifact
from inference.runtime import INT8_MAX_ACCURACY_LOSS

Mode = Literal["fast", "full"]
Backend = Literal["auto", "onnx-int8-static", "onnx-int8", "onnx", "torch"]
BACKENDS = ("auto", "onnx-int8-static", "onnx-int8", "onnx", "torch")
INT8_CALIBRATIONS = ("minmax", "entropy", "percentile")

# Mode defaults: fast trains only a head on cached embeddings, full fine-tunes the
# encoder. These were chosen for generality (not tuned on any one benchmark).
DEFAULT_EPOCHS = {"fast": 200, "full": 3}


@dataclass
class TrainConfig:
    mode: Mode = "fast"
    # fast: L-BFGS iterations of the head (a full-data pass each); full: passes over
    # the data while fine-tuning. None picks the mode's default.
    epochs: int | None = None
    seed: int = 13
    base_model: str | None = None  # None: $INTENT_BASE_MODEL, else the bundled MiniLM
    batch_size: int = 32
    lr: float = 1e-4  # encoder learning rate in full mode (small encoders like a higher rate)
    head_lr_multiplier: float = 10.0  # the head, already linear-probed, moves faster
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    label_smoothing: float = 0.0
    max_length: int = 64  # intents are short; longer inputs are truncated
    val_fraction: float = 0.1  # used only when no validation set is given
    # Inverse L2 strengths of the head tried in fast mode (and for the linear probe
    # in full mode), as scikit-learn's C: the penalty is |W|^2 / (2 C) on the summed
    # loss, so its weight per example shrinks as data grows. The best on validation
    # wins (ties: the stronger regularisation), so the default adapts to each data set.
    head_c_grid: tuple[float, ...] = (1.0, 10.0, 100.0)
    # Fast mode with validation split off the training data: once the head's C,
    # the temperature and the thresholds are chosen, refit the head on all of it.
    refit_on_all: bool = True
    # Budget of in-scope validation accuracy traded for catching out-of-scope
    # queries (see calibration.choose_threshold). Small by default: wrongly refusing
    # an answerable question costs a handoff, and data sets without out-of-scope
    # queries only lose accuracy to the threshold.
    in_scope_reject_rate: float = 0.005
    # The review inbox files answers whose confidence is below the point where
    # validation accuracy drops under this target (ModelConfig.review_threshold).
    review_accuracy_target: float = 0.9
    backend: Backend = "auto"  # preferred serving backend recorded in the artifact
    export_onnx: bool = True
    # Static int8 export (model.int8-static.onnx): how activation ranges are
    # calibrated on training queries, per-channel weight scales, transformer layers
    # kept fp32 (negative: from the end); see export.StaticInt8Options. It becomes
    # the default serving precision when its validation accuracy is within
    # int8_max_accuracy_loss of fp32 (runtime.choose_intent_precision).
    int8_static: bool = True
    int8_calibration: str = "minmax"
    int8_per_channel: bool = True
    # First and last transformer layers stay fp32: on CLINC150 validation (fast
    # model) static int8 lost 0.23 points with every layer quantized, 0.03 with
    # these two kept (bench/nlu_int8.py, docs/benchmarks.md).
    int8_keep_layers_fp32: tuple[int, ...] = (0, -1)
    int8_max_accuracy_loss: float = INT8_MAX_ACCURACY_LOSS
    threads: int | None = None  # None: $INFERENCE_THREADS, else all cores
    device: str | None = None  # None: CUDA if present

    def resolved_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.mode]

    def validate(self) -> None:
        if self.mode not in DEFAULT_EPOCHS:
            raise ValueError(f"mode must be 'fast' or 'full', got {self.mode!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError("epochs must be >= 1")
        if not self.head_c_grid or min(self.head_c_grid) <= 0:
            raise ValueError("head_c_grid must hold positive values")
        if self.int8_calibration not in INT8_CALIBRATIONS:
            raise ValueError(
                f"int8_calibration must be one of {', '.join(INT8_CALIBRATIONS)}, got {self.int8_calibration!r}"
            )
        if not 0.0 <= self.int8_max_accuracy_loss < 1.0:
            raise ValueError("int8_max_accuracy_loss must be between 0 and 1")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError("val_fraction must be between 0 and 1")


@dataclass
class ModelConfig:
    """Everything needed to rebuild and trust a trained model, saved in config.json."""

    labels: list[str]
    threshold: float
    temperature: float
    max_length: int
    hidden_size: int
    base_model: str
    base_model_sha256: str
    mode: str
    backend: str  # preferred backend; "auto" lets the Predictor pick
    train: dict[str, Any]  # the TrainConfig used
    train_data_sha256: str
    val_data_sha256: str
    threshold_rule: str
    # what `threshold` applies to: "probability" (top in-scope calibrated
    # probability) or "energy" (logsumexp of in-scope logits / temperature); see
    # calibration.OOS_SCORES. Artifacts from before the choice existed used probability.
    oos_score: str = "probability"
    # Confidence below which validation answers were right less often than
    # TrainConfig.review_accuracy_target; None in artifacts from before it existed.
    review_threshold: float | None = None
    onnx_files: dict[str, str] = field(default_factory=dict)  # backend -> file name
    # Default CPU serving precision, chosen on validation at training time
    # (runtime.choose_intent_precision); artifacts from before it existed: fp32.
    precision: str = "fp32"
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    format_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return artifact.config_from_dict(cls, data)
