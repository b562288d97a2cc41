"""`python -m inference kb-eval`: build the index the product would build from a help
center, choose its threshold on part of a question file, score it on the rest."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    kb = subparsers.add_parser(
        "kb-eval",
        help="score knowledge-base answers on labelled questions",
        description="Builds a knowledge index from --articles, chooses the abstention threshold on a split of "
        "--questions (unless --threshold is given) and reports on the other part (on all of them with "
        "--threshold): hit@1, hit@3, MRR, answered right/wrong/abstained, latency.",
    )
    kb.add_argument(
        "--articles", required=True, type=Path, help="folder of .md articles (file name = id) or CSV/JSONL FAQ"
    )
    kb.add_argument("--questions", required=True, type=Path, help="CSV question,article_id (empty id = unanswerable)")
    kb.add_argument("--json", type=Path, help="also write the report as JSON here")
    kb.add_argument(
        "--threshold",
        type=float,
        help="abstention threshold, a probability 0-1 (default: the classifier fitted and the threshold chosen on a split of --questions)",
    )
    kb.add_argument("--val-fraction", type=float, default=0.5, help="share of --questions that chooses the threshold")
    kb.add_argument("--seed", type=int, default=13)
    kb.add_argument("--save-index", type=Path, help="also write the index (with its threshold) here")
    kb.set_defaults(func=run_kb_eval)


def run_kb_eval(args: argparse.Namespace) -> int:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the report, not the weight-loading chatter
    hf_logging.disable_progress_bar()

    from .evaluation import ask_all, calibrate, format_report, report, split_questions
    from .index import KnowledgeIndex
    from .sources import load_articles, load_questions

    articles = load_articles(args.articles)
    questions = load_questions(args.questions, {a.id for a in articles})
    index = KnowledgeIndex.build(articles)
    if args.threshold is None:
        val, test = split_questions(questions, args.val_fraction, args.seed)
        threshold, rule = calibrate(index, val)
        evaluated, split = test, f"held-out {1 - args.val_fraction:.0%} of the questions (seed {args.seed})"
    else:
        threshold, rule = args.threshold, "given with --threshold"
        val, evaluated, split = [], questions, "all questions"
    index.with_threshold(threshold, rule)
    result = report(ask_all(index, evaluated), threshold)
    result.update(
        {
            "evaluated_on": split,
            "validation_questions": len(val),
            "threshold_rule": rule,
            "articles": len(articles),
            "passages": len(index.passage_article),
        }
    )
    print(f"{len(articles)} articles, {result['passages']} passages; evaluated on {split}")
    print(f"threshold {threshold:.4f}: {rule}")
    print(format_report(result))
    if args.save_index:
        path = index.save(args.save_index)
        print(f"index saved to {path} ({index.index_id})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


# The name inference/cli.py looks for in every model kind's cli module.
add_subparsers = register
