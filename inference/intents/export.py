"""ONNX export of a trained IntentModel for fast CPU serving with onnxruntime:
fp32 (graph fused for BERT), dynamic int8 and static int8 (activation scales
calibrated once on training queries) quantizations of the same graph."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..encoder import mean_pool
from ..runtime import onnx_logs_at_debug
from .model import IntentModel

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
ONNX_INT8_STATIC_FILE = "model.int8-static.onnx"

# A second output: the unit-length sentence vector the head reads. Serving asks only
# for "logits"; training uses it to score each precision with a head that has not
# seen the validation queries (fast mode refits its head on them).
EMBEDDING_OUTPUT = "sentence_embedding"

Batch = tuple[np.ndarray, np.ndarray]  # (input_ids, attention_mask), (batch, seq) each


@dataclass(frozen=True)
class StaticInt8Options:
    """How the static int8 graph is built (bench/nlu_int8.py measures the choices).

    calibration: how activation ranges are set from the calibration queries'
    activations: "minmax" (their extremes), "entropy" (KL-optimal clipping) or
    "percentile" (clip at the 99.999th percentile).
    per_channel: one weight scale per output column instead of one per matrix.
    keep_layers_fp32: transformer layers (by index; negative from the end) whose
    MatMuls stay fp32. The classifier head (a Gemm) always stays fp32: its input is
    the unit-length sentence vector, and onnxruntime finds no int32 bias scale for it.
    """

    calibration: str = "minmax"
    per_channel: bool = True
    keep_layers_fp32: tuple[int, ...] = (0, -1)
    # Quantize the MatMuls' outputs too (QLinearMatMul). Off: the output stays fp32
    # (MatMulIntegerToFloat), one rounding fewer before the fp32 bias and LayerNorm.
    quantize_outputs: bool = False
    calibration_queries: int = 512


def export_onnx(
    model: IntentModel,
    out_dir: Path,
    num_heads: int,
    hidden_size: int,
    calibration: Sequence[Batch] = (),
    static_options: StaticInt8Options | None = None,
) -> dict[str, str]:
    """Write model.onnx, model.int8.onnx and, given calibration batches,
    model.int8-static.onnx into out_dir; returns backend -> file."""
    model = model.cpu().eval()
    raw = out_dir / "model.raw.onnx"
    ids = torch.ones((2, 8), dtype=torch.long)  # (batch, seq): both axes are dynamic below
    mask = torch.ones((2, 8), dtype=torch.long)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) needs no onnxscript and handles
        # BERT's dynamic batch and sequence axes well.
        torch.onnx.export(
            _WithEmbedding(model),
            (ids, mask),
            str(raw),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits", EMBEDDING_OUTPUT],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "logits": {0: "batch"},
                EMBEDDING_OUTPUT: {0: "batch"},
            },
            opset_version=17,
            do_constant_folding=True,
        )
    fp32 = out_dir / ONNX_FILE
    int8 = out_dir / ONNX_INT8_FILE
    with onnx_logs_at_debug():  # ~65 lines a node: the log at DEBUG, not the terminal
        _fuse_bert(raw, fp32, num_heads, hidden_size)
        raw.unlink()
        _quantize(fp32, int8)
        files = {"onnx": ONNX_FILE, "onnx-int8": ONNX_INT8_FILE}
        if calibration:
            quantize_static_int8(
                fp32, out_dir / ONNX_INT8_STATIC_FILE, calibration, static_options or StaticInt8Options()
            )
            files["onnx-int8-static"] = ONNX_INT8_STATIC_FILE
    return files


def calibration_batches(tokenizer, texts: Sequence[str], limit: int, seed: int) -> list[Batch]:
    """Up to `limit` of `texts` (a seeded sample), one query per batch: padding
    tokens would otherwise widen the calibrated activation ranges with values no
    real token produces."""
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(texts))[:limit]
    return [tokenizer.pad(tokenizer.ids([texts[i]])) for i in sorted(chosen)]


class _WithEmbedding(torch.nn.Module):
    def __init__(self, model: IntentModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        sentence = mean_pool(hidden, attention_mask)  # (batch, hidden)
        return self.model.head(sentence), sentence  # (batch, labels), (batch, hidden)


def _fuse_bert(src: Path, dst: Path, num_heads: int, hidden_size: int) -> None:
    """Fuse attention, LayerNorm and GELU into onnxruntime's BERT kernels, saved
    offline so every process loads the already-fused graph."""
    from onnxruntime.transformers import optimizer

    opt = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1, use_gpu=False
    )
    opt.save_model_to_file(str(dst))


def _quantize(src: Path, dst: Path) -> None:
    """Dynamic int8: weights stored as int8, activations quantized per batch.
    Only MatMul-type ops are quantized; embeddings and LayerNorm stay fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused ops come from onnxruntime's own domain, where shape inference cannot
    # type their outputs; they are float tensors.
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=False,
        op_types_to_quantize=["MatMul", "Attention", "Gemm"],
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over prepared batches."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self._batches = batches
        self._iter: Iterator[Batch] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iter, None)
        return None if batch is None else {"input_ids": batch[0], "attention_mask": batch[1]}

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def quantize_static_int8(src: Path, dst: Path, calibration: Sequence[Batch], options: StaticInt8Options) -> None:
    """Static int8 in QDQ format: weights int8 (per channel by default), activations
    uint8 with scales fixed from the calibration batches, so a query's scores no
    longer depend on the other queries in its batch. Only weight MatMuls are
    quantized: the fused Attention op (QKV projections, softmax) has no static int8
    kernel and stays fp32, as do LayerNorm, GELU and the head."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    if options.calibration not in methods:
        raise ValueError(f"calibration must be one of {', '.join(methods)}, got {options.calibration!r}")
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    # The fused graph's LayerNorm and GELU kernels are onnxruntime's own ops, which
    # ONNX shape inference cannot type, and the quantizer skips what it cannot type
    # (5 of 6 weight MatMuls per layer went unquantized); onnxruntime's symbolic
    # shape inference knows them.
    typed = SymbolicShapeInference.infer_shapes(onnx.load(str(src)), auto_merge=True)
    graph = typed.graph
    weights = {init.name for init in graph.initializer}
    layers = 1 + max((_layer_of(node.name) or 0) for node in graph.node)
    kept = {i % layers for i in options.keep_layers_fp32}
    nodes = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and any(name in weights for name in node.input) and _layer_of(node.name) not in kept
    ]
    if options.calibration != "minmax":
        # The histogram calibrators stack every batch's activations into one array,
        # so all batches need one shape: pad to the longest (id 0, mask 0).
        width = max(ids.shape[1] for ids, _ in calibration)
        calibration = [tuple(np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in batch) for batch in calibration]
    quantize_static(
        typed,
        str(dst),
        _Batches(calibration),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        nodes_to_quantize=nodes,
        per_channel=options.per_channel,
        # uint8 activations with int8 weights: onnxruntime's fast x86 path; this
        # CPU has VNNI, so no 7-bit weight range is needed against saturation.
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=methods[options.calibration],
        extra_options={
            "DefaultTensorType": onnx.TensorProto.FLOAT,
            "OpTypesToExcludeOutputQuantization": [] if options.quantize_outputs else ["MatMul"],
        },
    )


def _layer_of(node_name: str) -> int | None:
    """The transformer layer a node of the exported graph belongs to
    ("/encoder/encoder/layer.3/output/dense/MatMul" -> 3), None outside the layers."""
    marker = "layer."
    at = node_name.find(marker)
    if at < 0:
        return None
    digits = node_name[at + len(marker) :].split("/", 1)[0]
    return int(digits) if digits.isdigit() else None
