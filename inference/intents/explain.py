"""Why the intent model decided what it did: the words that drove the decision
(occlusion: how much the chosen intent's probability falls when a word is left
out), the nearest training examples, and the decision rule as numbers.

Occlusion runs on whatever backend serves the model (fp32 ONNX on a CPU), needs no
gradients, and costs one batched forward pass of (words + 1) short texts.
bench/explain.py measures its fidelity and cost against integrated gradients.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .calibration import softmax
from .data import OOS_LABEL, Example

WORD = re.compile(r"\S+")


@dataclass
class WordWeight:
    word: str
    start: int  # character offsets into the text, so a page can highlight in place
    end: int
    weight: float  # fall of the chosen intent's probability without this word (negative: it pulled away)


@dataclass
class Neighbour:
    text: str
    intent: str
    similarity: float  # cosine similarity of the encoder's sentence embeddings


@dataclass
class Explanation:
    text: str
    intent: str  # the decision: an intent or "oos"
    explained_intent: str  # whose probability the words are weighed against (the top in-scope intent)
    out_of_scope: bool
    confidence: float  # calibrated probability of the explained intent
    score_name: str  # what the out-of-scope threshold is compared with: "probability" or "energy"
    score: float
    threshold: float
    runners_up: list[tuple[str, float]]
    model_id: str
    method: str = "occlusion"
    words: list[WordWeight] = field(default_factory=list)
    neighbours: list[Neighbour] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["runners_up"] = [[label, p] for label, p in self.runners_up]
        return data

    def top_words(self, n: int = 3) -> list[str]:
        ranked = sorted(self.words, key=lambda w: -w.weight)
        return [w.word for w in ranked[:n] if w.weight > 0]


def word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in WORD.finditer(text)]


def without(text: str, spans: Sequence[tuple[int, int]], drop: Sequence[int]) -> str:
    """The text with the words at the given span indexes left out."""
    dropped = set(drop)
    return " ".join(text[s:e] for i, (s, e) in enumerate(spans) if i not in dropped)


def label_probabilities(predictor, texts: list[str], label: str) -> np.ndarray:
    """(len(texts),) calibrated probability of one label for each text."""
    index = predictor.labels.index(label)
    return softmax(predictor.logits(texts), predictor.config.temperature)[:, index]


def occlusion(predictor, text: str, label: str) -> np.ndarray:
    """(words,) probability of `label` for the whole text minus that without each word.
    All the texts go through the model in one batch."""
    spans = word_spans(text)
    texts = [text] + [without(text, spans, [i]) for i in range(len(spans))]
    p = label_probabilities(predictor, texts, label)
    return p[0] - p[1:]


def explain(
    predictor,
    text: str,
    *,
    examples: Sequence[Example] = (),
    encoder=None,
    neighbours: int = 3,
) -> Explanation:
    """Explain one decision of a loaded Predictor. With training `examples` and a
    SentenceEncoder, also the `neighbours` nearest of them."""
    if not text.strip():
        raise ValueError("nothing to explain: the text is empty")
    prediction = predictor.predict([text], top_k=4)[0]
    explained = prediction.ranking[0][0] if prediction.ranking else prediction.intent
    logits = predictor.logits([text])
    weights = occlusion(predictor, text, explained) if explained != OOS_LABEL else np.zeros(len(word_spans(text)))
    explanation = Explanation(
        text=text,
        intent=prediction.intent,
        explained_intent=explained,
        out_of_scope=prediction.out_of_scope,
        confidence=float(dict(prediction.ranking).get(explained, prediction.confidence)),
        score_name=predictor.config.oos_score,
        score=float(predictor.oos_scores(logits)[0]),
        threshold=float(predictor.threshold),
        runners_up=[(label, float(p)) for label, p in prediction.ranking[1:]],
        model_id=predictor.model_id,
        words=[
            WordWeight(text[s:e], s, e, round(float(w), 4)) for (s, e), w in zip(word_spans(text), weights, strict=True)
        ],
    )
    if examples and encoder is not None and neighbours > 0:
        explanation.neighbours = nearest_examples(encoder, text, examples, neighbours)
    return explanation


def nearest_examples(encoder, text: str, examples: Sequence[Example], k: int = 3) -> list[Neighbour]:
    """The k training examples whose sentence embeddings are closest to the text's."""
    if not examples:
        return []
    vectors = encoder.encode([e.text for e in examples])  # (examples, hidden), unit length
    query = encoder.encode([text])[0]  # (hidden,)
    similarity = vectors @ query
    best = np.argsort(-similarity)[:k]
    return [Neighbour(examples[i].text, examples[i].intent, round(float(similarity[i]), 4)) for i in best]


