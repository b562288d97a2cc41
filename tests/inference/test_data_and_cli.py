"""Input checking: each kind of bad file is rejected with its line and reason,
by the library and by the command line (exit code 2, nothing written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inference import DataError, Example, load_examples, validate_examples
from inference.cli import main
from inference.intents.calibration import choose_oos_rule, choose_threshold, fit_temperature, oos_score, softmax
from inference.intents.training import stratified_split

REPO = Path(__file__).resolve().parents[2]
GOOD_CSV = "text,intent\nwhat is my balance,check_balance\nplay jazz,play_music\n"

BAD_FILES = {
    # name: (file name, content, expected line, reason fragment)
    "missing column": ("a.csv", b"text,label\nhello,greet\n", 1, "missing column 'intent'"),
    "empty text": ("b.csv", b"text,intent\nhello,greet\n  ,greet\nbye,farewell\n", 3, "empty text"),
    "one intent": ("c.csv", b"text,intent\nhello,greet\nhi,greet\n", None, "only one intent"),
    "encoding": ("d.csv", b"text,intent\nhello,greet\ncaf\xe9,order\n", 3, "unreadable encoding"),
    "bad json": ("e.jsonl", b'{"text": "hi", "intent": "greet"}\n{"text": "bye", "intent": \n', 2, "bad JSON"),
    "json missing key": (
        "f.jsonl",
        b'{"text": "hi", "intent": "greet"}\n{"text": "bye"}\n',
        2,
        "missing column 'intent'",
    ),
}


def test_good_csv_and_jsonl_load(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("\ufeff" + GOOD_CSV, encoding="utf-8")  # BOM from spreadsheets
    (tmp_path / "t.jsonl").write_text('{"text": "hi there", "intent": "greet"}\n\n{"text": "bye", "intent": "bye"}\n')
    assert load_examples(tmp_path / "t.csv") == [
        Example("what is my balance", "check_balance"),
        Example("play jazz", "play_music"),
    ]
    assert [ex.intent for ex in load_examples(tmp_path / "t.jsonl")] == ["greet", "bye"]


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_names_line_and_reason(tmp_path: Path, kind: str) -> None:
    name, content, line, reason = BAD_FILES[kind]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError) as info:
        load_examples(tmp_path / name)
    assert info.value.line == line
    assert reason in str(info.value) and str(info.value).startswith(name)


def test_validate_examples_checks_in_memory_lists() -> None:
    validate_examples([Example("a", "x"), Example("b", "y")])
    with pytest.raises(DataError, match="examples line 2: empty text"):
        validate_examples([Example("a", "x"), Example(" ", "y")])
    with pytest.raises(DataError, match="only one intent"):
        validate_examples([Example("a", "x"), Example("b", "x"), Example("c", "oos")])


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_cli_train_rejects_bad_file_and_writes_nothing(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name, content, line, reason = BAD_FILES[kind]
    (tmp_path / name).write_bytes(content)
    out = tmp_path / "model"
    code = main(["train", "--train", str(tmp_path / name), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert reason in err and (line is None or f"line {line}" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_cli_entry_point_exit_code(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_bytes(BAD_FILES["empty text"][1])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inference",
            "train",
            "--train",
            str(tmp_path / "bad.csv"),
            "--out",
            str(tmp_path / "m"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "bad.csv line 3: empty text" in result.stderr
    assert not (tmp_path / "m").exists()


def test_cli_predict_and_evaluate(fast_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(fast_model), "block my credit card it is missing"]) == 0
    assert "lost_card" in capsys.readouterr().out
    test = tmp_path / "test.csv"
    test.write_text("text,intent\nplay rock songs,play_music\nweather forecast for paris,weather\n")
    assert main(["evaluate", "--model", str(fast_model), "--test", str(test), "--json", str(tmp_path / "r.json")]) == 0
    assert "accuracy" in capsys.readouterr().out and (tmp_path / "r.json").is_file()


def test_cli_refuses_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--model", str(tmp_path / "nope"), "hello"]) == 2
    assert "not a model directory" in capsys.readouterr().err


def test_stratified_split_keeps_every_intent_in_training() -> None:
    examples = [Example(f"{i} {k}", f"intent{i}") for i in range(4) for k in range(i + 1)]
    train, val = stratified_split(examples, 0.3, seed=1)
    assert {ex.intent for ex in train} == {f"intent{i}" for i in range(4)}
    assert "intent0" not in {ex.intent for ex in val}  # its only example stays in training
    assert sorted(train + val, key=lambda e: e.text) == sorted(examples, key=lambda e: e.text)


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    true_t = 2.0
    targets = np.array([rng.choice(5, p=p) for p in softmax(logits, true_t)])
    assert fit_temperature(logits, targets) == pytest.approx(true_t, rel=0.1)


def _confident(conf: np.ndarray) -> np.ndarray:
    rest = np.repeat(((1 - conf) / 9)[:, None], 9, axis=1)
    return np.concatenate([conf[:, None], rest], axis=1)  # (n, 10), label 0 on top while conf > 0.1


def test_threshold_without_oos_rejects_the_chosen_share_of_in_scope_queries() -> None:
    conf = np.linspace(0.2, 0.7, 101)
    gold = np.where(np.arange(101) % 10 == 0, 1, 0)  # every tenth answer is wrong: it counts too
    decision = choose_threshold(_confident(conf), gold, np.zeros(101, dtype=bool), None, in_scope_reject_rate=0.1)
    assert decision.threshold == pytest.approx(0.245)  # split-conformal: 9 of 101 below, 10 / 102 expected
    assert decision.oos_recall is None


def test_threshold_without_oos_never_rejects_likely_right_answers() -> None:
    conf = np.linspace(0.95, 1.0, 11)  # an easy validation set: everything near-certain
    decision = choose_threshold(_confident(conf), np.zeros(11, dtype=int), np.zeros(11, dtype=bool), None, 0.1)
    assert decision.threshold == 0.5


def test_threshold_with_oos_separates_the_groups() -> None:
    in_conf, oos_conf = np.full(50, 0.9), np.full(10, 0.4)
    conf = np.concatenate([in_conf, oos_conf])
    probs = _confident(conf)
    is_oos = np.array([False] * 50 + [True] * 10)
    gold = np.where(is_oos, -1, 0)
    decision = choose_threshold(probs, gold, is_oos, None, in_scope_reject_rate=0.02)
    assert 0.4 < decision.threshold <= 0.9
    assert decision.in_scope_accuracy == 1.0 and decision.oos_recall == 1.0


def test_threshold_with_oos_stays_within_the_in_scope_budget() -> None:
    # 100 in-scope, correct, confidence 0.30..0.99; 10 oos at 0.5: catching them all
    # would reject ~30% of good answers, more than the 5% budget.
    conf = np.concatenate([np.linspace(0.3, 0.99, 100), np.full(10, 0.5)])
    is_oos = np.array([False] * 100 + [True] * 10)
    decision = choose_threshold(_confident(conf), np.where(is_oos, -1, 0), is_oos, None, in_scope_reject_rate=0.05)
    assert decision.in_scope_accuracy >= 0.95
    assert decision.threshold < 0.5 and decision.oos_recall == 0.0


def _scaled(peak: float, shift: float, n: int) -> np.ndarray:
    """n rows of 3 logits [peak - shift, -shift, -shift]: the same softmax for any
    shift, but an energy (logsumexp) lower by `shift`."""
    return np.tile([peak - shift, -shift, -shift], (n, 1)).astype(np.float64)


def test_energy_rule_is_chosen_where_it_separates_and_probability_cannot() -> None:
    # In-scope and oos queries with identical softmax outputs; the oos ones have
    # logits 3 lower everywhere: only the energy score can tell them apart.
    logits = np.concatenate([_scaled(4.0, 0.0, 60), _scaled(4.0, 3.0, 20)])
    is_oos = np.array([False] * 60 + [True] * 20)
    gold = np.where(is_oos, -1, 0)
    decision, candidates = choose_oos_rule(logits, 1.0, gold, is_oos, None, in_scope_reject_rate=0.01)
    assert [c.score for c in candidates] == ["probability", "energy"]
    assert candidates[0].oos_recall == 0.0
    assert decision.score == "energy" and decision.oos_recall == 1.0 and decision.in_scope_accuracy == 1.0
    energy = oos_score(logits, 1.0, None, "energy")
    assert energy[:60] == pytest.approx(np.log(np.exp(4.0) + 2))
    assert (energy[60:] < decision.threshold).all() and (energy[:60] >= decision.threshold).all()


def test_energy_leaves_out_the_oos_label_and_follows_the_temperature() -> None:
    logits = np.array([[2.0, 9.0, 1.0]])  # label 1 is "oos"
    assert oos_score(logits, 2.0, 1, "energy")[0] == pytest.approx(np.log(np.exp(1.0) + np.exp(0.5)))
    assert oos_score(logits, 1.0, 1, "probability")[0] == pytest.approx(softmax(logits)[0, 0])
    with pytest.raises(ValueError, match="oos score must be one of"):
        oos_score(logits, 1.0, 1, "distance")


def test_probability_rule_is_kept_on_a_tie_and_without_oos_validation() -> None:
    # [5, 0, 0] against [1, 0, 0]: both probability and energy separate the groups.
    logits = np.concatenate([_scaled(5.0, 0.0, 50), _scaled(1.0, 0.0, 10)])
    is_oos = np.array([False] * 50 + [True] * 10)
    decision, candidates = choose_oos_rule(logits, 1.0, np.where(is_oos, -1, 0), is_oos, None, 0.02)
    assert len(candidates) == 2 and candidates[1].balanced_accuracy == decision.balanced_accuracy == 1.0
    assert decision.score == "probability"
    decision, candidates = choose_oos_rule(logits[:50], 1.0, np.zeros(50, dtype=int), is_oos[:50], None, 0.02)
    assert [c.score for c in candidates] == ["probability"] and decision.threshold <= 0.5


def test_cli_runs_subcommands_added_by_other_packages(capsys: pytest.CaptureFixture[str]) -> None:
    def add_subparsers(subparsers) -> None:  # what a model kind's cli.py provides
        hello = subparsers.add_parser("train-knowledge")
        hello.add_argument("--train", required=True)
        hello.set_defaults(func=lambda args: print(f"training knowledge on {args.train}") or 0)

    assert main(["train-knowledge", "--train", "docs.jsonl"], extra=[add_subparsers]) == 0
    assert capsys.readouterr().out == "training knowledge on docs.jsonl\n"


def test_cli_has_the_commands_of_every_model_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "{train,evaluate,predict,explain,train-replies,suggest" in capsys.readouterr().out
