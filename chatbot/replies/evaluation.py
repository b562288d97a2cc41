"""Held-out BLEU of a reply model: how close its first suggestion is to what the agent wrote.

One BLEU for the product and the benchmarks: sacrebleu's corpus BLEU, lower-cased,
as bench/replies_sgd.py reports it in docs/benchmarks.md.
"""

import hashlib
from collections.abc import Sequence

import sacrebleu
from django.conf import settings

from inference.replies import ReplyPair, Turn


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
    return round(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], lowercase=True).score, 2)


def split_holdout(pairs: Sequence[ReplyPair], percent: int = 10, most: int = 200) -> tuple[list, list]:
    """(train, held out) by a hash of the reply, so a rerun on the same data holds out the same pairs.
    Fewer than 20 pairs: nothing is held out (and no BLEU is reported)."""
    if len(pairs) < 20:
        return list(pairs), []
    train, holdout = [], []
    for pair in pairs:
        bucket = int(hashlib.sha256(pair.reply.encode()).hexdigest(), 16) % 100
        (holdout if bucket < percent and len(holdout) < most else train).append(pair)
    return train, holdout


def bleu_on(suggester, holdout: Sequence[ReplyPair]) -> float:
    hypotheses = []
    for pair in holdout:
        context = [{"speaker": t.speaker, "text": t.text} for t in pair.context]
        found = suggester.suggest(context, n=1)
        hypotheses.append(found[0].text if found else "")
    return corpus_bleu(hypotheses, [p.reply for p in holdout])


def evaluate_on(suggester, holdout: Sequence[ReplyPair]) -> dict:
    """The report of a version: its BLEU and the held-out pairs, so the active
    version can be scored on exactly the same ones."""
    return {
        "bleu": bleu_on(suggester, holdout),
        "holdout": [{"context": [[t.speaker, t.text] for t in p.context], "reply": p.reply} for p in holdout],
    }


def holdout_of(report: dict) -> list[ReplyPair]:
    return [
        ReplyPair(context=tuple(Turn(speaker, text) for speaker, text in pair["context"]), reply=pair["reply"])
        for pair in report.get("holdout", [])
    ]


def auto_activation_problems(report: dict, min_bleu: float | None = None) -> list[str]:
    """Why a retrained model must not start suggesting on its own (the quality gate of
    automatic retraining, before the comparison with the active version): it was not
    scored on held-out replies (too few agent replies to hold any out), or its held-out
    BLEU is below REPLY_AUTO_ACTIVATION_MIN_BLEU. A person may still activate it."""
    if not report or report.get("bleu") is None:
        return ["it was not scored on held-out replies (it needs 20 agent replies to hold some out)"]
    min_bleu = settings.REPLY_AUTO_ACTIVATION_MIN_BLEU if min_bleu is None else min_bleu
    if report["bleu"] < min_bleu:
        return [f"held-out BLEU {report['bleu']:.2f} is below the minimum {min_bleu:.2f}"]
    return []


def activation_problems(report: dict, baseline: dict | None, max_drop: float | None = None) -> list[str]:
    """Why this version is worse than the active one on the same pairs; empty when it may be activated."""
    if not baseline or report.get("bleu") is None or baseline.get("bleu") is None:
        return []
    max_drop = settings.REPLY_ACTIVATION_MAX_BLEU_DROP if max_drop is None else max_drop
    drop = baseline["bleu"] - report["bleu"]
    if drop > max_drop + 1e-9:
        return [
            f"held-out BLEU {report['bleu']:.2f} is {drop:.2f} below the active version's "
            f"{baseline['bleu']:.2f}, more than the allowed {max_drop:.2f}"
        ]
    return []
