"""Explanations of the intent model's decisions, on a real (small) model."""

import random
import statistics

import pytest

from inference import Example, Predictor
from inference.intents.explain import (
    explain,
    format_explanation,
    intent_words,
    label_probabilities,
    nearest_examples,
    reliability,
    without,
    word_spans,
)

# Customer questions worded unlike the demo's training examples.
QUESTIONS = [
    "hey could you tell me where my parcel is right now",
    "i would like to send this jacket back and get my money",
    "which cards and wallets can i use to pay at checkout",
    "my password stopped working and i cannot sign in anymore",
    "the blender arrived broken with a cracked jug",
    "how many days does delivery to my flat usually take",
    "can you ship my order over to canada please",
    "i want to cancel the order i placed this morning",
    "is the red hoodie in medium back in stock soon",
    "please take me off your weekly newsletter emails",
    "what hours is your shop open on saturdays",
    "my discount code says it is invalid at checkout",
]


@pytest.fixture(scope="module")
def predictor(demo_model_dir):
    return Predictor.load(demo_model_dir)


def test_removing_the_top_attributed_words_lowers_the_intent_more_than_removing_random_words(predictor):
    rng = random.Random(13)
    top_falls, random_falls, wins = [], [], 0
    for text in QUESTIONS:
        explanation = explain(predictor, text)
        label, spans = explanation.explained_intent, word_spans(text)
        k = max(1, len(spans) // 4)
        top = sorted(range(len(spans)), key=lambda i: -explanation.words[i].weight)[:k]
        whole = label_probabilities(predictor, [text], label)[0]
        top_fall = whole - label_probabilities(predictor, [without(text, spans, top)], label)[0]
        draws = [without(text, spans, rng.sample(range(len(spans)), k)) for _ in range(20)]
        random_fall = whole - float(label_probabilities(predictor, draws, label).mean())
        top_falls.append(top_fall)
        random_falls.append(random_fall)
        wins += top_fall > random_fall
    assert statistics.mean(top_falls) > 2 * statistics.mean(random_falls)
    assert wins >= len(QUESTIONS) - 2, (top_falls, random_falls)


def test_an_explanation_carries_the_decision_rule_as_numbers(predictor):
    explanation = explain(predictor, "where is my package")
    prediction = predictor.predict(["where is my package"], top_k=4)[0]
    assert explanation.intent == prediction.intent
    assert explanation.explained_intent == prediction.ranking[0][0]
    assert explanation.threshold == predictor.threshold
    assert explanation.score_name == predictor.config.oos_score
    assert explanation.out_of_scope == (explanation.intent == "oos")
    assert [label for label, _ in explanation.runners_up] == [label for label, _ in prediction.ranking[1:]]
    assert explanation.model_id == predictor.model_id
    assert [w.word for w in explanation.words] == ["where", "is", "my", "package"]
    assert explanation.words[3].start == len("where is my ")
    data = explanation.to_dict()
    assert data["words"][0]["word"] == "where" and data["runners_up"][0][0] == prediction.ranking[1][0]


def test_an_out_of_scope_decision_is_explained_against_its_best_candidate(predictor):
    explanation = explain(predictor, "what is the boiling point of tungsten in kelvin")
    assert explanation.out_of_scope and explanation.intent == "oos"
    assert explanation.explained_intent != "oos"
    assert explanation.score < explanation.threshold
    assert "out of scope" in format_explanation(explanation)


def test_an_empty_text_is_refused(predictor):
    with pytest.raises(ValueError, match="empty"):
        explain(predictor, "   ")


class WordsAsVectors:
    """A stand-in encoder for the nearest-neighbour arithmetic: bag of words, unit length."""

    def encode(self, texts):
        import numpy as np

        vocab = sorted({w for t in texts + self.corpus for w in t.split()})
        out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                out[row, vocab.index(word)] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_the_nearest_examples_are_the_most_similar_ones_in_order():
    examples = [Example("track my parcel", "order_status"), Example("reset password", "password_reset")]
    examples.append(Example("track parcel now please", "order_status"))
    encoder = WordsAsVectors()
    encoder.corpus = [e.text for e in examples] + ["track my parcel please"]
    found = nearest_examples(encoder, "track my parcel please", examples, k=2)
    assert [n.text for n in found] == ["track my parcel", "track parcel now please"]
    assert found[0].similarity >= found[1].similarity


def test_the_words_an_intent_relies_on_come_from_its_examples(predictor):
    examples = [
        Example("where is my parcel", "order_status"),
        Example("where is my order now", "order_status"),
        Example("has my parcel shipped yet", "order_status"),
    ]
    words = intent_words(predictor, examples)
    assert set(words) == {"order_status"}
    assert words["order_status"], "no word was found to matter"
    assert {w for w, _ in words["order_status"]} <= {"where", "is", "my", "parcel", "order", "now"}


def test_reliability_bins_and_the_expected_calibration_error():
    confidences = [0.95, 0.95, 0.95, 0.95, 0.55, 0.55]
    correct = [True, True, True, False, True, False]
    result = reliability(confidences, correct, bins=10)
    assert [(b["low"], b["high"], b["count"]) for b in result.bins] == [(0.5, 0.6, 2), (0.9, 1.0, 4)]
    # |0.95 - 0.75| * 4/6 + |0.55 - 0.5| * 2/6
    assert result.ece == pytest.approx(0.2 * 4 / 6 + 0.05 * 2 / 6, abs=1e-4)
    assert reliability([1.0], [True]).bins[-1]["high"] == 1.0
    with pytest.raises(ValueError):
        reliability([0.5], [True, False])


def test_the_cli_prints_the_words_the_rule_and_the_nearest_examples(demo_model_dir, tmp_path, capsys):
    from inference.cli import main

    examples = tmp_path / "train.csv"
    examples.write_text("text,intent\nwhere is my order,order_status\nreset my password,password_reset\n")
    assert main(["explain", "--model", str(demo_model_dir), "--examples", str(examples), "where is my parcel"]) == 0
    out = capsys.readouterr().out
    assert "decision:   order_status" in out and "threshold" in out
    assert "nearest training examples:" in out and "order_status" in out.split("nearest training examples:")[1]
    assert main(["explain", "--model", str(demo_model_dir), "--json", "where is my parcel"]) == 0
    assert '"explained_intent": "order_status"' in capsys.readouterr().out


def test_the_cli_refuses_an_empty_text_with_status_2(demo_model_dir, capsys):
    from inference.cli import main

    assert main(["explain", "--model", str(demo_model_dir), " "]) == 2
    assert "error: nothing to explain" in capsys.readouterr().err
