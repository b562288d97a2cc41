"""Ablation of the fast intent head and the out-of-scope rule on a proxy for a
benchmark without out-of-scope queries: CLINC150's 150 in-scope intents only.

Training sees CLINC150 `train` (15,000 queries) the way `python -m inference train`
does by default (10 % split off for validation, seeded); every choice is made on
that split; figures are reported on CLINC150 `val` (3,000 queries, never used for
any choice), and with --test once more on CLINC150 `test` (in-scope, 4,500).

    python bench/nlu_proxy.py --json var/bench/nlu_proxy.json [--test]

Rows: the twenty-line baseline (frozen all-MiniLM-L6-v2, mean-pooled, unit length,
scikit-learn LogisticRegression(C=10) on all of train), the head before this change
(L2 grid 1e-3, 1e-4, 1e-5 on the mean loss), the C grid, and the C grid refit on
all of train; each with the old threshold rule (0.5 % quantile of correct
validation confidence) and the split-conformal one (inference.intents.calibration).

With --product fast|full the proxy is run exactly as the hidden benchmark is: the
CLINC150 in-scope `train` written as a CSV, `python -m inference train --mode M`
with defaults, `python -m inference evaluate --json` on `val` (and `test` with
--test); the evaluation JSON gives accuracy (oos rule on), top-1 (rule off), the
rejected share and ECE, and the model's metrics.json its validation figures.

    python bench/nlu_proxy.py --product full --out var/bench/proxy"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402, RUF100 - the path above must be set first
from inference.embed_cache import cached_encode  # noqa: E402, RUF100
from inference.encoder import SentenceEncoder  # noqa: E402, RUF100
from inference.intents.calibration import (  # noqa: E402, RUF100
    MAX_THRESHOLD_WITHOUT_OOS,
    conformal_threshold,
    fit_temperature,
    softmax,
)
from inference.intents.data import Example  # noqa: E402, RUF100
from inference.intents.explain import reliability  # noqa: E402, RUF100
from inference.intents.training import fit_head, refit_head, stratified_split  # noqa: E402, RUF100

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json"
BUDGET = 0.005
ITERATIONS = 200  # DEFAULT_EPOCHS["fast"]


def old_threshold(conf: np.ndarray, correct: np.ndarray) -> float:
    """The rule before this change: the budget quantile of correct answers' confidence."""
    good = conf[correct]
    return min(float(np.quantile(good, BUDGET)) if len(good) else 0.0, MAX_THRESHOLD_WITHOUT_OOS)


def scores(logits: np.ndarray, gold: np.ndarray, temperature: float, threshold: float) -> dict:
    probs = softmax(logits, temperature)
    top, conf = probs.argmax(1), probs.max(1)
    rejected = conf < threshold
    return {
        "accuracy": float(((top == gold) & ~rejected).mean()),
        "top1": float((top == gold).mean()),
        "rejected": float(rejected.mean()),
        "ece": reliability(conf, top == gold).ece,
    }


def write_csv(path: Path, pairs: list) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "intent"])
        writer.writerows(pairs)


