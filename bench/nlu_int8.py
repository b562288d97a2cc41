"""Which static int8 graph to serve: builds static int8 variants of a trained intent
model's fp32 ONNX graph (calibration method, per-channel weights, first and last
layers kept fp32, quantized MatMul outputs) and scores each on the validation data
the model was trained with, served as a Predictor serves it (temperature, oos rule).

    python bench/nlu_int8.py --model var/bench/clinc150/full --val-keys val oos_val

Also prints, per variant, the largest logit difference between a query scored alone
and inside a batch of 8 other queries (static scales: float noise; dynamic: not),
file size and the time of one pass over validation. Calibration queries are drawn
from CLINC150 `train` (+ `oos_train` when the model has an oos label), as training
draws them. Choices are made on validation only."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402, RUF100 - the path above must be set first
from inference.encoder import TextTokenizer  # noqa: E402, RUF100
from inference.intents import artifact  # noqa: E402, RUF100
from inference.intents.calibration import oos_score  # noqa: E402, RUF100
from inference.intents.data import OOS_LABEL  # noqa: E402, RUF100
from inference.intents.export import (  # noqa: E402, RUF100
    StaticInt8Options,
    calibration_batches,
    quantize_static_int8,
)
from inference.intents.predictor import OnnxRunner, decide  # noqa: E402, RUF100

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json"

VARIANTS = {
    "minmax, per-tensor weights": StaticInt8Options(per_channel=False, keep_layers_fp32=()),
    "minmax, per-channel weights": StaticInt8Options(keep_layers_fp32=()),
    "entropy, per-channel": StaticInt8Options(calibration="entropy", keep_layers_fp32=()),
    "percentile, per-channel": StaticInt8Options(calibration="percentile", keep_layers_fp32=()),
    "minmax, per-channel, first and last layer fp32": StaticInt8Options(keep_layers_fp32=(0, -1)),
    "minmax, per-channel, MatMul outputs quantized too": StaticInt8Options(quantize_outputs=True, keep_layers_fp32=()),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--val-keys", nargs="+", default=["val", "oos_val"], help="validation parts of --data")
    parser.add_argument(
        "--split-off",
        action="store_true",
        help="the model split its validation off CLINC150 train (nlu_proxy.py): use that split",
    )
    parser.add_argument("--variants", nargs="*", help="names of VARIANTS to build (default: all)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print("machine:", machine.describe(), flush=True)
    config, _ = artifact.verify(args.model)
    data = json.loads(args.data.read_text(encoding="utf-8"))
    oos_index = config.labels.index(OOS_LABEL) if OOS_LABEL in config.labels else None
    train_keys = ["train"] + (["oos_train"] if oos_index is not None else [])
    train = [(t, i) for key in train_keys for t, i in data[key]]
    if args.split_off:
        from inference.intents.data import Example
        from inference.intents.training import stratified_split

        fit, held = stratified_split(
            [Example(t, i) for t, i in train], config.train["val_fraction"], config.train["seed"]
        )
        train, val = [(e.text, e.intent) for e in fit], [(e.text, e.intent) for e in held]
    else:
        val = [(t, i) for key in args.val_keys for t, i in data[key]]
    val = [(t, i) for t, i in val if i in config.labels or i == OOS_LABEL]
    texts, gold = [t for t, _ in val], [i for _, i in val]
    tokenizer = TextTokenizer(args.model / "tokenizer.json", config.max_length)
    in_scope = np.array([i for i, label in enumerate(config.labels) if label != OOS_LABEL])
    rng = np.random.default_rng(0)
    probe = [texts[i] for i in rng.permutation(len(texts))[:9]]

    def score(name: str, path: Path, seconds_to_build: float = 0.0) -> dict:
        runner = OnnxRunner(path, threads=None)
        started = time.perf_counter()
        logits = runner.logits(tokenizer, texts, batch_size=8)
        seconds = time.perf_counter() - started
        predictions = decide(
            logits,
            oos_score(logits, config.temperature, oos_index, config.oos_score),
            config.labels,
            config.temperature,
            config.threshold,
            oos_index,
            in_scope,
            top_k=1,
        )
        alone = np.concatenate([runner.run(*tokenizer.pad(tokenizer.ids([t]))) for t in probe])
        together = runner.run(*tokenizer.pad(tokenizer.ids(probe)))
        return {
            "variant": name,
            "accuracy": float(np.mean([p.intent == g for p, g in zip(predictions, gold, strict=True)])),
            "top1": float(
                np.mean([p.ranking[0][0] == g for p, g in zip(predictions, gold, strict=True) if g != OOS_LABEL])
            ),
            "served": [p.intent for p in predictions],
            "batch_dependence": float(np.abs(alone - together).max()),
            "size_mb": round(path.stat().st_size / 1e6, 1),
            "val_pass_seconds": round(seconds, 1),
            "build_seconds": round(seconds_to_build, 1),
        }

    rows = [score("fp32", args.model / config.onnx_files["onnx"])]
    rows.append(score("dynamic int8 (per batch)", args.model / config.onnx_files["onnx-int8"]))
    calibration = calibration_batches(
        tokenizer, [t for t, _ in train], StaticInt8Options().calibration_queries, config.train["seed"]
    )
    wanted = args.variants or list(VARIANTS)
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            out = Path(tmp) / "static.onnx"
            started = time.perf_counter()
            quantize_static_int8(args.model / config.onnx_files["onnx"], out, calibration, VARIANTS[name])
            rows.append(score(f"static int8: {name}", out, time.perf_counter() - started))
            r = rows[-1]
            print(json.dumps({k: v for k, v in r.items() if k != "served"}), flush=True)
    reference = rows[0]["served"]
    print(
        f"\nvalidation: {len(texts)} queries ({', '.join(args.val_keys) if not args.split_off else 'split off train'})"
    )
    print(
        "| variant | accuracy (oos rule on) | vs fp32 | top-1 in-scope | agreement with fp32 | alone vs batch | size |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        agree = float(np.mean([a == b for a, b in zip(r.pop("served"), reference, strict=True)]))
        r["agreement_with_fp32"] = agree
        print(
            f"| {r['variant']} | {r['accuracy']:.2%} | {(r['accuracy'] - rows[0]['accuracy']) * 100:+.2f} | "
            f"{r['top1']:.2%} | {agree:.2%} | {r['batch_dependence']:.1e} | {r['size_mb']} MB |"
        )
    print("machine at end:", machine.describe())
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine.describe(), "model": str(args.model), "rows": rows}, indent=2)
        )


if __name__ == "__main__":
    main()
