"""The knowledge base's explanation of one answer (the passages weighed, their
BM25, dense and fused scores, the threshold, the chosen sentences) and the
articles it suggests to agents, on a tiny real index."""

import json
import math

import pytest

from inference.knowledge import explain_answer, suggest_articles


@pytest.fixture
def tiny_index(tiny_index):
    """The shared tiny index, its threshold put back after the test."""
    saved = (tiny_index.config.threshold, tiny_index.config.threshold_rule)
    yield tiny_index
    tiny_index.with_threshold(*saved)


def test_an_answer_is_explained_by_its_passages_scores_threshold_and_sentences(tiny_index):
    tiny_index.with_threshold(0.3, "test")
    question = "how long is the password reset link valid"
    data = explain_answer(tiny_index, question)
    answer = tiny_index.answer(question, k=5)

    json.dumps(data)  # stored as JSON
    assert data["answered"] is True and data["score"] == round(answer.score, 4)
    assert (data["threshold"], data["threshold_rule"]) == (0.3, "test")
    passages = data["passages"]
    assert [p["article_id"] for p in passages] == [h.article_id for h in answer.hits]
    assert passages[0]["chosen"] and not any(p["chosen"] for p in passages[1:])
    for passage, hit in zip(passages, answer.hits, strict=True):
        assert (passage["bm25"], passage["dense"], passage["fused"]) == (
            round(hit.bm25, 4),
            round(hit.dense, 4),
            round(hit.fused, 4),
        )
        assert passage["text"] in tiny_index.passages[hit.passage].text or passage["text"].endswith("…")
    fused = [p["fused"] for p in passages]
    assert fused == sorted(fused, reverse=True)
    assert passages[0]["bm25"] > 0 and passages[0]["dense"] > passages[-1]["dense"]
    # The abstention score is the logistic regression over the listed features.
    rule = data["score_rule"]
    terms = {t["feature"]: t for t in rule["terms"]}
    assert terms["dense"]["value"] == passages[0]["dense"]
    z = rule["bias"] + sum(t["weight"] * t["value"] for t in rule["terms"])
    assert abs(1 / (1 + math.exp(-z)) - data["score"]) < 1e-3
    chosen = data["chosen"]
    assert chosen["article_id"] == "password" and chosen["text"] == answer.text
    assert chosen["sentences"][0] == "The reset link we send is valid for 1 hour."


def test_a_declined_question_shows_the_best_passage_score_below_the_threshold(tiny_index):
    tiny_index.with_threshold(50.0, "test")
    data = explain_answer(tiny_index, "can i pay with bitcoin")
    assert data["answered"] is False and data["chosen"] is None
    assert data["score"] < data["threshold"] == 50.0
    assert data["passages"] and not any(p["chosen"] for p in data["passages"])


def test_agents_get_the_best_articles_with_the_passage_that_matched(tiny_index):
    found = suggest_articles(tiny_index, "my parcel is late, how long does express delivery take", k=2)
    assert [s["article_id"] for s in found][0] == "shipping" and len(found) == 2
    assert found[0]["url"] == "https://shop.example/help/shipping"
    assert "Express delivery" in found[0]["snippet"]
    assert found[0]["score"] >= found[1]["score"]
    assert suggest_articles(tiny_index, "   ") == []
