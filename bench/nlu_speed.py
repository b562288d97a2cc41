"""Serving speed of the intent engine per backend (torch, onnx fp32, onnx-int8
dynamic, onnx-int8-static): single-query latency p50/p99, batched throughput,
file size, and what int8 costs in accuracy.

    python bench/nlu_speed.py --model var/bench/clinc150/full

Queries are CLINC150 test utterances (read from ../shared)."""

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
from inference import Predictor, choose_device  # noqa: E402, RUF100 - the path above must be set first

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json"


def measure(predictor: Predictor, texts: list[str], gold: list[str], singles: int, batch_size: int) -> dict:
    for text in texts[:20]:  # warm caches for varied lengths
        predictor.predict([text])
    latencies = []
    for text in texts[:singles]:
        t0 = time.perf_counter()
        predictor.predict([text])
        latencies.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    predictions = []
    for start in range(0, len(texts), batch_size):
        predictions += predictor.predict(texts[start : start + batch_size])
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictor.predict(texts)  # one call: the engine sorts all queries by length
    bulk_seconds = time.perf_counter() - t0
    in_scope = [i for i, g in enumerate(gold) if g != "oos"]
    files = predictor.config.onnx_files
    return {
        "backend": predictor.backend,
        "size_mb": round((predictor.model_dir / files[predictor.backend]).stat().st_size / 1e6, 1)
        if predictor.backend in files
        else None,
        "device": predictor.device,
        "single_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "single_p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "batched_qps": round(len(texts) / seconds, 1),
        "bulk_qps": round(len(texts) / bulk_seconds, 1),
        "in_scope_accuracy_top1": float(np.mean([predictions[i].ranking[0][0] == gold[i] for i in in_scope])),
        "top_labels": [p.ranking[0][0] for p in predictions],
        "load_average": machine.load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "var" / "bench" / "clinc150" / "full")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, help="intra-op threads (default $INFERENCE_THREADS, else all cores)")
    parser.add_argument("--singles", type=int, default=500, help="single queries timed")
    parser.add_argument("--queries", type=int, default=3000, help="queries in the batched run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print("machine:", machine.describe(), flush=True)
    data = json.loads(args.data.read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    items = data["test"] + data["oos_test"]
    items = [items[i] for i in rng.permutation(len(items))[: args.queries]]
    texts, gold = [t for t, _ in items], [g for _, g in items]

    runs = [("torch", "cpu"), ("onnx", "cpu"), ("onnx-int8", "cpu")]
    if "onnx-int8-static" in json.loads((args.model / "config.json").read_text())["onnx_files"]:
        runs.append(("onnx-int8-static", "cpu"))
    if choose_device() == "cuda":
        runs.append(("torch", "cuda"))
    results = []
    for backend, device in runs:
        predictor = Predictor.load(args.model, backend=backend, device=device, threads=args.threads)
        r = measure(predictor, texts, gold, args.singles, args.batch_size)
        results.append(r)
        print(
            f"{backend:10} {device:5} p50 {r['single_p50_ms']:6.2f} ms  p99 {r['single_p99_ms']:6.2f} ms  "
            f"batched {r['batched_qps']:7.1f} q/s  bulk {r['bulk_qps']:7.1f} q/s  top-1 in-scope acc {r['in_scope_accuracy_top1']:.4f}  "
            f"(load {r['load_average']})",
            flush=True,
        )
    by = {(r["backend"], r["device"]): r for r in results}
    fp32 = by[("onnx", "cpu")]
    agreements = {}
    for backend in ("onnx-int8", "onnx-int8-static"):
        int8 = by.get((backend, "cpu"))
        if int8 is None:
            continue
        agreement = float(np.mean([a == b for a, b in zip(fp32["top_labels"], int8["top_labels"], strict=True)]))
        agreements[backend] = agreement
        print(
            f"{backend} vs fp32: top-1 agreement {agreement:.4f}, in-scope accuracy "
            f"{int8['in_scope_accuracy_top1']:.4f} vs {fp32['in_scope_accuracy_top1']:.4f} "
            f"({(int8['in_scope_accuracy_top1'] - fp32['in_scope_accuracy_top1']) * 100:+.2f} points)"
        )
    print(
        f"\n| backend | device | size | single p50 | single p99 | batched ({args.batch_size}/call) | bulk (one call) "
        "| top-1 in-scope acc |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['device']} | {r['size_mb']} MB | {r['single_p50_ms']:.2f} ms | "
            f"{r['single_p99_ms']:.2f} ms | "
            f"{r['batched_qps']:.0f} q/s | {r['bulk_qps']:.0f} q/s | {r['in_scope_accuracy_top1']:.2%} |"
        )
    print("machine at end:", machine.describe())
    if args.json:
        for r in results:
            r.pop("top_labels")
        args.json.write_text(
            json.dumps({"machine": machine.describe(), "int8_top1_agreement": agreements, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
