"""`python -m inference train|evaluate|predict`: the operator's way to the intent
model; inference/cli.py registers them. Bad input files exit with status 2 and
`FILE line N: reason`, writing nothing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .config import BACKENDS


def add_subparsers(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train an intent model")
    train.add_argument("--train", required=True, type=Path, help="CSV (text,intent) or JSONL file")
    train.add_argument("--val", type=Path, help="validation file (default: split off --train)")
    train.add_argument("--out", required=True, type=Path, help="model directory to write")
    train.add_argument("--mode", choices=["fast", "full"], default="fast")
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int, default=13)
    train.add_argument("--base-model", help="base encoder directory or model id (default: $INTENT_BASE_MODEL)")
    train.add_argument("--no-onnx", action="store_true", help="skip the ONNX export (torch serving only)")
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser("evaluate", help="score a model on a labelled file")
    evaluate.add_argument("--model", required=True, type=Path)
    evaluate.add_argument("--test", required=True, type=Path)
    evaluate.add_argument("--json", type=Path, help="also write the full report as JSON here")
    evaluate.add_argument("--backend", choices=list(BACKENDS))
    evaluate.set_defaults(func=run_evaluate)

    predict = subparsers.add_parser("predict", help="classify utterances")
    predict.add_argument("--model", required=True, type=Path)
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument("texts", nargs="+", metavar="TEXT")
    predict.set_defaults(func=run_predict)

    explain = subparsers.add_parser("explain", help="why the model decides what it does for a text")
    explain.add_argument("--model", required=True, type=Path)
    explain.add_argument(
        "--examples", type=Path, help="training examples (CSV or JSONL): show the nearest ones to the text"
    )
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.add_argument("text", metavar="TEXT")
    explain.set_defaults(func=run_explain)


def run_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import TrainConfig, load_examples, train_intent_model

    train = load_examples(args.train)
    val = load_examples(args.val) if args.val else None
    config = TrainConfig(
        mode=args.mode, epochs=args.epochs, seed=args.seed, base_model=args.base_model, export_onnx=not args.no_onnx
    )
    with tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}") as bar:

        def progress(fraction: float, stage: str) -> None:
            bar.n = round(fraction * 100, 1)
            bar.set_postfix_str(stage, refresh=False)
            bar.refresh()

        path = train_intent_model(train, args.out, val=val, config=config, progress=progress)
    metrics = json.loads((path / "metrics.json").read_text())
    print(
        f"saved {path}  (validation accuracy {metrics['validation_accuracy_before_threshold']:.4f}, "
        f"out of scope below {metrics['oos_score']} {metrics['threshold']:.3f}, {metrics['train_seconds']:.0f} s)"
    )
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from . import Predictor, evaluate, format_report, load_examples

    examples = load_examples(args.test)
    predictor = Predictor.load(args.model, backend=args.backend)
    report = evaluate(predictor, examples)
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from . import Predictor

    predictor = Predictor.load(args.model)
    for text, p in zip(args.texts, predictor.predict(args.texts, top_k=args.top_k), strict=True):
        ranking = ", ".join(f"{label} {prob:.3f}" for label, prob in p.ranking)
        flag = " (out of scope)" if p.out_of_scope else ""
        print(f"{text!r}: {p.intent} {p.confidence:.3f}{flag}  [{ranking}]")
    return 0


def run_explain(args: argparse.Namespace) -> int:
    from inference.encoder import SentenceEncoder

    from .data import load_examples
    from .explain import explain, format_explanation
    from .predictor import Predictor

    predictor = Predictor.load(args.model)
    examples = load_examples(args.examples) if args.examples else []
    encoder = SentenceEncoder(predictor.config.base_model) if examples else None
    explanation = explain(predictor, args.text, examples=examples, encoder=encoder)
    print(json.dumps(explanation.to_dict(), indent=2) if args.json else format_explanation(explanation))
    return 0
