"""Scoring an index on labelled questions, and choosing its abstention threshold
on validation questions (the rule is documented in docs/knowledge.md)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .index import KnowledgeIndex
from .sources import Question

RANK_DEPTH = 10  # MRR counts an article found within the first 10
MAX_WRONG_RATE = 0.05  # answered wrong, as a share of all questions (the goal)
MIN_DECLINED = 0.80  # share of unanswerable questions declined (the goal)
# The abstention classifier is fitted only on validation questions with at least this
# many right and this many wrong (or unanswerable) best articles; else the defaults stay.
MIN_FIT_CLASS = 8
# One-sided 95 % Wilson bounds: the limits must hold for questions not seen yet, not
# only for the validation sample, whose error shrinks as it grows.
CONFIDENCE_Z = 1.645


def wilson_bounds(successes: int, n: int, z: float = CONFIDENCE_Z) -> tuple[float, float]:
    """(lower, upper) Wilson score bounds of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return (centre - spread) / denom, (centre + spread) / denom


@dataclass(frozen=True)
class Outcome:
    """One question asked: where its article ranked and the abstention score."""

    question: Question
    ranking: list[str]  # article ids, best first
    score: float
    latency_ms: float
    features: dict[str, float] = field(default_factory=dict)  # the abstention features

    @property
    def answerable(self) -> bool:
        return bool(self.question.article_id)

    @property
    def top_right(self) -> bool:
        return self.answerable and bool(self.ranking) and self.ranking[0] == self.question.article_id


def split_questions(
    questions: Sequence[Question], val_fraction: float = 0.5, seed: int = 13
) -> tuple[list[Question], list[Question]]:
    """(validation, test), answerable and unanswerable split in the same proportion."""
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1")
    rng = random.Random(seed)
    val: list[Question] = []
    test: list[Question] = []
    for group in ([q for q in questions if q.article_id], [q for q in questions if not q.article_id]):
        group = list(group)
        rng.shuffle(group)
        cut = round(len(group) * val_fraction)
        val.extend(group[:cut])
        test.extend(group[cut:])
    return val, test


def ask_all(index: KnowledgeIndex, questions: Sequence[Question]) -> list[Outcome]:
    if questions:
        index.answer(questions[0].text)  # first call pays for lazy set-up; not timed
    outcomes = []
    for q in questions:
        start = time.perf_counter()
        answer = index.answer(q.text, k=RANK_DEPTH, threshold=float("-inf"))
        elapsed = (time.perf_counter() - start) * 1000.0
        outcomes.append(Outcome(q, [h.article_id for h in answer.hits], answer.score, elapsed, answer.features))
    return outcomes