def intent_words(predictor, examples: Sequence[Example], top: int = 8) -> dict[str, list[tuple[str, float]]]:
    """Per intent, the words the model relies on most: occlusion weights summed over
    that intent's (held-out) examples, lower-cased, averaged per occurrence, and
    kept only where a word occurs in at least two examples (one odd example does
    not describe an intent)."""
    totals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for example in examples:
        if example.intent == OOS_LABEL or example.intent not in predictor.labels:
            continue
        spans = word_spans(example.text)
        if not spans:
            continue
        weights = occlusion(predictor, example.text, example.intent)
        for (s, e), w in zip(spans, weights, strict=True):
            word = example.text[s:e].lower().strip(".,!?;:\"'()")
            if word:
                totals[example.intent][word].append(float(w))
    result = {}
    for intent, words in totals.items():
        scored = [(word, float(np.mean(ws))) for word, ws in words.items() if len(ws) >= 2]
        scored.sort(key=lambda item: -item[1])
        result[intent] = [(word, round(weight, 4)) for word, weight in scored[:top] if weight > 0]
    return result


@dataclass
class Reliability:
    """A reliability diagram: per confidence bin, how often the model was right."""

    bins: list[dict]  # {"low", "high", "count", "confidence", "accuracy"}
    ece: float  # expected calibration error: the count-weighted gap between the two

    def to_dict(self) -> dict:
        return {"bins": self.bins, "ece": self.ece}


def reliability(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> Reliability:
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct must have the same length")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Right-closed bins, with 0 in the first: (0.9, 1.0] holds a confidence of 1.
    which = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        if count == 0:
            continue
        confidence, accuracy = float(confidences[members].mean()), float(correct[members].mean())
        ece += count / len(confidences) * abs(confidence - accuracy)
        rows.append(
            {
                "low": round(float(edges[b]), 2),
                "high": round(float(edges[b + 1]), 2),
                "count": count,
                "confidence": round(confidence, 4),
                "accuracy": round(accuracy, 4),
            }
        )
    return Reliability(rows, round(float(ece), 4))


def format_explanation(explanation: Explanation) -> str:
    """Plain text for a terminal."""
    decision = "out of scope" if explanation.out_of_scope else explanation.intent
    lines = [
        f"text:       {explanation.text}",
        f"decision:   {decision} (model {explanation.model_id})",
        f"confidence: {explanation.confidence:.3f} for {explanation.explained_intent}",
        f"rule:       {explanation.score_name} {explanation.score:.3f} "
        f"{'<' if explanation.score < explanation.threshold else '>='} threshold {explanation.threshold:.3f}",
    ]
    if explanation.runners_up:
        lines.append("runners-up: " + ", ".join(f"{label} {p:.3f}" for label, p in explanation.runners_up))
    lines.append(f"words ({explanation.method}: fall in {explanation.explained_intent}'s probability without it):")
    for word in sorted(explanation.words, key=lambda w: -w.weight):
        bar = "#" * int(round(max(word.weight, 0.0) * 40))
        lines.append(f"  {word.word:<20} {word.weight:+.3f} {bar}")
    if explanation.neighbours:
        lines.append("nearest training examples:")
        for n in explanation.neighbours:
            lines.append(f"  {n.similarity:.3f}  {n.intent:<24} {n.text}")
    return "\n".join(lines)
