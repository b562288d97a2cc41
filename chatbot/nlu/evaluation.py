"""Honest evaluation of model versions: a held-out split fixed by the text
itself, the same split for the version in service, the rules a new version
must pass to be activated, and the confusion matrix as a picture.

The split is a hash of the normalised text, so an example stays in the same
part across data snapshots: a version is never evaluated on what it was trained
on, and two versions are compared on the same examples.
"""

import hashlib
import io
from collections import Counter
from dataclasses import dataclass

from django.conf import settings

# An intent with fewer examples than this is trained on all of them and not
# scored: a split of three examples teaches little and measures nothing.
MIN_EXAMPLES_TO_HOLD_OUT = 5


def in_holdout(text: str, percent: int | None = None) -> bool:
    percent = settings.HOLDOUT_PERCENT if percent is None else percent
    digest = hashlib.sha256(" ".join(text.lower().split()).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def split_examples(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(train, holdout) from (text, intent) pairs."""
    counts = Counter(intent for _, intent in pairs)
    train, holdout = [], []
    for text, intent in pairs:
        held = counts[intent] >= MIN_EXAMPLES_TO_HOLD_OUT and in_holdout(text)
        (holdout if held else train).append((text, intent))
    # Every intent must keep something to learn from.
    trained = {intent for _, intent in train}
    for text, intent in list(holdout):
        if intent not in trained:
            holdout.remove((text, intent))
            train.append((text, intent))
            trained.add(intent)
    return train, holdout


def evaluate_on(predictor, holdout: list[tuple[str, str]]) -> dict:
    """inference.evaluate's report, keys normalised, with the held-out examples kept
    so the version in service can later be scored on exactly the same ones."""
    from inference import Example, evaluate

    examples = [Example(text=t, intent=i) for t, i in holdout]
    report = normalise(evaluate(predictor, examples))
    report.update(explanation_figures(predictor, examples))
    report["holdout"] = [[t, i] for t, i in holdout]
    return report


def explanation_figures(predictor, examples) -> dict:
    """What the model report shows beside the scores: per intent, the words the model
    relies on most over its held-out examples (occlusion, inference.intents.explain),
    and the reliability diagram of its confidence with the expected calibration error.
    Kept under their own keys so the inference report's figures stay as they are."""
    from inference.intents.explain import intent_words, reliability

    if not examples:
        return {}
    predictions = predictor.predict([e.text for e in examples], top_k=1)
    curve = reliability(
        [p.confidence for p in predictions], [p.intent == e.intent for p, e in zip(predictions, examples, strict=True)]
    )
    words = intent_words(predictor, examples)
    return {
        "intent_words": {
            intent: [[word, weight] for word, weight in ranked] for intent, ranked in sorted(words.items())
        },
        "reliability": curve.to_dict(),
    }


def normalise(report: dict) -> dict:
    """Accept both spellings of the confusion keys that inference has used."""
    report = dict(report)
    if "confusion" not in report and "confusion_matrix" in report:
        report["confusion"] = report.pop("confusion_matrix")
    if "confused_pairs" not in report and "most_confused" in report:
        report["confused_pairs"] = report.pop("most_confused")
    report.setdefault("confused_pairs", [])
    report.setdefault("misclassified", [])
    return report


# --- Comparing with the version in service -----------------------------------


@dataclass(frozen=True)
class IntentChange:
    intent: str
    f1: float
    baseline_f1: float | None
    precision: float
    recall: float
    support: int

    @property
    def delta(self) -> float | None:
        return None if self.baseline_f1 is None else self.f1 - self.baseline_f1


def per_intent_changes(report: dict, baseline: dict | None) -> list[IntentChange]:
    old = (baseline or {}).get("per_intent", {})
    rows = []
    for intent, figures in sorted(report.get("per_intent", {}).items()):
        if not figures.get("support"):
            continue
        before = old.get(intent)
        rows.append(
            IntentChange(
                intent=intent,
                f1=figures["f1"],
                baseline_f1=before["f1"] if before and before.get("support") else None,
                precision=figures["precision"],
                recall=figures["recall"],
                support=figures["support"],
            )
        )
    return rows


def activation_problems(report: dict, baseline: dict | None, max_drop: float | None = None) -> list[str]:
    """Why this version is worse than the baseline; empty when it may be activated."""
    if not baseline or not report:
        return []
    max_drop = settings.ACTIVATION_MAX_F1_DROP if max_drop is None else max_drop
    problems = []
    if report["macro_f1"] < baseline["macro_f1"]:
        problems.append(f"macro-F1 {report['macro_f1']:.3f} is below the active version's {baseline['macro_f1']:.3f}")
    for change in per_intent_changes(report, baseline):
        # With a handful of held-out examples one flip moves F1 by 0.1-0.25, far
        # more than the margin: such intents are judged only through macro-F1.
        if change.support < settings.ACTIVATION_MIN_SUPPORT:
            continue
        if change.delta is not None and -change.delta > max_drop + 1e-9:
            problems.append(
                f"F1 of {change.intent} drops {-change.delta:.3f} ({change.baseline_f1:.3f} -> {change.f1:.3f}), "
                f"more than the allowed {max_drop:.3f}"
            )
    return problems


# --- The pictures ------------------------------------------------------------------


def reliability_svg(report: dict, title: str = "") -> bytes:
    """The reliability diagram: per confidence bin, the share answered right against
    the mean confidence (a calibrated model stays on the diagonal)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    curve = report.get("reliability") or {"bins": [], "ece": None}
    figure = Figure(figsize=(4.6, 4.2), dpi=100)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], linestyle="--", color="#9ca3af", linewidth=1, label="calibrated")
    bins = curve["bins"]
    if bins:
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        widths = [b["high"] - b["low"] for b in bins]
        axes.bar(
            centres, [b["accuracy"] for b in bins], width=widths, edgecolor="#1d4ed8", color="#93c5fd", label="accuracy"
        )
        axes.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="#1d4ed8", markersize=3)
        for centre, b in zip(centres, bins, strict=True):
            axes.text(centre, 0.02, str(b["count"]), ha="center", fontsize=6, color="#374151")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence")
    axes.set_ylabel("share right")
    ece = curve.get("ece")
    axes.set_title(f"{title}  ECE {ece:.3f}" if ece is not None else title, fontsize=9)
    axes.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="svg")
    return out.getvalue()


def confusion_png(report: dict, title: str = "") -> bytes:
    """A heatmap of the confusion matrix (rows: true intent, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    confusion = report.get("confusion") or {"labels": [], "matrix": []}
    labels, matrix = confusion["labels"], np.array(confusion["matrix"] or [[0]], dtype=float)
    # Rows as shares of their true intent, so a rare intent's errors show as clearly.
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(4.0, 0.28 * len(labels) + 2.5)
    figure = Figure(figsize=(size + 1.2, size), dpi=110)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("predicted intent")
    axes.set_ylabel("true intent")
    if title:
        axes.set_title(title, fontsize=10)
    for (row, column), count in np.ndenumerate(matrix):
        if count and row != column:
            axes.text(column, row, int(count), ha="center", va="center", fontsize=6, color="#b00020")
    figure.colorbar(image, ax=axes, fraction=0.04, label="share of the true intent")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
