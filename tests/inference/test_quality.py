"""Intent model quality: in-scope rejection within its budget (split-conformal
threshold), the fast head as scikit-learn's logistic regression, the calibrated
review point, and the figures `evaluate` reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from inference import Example, Predictor, TrainConfig, evaluate, train_intent_model
from inference.intents.calibration import choose_threshold, conformal_threshold, review_threshold, softmax
from inference.intents.explain import reliability
from inference.intents.training import refit_head


def _model_like(rng: np.random.Generator, n: int, error_rate: float = 0.07) -> tuple[np.ndarray, np.ndarray]:
    """(n, 10) probabilities of an intent model that is wrong on `error_rate` of
    queries, with low confidence when wrong, and the gold labels (all label 0)."""
    wrong = rng.random(n) < error_rate
    conf = np.where(wrong, rng.uniform(0.15, 0.6, n), rng.beta(12, 1, n))
    probs = np.zeros((n, 10))
    probs[:, 0] = np.where(wrong, (1 - conf) / 9, conf)
    probs[:, 1] = np.where(wrong, conf, (1 - conf) / 9)
    probs[:, 2:] = ((1 - conf) / 9)[:, None]
    return probs, np.zeros(n, dtype=int)


def test_in_scope_rejection_stays_within_twice_the_budget_without_oos_validation() -> None:
    # A 1,000-query validation split (10 % of a 10k data set, as training splits it
    # off) and a 3,000-query test set, 30 draws: the threshold chosen on validation
    # must reject at most 2x the 0.5 % budget of in-scope test queries, and about
    # the budget on average. (The quantile of the correct answers' confidence
    # ignored the wrong answers and rejected ~3x.)
    rng = np.random.default_rng(0)
    budget, shares = 0.005, []
    for _ in range(30):
        probs, gold = _model_like(rng, 1000)
        decision = choose_threshold(probs, gold, np.zeros(1000, dtype=bool), None, budget)
        test_probs, _ = _model_like(rng, 3000)
        shares.append(float((test_probs.max(1) < decision.threshold).mean()))
    assert np.mean(shares) <= budget * 1.2
    assert np.quantile(shares, 0.9) <= 2 * budget


def test_conformal_threshold_has_the_finite_sample_correction() -> None:
    conf = np.linspace(0.2, 0.7, 101)  # c_(i) = 0.2 + 0.005 (i - 1)
    # k = floor(0.1 * 102) = 10: the threshold is c_(10), and 9 of 101 fall below it
    assert conformal_threshold(conf, 0.1) == pytest.approx(0.245)
    assert (conf < conformal_threshold(conf, 0.1)).sum() == 9
    # Too few for the budget: the least confident validation query, so a small
    # bot still turns nonsense away; nothing at all: nothing rejected.
    assert conformal_threshold(conf[10:60], 0.01) == conf[10]
    assert conformal_threshold(np.array([]), 0.01) == 0.0
    assert conformal_threshold(conf[::-1], 0.1) == conformal_threshold(conf, 0.1)  # order does not matter


def test_review_threshold_is_where_accuracy_drops_under_the_target() -> None:
    conf = np.array([0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99])
    right = np.array([0, 0, 1, 0, 1, 1, 1, 1, 1, 1], dtype=bool)
    # below 0.55: 1 of 4 right; below 0.65: 2 of 5; ... the 9 least confident: 6/9 < 0.9,
    # all 10: 7/10 < 0.9 -> everything is under the target.
    assert review_threshold(conf, right, 0.9) == pytest.approx(0.995)  # above every validation answer
    # target 0.6: below 0.65 (2/5) is under, below 0.75 (3/6 = 0.5) under, below 0.85 (4/7) under,
    # below 0.925 (5/8 = 0.625) not: the point is midway between 0.8 and 0.9.
    assert review_threshold(conf, right, 0.6) == pytest.approx(0.85)
    assert review_threshold(conf, np.ones(10, dtype=bool), 0.9) == 0.0  # always right: nothing to review


def test_head_is_scikit_learns_logistic_regression() -> None:
    # The fast head minimises LogisticRegression(C)'s objective (divided by n), so
    # with the same C it reaches the same probabilities.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)  # 4 classes
    start = nn.Linear(8, 4)
    nn.init.zeros_(start.weight)
    nn.init.zeros_(start.bias)
    head = refit_head(start, x, y, 10.0, 500)
    ours = softmax(head(torch.from_numpy(x)).detach().numpy())
    theirs = LogisticRegression(C=10.0, max_iter=5000, tol=1e-10).fit(x, y).predict_proba(x)
    assert ours == pytest.approx(theirs, abs=2e-3)


def test_fast_training_refits_on_all_and_stores_the_review_point(tmp_path: Path, train_examples: list[Example]) -> None:
    split = train_intent_model(train_examples, tmp_path / "split", config=TrainConfig(export_onnx=False))
    metrics = json.loads((split / "metrics.json").read_text())
    config = json.loads((split / "config.json").read_text())
    assert metrics["head_refit_on_all"] is True and metrics["head_c"] in TrainConfig().head_c_grid
    assert config["review_threshold"] == metrics["review_threshold"]
    assert 0.0 <= config["review_threshold"] <= 1.0
    # A validation file of its own is never trained on.
    given = train_intent_model(
        train_examples[::2], tmp_path / "given", val=train_examples[1::2], config=TrainConfig(export_onnx=False)
    )
    assert json.loads((given / "metrics.json").read_text())["head_refit_on_all"] is False
    with pytest.raises(ValueError, match="head_c_grid"):
        train_intent_model(train_examples, tmp_path / "bad", config=TrainConfig(head_c_grid=(0.0,)))


def test_evaluate_reports_top1_rejection_macro_f1_and_ece(fast_model: Path, held_out_examples: list[Example]) -> None:
    predictor = Predictor.load(fast_model)
    # Force some rejections: a threshold above some answers' confidence.
    predictions = predictor.predict([ex.text for ex in held_out_examples], top_k=1)
    predictor.config.threshold = float(np.median([p.confidence for p in predictions]))
    predictions = predictor.predict([ex.text for ex in held_out_examples], top_k=1)
    report = evaluate(predictor, held_out_examples)
    top1 = [p.ranking[0][0] == ex.intent for p, ex in zip(predictions, held_out_examples, strict=True)]
    rejected = [p.out_of_scope for p in predictions]
    assert report["top1_accuracy"] == pytest.approx(np.mean(top1))
    assert report["rejected_share"] == pytest.approx(np.mean(rejected)) and 0 < report["rejected_share"] < 1
    assert report["accuracy"] < report["top1_accuracy"]  # the rule costs the rejected right answers
    assert report["ece"] == reliability([p.ranking[0][1] for p in predictions], top1).ece
    assert 0 < report["macro_f1"] <= 1
    json.dumps(report)
