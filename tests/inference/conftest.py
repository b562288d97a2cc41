"""Shared fixtures: a tiny generated intent data set and one fast-mode model
trained on it once per test session."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from inference import Example, TrainConfig, train_intent_model

# 6 intents; each has train templates and differently worded held-out templates.
INTENTS = {
    "check_balance": (
        [
            "what is my {acct} balance",
            "how much money is in my {acct}",
            "show the balance of my {acct}",
            "tell me my {acct} balance please",
            "how much do i have in {acct}",
        ],
        ["could you check what's left in my {acct}", "balance on {acct}?"],
    ),
    "lost_card": (
        [
            "i lost my {card}",
            "my {card} was stolen",
            "block my {card} it is missing",
            "i can't find my {card}",
            "someone took my {card}",
        ],
        ["please freeze the {card}, it's gone", "{card} disappeared from my wallet"],
    ),
    "opening_hours": (
        [
            "when does the {place} open",
            "what time does the {place} close",
            "opening hours of the {place}",
            "is the {place} open on sunday",
            "how late is the {place} open",
        ],
        ["until when can i visit the {place} today", "{place} hours?"],
    ),
    "book_table": (
        [
            "book a table for {n} people",
            "reserve a table for {n} tonight",
            "i need a dinner reservation for {n}",
            "can i get a table for {n}",
            "make a restaurant booking for {n}",
        ],
        ["we are {n}, do you have room for dinner", "table for {n} at eight please"],
    ),
    "weather": (
        [
            "what is the weather in {city}",
            "will it rain in {city} tomorrow",
            "how hot is it in {city}",
            "weather forecast for {city}",
            "is it sunny in {city}",
        ],
        ["do i need an umbrella in {city}", "temperature in {city} right now"],
    ),
    "play_music": (
        [
            "play some {genre}",
            "put on {genre} music",
            "i want to listen to {genre}",
            "start a {genre} playlist",
            "play {genre} songs",
        ],
        ["could you throw on a bit of {genre}", "some {genre} tunes please"],
    ),
}
SLOTS = {
    "acct": ["savings account", "checking account", "current account"],
    "card": ["credit card", "debit card", "bank card"],
    "place": ["bank branch", "post office", "pharmacy"],
    "n": ["two", "four", "six"],
    "city": ["paris", "tokyo", "chicago"],
    "genre": ["jazz", "rock", "classical"],
}


def _fill(template: str, k: int) -> str:
    for slot, values in SLOTS.items():
        template = template.replace("{" + slot + "}", values[k % len(values)])
    return template


def make_examples(held_out: bool = False) -> list[Example]:
    out = []
    for intent, (train_t, test_t) in INTENTS.items():
        templates = test_t if held_out else train_t
        for template, k in itertools.product(templates, range(3)):
            out.append(Example(_fill(template, k), intent))
    return out  # train: 6 x 15, held out: 6 x 6


@pytest.fixture(scope="session", autouse=True)
def embed_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep the embedding cache inside the test session, never in ~/.cache."""
    path = tmp_path_factory.mktemp("embed-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("INTENT_EMBED_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def train_examples() -> list[Example]:
    return make_examples()


@pytest.fixture(scope="session")
def held_out_examples() -> list[Example]:
    return make_examples(held_out=True)


@pytest.fixture(scope="session")
def fast_model(tmp_path_factory: pytest.TempPathFactory, train_examples: list[Example], embed_cache: Path) -> Path:
    out = tmp_path_factory.mktemp("models") / "fast"
    return train_intent_model(train_examples, out, config=TrainConfig(mode="fast", seed=13))
