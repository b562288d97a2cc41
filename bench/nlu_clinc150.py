"""CLINC150 benchmark of the intent engine: train on `train` (+ `oos_train`), pick
calibration and threshold on `val` (+ `oos_val`), report in-scope accuracy on
`test` and out-of-scope recall on `oos_test`, as Larson et al. (2019) do.

    python bench/nlu_clinc150.py --mode both

The data is read from ../shared (never copied into the repository)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402, RUF100 - the path above must be set first
from inference import (  # noqa: E402, RUF100 - the path above must be set first
    OOS_LABEL,
    Example,
    Predictor,
    TrainConfig,
    evaluate,
    train_intent_model,
)
from inference.intents.calibration import choose_oos_rule, oos_score, softmax, top_in_scope  # noqa: E402, RUF100

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json"


def pairs(data: dict, *keys: str) -> list[Example]:
    return [Example(text, intent) for key in keys for text, intent in data[key]]


def run(mode: str, data: dict, out_dir: Path, epochs: int | None) -> dict:
    train, val = pairs(data, "train", "oos_train"), pairs(data, "val", "oos_val")
    test = pairs(data, "test", "oos_test")
    started = time.perf_counter()
    last = [-1]

    def progress(fraction: float, stage: str) -> None:
        if int(fraction * 20) != last[0]:
            last[0] = int(fraction * 20)
            print(f"  [{mode}] {time.perf_counter() - started:6.0f} s {fraction:4.0%} {stage}", flush=True)

    model_dir = train_intent_model(
        train, out_dir / mode, val=val, config=TrainConfig(mode=mode, epochs=epochs), progress=progress
    )
    train_seconds = time.perf_counter() - started
    metrics = json.loads((model_dir / "metrics.json").read_text())
    results = {
        "mode": mode,
        "train_examples": len(train),
        "train_seconds": round(train_seconds, 1),
        "load_after_training": machine.load_average(),
        "threshold": metrics["threshold"],
        "temperature": metrics["temperature"],
        "validation": {
            k: metrics[k]
            for k in ("validation_accuracy_before_threshold", "validation_in_scope_accuracy", "validation_oos_recall")
        },
        "int8_check": metrics.get("int8_check"),
        "epochs": metrics["epochs"],
    }
    predictor = Predictor.load(model_dir)  # the default serving backend
    report = evaluate(predictor, test)
    in_scope = [ex for ex in test if ex.intent != "oos"]
    no_threshold = predictor.predict([ex.text for ex in in_scope], top_k=1)
    results["served"] = {
        "backend": predictor.backend,
        "in_scope_accuracy": report["in_scope_accuracy"],
        "oos_recall": report["oos_recall"],
        "oos_precision": report["oos_precision"],
        "accuracy_all": report["accuracy"],
        "macro_f1": report["macro_f1"],
        # on the in-scope test queries: share rejected as oos, calibration error
        "rejected_share": report["rejected_share"],
        "ece": report["ece"],
        # top in-scope label, ignoring the oos label and the threshold
        "in_scope_accuracy_without_oos_detection": sum(
            p.ranking[0][0] == ex.intent for p, ex in zip(no_threshold, in_scope, strict=True)
        )
        / len(in_scope),
    }
    return results


def budget_tradeoff(model_dir: Path, data: dict, budgets: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02, 0.05)) -> list:
    """How the in-scope budget (TrainConfig.in_scope_reject_rate) trades test
    in-scope accuracy for oos recall: each rule (score and threshold) is chosen on
    validation as training chooses it, then applied to test."""
    predictor = Predictor.load(model_dir)
    labels = predictor.labels
    oos_index = labels.index(OOS_LABEL) if OOS_LABEL in labels else None
    temperature = predictor.config.temperature

    def scored(*keys: str) -> tuple:
        examples = pairs(data, *keys)
        logits = predictor.logits([ex.text for ex in examples])
        gold = np.array([labels.index(ex.intent) if ex.intent in labels else -1 for ex in examples])
        return logits, gold, np.array([ex.intent == OOS_LABEL for ex in examples])

    val, test = scored("val", "oos_val"), scored("test", "oos_test")
    top, top_in, _ = top_in_scope(softmax(test[0], temperature), oos_index)
    in_scope = ~test[2]
    rows = []
    for budget in budgets:
        chosen, candidates = choose_oos_rule(val[0], temperature, val[1], val[2], oos_index, budget)
        for decision in candidates:
            conf = oos_score(test[0], temperature, oos_index, decision.score)
            flagged = (top == oos_index) | (conf < decision.threshold)
            rows.append(
                {
                    "budget": budget,
                    "score": decision.score,
                    "chosen": decision.score == chosen.score,
                    "threshold": round(decision.threshold, 4),
                    "validation_in_scope_accuracy": decision.in_scope_accuracy,
                    "validation_oos_recall": decision.oos_recall,
                    "test_in_scope_accuracy": float(((top_in == test[1]) & ~flagged)[in_scope].mean()),
                    "test_oos_recall": float(flagged[test[2]].mean()),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["fast", "full", "both"], default="both")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "clinc150")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--tradeoff-only",
        action="store_true",
        help="only print the budget trade-off of models already trained in --out",
    )
    args = parser.parse_args()
    print("machine:", machine.describe(), flush=True)
    data = json.loads(args.data.read_text(encoding="utf-8"))
    modes = ["fast", "full"] if args.mode == "both" else [args.mode]
    if args.tradeoff_only:
        for mode in modes:
            print(
                f"\n{mode}: budget, score, threshold (chosen on validation), validation in-scope accuracy and "
                "oos recall, test in-scope accuracy and oos recall; * = the rule training picks"
            )
            for row in budget_tradeoff(args.out / mode, data):
                print(
                    f"  {row['budget']:<6} {row['score']:<11} {row['threshold']:8.4f}  "
                    f"val {row['validation_in_scope_accuracy']:.2%} {row['validation_oos_recall']:.2%}  "
                    f"test {row['test_in_scope_accuracy']:.2%} {row['test_oos_recall']:.2%}"
                    f"{' *' if row['chosen'] else ''}"
                )
        return
    all_results = []
    for mode in modes:
        result = run(mode, data, args.out, args.epochs)
        all_results.append(result)
        print(json.dumps(result, indent=2), flush=True)
    print(
        "\n| mode | train time | in-scope acc | oos recall | oos precision | in-scope rejected | ECE | backend "
        "| load after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in all_results:
        s = r["served"]
        print(
            f"| {r['mode']} | {r['train_seconds']:.0f} s | {s['in_scope_accuracy']:.2%} | {s['oos_recall']:.2%} | "
            f"{s['oos_precision']:.2%} | {s['rejected_share']:.2%} | {s['ece']:.4f} | {s['backend']} | "
            f"{r['load_after_training']} |"
        )
    print("machine at end:", machine.describe())
    if args.json:
        args.json.write_text(json.dumps({"machine": machine.describe(), "results": all_results}, indent=2))


if __name__ == "__main__":
    main()
