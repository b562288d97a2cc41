"""Command line: ``train-replies`` and ``suggest``; inference/__main__.py registers them."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from inference.replies.config import KINDS, ReplyTrainConfig
from inference.replies.errors import ReplyModelError


def add_subparsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train-replies`` and ``suggest`` on an existing subparser set."""
    train = subparsers.add_parser("train-replies", help="train a reply-suggestion model")
    train.add_argument("--train", required=True, help="JSONL of {context, reply} pairs")
    train.add_argument("--out", required=True, help="artifact directory to create")
    train.add_argument("--kind", choices=KINDS, default="seq2seq")
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument(
        "--base-model",
        help="path or model id (default: $REPLY_BASE_MODEL, else bundled MiniLM)",
    )
    train.add_argument("--max-train", type=int, help="use only the first N pairs")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--overwrite", action="store_true", help="replace an existing artifact")
    train.set_defaults(func=run_train)

    suggest = subparsers.add_parser("suggest", help="suggest agent replies for a conversation")
    suggest.add_argument("--model", required=True, help="artifact directory (seq2seq or retrieval)")
    suggest.add_argument(
        "--context",
        action="append",
        required=True,
        help='one turn, "customer: ..." or "agent: ..."; repeat, oldest first',
    )
    suggest.add_argument("-n", type=int, default=3, help="number of suggestions")
    suggest.add_argument("--timeout", type=float, help="seconds before giving up")
    suggest.add_argument("--quantize", action="store_true", help="dynamic int8 on CPU (seq2seq)")
    suggest.set_defaults(func=run_suggest)


def parse_turn_arg(raw: str) -> dict[str, str]:
    speaker, sep, text = raw.partition(":")
    if not sep:
        raise ReplyModelError(f'a --context turn looks like "customer: text", got {raw!r}')
    return {"speaker": speaker.strip(), "text": text.strip()}


def run_train(args: argparse.Namespace) -> int:
    from inference.replies.data import load_reply_pairs
    from inference.replies.train import TrainProgress, train_reply_model

    names = {f.name for f in fields(ReplyTrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    try:
        config = ReplyTrainConfig(base_model=args.base_model, **given)
        pairs = load_reply_pairs(args.train, limit=args.max_train)

        def report(p: TrainProgress) -> None:
            if p.step % 20 == 0 or p.step == p.total_steps:
                print(
                    f"step {p.step}/{p.total_steps} epoch {p.epoch} loss {p.loss:.3f} {p.elapsed_s:.0f}s",
                    file=sys.stderr,
                )

        out = train_reply_model(pairs, args.out, config, progress=report, overwrite=args.overwrite)
    except (ReplyModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


def run_suggest(args: argparse.Namespace) -> int:
    from inference.replies import load_suggester

    try:
        context = [parse_turn_arg(turn) for turn in args.context]
        suggester = load_suggester(args.model, quantize=args.quantize)
        suggestions = suggester.suggest(context, n=args.n, timeout_s=args.timeout)
    except ReplyModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for s in suggestions:
        print(json.dumps({"text": s.text, "score": s.score}, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.replies.cli")
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
