"""Serving precision of the intent model: static int8 answers a query the same
alone and inside any batch, training measures every precision on validation, and
the default follows that measurement."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inference import Example, Predictor, TrainConfig, artifact, train_intent_model
from inference.runtime import (
    INT8_MAX_ACCURACY_LOSS,
    INTENT_PRECISION_BACKENDS,
    choose_intent_backend,
    choose_intent_precision,
)

OTHER_QUERIES = [
    "please could you tell me the weather forecast for the whole of next week in tokyo",
    "qwzx plorb vvv",
    "play",
    "i would like to move two hundred dollars from my checking account into savings today",
]


@pytest.mark.parametrize(
    "backend",
    [
        "onnx",
        "onnx-int8-static",
        # Dynamic int8 scales activations by the largest value in the whole batch,
        # so this fails for it; strict: the day it passes, this test says so.
        pytest.param("onnx-int8", marks=pytest.mark.xfail(strict=True, reason="per-batch activation scales")),
    ],
)
def test_a_query_gets_the_same_answer_alone_and_inside_a_batch(
    fast_model: Path, held_out_examples: list[Example], backend: str
) -> None:
    predictor = Predictor.load(fast_model, backend=backend, threads=1)
    texts = [ex.text for ex in held_out_examples]
    # Each query among others of other lengths and contents: padding and neighbours change.
    together = predictor.predict(OTHER_QUERIES + texts, top_k=3)[len(OTHER_QUERIES) :]
    for text, in_batch in zip(texts, together, strict=True):
        (alone,) = predictor.predict([text], top_k=3)
        assert (alone.intent, alone.out_of_scope) == (in_batch.intent, in_batch.out_of_scope), text
        assert [label for label, _ in alone.ranking] == [label for label, _ in in_batch.ranking], text
        # Identical up to float rounding (padding changes the order of fp32 sums).
        assert [p for _, p in alone.ranking] == pytest.approx([p for _, p in in_batch.ranking], abs=1e-5), text


def test_training_measures_each_precision_on_validation_and_records_its_choice(fast_model: Path) -> None:
    metrics = json.loads((fast_model / "metrics.json").read_text())
    config = json.loads((fast_model / "config.json").read_text())
    accuracy = metrics["int8_check"]["validation_accuracy"]
    assert set(accuracy) == {"fp32", "int8-dynamic", "int8-static"}
    assert all(0.0 <= value <= 1.0 for value in accuracy.values())
    assert metrics["int8_check"]["agreement_with_fp32"]["fp32"] == 1.0
    assert config["onnx_files"]["onnx-int8-static"] == "model.int8-static.onnx"
    assert config["precision"] == metrics["precision"] == choose_intent_precision(accuracy)
    assert Predictor.load(fast_model).backend == INTENT_PRECISION_BACKENDS[config["precision"]]


def _with_precision(model: Path, tmp_path: Path, precision: str | None) -> Path:
    copy = Path(shutil.copytree(model, tmp_path / "copy"))
    config = json.loads((copy / "config.json").read_text())
    if precision is None:
        del config["precision"]  # an artifact from before the choice existed
    else:
        config["precision"] = precision
    artifact.write_json(copy / "config.json", config)
    artifact.write_checksums(copy)
    return copy


@pytest.mark.parametrize(
    ("precision", "backend"), [("int8-static", "onnx-int8-static"), ("fp32", "onnx"), (None, "onnx")]
)
def test_the_default_backend_follows_the_recorded_precision(
    fast_model: Path, tmp_path: Path, precision: str | None, backend: str
) -> None:
    predictor = Predictor.load(_with_precision(fast_model, tmp_path, precision), device="cpu")
    assert predictor.backend == backend
    assert Predictor.load(fast_model, backend="onnx").backend == "onnx"  # an explicit choice wins


def test_static_int8_is_chosen_only_within_the_accuracy_budget() -> None:
    assert choose_intent_precision({"fp32": 0.960, "int8-static": 0.960 - INT8_MAX_ACCURACY_LOSS}) == "int8-static"
    assert choose_intent_precision({"fp32": 0.960, "int8-static": 0.9589}) == "fp32"  # 0.11 points lost
    assert choose_intent_precision({"fp32": 0.960, "int8-static": 0.965}) == "int8-static"
    # Dynamic int8 is never the default, however accurate: its answers depend on the batch.
    assert choose_intent_precision({"fp32": 0.90, "int8-dynamic": 0.99}) == "fp32"
    assert choose_intent_precision({"fp32": 0.96}) == "fp32"  # no static export
    assert choose_intent_precision({"fp32": 0.96, "int8-static": 0.955}, max_loss=0.01) == "int8-static"


def test_the_backend_choice_on_gpu_and_for_missing_exports() -> None:
    exports = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx", "onnx-int8-static": "model.int8-static.onnx"}
    assert choose_intent_backend("auto", "cpu", exports, "int8-static") == "onnx-int8-static"
    assert choose_intent_backend("auto", "cuda", exports, "int8-static") == "torch"
    assert choose_intent_backend("auto", "cpu", {"onnx": "model.onnx"}, "int8-static") == "onnx"
    assert choose_intent_backend("auto", "cpu", {}, "fp32") == "torch"
    assert choose_intent_backend("onnx-int8", "cpu", exports, "int8-static") == "onnx-int8"


def test_a_bad_int8_setting_is_refused_before_anything_is_written(
    train_examples: list[Example], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="int8_calibration must be one of minmax, entropy, percentile"):
        train_intent_model(train_examples, tmp_path / "m", config=TrainConfig(int8_calibration="kl"))
    with pytest.raises(ValueError, match="int8_max_accuracy_loss"):
        train_intent_model(train_examples, tmp_path / "m", config=TrainConfig(int8_max_accuracy_loss=-0.1))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("calibration", ["minmax", "percentile"])
def test_static_int8_calibrates_on_queries_of_any_number_and_length(
    fast_model: Path, tmp_path: Path, calibration: str
) -> None:
    # onnxruntime drops what it collected every CalibMaxIntermediateOutputs queries
    # without keeping the ranges (with that option, 64 queries calibrated nothing),
    # and its histogram calibrators need one shape for all queries.
    from inference.encoder import TextTokenizer
    from inference.intents.export import StaticInt8Options, calibration_batches, quantize_static_int8

    tokenizer = TextTokenizer(fast_model / "tokenizer.json", 64)
    texts = [f"how much is {n} dollars in euros" + " please" * (n % 5) for n in range(64)]
    out = tmp_path / "static.onnx"
    batches = calibration_batches(tokenizer, texts, 64, 13)
    assert len({ids.shape for ids, _ in batches}) > 1
    quantize_static_int8(fast_model / "model.onnx", out, batches, StaticInt8Options(calibration=calibration))
    assert out.stat().st_size < (fast_model / "model.onnx").stat().st_size
