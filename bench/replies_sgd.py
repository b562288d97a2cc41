"""Benchmark the reply models on Schema-Guided Dialogue pairs (../shared/data/sgd_replies).

Trains a seq2seq model and the retrieval baseline on the same training pairs, then
reports BLEU, chrF, ROUGE-L, exact match of the first suggestion, training time and
latency of three suggestions, with the machine it ran on. Rerun:

    python bench/replies_sgd.py --skip-quantized

(the run in docs/benchmarks.md: the product's recipe on all 25,004 training pairs,
500 test pairs; about 25 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sacrebleu
import torch
from rouge_score import rouge_scorer

from bench.machine import cpu_model
from inference.replies import (
    ReplySuggester,
    ReplyTrainConfig,
    RetrievalSuggester,
    load_reply_pairs,
    train_reply_model,
)
from inference.replies.data import ReplyPair
from inference.replies.suggestions import normalise
from inference.runtime import limit_threads

DATA = ROOT.parent / "shared" / "data" / "sgd_replies"


def machine() -> dict[str, object]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def as_dicts(pair: ReplyPair) -> list[dict[str, str]]:
    return [{"speaker": t.speaker, "text": t.text} for t in pair.context]


def evaluate(suggester, pairs: list[ReplyPair], latency_n: int, **options: object) -> dict[str, float]:
    """Quality of the first suggestion over ``pairs``; latency of the first
    ``latency_n`` calls (three suggestions each)."""
    hyps, refs, times = [], [], []
    for i, pair in enumerate(pairs):
        started = time.perf_counter()
        suggestions = suggester.suggest(as_dicts(pair), n=3, **options)
        elapsed = time.perf_counter() - started
        if i < latency_n:
            times.append(elapsed)
        hyps.append(suggestions[0].text if suggestions else "")
        refs.append(pair.reply)
    # The bundled MiniLM tokenizer is uncased, so the seq2seq model writes lower case:
    # compare case-insensitively for every model so the scores are comparable.
    bleu = sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score
    chrf = sacrebleu.corpus_chrf([h.lower() for h in hyps], [[r.lower() for r in refs]]).score
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge_l = statistics.mean(scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs, strict=True))
    exact = statistics.mean(normalise(h) == normalise(r) for h, r in zip(hyps, refs, strict=True))
    times.sort()
    return {
        "bleu": round(bleu, 2),
        "chrf": round(chrf, 2),
        "rouge_l": round(100 * rouge_l, 2),
        "exact_match": round(100 * exact, 2),
        "latency_p50_ms": round(1000 * times[len(times) // 2], 1),
        "latency_p95_ms": round(1000 * times[min(len(times) - 1, int(0.95 * len(times)))], 1),
        "examples": [{"reply": r, "suggested": h} for h, r in list(zip(hyps, refs, strict=True))[:5]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-file", type=Path, default=DATA / "train.jsonl")
    parser.add_argument("--test-file", type=Path, default=DATA / "test.jsonl")
    defaults = ReplyTrainConfig()  # the product's recipe, unless an option says otherwise
    parser.add_argument("--max-train", type=int, help="random subset of training pairs (default: all)")
    parser.add_argument("--max-eval", type=int, default=500, help="random subset of test pairs")
    parser.add_argument("--latency-n", type=int, default=100, help="calls timed for latency")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--decoder-layers", type=int, default=defaults.decoder_layers)
    parser.add_argument("--freeze-encoder-layers", type=int, default=defaults.freeze_encoder_layers)
    parser.add_argument("--decoder-vocab", choices=("replies", "full"), default=defaults.decoder_vocab)
    parser.add_argument("--max-source-len", type=int, default=defaults.max_source_len)
    parser.add_argument("--max-target-len", type=int, default=defaults.max_target_len)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for inference")
    parser.add_argument(
        "--train-threads",
        type=int,
        default=2,
        help="torch threads for training (1 runs steadier when another job holds a core)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-quantized", action="store_true")
    parser.add_argument(
        "--greedy",
        action="store_true",
        help="also score greedy search (one suggestion)",
    )
    parser.add_argument("--work-dir", type=Path, default=ROOT / "var" / "bench-replies")
    parser.add_argument("--results", type=Path, help="write the results JSON here too")
    args = parser.parse_args()

    limit_threads(args.threads)
    rng = random.Random(args.seed)
    train = load_reply_pairs(args.train_file)
    test = load_reply_pairs(args.test_file)
    # Random subsets: the files are ordered by dialogue, so a prefix covers few services.
    rng.shuffle(train)
    rng.shuffle(test)
    train, test = train[: args.max_train], test[: args.max_eval]
    results: dict[str, object] = {
        "machine": machine(),
        "load_at_start": load_avg(),
        "n_train": len(train),
        "n_eval": len(test),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(json.dumps(results, indent=2), flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    started = time.monotonic()
    retrieval_dir = train_reply_model(
        train,
        args.work_dir / f"retrieval-{stamp}",
        ReplyTrainConfig(kind="retrieval", seed=args.seed),
    )
    retrieval_seconds = time.monotonic() - started
    retrieval = RetrievalSuggester.load(retrieval_dir)
    results["retrieval"] = {
        "train_seconds": round(retrieval_seconds, 1),
        "load": load_avg(),
        **evaluate(retrieval, test, args.latency_n),
    }
    print(json.dumps(results["retrieval"], indent=2), flush=True)

    config = ReplyTrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        decoder_layers=args.decoder_layers,
        freeze_encoder_layers=args.freeze_encoder_layers,
        decoder_vocab=args.decoder_vocab,
        max_source_len=args.max_source_len,
        max_target_len=args.max_target_len,
        seed=args.seed,
    )

    def report(p) -> None:
        if p.step % 25 == 0 or p.step == p.total_steps:
            print(
                f"step {p.step}/{p.total_steps} loss {p.loss:.3f} {p.elapsed_s:.0f}s load {load_avg()}",
                flush=True,
            )

    limit_threads(args.train_threads)
    started = time.monotonic()
    seq2seq_dir = train_reply_model(train, args.work_dir / f"seq2seq-{stamp}", config, progress=report)
    seq2seq_seconds = time.monotonic() - started
    results["train_load"] = load_avg()
    results["seq2seq_metrics"] = json.loads((seq2seq_dir / "metrics.json").read_text())
    for quantize in (False, True):
        if quantize and args.skip_quantized:
            continue
        suggester = ReplySuggester.load(seq2seq_dir, quantize=quantize, threads=args.threads)
        name = "seq2seq_int8" if quantize else "seq2seq"
        results[name] = {
            "train_seconds": round(seq2seq_seconds, 1),
            "load": load_avg(),
            **evaluate(suggester, test, args.latency_n),
        }
        print(json.dumps(results[name], indent=2), flush=True)
    if args.greedy:
        # Greedy search returns one suggestion; it shows what beam search's preference
        # for short generic replies costs an under-trained model.
        suggester = ReplySuggester.load(seq2seq_dir, threads=args.threads)
        results["seq2seq_greedy"] = {
            "train_seconds": round(seq2seq_seconds, 1),
            "load": load_avg(),
            **evaluate(suggester, test, args.latency_n, num_beams=1),
        }
        print(json.dumps(results["seq2seq_greedy"], indent=2), flush=True)
    results["load_at_end"] = load_avg()

    names = ("retrieval", "seq2seq", "seq2seq_int8", "seq2seq_greedy")
    rows = [k for k in names if k in results]
    print("\n| model | BLEU | chrF | ROUGE-L | exact % | train s | p50 ms | p95 ms | load |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in rows:
        r = results[k]
        print(
            f"| {k} | {r['bleu']} | {r['chrf']} | {r['rouge_l']} | {r['exact_match']} | "
            f"{r['train_seconds']} | {r['latency_p50_ms']} | {r['latency_p95_ms']} | {r['load']} |"
        )
    out = args.results or args.work_dir / f"results-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
