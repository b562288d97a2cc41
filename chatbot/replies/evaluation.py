"""Held-out BLEU of a reply model: how close its first suggestion is to what the agent wrote.

A small corpus BLEU (up to 4-grams, add-one smoothing above unigrams, brevity
penalty) on lower-cased words, so the figure needs no extra package.
"""

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence

from inference.replies.data import ReplyPair

WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    matches = [0] * max_n
    totals = [0] * max_n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        h, r = words(hyp), words(ref)
        hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
        for n in range(1, max_n + 1):
            h_grams = Counter(tuple(h[i : i + n]) for i in range(len(h) - n + 1))
            r_grams = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(c, r_grams[g]) for g, c in h_grams.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0 or matches[0] == 0:
        return 0.0
    log_precision = sum(math.log((matches[n] + (n > 0)) / (totals[n] + (n > 0))) for n in range(max_n)) / max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return round(100 * brevity * math.exp(log_precision), 2)


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


def read_metrics(path) -> dict:
    import json
    from pathlib import Path

    metrics_file = Path(path) / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
