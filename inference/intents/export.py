"""ONNX export of a trained IntentModel for fast CPU serving with onnxruntime:
fp32 (graph fused for BERT) and dynamic int8 quantization of the same graph."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..runtime import onnx_logs_at_debug
from .model import IntentModel

ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"


def export_onnx(model: IntentModel, out_dir: Path, num_heads: int, hidden_size: int) -> dict[str, str]:
    """Write model.onnx and model.int8.onnx into out_dir; returns backend -> file."""
    model = model.cpu().eval()
    raw = out_dir / "model.raw.onnx"
    ids = torch.ones((2, 8), dtype=torch.long)  # (batch, seq): both axes are dynamic below
    mask = torch.ones((2, 8), dtype=torch.long)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) needs no onnxscript and handles
        # BERT's dynamic batch and sequence axes well.
        torch.onnx.export(
            model,
            (ids, mask),
            str(raw),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "logits": {0: "batch"},
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
    return {"onnx": ONNX_FILE, "onnx-int8": ONNX_INT8_FILE}


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
