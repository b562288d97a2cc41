"""Behaviour of the trained engine: it learns, it round-trips, it refuses damaged
artifacts, and it flags nonsense as out of scope."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference import (
    ArtifactError,
    Example,
    Predictor,
    SentenceEncoder,
    TrainConfig,
    artifact,
    choose_device,
    evaluate,
    format_report,
    train_intent_model,
)
from inference.intents.calibration import oos_score


@pytest.fixture(scope="session")
def predictor(fast_model: Path) -> Predictor:
    return Predictor.load(fast_model)


def test_fast_model_recognises_unseen_phrasings(predictor: Predictor, held_out_examples: list[Example]) -> None:
    predictions = predictor.predict([ex.text for ex in held_out_examples])
    accuracy = np.mean([p.intent == ex.intent for p, ex in zip(predictions, held_out_examples, strict=True)])
    assert accuracy >= 0.8  # chance is 1/6


def test_prediction_shape_and_probabilities(predictor: Predictor) -> None:
    (p,) = predictor.predict(["what is my savings account balance"], top_k=3)
    assert p.intent == "check_balance" and not p.out_of_scope
    assert p.ranking[0][0] == "check_balance"
    assert len(p.ranking) == 3
    probs = [prob for _, prob in p.ranking]
    assert probs == sorted(probs, reverse=True) and 0 < probs[-1] <= probs[0] <= 1
    assert p.confidence == pytest.approx(probs[0])
    assert sorted(predictor.labels) == predictor.labels and len(predictor.labels) == 6
    assert predictor.predict([]) == []


def test_nonsense_is_out_of_scope(predictor: Predictor) -> None:
    predictions = predictor.predict(["qwzx plorb vvv", "the moon is made of cheese"])
    assert [p.out_of_scope for p in predictions] == [True, True]
    assert all(p.intent == "oos" for p in predictions)
    assert 0.0 < predictor.threshold < 1.0


def test_reload_and_backends_agree(fast_model: Path, predictor: Predictor, held_out_examples: list[Example]) -> None:
    texts = [ex.text for ex in held_out_examples]
    reference = Predictor.load(fast_model, backend="torch").predict(texts)
    for backend in ("torch", "onnx", "onnx-int8", "onnx-int8-static"):
        other = Predictor.load(fast_model, backend=backend, threads=1)
        assert other.model_id == predictor.model_id and len(other.model_id) == 12
        preds = other.predict(texts)
        agree = np.mean([a.intent == b.intent for a, b in zip(reference, preds, strict=True)])
        int8 = backend.startswith("onnx-int8")
        assert agree >= (0.9 if int8 else 1.0), backend
        if not int8:
            assert [p.confidence for p in preds] == pytest.approx([p.confidence for p in reference], abs=1e-4)


def test_artifact_is_self_describing(fast_model: Path, train_examples: list[Example]) -> None:
    config = json.loads((fast_model / "config.json").read_text())
    assert config["mode"] == "fast" and config["labels"] == sorted({ex.intent for ex in train_examples})
    assert config["temperature"] > 0 and len(config["train_data_sha256"]) == 64
    sums = json.loads((fast_model / "checksums.json").read_text())["files"]
    for name in (
        "model.safetensors",
        "tokenizer.json",
        "metrics.json",
        "model.onnx",
        "model.int8.onnx",
        "model.int8-static.onnx",
    ):
        assert name in sums
    assert not list(fast_model.parent.glob(".fast.tmp-*"))  # no leftovers of the atomic write


@pytest.fixture
def model_copy(fast_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fast_model, tmp_path / "copy"))


def test_flipped_byte_in_weights_is_refused(model_copy: Path) -> None:
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="model.safetensors does not match its checksum"):
        Predictor.load(model_copy)


@pytest.mark.parametrize("name", ["model.int8.onnx", "model.int8-static.onnx", "tokenizer.json", "checksums.json"])
def test_missing_file_is_refused(model_copy: Path, name: str) -> None:
    (model_copy / name).unlink()
    with pytest.raises(ArtifactError, match="incomplete"):
        Predictor.load(model_copy)


def _rewrite_config(model_dir: Path, **changes: object) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    config.update(changes)
    artifact.write_json(model_dir / "config.json", config)
    artifact.write_checksums(model_dir)


def test_predictor_applies_the_energy_rule_of_its_artifact(model_copy: Path) -> None:
    texts = ["what is my savings balance", "i lost my debit card", "qwzx plorb vvv"]
    reference = Predictor.load(model_copy, backend="torch")
    energy = oos_score(reference.logits(texts), reference.config.temperature, None, "energy")
    middle = float(np.sort(energy)[:2].mean())  # between the lowest energy and the next
    _rewrite_config(model_copy, oos_score="energy", threshold=middle)
    predictor = Predictor.load(model_copy, backend="torch")
    flags = [p.out_of_scope for p in predictor.predict(texts)]
    assert flags == list(energy < middle) and sum(flags) == 1
    old = [p.confidence for p in reference.predict(texts)]
    assert [p.confidence for p in predictor.predict(texts)] == pytest.approx(old)  # still a probability


def test_artifact_without_oos_score_uses_probability_and_unknown_is_refused(model_copy: Path) -> None:
    config = json.loads((model_copy / "config.json").read_text())
    del config["oos_score"]  # written before the choice existed
    artifact.write_json(model_copy / "config.json", config)
    artifact.write_checksums(model_copy)
    assert Predictor.load(model_copy, backend="torch").config.oos_score == "probability"
    _rewrite_config(model_copy, oos_score="distance")
    with pytest.raises(ArtifactError, match="unknown oos_score 'distance'"):
        Predictor.load(model_copy)


OOS_TEXTS = [
    "what is the capital of peru",
    "tell me a joke about cats",
    "how tall is mount everest",
    "who won the football game yesterday",
    "recommend a good science fiction novel",
    "what's the weather like on mars",
    "how do i bake sourdough bread",
    "translate hello into japanese",
    "play some jazz music",
    "how many legs does a spider have",
    "what year did the titanic sink",
    "set an alarm for seven am",
]


def test_training_with_oos_validation_picks_the_better_rule_on_validation(
    tmp_path: Path, train_examples: list[Example], held_out_examples: list[Example]
) -> None:
    train = train_examples + [Example(t, "oos") for t in OOS_TEXTS[:6]]
    val = held_out_examples + [Example(t, "oos") for t in OOS_TEXTS[6:]]
    model_dir = train_intent_model(train, tmp_path / "m", val=val, config=TrainConfig(mode="fast", export_onnx=False))
    metrics = json.loads((model_dir / "metrics.json").read_text())
    candidates = metrics["oos_rule_candidates"]
    assert [c["score"] for c in candidates] == ["probability", "energy"]
    balanced = {c["score"]: c["validation_in_scope_accuracy"] + c["validation_oos_recall"] for c in candidates}
    chosen = json.loads((model_dir / "config.json").read_text())["oos_score"]
    assert metrics["oos_score"] == chosen and balanced[chosen] == max(balanced.values())
    # The tie rule is checked on constructed logits in test_data_and_cli.py and test_toolkit.py.
    predictor = Predictor.load(model_dir)
    assert predictor.predict(["qwzx plorb vvv"])[0].out_of_scope


def test_failed_training_leaves_nothing(tmp_path: Path, train_examples: list[Example]) -> None:
    def fail_while_saving(fraction: float, stage: str) -> None:
        if stage == "saving":
            raise RuntimeError("disk full")

    out = tmp_path / "model"
    with pytest.raises(RuntimeError, match="disk full"):
        train_intent_model(train_examples, out, config=TrainConfig(export_onnx=False), progress=fail_while_saving)
    assert list(tmp_path.iterdir()) == []


def test_training_is_deterministic_and_reports_progress(tmp_path: Path, train_examples: list[Example]) -> None:
    seen: list[float] = []
    config = TrainConfig(export_onnx=False, seed=5)
    a = train_intent_model(train_examples, tmp_path / "a", config=config, progress=lambda f, s: seen.append(f))
    b = train_intent_model(train_examples, tmp_path / "b", config=config)
    assert seen == sorted(seen) and seen[-1] == 1.0
    sums = [json.loads((m / "checksums.json").read_text())["files"]["model.safetensors"] for m in (a, b)]
    assert sums[0] == sums[1]


def test_full_mode_fine_tunes_the_encoder(
    tmp_path: Path, train_examples: list[Example], held_out_examples: list[Example]
) -> None:
    small = train_examples[::3]  # 5 per intent
    out = train_intent_model(small, tmp_path / "full", config=TrainConfig(mode="full", epochs=1, export_onnx=False))
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 1
    # the probe that starts fine-tuning keeps its own L2 grid (fast mode's C grid cost validation accuracy)
    from inference.intents.training import FULL_PROBE_L2_GRID

    n_probe = len(small) - 6  # one validation example per intent is split off
    assert metrics["head_c"] in [pytest.approx(1 / (2 * l2 * n_probe)) for l2 in FULL_PROBE_L2_GRID]
    assert metrics["head_refit_on_all"] is False
    predictor = Predictor.load(out)
    assert predictor.backend == "torch"  # no ONNX export was asked for
    report = evaluate(predictor, held_out_examples)
    assert report["accuracy"] > 0.5


def test_evaluate_reports_oos_separately(predictor: Predictor, held_out_examples: list[Example]) -> None:
    oos = ["qwzx plorb vvv", "the moon is made of cheese", "please sing the national anthem of mars"]
    test = held_out_examples + [Example(text, "oos") for text in oos]
    report = evaluate(predictor, test)
    assert report["oos_recall"] == pytest.approx(np.mean([p.out_of_scope for p in predictor.predict(oos)]))
    assert report["oos_recall"] >= 2 / 3
    assert report["in_scope_accuracy"] == pytest.approx(
        np.mean(
            [
                p.intent == ex.intent
                for p, ex in zip(predictor.predict([e.text for e in held_out_examples]), held_out_examples, strict=True)
            ]
        )
    )
    assert report["confusion_matrix"]["labels"][-1] == "weather"
    assert sum(map(sum, report["confusion_matrix"]["matrix"])) == len(test)
    json.dumps(report)  # JSON-able
    text = format_report(report)
    assert "in-scope accuracy" in text and "oos recall" in text


def test_sentence_encoder_gives_unit_vectors_that_capture_meaning() -> None:
    encoder = SentenceEncoder(device=choose_device())
    vectors = encoder.encode(["what is my account balance", "how much money do i have", "play some jazz"])
    assert vectors.shape == (3, 384)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
    assert choose_device("cuda") in ("cuda", "cpu") and choose_device() in ("cuda", "cpu")


def test_predict_is_thread_safe(predictor: Predictor, held_out_examples: list[Example]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    texts = [ex.text for ex in held_out_examples]
    expected = [p.intent for p in predictor.predict(texts)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: [p.intent for p in predictor.predict(texts[i:] + texts[:i])], range(8)))
    for i, got in enumerate(results):
        assert got == expected[i:] + expected[:i]
