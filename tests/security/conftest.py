"""Fixtures of the threat list: a small real reply model artifact."""

from pathlib import Path

import pytest

TOY_REPLIES = {
    "where is my order": "Let me check the tracking for you.",
    "i want a refund": "I can start a refund now.",
    "how do i reset my password": "Use the reset link on the login page.",
    "do you ship abroad": "Yes, we ship to most countries.",
}


@pytest.fixture(scope="session")
def reply_artifact(tmp_path_factory) -> Path:
    """A real (retrieval) reply model directory, checksummed as the trainer writes it."""
    from inference.replies import ReplyPair, ReplyTrainConfig, Turn, train_reply_model

    pairs = [ReplyPair(context=(Turn("customer", c),), reply=r) for c, r in TOY_REPLIES.items()]
    out = tmp_path_factory.mktemp("security-replies") / "retrieval"
    return train_reply_model(pairs, out, ReplyTrainConfig(kind="retrieval"))
