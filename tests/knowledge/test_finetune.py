"""Fine-tuning the encoder on question -> article pairs: a tiny real training run, the
tuned encoder saved inside the index, and the product's build with the setting on."""

import numpy as np
import pytest
import torch

from inference.encoder import SentenceEncoder
from inference.knowledge import KnowledgeConfig, KnowledgeIndex, verify
from inference.knowledge.finetune import FineTuneConfig, fine_tune, training_pairs
from tests.knowledge.conftest import LEARNING_PAIRS as PAIRS
from tests.knowledge.conftest import TINY


def test_training_pairs_take_the_articles_closest_passage_and_drop_unknown_articles(tiny_index):
    pairs = training_pairs(tiny_index, [*PAIRS, ("what about this", "no-such-article")])
    assert len(pairs) == len(PAIRS)
    texts = {tiny_index.passages[i].search_text for i in range(len(tiny_index.passage_article))}
    assert all(passage in texts for _, passage in pairs)


def test_a_tiny_fine_tuning_run_moves_the_weights_and_saves_a_loadable_encoder(tiny_index, encoder, tmp_path):
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    pairs = training_pairs(tiny_index, PAIRS)
    path = fine_tune(encoder, pairs, tmp_path / "tuned", FineTuneConfig(epochs=1, batch_size=5, learning_rate=1e-4))
    # The shared encoder is untouched; the saved copy differs from it.
    assert all(torch.equal(v, before[k]) for k, v in encoder.model.state_dict().items())
    tuned = SentenceEncoder(str(path), device="cpu", max_length=128)
    q = ["can i send it back"]
    assert not np.allclose(tuned.encode(q), encoder.encode(q), atol=1e-4)
    assert np.isclose(np.linalg.norm(tuned.encode(q)[0]), 1.0, atol=1e-5)


def test_fine_tuning_refuses_too_few_pairs_or_bad_settings(encoder, tmp_path):
    with pytest.raises(ValueError, match="at least 8"):
        fine_tune(encoder, [("q", "p")] * 3, tmp_path / "x")
    with pytest.raises(ValueError, match="batch_size >= 2"):
        fine_tune(encoder, [("q", "p")] * 10, tmp_path / "x", FineTuneConfig(batch_size=1))
    assert not (tmp_path / "x").exists()


def test_an_index_built_with_a_tuned_encoder_carries_it_and_loads_it(tiny_index, encoder, tmp_path):
    path = fine_tune(encoder, training_pairs(tiny_index, PAIRS), tmp_path / "tuned", FineTuneConfig(epochs=1))
    tuned = SentenceEncoder(str(path), device="cpu", max_length=128)
    index = KnowledgeIndex.build(TINY, KnowledgeConfig(min_words=5, max_words=60, own_encoder=True), tuned)
    saved = index.save(tmp_path / "kb")
    verify(saved)  # the encoder's files are under the index's checksums
    assert (saved / "encoder" / "model.safetensors").is_file()
    # Given the shared base encoder (as a worker does), the index uses its own instead.
    loaded = KnowledgeIndex.load(saved, encoder=encoder)
    assert loaded.encoder is not encoder
    a, b = index.answer("can i send it back", threshold=-1.0), loaded.answer("can i send it back", threshold=-1.0)
    assert a.article_id == b.article_id and a.score == pytest.approx(b.score, abs=1e-5)