def product_run(mode: str, data: dict, out: Path, with_test: bool) -> dict:
    """Train and evaluate through the command line, with its defaults."""
    cli = [sys.executable, "-m", "inference"]
    model_dir = out / mode
    result: dict = {"mode": mode}
    with tempfile.TemporaryDirectory() as tmp:
        files = {name: Path(tmp) / f"{name}.csv" for name in ("train", "val", "test")}
        for name, path in files.items():
            write_csv(path, data[name])
        started = time.perf_counter()
        subprocess.run(
            [*cli, "train", "--train", str(files["train"]), "--out", str(model_dir), "--mode", mode],
            check=True,
            cwd=ROOT,
        )
        result["train_seconds"] = round(time.perf_counter() - started, 1)
        result["load_after_training"] = machine.load_average()
        metrics = json.loads((model_dir / "metrics.json").read_text())
        result["validation"] = {
            k: metrics.get(k)
            for k in ("validation_accuracy_before_threshold", "head_c", "threshold", "precision", "int8_check")
        }
        for target in ("val", "test") if with_test else ("val",):
            report_path = Path(tmp) / f"{target}.json"
            subprocess.run(
                [*cli, "evaluate", "--model", str(model_dir), "--test", str(files[target]), "--json", str(report_path)],
                check=True,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
            report = json.loads(report_path.read_text())
            result[target] = {
                k: report[k] for k in ("backend", "accuracy", "top1_accuracy", "rejected_share", "ece", "macro_f1")
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--test", action="store_true", help="also report CLINC150 test (do this once, at the end)")
    parser.add_argument("--product", choices=["fast", "full"], help="train and evaluate through the command line")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "proxy", help="model directories")
    args = parser.parse_args()
    print("machine:", machine.describe(), flush=True)
    data = json.loads(args.data.read_text(encoding="utf-8"))
    if args.product:
        result = product_run(args.product, data, args.out, args.test)
        print(json.dumps(result, indent=2))
        print("machine at end:", machine.describe())
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"machine": machine.describe(), "result": result}, indent=2))
        return
    all_train = [Example(t, i) for t, i in data["train"]]
    train, val = stratified_split(all_train, 0.1, 13)
    labels = sorted({ex.intent for ex in all_train})
    index = {label: i for i, label in enumerate(labels)}
    encoder = SentenceEncoder(None)

    def xy(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
        x = cached_encode(encoder, [ex.text for ex in examples])
        return x, np.array([index[ex.intent] for ex in examples])

    (xt, yt), (xv, yv), (xa, ya) = xy(train), xy(val), xy(all_train)
    targets = {"proxy_val": xy([Example(t, i) for t, i in data["val"]])}
    if args.test:
        targets["test"] = xy([Example(t, i) for t, i in data["test"]])
    rows = []

    def record(name: str, logits_of, temperature: float, threshold: float, seconds: float, **extra) -> None:
        row = {"variant": name, "threshold": round(threshold, 4), "temperature": round(temperature, 3)}
        row.update(extra)
        row["seconds"] = round(seconds, 1)
        for target, (x, y) in targets.items():
            row[target] = scores(logits_of(x), y, temperature, threshold)
        rows.append(row)
        print(json.dumps(row), flush=True)

    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    baseline = LogisticRegression(C=10, max_iter=1000).fit(xa, ya)
    record(
        "baseline: sklearn LogisticRegression(C=10), all of train",
        baseline.decision_function,
        1.0,
        0.0,
        time.perf_counter() - started,
    )

    def linear(head):
        w, b = head.weight.detach().numpy(), head.bias.detach().numpy()
        return lambda x: x @ w.T + b

    def rules(name: str, head, c: float, seconds: float, refit_head_=None) -> None:
        val_logits = linear(head)(xv)
        temperature = fit_temperature(val_logits, yv)
        probs = softmax(val_logits, temperature)
        conf, correct = probs.max(1), probs.argmax(1) == yv
        served = linear(refit_head_ or head)
        for rule, threshold in (
            ("old rule: quantile of correct", old_threshold(conf, correct)),
            ("split-conformal", min(conformal_threshold(conf, BUDGET), MAX_THRESHOLD_WITHOUT_OOS)),
        ):
            record(
                f"{name}; {rule}", served, temperature, threshold, seconds, c=c, internal_val_top1=float(correct.mean())
            )

    n = len(xt)
    started = time.perf_counter()
    old_grid = tuple(1.0 / (2.0 * l2 * n) for l2 in (1e-3, 1e-4, 1e-5))  # the old L2 grid as C
    head, c, _ = fit_head(xt, yt, xv, yv, old_grid, ITERATIONS)
    rules("before: L2 grid 1e-3..1e-5", head, c, time.perf_counter() - started)

    started = time.perf_counter()
    head, c, _ = fit_head(xt, yt, xv, yv, (1.0, 10.0, 100.0), ITERATIONS)
    rules("C grid 1, 10, 100", head, c, time.perf_counter() - started)
    started = time.perf_counter()
    refit = refit_head(head, xa, ya, c, ITERATIONS)
    rules("C grid 1, 10, 100 + refit on all", head, c, time.perf_counter() - started, refit)

    print(f"\n| variant | C | proxy val: accuracy (rule on) | top-1 | rejected (budget {BUDGET:.1%}) | ECE |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        v = row["proxy_val"]
        print(
            f"| {row['variant']} | {row.get('c', 10):.3g} | {v['accuracy']:.2%} | {v['top1']:.2%} | "
            f"{v['rejected']:.2%} | {v['ece']:.4f} |"
        )
    print("machine at end:", machine.describe())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine.describe(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
