"""`make run` trains the demo intent model on a fresh install: its terminal must not
fill with onnxruntime's per-node optimizer and quantizer report or transformers'
load-report table (issue 14, "quieter start"); they belong in the log at DEBUG."""

from __future__ import annotations

import logging
import sys

import pytest

from inference import TrainConfig, train_intent_model
from inference.runtime import onnx_logs_at_debug

NOISE = (
    "Quantization parameters for tensor",
    "get_tensor_type returns DefaultTensorType",
    "Ignore MatMul due to non constant B",
    "Please consider to run pre-processing",
    "Fused SkipLayerNormalization",
    "Remove reshape node",
    "Model saved to",
    "LOAD REPORT",
    "UNEXPECTED",
    "Loading weights",
)


@pytest.fixture
def console_at(request):
    """The root logger as the product's settings make it (LOGGING: one console
    handler on the root logger, at LOG_LEVEL), for the length of a test."""
    root = logging.getLogger()
    handlers = []
    previous = root.level

    def configure(level: int) -> None:
        root.setLevel(level)
        if not handlers:
            # Made here, in the test: it writes to the stderr that capfd captures now.
            handlers.append(logging.StreamHandler(sys.stderr))
            root.addHandler(handlers[0])

    yield configure
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(previous)


def test_training_with_onnx_export_prints_none_of_the_onnx_or_load_report_lines(
    tmp_path, train_examples, console_at, capfd
):
    console_at(logging.INFO)  # the default LOG_LEVEL
    out_dir = train_intent_model(train_examples, tmp_path / "m", config=TrainConfig(mode="fast", seed=3))
    assert (out_dir / "model.int8.onnx").is_file()  # the export (and its report) did run
    out, err = capfd.readouterr()
    printed = [line for line in (out + err).splitlines() if any(noise in line for noise in NOISE)]
    assert printed == [], printed[:5]


def test_the_onnx_report_goes_to_the_log_at_debug(tmp_path, fast_model, console_at, caplog):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    console_at(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    with onnx_logs_at_debug():
        quantize_dynamic(
            str(fast_model / "model.onnx"),
            str(tmp_path / "again.int8.onnx"),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # as the product's export
        )
    reported = [r for r in caplog.records if "Quantization parameters for tensor" in r.getMessage()]
    assert reported, "the quantizer's report is in the log when it shows DEBUG"
    assert {r.levelname for r in reported} == {"DEBUG"}
    warned = [r for r in caplog.records if "pre-processing" in r.getMessage()]
    assert warned and {r.levelname for r in warned} == {"DEBUG"}
    # Outside the block, onnxruntime logs as it always did: nothing is left installed.
    assert not logging.getLogger().filters
