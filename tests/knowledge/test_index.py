"""Retrieval and answers on a tiny real index, abstention and its threshold rule,
the index artifact, and `python -m inference kb-eval`."""

import json
import subprocess
import sys

import pytest

from inference.artifact import ArtifactError
from inference.knowledge import KnowledgeIndex, Question, choose_threshold, verify
from inference.knowledge.evaluation import Outcome
from tests.knowledge.conftest import REPO


@pytest.mark.parametrize(
    "question, article",
    [
        ("how many days do i have to return an item", "returns"),
        ("when do i get my money back", "returns"),
        ("how much is express shipping", "shipping"),
        ("forgot my pasword", "password"),
        ("my kettle broke after a year", "warranty"),
    ],
)
def test_questions_find_their_article(tiny_index, question, article):
    assert tiny_index.search(question, k=3)[0].article_id == article


def test_answer_is_the_most_relevant_sentences_with_a_citation(tiny_index):
    answer = tiny_index.answer("how long is the password reset link valid", threshold=-1.0)
    assert answer.answered
    assert answer.citation == {
        "article_id": "password",
        "title": "Resetting your password",
        "url": "https://shop.example/help/password",
    }
    assert answer.text.startswith("The reset link we send is valid for 1 hour.")
    assert "Open the reset page" not in answer.text  # an earlier, less relevant sentence is left out
    assert len(answer.text.split(". ")) <= 3


def test_answer_extraction_picks_the_sentence_from_inside_the_passage(tiny_index):
    answer = tiny_index.answer("is free shipping possible over 50 euros", threshold=-1.0)
    assert answer.article_id == "shipping"
    assert answer.text.startswith("Shipping is free on orders over EUR 50.")


def test_unrelated_questions_score_below_covered_ones(tiny_index):
    covered = [tiny_index.answer(q, threshold=-1.0).score for q in ("reset my password", "return an item")]
    unrelated = [tiny_index.answer(q, threshold=-1.0).score for q in ("tell me a joke", "what is the capital of peru")]
    assert max(unrelated) < min(covered)


def test_threshold_chosen_on_labelled_questions_makes_the_index_abstain(tiny_index):
    validation = [
        Question("how do I return something", "returns"),
        Question("express delivery price", "shipping"),
        Question("reset link not working", "password"),
        Question("is accidental damage covered", "warranty"),
        Question("what is the weather tomorrow", ""),
        Question("recommend a good film", ""),
    ]
    from inference.knowledge import ask_all

    threshold, rule = choose_threshold(ask_all(tiny_index, validation), max_wrong_rate=0.0, min_declined=1.0, z=0)
    assert "lowest threshold" in rule
    tiny_index.with_threshold(threshold, rule)
    try:
        declined = tiny_index.answer("what is the weather tomorrow")
        assert not declined.answered and declined.text == "" and declined.hits  # hits kept for review
        assert tiny_index.answer("how do I return something").answered
    finally:
        tiny_index.with_threshold(0.0, "reset")


def _outcome(score: float, right: bool, answerable: bool = True) -> Outcome:
    gold = "a" if answerable else ""
    return Outcome(Question("q", gold), ["a" if right else "b"], score, 0.0)


def test_choose_threshold_takes_the_lowest_threshold_meeting_both_limits():
    outcomes = [_outcome(0.9, True), _outcome(0.8, True), _outcome(0.7, False), _outcome(0.6, True)]
    outcomes += [_outcome(0.5, False, answerable=False), _outcome(0.3, False, answerable=False)]
    threshold, _ = choose_threshold(outcomes, max_wrong_rate=0.0, min_declined=1.0, z=0)
    # 0.7 (a wrong article) must be declined, so answering starts above it: halfway to 0.8.
    assert threshold == pytest.approx(0.75)
    threshold, _ = choose_threshold(outcomes, max_wrong_rate=0.2, min_declined=1.0, z=0)
    assert threshold == pytest.approx(0.55)  # one wrong answer of six allowed; both unanswerable declined


