"""Turning logits into trustworthy probabilities and an out-of-scope decision:
temperature scaling and the threshold, both chosen on validation data only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# A temperature fit on a (nearly) perfectly classified validation set has no
# minimum: NLL keeps falling as T -> 0 and every input, nonsense included, would
# look certain. The bounds keep probabilities meaningful in that degenerate case.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.5, 10.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """Temperature minimising validation NLL (Guo et al., 2017), searched in log
    space with L-BFGS and clipped to [MIN_TEMPERATURE, MAX_TEMPERATURE]."""
    if len(targets) == 0:
        return 1.0
    x = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(targets, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(np.exp(log_t.item()), MIN_TEMPERATURE, MAX_TEMPERATURE))


@dataclass
class OosDecision:
    """Per-example outcome of the out-of-scope rule on validation data."""

    threshold: float
    rule: str
    in_scope_accuracy: float | None
    oos_recall: float | None
    score: str = "probability"  # what the threshold applies to (see OOS_SCORES)

    @property
    def balanced_accuracy(self) -> float | None:
        if self.in_scope_accuracy is None or self.oos_recall is None:
            return None
        return (self.in_scope_accuracy + self.oos_recall) / 2


# What the out-of-scope threshold is compared with:
# - "probability": the top in-scope label's calibrated probability (its maximum
#   softmax probability, Hendrycks & Gimpel 2017);
# - "energy": the negative free energy of the in-scope logits, logsumexp(z / T)
#   (Liu et al. 2020, "Energy-based out-of-distribution detection"). It keeps the
#   logits' magnitude, which softmax normalises away: an unfamiliar query tends to
#   have small logits everywhere, a familiar one a large logit somewhere.
OOS_SCORES = ("probability", "energy")


def oos_score(logits: np.ndarray, temperature: float, oos_index: int | None, score: str) -> np.ndarray:
    """(batch,) score per query; below the threshold means out of scope."""
    if score == "probability":
        return top_in_scope(softmax(logits, temperature), oos_index)[2]
    if score == "energy":
        z = logits / temperature
        if oos_index is not None:
            z = np.delete(z, oos_index, axis=1)
        peak = z.max(axis=1)
        return peak + np.log(np.exp(z - peak[:, None]).sum(axis=1))
    raise ValueError(f"oos score must be one of {', '.join(OOS_SCORES)}, got {score!r}")


def choose_oos_rule(
    logits: np.ndarray,
    temperature: float,
    gold: np.ndarray,
    is_oos: np.ndarray,
    oos_index: int | None,
    in_scope_reject_rate: float,
) -> tuple[OosDecision, list[OosDecision]]:
    """The out-of-scope rule for a model: (chosen decision, every candidate's).

    With out-of-scope validation examples, each score of OOS_SCORES gets its
    threshold from choose_threshold and the one with the higher balanced accuracy
    on validation wins (a tie keeps "probability"). Which score separates better
    depends on the model and the data, so it is measured rather than assumed.
    Without them there is nothing to compare on, and the probability rule (with its
    cap) is used."""
    probs = softmax(logits, temperature)
    candidates = [choose_threshold(probs, gold, is_oos, oos_index, in_scope_reject_rate)]
    if is_oos.any():
        for score in OOS_SCORES[1:]:
            conf = oos_score(logits, temperature, oos_index, score)
            candidates.append(choose_threshold(probs, gold, is_oos, oos_index, in_scope_reject_rate, conf, score))
    best = candidates[0]
    for decision in candidates[1:]:
        if (decision.balanced_accuracy or 0.0) > (best.balanced_accuracy or 0.0) + 1e-12:
            best = decision
    return best, candidates


def top_in_scope(probs: np.ndarray, oos_index: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(argmax over all labels, argmax over in-scope labels, its probability)."""
    top = probs.argmax(axis=1)
    if oos_index is None:
        return top, top, probs[np.arange(len(probs)), top]
    masked = probs.copy()
    masked[:, oos_index] = -1.0
    top_in = masked.argmax(axis=1)
    return top, top_in, probs[np.arange(len(probs)), top_in]


# Without out-of-scope validation data, never reject an answer the calibrated model
# believes is more likely right than wrong: a small or easy validation set (all
# near-certain) would otherwise put the threshold close to 1.
MAX_THRESHOLD_WITHOUT_OOS = 0.5


def choose_threshold(
    probs: np.ndarray,
    gold: np.ndarray,
    is_oos: np.ndarray,
    oos_index: int | None,
    in_scope_reject_rate: float,
    conf: np.ndarray | None = None,
    score: str = "probability",
) -> OosDecision:
    """Pick the confidence threshold below which a query is out of scope.

    `conf` is the score the threshold applies to, named by `score`; by default the
    top in-scope calibrated probability.

    `in_scope_reject_rate` is a budget: the share of in-scope validation accuracy
    we accept to lose for catching out-of-scope queries.

    With out-of-scope validation examples: among thresholds within the budget, the
    one maximising balanced accuracy, the mean of in-scope accuracy (a flagged
    in-scope query counts as wrong) and out-of-scope recall. Averaging the two
    groups makes the choice independent of how many out-of-scope examples
    validation happens to hold; the budget keeps a small, easy out-of-scope
    validation set from buying recall with many wrong rejections.

    Without them: the budget is the share of in-scope queries rejected, and the
    threshold is the split-conformal quantile of all in-scope validation
    confidences (conformal_threshold), capped at MAX_THRESHOLD_WITHOUT_OOS. (The
    quantile of the correct ones alone ignored the wrongly classified queries,
    whose confidence is low: on CLINC150 in-scope that rejected about 3x the budget.)

    The threshold is placed midway between neighbouring validation confidences,
    so it does not sit exactly on one example.
    """
    top, top_in, top_prob = top_in_scope(probs, oos_index)
    if conf is None:
        conf = top_prob
    predicted_oos = top == oos_index if oos_index is not None else np.zeros(len(top), dtype=bool)
    in_scope = ~is_oos
    correct = (top_in == gold) & in_scope & ~predicted_oos
    n_in, n_oos = max(1, int(in_scope.sum())), max(1, int(is_oos.sum()))

    if not is_oos.any():
        if score != "probability":
            raise ValueError("without out-of-scope validation examples only the probability rule applies")
        threshold = min(conformal_threshold(conf[in_scope], in_scope_reject_rate), MAX_THRESHOLD_WITHOUT_OOS)
        in_acc = float((correct & (conf >= threshold)).sum() / n_in)
        return OosDecision(
            threshold,
            f"split-conformal: at most {in_scope_reject_rate:g} of in-scope queries rejected "
            f"(finite-sample quantile of validation confidence), at most {MAX_THRESHOLD_WITHOUT_OOS}",
            in_acc,
            None,
        )

    values = np.unique(conf)
    lowest = 0.0 if score == "probability" else float(values[0]) - 1.0  # nothing flagged
    candidates = np.concatenate([[lowest], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    base_acc = correct.sum() / n_in
    best = (-1.0, float(lowest), float(base_acc), float((predicted_oos & is_oos).sum() / n_oos))
    for t in candidates:
        flagged = predicted_oos | (conf < t)
        in_acc = (correct & ~flagged).sum() / n_in
        if base_acc - in_acc > in_scope_reject_rate + 1e-12:
            break  # in-scope accuracy only falls as the threshold rises
        oos_rec = (flagged & is_oos).sum() / n_oos
        balanced = (in_acc + oos_rec) / 2
        if balanced > best[0] + 1e-12:
            best = (balanced, float(t), float(in_acc), float(oos_rec))
    _, t, in_acc, oos_rec = best
    return OosDecision(
        t,
        f"{score} threshold: max balanced accuracy (in-scope accuracy + oos recall) / 2 on "
        f"validation, losing at most {in_scope_reject_rate:g} in-scope accuracy",
        in_acc,
        oos_rec,
        score,
    )


def conformal_threshold(conf: np.ndarray, reject_rate: float) -> float:
    """Split-conformal threshold: a query scoring below it is rejected, and an
    exchangeable in-scope query is rejected with probability at most `reject_rate`.

    With n validation scores sorted c_(1) <= ... <= c_(n), a new score falls below
    c_(k) with probability k / (n + 1) (its rank among n + 1 is uniform), so
    k = floor(reject_rate * (n + 1)) is the finite-sample correction (Vovk et al.
    2005; Angelopoulos & Bates 2021): the threshold is c_(k), and a score strictly
    below it is rejected (k - 1 of the validation scores).

    With fewer than 1 / reject_rate - 1 scores no threshold keeps the budget; then
    k = 1, the least confident validation query (expected rejection 1 / (n + 1)),
    which is what the rule before this one did in effect: a small bot without
    out-of-scope examples still turns nonsense away. No scores: 0.0."""
    scores = np.sort(np.asarray(conf, dtype=np.float64))
    if len(scores) == 0:
        return 0.0
    k = max(1, int(np.floor(reject_rate * (len(scores) + 1) + 1e-9)))
    return float(scores[k - 1])


def review_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    """The confidence below which answers are right less often than `target`: the
    highest threshold t such that validation answers with confidence below t have
    an accuracy under `target` (0.0 when even the least confident answers reach
    it). The review inbox files answers below it as low confidence."""
    order = np.argsort(confidence, kind="stable")
    conf = np.asarray(confidence, dtype=np.float64)[order]
    right = np.asarray(correct, dtype=np.float64)[order]
    if len(conf) == 0:
        return 0.0
    accuracy_below = np.cumsum(right) / np.arange(1, len(conf) + 1)  # accuracy of the i+1 least confident
    under = np.flatnonzero(accuracy_below < target)
    if len(under) == 0:
        return 0.0
    i = int(under[-1])
    upper = conf[i + 1] if i + 1 < len(conf) else 1.0
    return float((conf[i] + upper) / 2)
