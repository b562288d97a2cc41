"""Scoring a Predictor on labelled examples: accuracy, macro F1, per-intent
figures (sklearn.metrics), confusions and, where the test data has out-of-scope queries, the
in-scope accuracy / out-of-scope recall pair reported by the CLINC150 paper."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from .data import OOS_LABEL, Example
from .predictor import Prediction, Predictor

MAX_MISCLASSIFIED = 200
TOP_CONFUSED = 10


def evaluate(predictor: Predictor, examples: list[Example]) -> dict[str, Any]:
    """JSON-able report. Predictions flagged out of scope count as "oos"."""
    predictions = predictor.predict([ex.text for ex in examples], top_k=1)
    gold = [ex.intent for ex in examples]
    pred = [p.intent for p in predictions]
    labels = sorted(set(predictor.labels) | set(gold) | set(pred))
    index = {label: i for i, label in enumerate(labels)}
    matrix = confusion_matrix(gold, pred, labels=labels)  # (gold, predicted)
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, pred, labels=labels, average=None, zero_division=0.0
    )
    per_intent = {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for label, i in index.items()
    }
    # Macro F1 over the intents the test data has (a label only predicted has no F1 to average).
    f1s = f1[support > 0]

    confused = Counter(
        {
            (g, p): int(matrix[index[g], index[p]])
            for g in labels
            for p in labels
            if g != p and matrix[index[g], index[p]]
        }
    )
    misclassified = [
        {"text": ex.text, "gold": ex.intent, "predicted": p.intent, "confidence": round(p.confidence, 4)}
        for ex, p in zip(examples, predictions, strict=True)
        if p.intent != ex.intent
    ]
    report: dict[str, Any] = {
        "model_id": predictor.model_id,
        "backend": predictor.backend,
        "examples": len(examples),
        "accuracy": float(np.trace(matrix) / max(1, len(examples))),
        "macro_f1": float(np.mean(f1s)) if len(f1s) else 0.0,
        "per_intent": per_intent,
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
        "most_confused": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confused.most_common(TOP_CONFUSED)],
        "misclassified": misclassified[:MAX_MISCLASSIFIED],
        "misclassified_total": len(misclassified),
    }
    is_oos = np.array([g == OOS_LABEL for g in gold])
    report.update(
        in_scope_figures(
            [ex for ex, o in zip(examples, is_oos, strict=True) if not o],
            [p for p, o in zip(predictions, is_oos, strict=True) if not o],
        )
    )
    if is_oos.any():
        flagged = np.array([p.out_of_scope for p in predictions])
        correct = np.array([p.intent == g for p, g in zip(predictions, gold, strict=True)])
        in_scope = ~is_oos
        report["in_scope_accuracy"] = float(correct[in_scope].mean()) if in_scope.any() else None
        report["oos_recall"] = float(flagged[is_oos].mean())
        report["oos_precision"] = float(is_oos[flagged].mean()) if flagged.any() else 0.0
    return report


def in_scope_figures(examples: list[Example], predictions: list[Prediction]) -> dict[str, Any]:
    """On the in-scope examples: top-1 accuracy of the top in-scope label with the
    out-of-scope rule off, the share the rule rejects, and the expected calibration
    error of the top in-scope label's confidence (explain.reliability, 10 bins)."""
    from .explain import reliability

    if not examples:
        return {"top1_accuracy": None, "rejected_share": None, "ece": None, "reliability": []}
    top1 = np.array([p.ranking[0][0] == ex.intent for ex, p in zip(examples, predictions, strict=True)])
    calibration = reliability([p.ranking[0][1] for p in predictions], top1)
    return {
        "top1_accuracy": float(top1.mean()),
        "rejected_share": float(np.mean([p.out_of_scope for p in predictions])),
        "ece": calibration.ece,
        "reliability": calibration.bins,
    }


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary: headline figures, the weakest intents, confusions."""
    lines = [
        f"model {report.get('model_id', '?')} ({report.get('backend', '?')}), {report['examples']} examples",
        f"  accuracy          {report['accuracy']:.4f}",
        f"  macro F1          {report['macro_f1']:.4f}",
    ]
    if report.get("top1_accuracy") is not None:
        lines += [
            f"  top-1 (oos off)   {report['top1_accuracy']:.4f}",
            f"  rejected as oos   {report['rejected_share']:.4f} of in-scope queries",
            f"  calibration ECE   {report['ece']:.4f}",
        ]
    if "oos_recall" in report:
        if report["in_scope_accuracy"] is not None:
            lines.append(f"  in-scope accuracy {report['in_scope_accuracy']:.4f}")
        lines.append(f"  oos recall        {report['oos_recall']:.4f}")
        lines.append(f"  oos precision     {report['oos_precision']:.4f}")
    rows = sorted(
        ((v["f1"], k, v) for k, v in report["per_intent"].items() if v["support"]), key=lambda r: (r[0], r[1])
    )
    lines += ["", f"{'intent (weakest first)':32} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>5}"]
    for _, label, v in rows[:20]:
        lines.append(f"{label[:32]:32} {v['precision']:6.3f} {v['recall']:6.3f} {v['f1']:6.3f} {v['support']:5d}")
    if len(rows) > 20:
        lines.append(f"... {len(rows) - 20} more intents in the JSON report")
    if report["most_confused"]:
        lines += ["", "most confused (gold -> predicted: count)"]
        lines += [f"  {c['gold']} -> {c['predicted']}: {c['count']}" for c in report["most_confused"]]
    return "\n".join(lines)