def test_choose_threshold_asks_a_small_sample_for_a_margin():
    # 1 wrong answer in 40 is 2.5 %, under a 5 % limit; but 40 questions cannot show
    # that the rate on new questions stays under 5 %, so the bound answers fewer.
    outcomes = [_outcome(1.0 - i / 100, True) for i in range(39)] + [_outcome(0.5, False)]
    outcomes += [_outcome(0.45 - i / 100, True) for i in range(40)]
    sample, _ = choose_threshold(outcomes, max_wrong_rate=0.05, min_declined=0.8, z=0)
    bounded, rule = choose_threshold(outcomes, max_wrong_rate=0.05, min_declined=0.8)
    assert sample < 0.45 and bounded == pytest.approx((0.62 + 0.5) / 2) and "Wilson" in rule


def test_wilson_bounds_contain_the_rate_and_narrow_with_more_questions():
    from inference.knowledge.evaluation import wilson_bounds

    low, high = wilson_bounds(9, 10)
    assert low < 0.9 < high
    low_more, high_more = wilson_bounds(90, 100)
    assert low < low_more < 0.9 < high_more < high


def test_choose_threshold_falls_back_to_most_right_minus_wrong():
    outcomes = [_outcome(0.9, False), _outcome(0.8, True), _outcome(0.7, True)]
    threshold, rule = choose_threshold(outcomes, max_wrong_rate=0.0, min_declined=1.0, z=0)
    assert threshold == pytest.approx(0.699) and "no threshold met" in rule
    # Placed below the lowest score it answers, halfway to the next lower one.
    outcomes.append(_outcome(0.5, False, answerable=False))
    threshold, _ = choose_threshold(outcomes, max_wrong_rate=0.0, min_declined=1.0, z=0)
    assert threshold == pytest.approx(0.6)


def test_saved_index_loads_verified_and_answers_the_same(tiny_index, encoder, tmp_path):
    path = tiny_index.save(tmp_path / "kb")
    config, index_id = verify(path)
    assert config.passages == len(tiny_index.passage_article) and config.settings["vector_dtype"] == "int8"
    assert index_id == tiny_index.index_id
    loaded = KnowledgeIndex.load(path, encoder=encoder)
    for q in ("express delivery cost", "warranty claim"):
        a, b = tiny_index.answer(q, threshold=-1.0), loaded.answer(q, threshold=-1.0)
        assert (a.article_id, a.text, a.url) == (b.article_id, b.text, b.url)
        assert a.score == pytest.approx(b.score, abs=1e-5)


def test_a_damaged_or_incomplete_index_is_refused(tiny_index, encoder, tmp_path):
    path = tiny_index.save(tmp_path / "kb")
    with (path / "passages.jsonl").open("a") as fh:
        fh.write("\n")
    with pytest.raises(ArtifactError, match="passages.jsonl does not match its checksum"):
        KnowledgeIndex.load(path, encoder=encoder)
    path = tiny_index.save(tmp_path / "kb2")
    (path / "vectors.npy").unlink()
    with pytest.raises(ArtifactError, match="vectors.npy is missing"):
        KnowledgeIndex.load(path, encoder=encoder)