def fit_abstention(index: KnowledgeIndex, outcomes: Sequence[Outcome]) -> str:
    """Fit the abstention classifier (a scikit-learn logistic regression, L2 strength
    config.abstain_c) on validation outcomes: target "the best article is right" (an
    unanswerable question never is), inputs config.abstain_features, standardised for
    the fit and folded back into plain weights. Returns what was done, for the rule."""
    from sklearn.linear_model import LogisticRegression

    cfg = index.config
    right = np.array([o.top_right for o in outcomes])
    if min(int(right.sum()), int((~right).sum())) < MIN_FIT_CLASS:
        return f"default abstention weights (fewer than {MIN_FIT_CLASS} right or wrong validation answers to fit on)"
    x = np.array([[o.features[f] for f in cfg.abstain_features] for o in outcomes], dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    model = LogisticRegression(C=cfg.abstain_c, max_iter=1000).fit((x - mean) / std, right)
    weights = model.coef_[0] / std
    cfg.abstain_weights = tuple(round(float(w), 6) for w in weights)
    cfg.abstain_bias = round(float(model.intercept_[0] - (weights * mean).sum()), 6)
    terms = " + ".join(f"{w:.3f}*{f}" for f, w in zip(cfg.abstain_features, cfg.abstain_weights, strict=True))
    return f"p(right) = sigmoid({cfg.abstain_bias:.3f} + {terms}) fitted on {len(outcomes)} validation questions"


def rescore(index: KnowledgeIndex, outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes with their scores recomputed by the index's abstention classifier."""
    return [replace(o, score=index.abstain_score(o.features)) if o.features else o for o in outcomes]


def calibrate(index: KnowledgeIndex, validation: Sequence[Question]) -> tuple[float, str]:
    """Everything about abstaining chosen on validation questions: fit the classifier,
    then choose the threshold on its probabilities (choose_threshold), and set both on
    the index. Returns (threshold, rule)."""
    outcomes = ask_all(index, validation)
    fitted = fit_abstention(index, outcomes)
    threshold, rule = choose_threshold(rescore(index, outcomes))
    index.with_threshold(threshold, f"{fitted}; {rule}")
    return threshold, index.config.threshold_rule


def choose_threshold(
    outcomes: Sequence[Outcome],
    max_wrong_rate: float = MAX_WRONG_RATE,
    min_declined: float = MIN_DECLINED,
    z: float = CONFIDENCE_Z,
) -> tuple[float, str]:
    """The lowest threshold at which, judged on these validation questions with
    one-sided Wilson bounds (z), answered-wrong (a wrong article, or any answer to an
    unanswerable question) is at most max_wrong_rate of all questions and at least
    min_declined of the unanswerable ones are declined. Answering more never adds a
    right answer above it, so the lowest such threshold keeps the most right answers.
    It is placed halfway to the next lower score, which changes no decision here. If
    no threshold meets both, the one with the most right minus wrong answers is
    taken (placed halfway too). z=0 judges the sample's own rates."""
    if not outcomes:
        raise ValueError("no validation questions to choose a threshold on")
    scores = np.array([o.score for o in outcomes], dtype=np.float64)
    right = np.array([o.top_right for o in outcomes])
    answerable = np.array([o.answerable for o in outcomes])
    n, n_unans = len(outcomes), int((~answerable).sum())
    candidates = np.unique(scores)  # ascending; threshold t answers score >= t
    best_fallback, best_gain = candidates[0], -np.inf
    for i, t in enumerate(candidates):
        answered = scores >= t
        wrong = int((answered & ~right).sum())
        declined = int((~answered & ~answerable).sum())
        ok_wrong = wilson_bounds(wrong, n, z)[1] <= max_wrong_rate + 1e-12
        ok_declined = n_unans == 0 or wilson_bounds(declined, n_unans, z)[0] >= min_declined - 1e-12
        if ok_wrong and ok_declined:
            value = (t + candidates[i - 1]) / 2 if i > 0 else t - 1e-3
            return float(value), (
                f"lowest threshold on {n} validation questions at which answered-wrong <= {max_wrong_rate:.0%} of "
                f"all and unanswerable declined >= {min_declined:.0%} (one-sided Wilson bounds, z={z:g})"
            )
        gain = int((answered & right).sum()) - wrong
        if gain > best_gain:
            # Halfway to the next lower score as above: a threshold on a right answer's
            # own score would decline a question scoring a hair below it.
            best_fallback, best_gain = ((t + candidates[i - 1]) / 2 if i > 0 else t - 1e-3), gain
    return float(best_fallback), (
        f"no threshold met answered-wrong <= {max_wrong_rate:.0%} and declined >= {min_declined:.0%} on {n} "
        "validation questions; most right minus wrong answers"
    )


def _rate(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def report(outcomes: Sequence[Outcome], threshold: float) -> dict:
    """hit@1, hit@3 and MRR on answerable questions; at the threshold, answered
    right / wrong / abstained on answerable and unanswerable ones; latency."""
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]

    def rank(o: Outcome) -> int | None:
        return o.ranking.index(o.question.article_id) + 1 if o.question.article_id in o.ranking else None

    ranks = [rank(o) for o in answerable]
    a_answered = [o for o in answerable if o.score >= threshold]
    a_right = sum(o.top_right for o in a_answered)
    u_answered = sum(o.score >= threshold for o in unanswerable)
    latencies = np.array([o.latency_ms for o in outcomes]) if outcomes else np.zeros(1)
    n = len(outcomes)
    wrong_all = (len(a_answered) - a_right) + u_answered
    return {
        "questions": n,
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "threshold": round(float(threshold), 6),
        "hit@1": _rate(sum(r == 1 for r in ranks), len(answerable)),
        "hit@3": _rate(sum(r is not None and r <= 3 for r in ranks), len(answerable)),
        "mrr": round(sum(1.0 / r for r in ranks if r) / len(answerable), 4) if answerable else 0.0,
        "answerable_answered_right": _rate(a_right, len(answerable)),
        "answerable_answered_wrong": _rate(len(a_answered) - a_right, len(answerable)),
        "answerable_abstained": _rate(len(answerable) - len(a_answered), len(answerable)),
        "unanswerable_answered_wrong": _rate(u_answered, len(unanswerable)),
        "unanswerable_abstained": _rate(len(unanswerable) - u_answered, len(unanswerable)),
        "answered_wrong_of_all": _rate(wrong_all, n),
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2),
    }


def format_report(r: dict) -> str:
    lines = [
        f"questions {r['questions']} ({r['answerable']} answerable, {r['unanswerable']} unanswerable), "
        f"threshold {r['threshold']:.4f}",
        f"retrieval (answerable): hit@1 {r['hit@1']:.4f}  hit@3 {r['hit@3']:.4f}  MRR {r['mrr']:.4f}",
        f"answerable:   answered right {r['answerable_answered_right']:.4f}  answered wrong "
        f"{r['answerable_answered_wrong']:.4f}  abstained {r['answerable_abstained']:.4f}",
        f"unanswerable: answered (wrong) {r['unanswerable_answered_wrong']:.4f}  abstained "
        f"{r['unanswerable_abstained']:.4f}",
        f"answered wrong, share of all questions: {r['answered_wrong_of_all']:.4f}",
        f"latency per question: p50 {r['latency_ms_p50']:.2f} ms  p95 {r['latency_ms_p95']:.2f} ms",
    ]
    return "\n".join(lines)
