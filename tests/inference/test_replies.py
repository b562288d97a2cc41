"""Reply suggestions: data loading, training, artifacts and both suggesters, on toy data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import inference
from inference.replies import (
    ArtifactError,
    ReplyDataError,
    ReplyModelError,
    ReplySuggester,
    ReplyTrainConfig,
    RetrievalSuggester,
    Suggestion,
    SuggestionTimeout,
    load_reply_pairs,
    load_suggester,
    train_reply_model,
)
from inference.replies.config import bundled_base_model
from inference.replies.data import build_source, parse_context, parse_pair
from inference.replies.seq2seq import load_tokenizer
from inference.replies.suggestions import dedupe, normalise
from inference.replies.text import tidy_wordpiece

TOY = {
    "where is my order": "Let me check the tracking for you.",
    "i want a refund": "I can start a refund now.",
    "how do i reset my password": "Use the reset link on the login page.",
    "can i change my delivery address": "Sure, what is the new address?",
    "do you ship abroad": "Yes, we ship to most countries.",
    "what are your opening hours": "We are open nine to five on weekdays.",
    "my card was charged twice": "Sorry, I will reverse the duplicate charge.",
    "i need to talk to a human": "I am connecting you to an agent.",
}


def customer(text: str) -> list[dict[str, str]]:
    return [{"speaker": "customer", "text": text}]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny tensors gain nothing from a second thread, and on a shared 2-core machine a
    # second thread waiting for a busy core makes every op slower, not faster.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy_pairs():
    return [parse_pair({"context": customer(c), "reply": r}) for c, r in TOY.items()]


@pytest.fixture(scope="module")
def seq2seq_dir(tmp_path_factory, toy_pairs) -> Path:
    # Small and quick: a frozen pretrained encoder and a one-layer decoder still have
    # to learn cross-attention to tell the eight contexts apart.
    config = ReplyTrainConfig(
        epochs=70,
        batch_size=8,
        learning_rate=1e-3,
        warmup_ratio=0.1,
        max_source_len=16,
        max_target_len=16,
        decoder_layers=1,
        freeze_encoder_layers=6,
        min_steps=0,
    )
    out = tmp_path_factory.mktemp("replies") / "seq2seq"
    return train_reply_model(toy_pairs, out, config)


@pytest.fixture(scope="module")
def retrieval_dir(tmp_path_factory, toy_pairs) -> Path:
    out = tmp_path_factory.mktemp("replies") / "retrieval"
    return train_reply_model(toy_pairs, out, ReplyTrainConfig(kind="retrieval"))


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Data


def test_load_reply_pairs_reads_valid_lines_and_skips_blank_ones(tmp_path):
    good = json.dumps({"context": customer("hi"), "reply": "Hello!"})
    pairs = load_reply_pairs(write_lines(tmp_path / "a.jsonl", [good, "", good]))
    assert len(pairs) == 2
    assert pairs[0].context[0].speaker == "customer"
    assert pairs[0].reply == "Hello!"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"reply": "x"}), "missing field 'context'"),
        (json.dumps({"context": customer("hi")}), "missing field 'reply'"),
        (json.dumps({"context": [], "reply": "x"}), "non-empty list"),
        (json.dumps({"context": customer("hi"), "reply": "  "}), "non-empty string"),
        (
            json.dumps({"context": [{"speaker": "bot", "text": "hi"}], "reply": "x"}),
            "speaker",
        ),
        (
            json.dumps({"context": [{"speaker": "agent", "text": 3}], "reply": "x"}),
            "text",
        ),
    ],
)
def test_bad_jsonl_line_is_reported_with_its_line_number(tmp_path, bad, reason):
    good = json.dumps({"context": customer("hi"), "reply": "Hello!"})
    path = write_lines(tmp_path / "bad.jsonl", [good, good, bad])
    with pytest.raises(ReplyDataError, match=rf"bad\.jsonl:3: .*{reason}"):
        load_reply_pairs(path)


def test_source_is_speaker_tagged_and_keeps_the_newest_turns():
    tokenizer = load_tokenizer(bundled_base_model())
    turns = parse_context(
        [
            {"speaker": "customer", "text": "an old question " * 10},
            {"speaker": "agent", "text": "an old answer"},
            {"speaker": "customer", "text": "my newest question"},
        ]
    )
    full = build_source(turns, tokenizer, max_tokens=128, max_turns=4)
    assert full.startswith("customer: an old question")
    assert full.endswith("agent: an old answer customer: my newest question")
    short = build_source(turns, tokenizer, max_tokens=16, max_turns=4)
    # The long oldest turn is dropped whole; the two newest still fit.
    assert short == "agent: an old answer customer: my newest question"
    tiny = build_source(turns, tokenizer, max_tokens=6, max_turns=4)
    assert tiny.endswith("newest question")
    assert len(tokenizer(tiny)["input_ids"]) <= 6


# Suggestions


def test_dedupe_ignores_case_punctuation_and_spacing_and_keeps_at_most_n():
    candidates = [
        Suggestion("Sure, what is the new address?", -0.1),
        Suggestion("sure what is the  new address", -0.2),
        Suggestion("SURE! What is the new address.", -0.3),
        Suggestion("", -0.35),
        Suggestion("Anything else?", -0.4),
        Suggestion("Have a nice day.", -0.5),
        Suggestion("Goodbye.", -0.6),
    ]
    kept = dedupe(candidates, n=3)
    assert [s.text for s in kept] == [
        "Sure, what is the new address?",
        "Anything else?",
        "Have a nice day.",
    ]
    assert normalise("Hello, World!") == normalise("hello world")


def test_wordpiece_output_is_joined_and_recased():
    decoded = "your table at 5 : 30 pm is booked. i ' ll send $ 50. 00 for the check - in."
    assert tidy_wordpiece(decoded) == ("Your table at 5:30 pm is booked. I'll send $50.00 for the check-in.")
    assert tidy_wordpiece("ok , see you", restore_case=False) == "ok, see you"


# Seq2seq


def test_tiny_training_run_reproduces_the_replies_it_was_trained_on(seq2seq_dir):
    suggester = ReplySuggester.load(seq2seq_dir)
    right = 0
    for context, reply in TOY.items():
        first = suggester.suggest(customer(context), n=3)[0]
        right += normalise(first.text) == normalise(reply)
    # The model must have learned to read the context: one fixed reply gets 1 of 8.
    assert right >= 7


def test_warm_start_builds_a_shallow_decoder_with_cross_attention_copied_from_self_attention():
    from inference.replies.seq2seq import build_model, is_new_weight

    base = bundled_base_model()
    config = ReplyTrainConfig(decoder_layers=2)
    model = build_model(base, "encoder-decoder", config, load_tokenizer(base))
    layers = model.decoder.bert.encoder.layer
    assert len(layers) == 2
    assert model.config.decoder.add_cross_attention
    query = layers[1].crossattention.self.query.weight
    assert torch.equal(query, layers[1].attention.self.query.weight)
    assert query.data_ptr() != layers[1].attention.self.query.weight.data_ptr()
    assert model.generation_config.decoder_start_token_id == 101  # [CLS]
    assert model.generation_config.eos_token_id == 102  # [SEP]
    assert is_new_weight("decoder.bert.encoder.layer.0.crossattention.self.key.weight")
    assert not is_new_weight("encoder.encoder.layer.0.attention.self.key.weight")


def test_decoder_vocabulary_is_cut_to_the_word_pieces_of_the_replies(seq2seq_dir):
    tokenizer = load_tokenizer(seq2seq_dir / "tokenizer")
    vocab = json.loads((seq2seq_dir / "decoder_vocab.json").read_text())
    pieces = {i for reply in TOY.values() for i in tokenizer(reply)["input_ids"]}
    assert set(vocab) == pieces | {tokenizer.pad_token_id, tokenizer.unk_token_id}
    assert vocab == sorted(vocab)
    suggester = ReplySuggester.load(seq2seq_dir)
    assert suggester.model.decoder.get_output_embeddings().out_features == len(vocab) < len(tokenizer) / 100
    assert suggester.model.generation_config.eos_token_id == vocab.index(tokenizer.sep_token_id)
    metrics = json.loads((seq2seq_dir / "metrics.json").read_text())
    assert metrics["decoder_vocab"] == len(vocab) and metrics["encoder_cached"] is True


def test_cached_encoder_states_give_the_loss_of_running_the_encoder():
    from transformers.modeling_outputs import BaseModelOutput

    from inference.replies.seq2seq import build_model
    from inference.replies.train import _encode_sources, _pad, _pad_states

    base = bundled_base_model()
    tokenizer = load_tokenizer(base)
    model = build_model(base, "encoder-decoder", ReplyTrainConfig(decoder_layers=1), tokenizer).eval()
    sources = tokenizer(["where is my order", "hi", "i want a refund for the lamp i bought"])["input_ids"]
    labels = _pad([tokenizer("thanks")["input_ids"][1:]] * 3, -100)
    input_ids = _pad(sources, tokenizer.pad_token_id)
    with torch.inference_mode():
        direct = model(input_ids=input_ids, attention_mask=(input_ids != 0).long(), labels=labels).loss
        states, mask = _pad_states(_encode_sources(model, sources, tokenizer.pad_token_id, torch.device("cpu")))
        cached = model(encoder_outputs=BaseModelOutput(last_hidden_state=states), attention_mask=mask, labels=labels)
    assert torch.allclose(direct, cached.loss, atol=1e-5)


def test_full_vocabulary_and_a_trainable_encoder_still_train(tmp_path, toy_pairs):
    config = ReplyTrainConfig(
        epochs=2, batch_size=8, max_source_len=16, max_target_len=16, decoder_layers=1, min_steps=0,
        freeze_encoder_layers=4, decoder_vocab="full",
    )  # fmt: skip
    out = train_reply_model(toy_pairs, tmp_path / "full", config)
    assert not (out / "decoder_vocab.json").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["encoder_cached"] is False and metrics["decoder_vocab"] == 30522
    assert ReplySuggester.load(out).suggest(customer("hi"), n=2)


def test_a_small_data_set_gets_epochs_up_to_the_minimum_steps(tmp_path, toy_pairs):
    config = ReplyTrainConfig(
        epochs=1, min_steps=5, batch_size=4, max_source_len=16, max_target_len=16, decoder_layers=1,
    )  # fmt: skip
    metrics = json.loads((train_reply_model(toy_pairs, tmp_path / "m", config) / "metrics.json").read_text())
    assert (metrics["steps"], metrics["epochs"]) == (6, 3)  # 2 steps an epoch, 3 epochs reach 5


def test_unknown_decoder_vocabulary_choice_is_refused():
    with pytest.raises(ValueError, match="decoder_vocab must be one of replies, full"):
        ReplyTrainConfig(decoder_vocab="tiny")


def test_seq2seq_suggestions_are_distinct_scored_and_at_most_n(seq2seq_dir):
    suggester = load_suggester(seq2seq_dir)
    assert isinstance(suggester, ReplySuggester)
    for n in (1, 3):
        suggestions = suggester.suggest(customer("where is my order"), n=n)
        assert 1 <= len(suggestions) <= n
        keys = [normalise(s.text) for s in suggestions]
        assert len(set(keys)) == len(keys)
        scores = [s.score for s in suggestions]
        assert scores == sorted(scores, reverse=True)
        assert all(s <= 0 for s in scores)
    greedy = suggester.suggest(customer("where is my order"), n=3, num_beams=1)
    assert len(greedy) == 1
    assert normalise(greedy[0].text) == normalise(TOY["where is my order"])
    assert -1.0 < greedy[0].score <= 0


def test_seq2seq_artifact_records_how_it_was_built(seq2seq_dir, toy_pairs):
    config = json.loads((seq2seq_dir / "config.json").read_text())
    assert config["kind"] == "seq2seq"
    assert config["architecture"] == "encoder-decoder"
    assert config["train"]["decoder_layers"] == 1
    assert config["train"]["seed"] == 0
    assert config["versions"]["torch"] == torch.__version__
    assert len(config["data_hash"]) == 64
    assert (seq2seq_dir / "model" / "model.safetensors").is_file()
    assert json.loads((seq2seq_dir / "metrics.json").read_text())["steps"] == 70
    checksums = json.loads((seq2seq_dir / "checksums.json").read_text())
    assert checksums["algorithm"] == "sha256" and "model/model.safetensors" in checksums["files"]
    assert not list(seq2seq_dir.parent.glob(".seq2seq.tmp-*"))


def test_round_trip_gives_the_same_suggestions(seq2seq_dir, tmp_path):
    copy = shutil.copytree(seq2seq_dir, tmp_path / "copy")
    context = customer("i want a refund")
    assert ReplySuggester.load(copy).suggest(context) == ReplySuggester.load(seq2seq_dir).suggest(context)


def test_damaged_artifact_is_refused(seq2seq_dir, tmp_path):
    copy = shutil.copytree(seq2seq_dir, tmp_path / "damaged")
    weights = copy / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="model/model.safetensors does not match its checksum"):
        ReplySuggester.load(copy)
    (copy / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="damaged"):
        load_suggester(copy)


def test_existing_artifact_is_not_overwritten_by_default(seq2seq_dir, toy_pairs):
    with pytest.raises(ArtifactError, match="not empty"):
        train_reply_model(toy_pairs, seq2seq_dir, ReplyTrainConfig(kind="retrieval"))


def test_generation_past_its_time_limit_raises(seq2seq_dir):
    suggester = ReplySuggester.load(seq2seq_dir)
    with pytest.raises(SuggestionTimeout):
        suggester.suggest(customer("where is my order"), timeout_s=1e-6)


def test_bad_context_is_refused_with_a_reason(seq2seq_dir):
    with pytest.raises(ReplyDataError, match="speaker"):
        ReplySuggester.load(seq2seq_dir).suggest([{"speaker": "nobody", "text": "hi"}])


def test_native_seq2seq_base_trains_and_suggests(tmp_path, toy_pairs):
    from transformers import T5Config, T5ForConditionalGeneration

    # A tiny random T5 with the bundled BERT tokenizer stands in for t5/bart, which
    # cannot be downloaded here: it proves the native seq2seq branch end to end.
    tokenizer = load_tokenizer(bundled_base_model())
    base = tmp_path / "tiny-t5"
    t5_config = T5Config(
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        d_ff=64,
        d_kv=8,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5ForConditionalGeneration(t5_config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    config = ReplyTrainConfig(
        base_model=str(base),
        epochs=2,
        min_steps=0,
        batch_size=4,
        max_source_len=16,
        max_target_len=8,
    )
    out = train_reply_model(toy_pairs, tmp_path / "t5-replies", config)
    assert json.loads((out / "config.json").read_text())["architecture"] == "native-seq2seq"
    suggestions = load_suggester(out).suggest(customer("where is my order"), n=3)
    assert len(suggestions) <= 3
    assert all(isinstance(s, Suggestion) for s in suggestions)


def test_base_model_comes_from_the_environment_when_not_given(monkeypatch, tmp_path, toy_pairs):
    base = tmp_path / "operator-base"
    base.symlink_to(bundled_base_model())
    monkeypatch.setenv("REPLY_BASE_MODEL", str(base))
    out = train_reply_model(toy_pairs[:2], tmp_path / "out", ReplyTrainConfig(kind="retrieval"))
    assert json.loads((out / "config.json").read_text())["base_model"] == str(base)


# Retrieval


def test_retrieval_returns_the_reply_of_a_paraphrased_context(retrieval_dir):
    suggester = load_suggester(retrieval_dir)
    assert isinstance(suggester, RetrievalSuggester)
    suggestions = suggester.suggest(customer("has my parcel shipped yet? where is it?"), n=3)
    assert suggestions[0].text == TOY["where is my order"]
    suggestions = suggester.suggest(customer("you took the money from my card two times"), n=3)
    assert suggestions[0].text == TOY["my card was charged twice"]
    assert len(suggestions) == 3
    assert [s.score for s in suggestions] == sorted((s.score for s in suggestions), reverse=True)
    assert -1.0 <= suggestions[-1].score <= suggestions[0].score <= 1.0


def test_retrieval_round_trip_and_damage_check(retrieval_dir, tmp_path):
    copy = shutil.copytree(retrieval_dir, tmp_path / "copy")
    context = customer("i forgot my password")
    assert RetrievalSuggester.load(copy).suggest(context) == RetrievalSuggester.load(retrieval_dir).suggest(context)
    replies = copy / "replies.json"
    replies.write_text(replies.read_text().replace("refund", "refund!"))
    with pytest.raises(ArtifactError, match="replies.json does not match its checksum"):
        RetrievalSuggester.load(copy)


def test_reply_artifact_sealed_in_the_old_flat_checksum_format_still_loads(retrieval_dir, tmp_path):
    copy = Path(shutil.copytree(retrieval_dir, tmp_path / "flat"))
    files = json.loads((copy / "checksums.json").read_text())["files"]
    (copy / "checksums.json").write_text(json.dumps(files))  # {"file": "sha"}, as before the shared toolkit
    context = customer("i forgot my password")
    assert load_suggester(copy).suggest(context) == load_suggester(retrieval_dir).suggest(context)
    replies = copy / "replies.json"
    replies.write_text(replies.read_text().replace("refund", "refund!"))
    with pytest.raises(inference.ArtifactError, match="replies.json does not match its checksum") as refused:
        load_suggester(copy)
    assert isinstance(refused.value, ReplyModelError)  # callers catching the reply errors still catch it


def test_retrieval_deduplicates_identical_replies(tmp_path):
    same = "Is there anything else I can help you with?"
    pairs = [parse_pair({"context": customer(f"thanks {i}"), "reply": same + "!" * (i % 2)}) for i in range(6)]
    pairs.append(parse_pair({"context": customer("thanks a lot"), "reply": "Goodbye."}))
    out = train_reply_model(pairs, tmp_path / "r", ReplyTrainConfig(kind="retrieval"))
    suggestions = load_suggester(out).suggest(customer("thanks"), n=3)
    assert sorted(normalise(s.text) for s in suggestions) == sorted([normalise(same), "goodbye"])


# Command line


def test_cli_registers_its_commands_on_the_inference_parser():
    import argparse

    from inference.replies import cli

    parser = argparse.ArgumentParser()
    cli.add_subparsers(parser.add_subparsers(dest="command"))
    train = parser.parse_args(["train-replies", "--train", "t.jsonl", "--out", "m", "--epochs", "2"])
    assert train.func is cli.run_train
    assert train.epochs == 2
    assert train.kind == "seq2seq"
    suggest = parser.parse_args(["suggest", "--model", "m", "--context", "customer: hi"])
    assert suggest.func is cli.run_suggest


def test_cli_trains_a_retrieval_index_and_suggests_from_it(tmp_path, capsys):
    from inference.replies.cli import main

    data = write_lines(
        tmp_path / "train.jsonl",
        [json.dumps({"context": customer(c), "reply": r}) for c, r in TOY.items()],
    )
    out = tmp_path / "model"
    assert (
        main(
            [
                "train-replies",
                "--train",
                str(data),
                "--out",
                str(out),
                "--kind",
                "retrieval",
            ]
        )
        == 0
    )
    capsys.readouterr()
    context = ["agent: Hello, how can I help?", "customer: I forgot my password"]
    args = ["suggest", "--model", str(out), "-n", "2"] + [f"--context={c}" for c in context]
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    assert lines[0]["text"] == TOY["how do i reset my password"]


def test_cli_reports_a_bad_training_line_and_exits_non_zero(tmp_path, capsys):
    from inference.replies.cli import main

    data = write_lines(tmp_path / "train.jsonl", ['{"context": [], "reply": "x"}'])
    assert main(["train-replies", "--train", str(data), "--out", str(tmp_path / "m")]) == 2
    assert "train.jsonl:1:" in capsys.readouterr().err