def test_kb_eval_prints_and_writes_the_report(tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    from tests.knowledge.conftest import TINY

    for a in TINY:
        (articles / f"{a.id}.md").write_text(f"---\ntitle: {a.title}\nurl: {a.url}\n---\n{a.body}\n")
    questions = tmp_path / "q.csv"
    questions.write_text(
        "question,article_id\nhow do i return an item,returns\nexpress price,shipping\n"
        "forgot password,password\nis damage covered,warranty\ntell me a joke,\n"
    )
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "kb-eval", "--articles", str(articles), "--questions", str(questions),
         "--threshold", "0.3", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "hit@1" in proc.stdout and "p95" in proc.stdout
    report = json.loads(out.read_text())
    assert report["questions"] == 5 and report["answerable"] == 4 and report["unanswerable"] == 1
    assert report["hit@1"] == 1.0 and report["evaluated_on"] == "all questions"
    for key in ("hit@3", "mrr", "answerable_answered_right", "answerable_answered_wrong", "answerable_abstained",
                "unanswerable_answered_wrong", "unanswerable_abstained", "latency_ms_p50", "latency_ms_p95"):  # fmt: skip
        assert key in report


def test_kb_eval_names_the_bad_line_and_exits_2(tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "a.md").write_text("---\ntitle: A\n---\nSome text.\n")
    questions = tmp_path / "q.csv"
    questions.write_text("question,article_id\nfine,a\nwho,missing-article\n")
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "kb-eval", "--articles", str(articles), "--questions", str(questions)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "line 3: article_id 'missing-article' is not in the help center" in proc.stderr


def _featured(dense: float, margin: float, right: bool, answerable: bool = True) -> Outcome:
    gold = "a" if answerable else ""
    return Outcome(Question("q", gold), ["a" if right else "b"], 0.0, 0.0, {"dense": dense, "margin": margin})


def test_abstention_classifier_is_fitted_on_validation_and_weighs_what_separates(tiny_index):
    from inference.knowledge.evaluation import fit_abstention, rescore

    # Right answers: clear margins at any cosine; wrong ones: high cosine, no margin. A
    # score on the cosine alone cannot separate them; the fitted classifier must.
    outcomes = [_featured(0.5 + i / 100, 0.2 + i / 200, True) for i in range(10)]
    outcomes += [_featured(0.6 + i / 100, 0.01, False, answerable=i % 2 == 0) for i in range(10)]
    saved = (tiny_index.config.abstain_weights, tiny_index.config.abstain_bias)
    try:
        rule = fit_abstention(tiny_index, outcomes)
        assert "fitted on 20 validation questions" in rule
        weights = dict(zip(tiny_index.config.abstain_features, tiny_index.config.abstain_weights, strict=True))
        assert weights["margin"] > 0
        scores = rescore(tiny_index, outcomes)
        assert min(o.score for o in scores[:10]) > max(o.score for o in scores[10:])
        assert all(0.0 < o.score < 1.0 for o in scores)  # probabilities
    finally:
        tiny_index.config.abstain_weights, tiny_index.config.abstain_bias = saved


def test_abstention_keeps_its_default_weights_when_validation_is_too_small(tiny_index):
    from inference.knowledge.evaluation import fit_abstention

    before = (tiny_index.config.abstain_weights, tiny_index.config.abstain_bias)
    rule = fit_abstention(tiny_index, [_featured(0.9, 0.3, True), _featured(0.2, 0.0, False, answerable=False)])
    assert "default abstention weights" in rule
    assert (tiny_index.config.abstain_weights, tiny_index.config.abstain_bias) == before


def test_bad_abstention_settings_are_refused():
    from inference.knowledge import KnowledgeConfig

    with pytest.raises(ValueError, match="abstain_features"):
        KnowledgeConfig(abstain_features=("dense", "loudness"), abstain_weights=(1.0, 1.0)).validate()
    with pytest.raises(ValueError, match="one weight per"):
        KnowledgeConfig(abstain_features=("dense",), abstain_weights=(1.0, 2.0)).validate()


def test_answer_score_is_the_classifier_probability_of_its_features(tiny_index):
    answer = tiny_index.answer("reset my password", threshold=-1.0)
    assert set(answer.features) == {"dense", "margin", "fused", "agreement"}
    assert answer.score == pytest.approx(tiny_index.abstain_score(answer.features))
    assert 0.0 < answer.score < 1.0


def test_an_index_saved_before_the_fitted_score_takes_the_default_weights_threshold(tiny_index, encoder, tmp_path):
    """Format 1 saved its threshold on the old score's scale (cosine plus weighted margin,
    often above 1): read as a probability it would decline everything."""
    from inference.artifact import write_checksums
    from inference.knowledge.config import FORMAT_1_THRESHOLD

    path = tiny_index.save(tmp_path / "old")
    config = json.loads((path / "config.json").read_text())
    config["format_version"] = 1
    config["settings"]["threshold"] = 1.2
    (path / "config.json").write_text(json.dumps(config))
    write_checksums(path)

    loaded = KnowledgeIndex.load(path, encoder)
    assert loaded.config.threshold == FORMAT_1_THRESHOLD
    assert "format 1" in loaded.config.threshold_rule
    assert loaded.answer("how long is the password reset link valid").answered
