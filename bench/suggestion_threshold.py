"""Choose the reply suggestions' relevance thresholds (REPLY_RETRIEVAL_MIN_SCORE,
REPLY_SEQ2SEQ_MIN_SCORE) on held-out Schema-Guided Dialogue pairs, and report them on
other held-out pairs.

- Models: the retrieval baseline and the seq2seq model, trained with the product's
  recipe (``ReplyTrainConfig()``) on train.jsonl, as bench/replies_sgd.py does.
- Held-out data: validation is a tenth of train.jsonl's dialogues (crc32 of the
  dialogue id divisible by 10), left out of training; the threshold is chosen there.
  test.jsonl (dialogues never seen in training) only reports it: no setting is chosen
  on a test split.
- Every held-out pair gets ``suggest(context, n=3)``; each suggestion is one candidate
  with the model's score.
- Relevance (the stated rule): a suggestion is relevant when its ROUGE-L F1 with the
  agent's real reply (rouge-score, lower case, no stemming) is at least
  ``--relevant-rouge`` (0.5): it says, in about the same words, what the agent said.
- Threshold: on validation, the lowest score at which the precision of the shown
  suggestions (those scoring at least it) reaches ``--target-precision`` with at least
  ``--min-shown`` shown; the same threshold is then applied to the test half.

Rerun (about 30 minutes on 2 cores, most of it the seq2seq training):

    python bench/suggestion_threshold.py

``--scores FILE`` reuses the scored suggestions a run saved (no training) to try
another rule or target.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rouge_score import rouge_scorer

from bench.replies_sgd import DATA, as_dicts, load_avg, machine
from inference.replies import ReplySuggester, ReplyTrainConfig, RetrievalSuggester, load_reply_pairs, train_reply_model
from inference.replies.data import ReplyPair
from inference.runtime import limit_threads

KINDS = ("retrieval", "seq2seq")


def dialogue_ids(path: Path) -> list[str]:
    """The dialogue of each pair, in the order load_reply_pairs reads them."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["dialogue_id"] for line in lines if line.strip()]


def split_train(path: Path) -> tuple[list[ReplyPair], list[ReplyPair]]:
    """(training, validation): whole dialogues of the training file, a tenth of them
    (crc32 of the id divisible by 10) held out for validation."""
    pairs = load_reply_pairs(path)
    ids = dialogue_ids(path)
    assert len(ids) == len(pairs), "dialogue ids and pairs out of step"
    held = [zlib.crc32(d.encode()) % 10 == 0 for d in ids]
    train = [p for p, h in zip(pairs, held, strict=True) if not h]
    validation = [p for p, h in zip(pairs, held, strict=True) if h]
    return train, validation


def score_pairs(suggester, pairs: list[ReplyPair], scorer) -> list[dict[str, object]]:
    """One row per suggestion: the model's score, its ROUGE-L F1 with the real reply."""
    rows = []
    for i, pair in enumerate(pairs):
        for rank, suggestion in enumerate(suggester.suggest(as_dicts(pair), n=3)):
            rouge = scorer.score(pair.reply, suggestion.text)["rougeL"].fmeasure
            rows.append({"pair": i, "rank": rank, "score": float(suggestion.score), "rouge_l": round(rouge, 4)})
    return rows


def figures(rows: list[dict], n_pairs: int, threshold: float, bar: float) -> dict[str, float]:
    """Precision of the shown suggestions, the share shown, and the share of pairs
    with at least one shown, at ``threshold``."""
    shown = [r for r in rows if r["score"] >= threshold]
    relevant = sum(r["rouge_l"] >= bar for r in shown)
    all_relevant = sum(r["rouge_l"] >= bar for r in rows)
    return {
        "threshold": round(threshold, 4),
        "shown": len(shown),
        "precision": round(relevant / len(shown), 4) if shown else 0.0,
        "recall": round(relevant / all_relevant, 4) if all_relevant else 0.0,
        "share_shown": round(len(shown) / len(rows), 4) if rows else 0.0,
        "pairs_with_one": round(len({r["pair"] for r in shown}) / n_pairs, 4) if n_pairs else 0.0,
    }


def choose_threshold(rows: list[dict], n_pairs: int, bar: float, target: float, min_shown: int) -> dict:
    """The lowest score whose shown set reaches ``target`` precision (``min_shown`` or
    more shown); when none does, the score with the best F1 of precision and recall
    (relevant suggestions kept / all relevant ones), again with ``min_shown`` shown."""
    best: dict = {"threshold": None}
    best_f1 = -1.0
    for score in sorted({r["score"] for r in rows}):
        row = figures(rows, n_pairs, score, bar)
        if row["shown"] < min_shown:
            break
        if row["precision"] >= target:
            return {**row, "rule": f"precision >= {target}"}
        p, r = row["precision"], row["recall"]
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best_f1:
            best, best_f1 = {**row, "rule": "best F1", "f1": round(f1, 4)}, f1
    return best


def curve(rows: list[dict], n_pairs: int, bar: float, points: int = 9) -> list[dict]:
    """Figures at score quantiles: what each threshold would cost and buy."""
    scores = sorted(r["score"] for r in rows)
    return [figures(rows, n_pairs, scores[int(q * (len(scores) - 1) / (points - 1))], bar) for q in range(points)]


def train_and_score(args) -> dict:
    limit_threads(args.threads)
    train, validation = split_train(args.train_file)
    random.Random(args.seed).shuffle(train)
    train = train[: args.max_train]
    test = load_reply_pairs(args.held_out_file)
    if args.max_held_out:  # a random subset of each (the files are ordered by dialogue)
        random.Random(args.seed).shuffle(validation)
        random.Random(args.seed).shuffle(test)
        validation, test = validation[: args.max_held_out], test[: args.max_held_out]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)  # lower-cases by itself
    stamp = time.strftime("%Y%m%d-%H%M%S")
    saved: dict[str, object] = {
        "machine": machine(),
        "n_train": len(train),
        "n_validation": len(validation),
        "n_test": len(test),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(json.dumps(saved, indent=2), flush=True)
    for kind in args.kinds:
        started = time.monotonic()
        config = ReplyTrainConfig(kind=kind, seed=args.seed)
        directory = train_reply_model(train, args.work_dir / f"{kind}-{stamp}", config)
        trained_s = time.monotonic() - started
        limit_threads(args.threads)
        suggester = (RetrievalSuggester if kind == "retrieval" else ReplySuggester).load(directory)
        saved[kind] = {
            "train_seconds": round(trained_s, 1),
            "validation": score_pairs(suggester, validation, scorer),
            "test": score_pairs(suggester, test, scorer),
            "load": load_avg(),
        }
        print(f"{kind}: trained in {trained_s:.0f} s, scored; load {load_avg()}", flush=True)
        out = args.work_dir / f"scores-{stamp}.json"
        out.write_text(json.dumps(saved) + "\n")  # after each kind: a later failure keeps this one
    print(f"scores: {out}")
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-file", type=Path, default=DATA / "train.jsonl")
    parser.add_argument("--held-out-file", type=Path, default=DATA / "test.jsonl")
    parser.add_argument("--max-train", type=int, help="random subset of training pairs (default: all)")
    parser.add_argument("--max-held-out", type=int, help="random subset of validation and of test (default: all)")
    parser.add_argument("--relevant-rouge", type=float, default=0.5, help="ROUGE-L F1 that makes a suggestion relevant")
    parser.add_argument("--target-precision", type=float, default=0.5)
    parser.add_argument("--min-shown", type=int, default=100, help="fewest shown suggestions a threshold may keep")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "var" / "bench-suggestion-threshold")
    parser.add_argument("--scores", type=Path, help="scored suggestions of an earlier run (skips training)")
    args = parser.parse_args()

    args.work_dir.mkdir(parents=True, exist_ok=True)
    saved = json.loads(args.scores.read_text()) if args.scores else train_and_score(args)
    bar, target = args.relevant_rouge, args.target_precision
    report: dict[str, object] = {"machine": saved["machine"], "rule": f"relevant: ROUGE-L F1 >= {bar}"}
    print(f"\nrelevant: ROUGE-L F1 >= {bar}; threshold: lowest score with precision >= {target}, else best F1")
    print("| kind | split | threshold | precision | recall | shown % | pairs with one % | base precision |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        if kind not in saved:
            continue
        validation, test = saved[kind]["validation"], saved[kind]["test"]
        n_val, n_test = saved["n_validation"], saved["n_test"]
        chosen = choose_threshold(validation, n_val, bar, target, args.min_shown)
        base_val = figures(validation, n_val, float("-inf"), bar)
        base_test = figures(test, n_test, float("-inf"), bar)
        report[kind] = {"validation": chosen, "curve": curve(validation, n_val, bar)}
        if chosen["threshold"] is None:
            print(
                f"| {kind} | validation | none (fewer than {args.min_shown} shown) | | | | | {base_val['precision']} |"
            )
            continue
        on_test = figures(test, n_test, chosen["threshold"], bar)
        report[kind]["test"] = on_test
        print(f"{kind}: chosen by {chosen['rule']}")
        for split, row, base in (("validation", chosen, base_val), ("test", on_test, base_test)):
            print(
                f"| {kind} | {split} | {row['threshold']} | {row['precision']} | {row['recall']} | "
                f"{100 * row['share_shown']:.1f} | {100 * row['pairs_with_one']:.1f} | {base['precision']} |"
            )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
