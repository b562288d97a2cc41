"""A tiny real knowledge index (the bundled MiniLM, four short articles) and the
demo help center's paths."""

from pathlib import Path

import pytest

from inference.knowledge import Article, KnowledgeConfig, KnowledgeIndex

REPO = Path(__file__).resolve().parents[2]
HELP_CENTER = REPO / "chatbot" / "knowledge" / "demo" / "help_center"
DEV_SET = REPO / "chatbot" / "knowledge" / "demo" / "dev_questions.csv"

TINY = [
    Article(
        "returns",
        "Returning an item",
        "You can return items within 30 days of delivery, free of charge. Start at the returns page and we "
        "email you a prepaid label.\n\n## Refunds\n\nRefunds reach your card within 5 business days after the "
        "return arrives at our warehouse.",
        "https://shop.example/help/returns",
    ),
    Article(
        "shipping",
        "Delivery times and costs",
        "Standard delivery takes 3-5 business days in the EU. Express delivery takes 1-3 business days and "
        "costs EUR 12.95.\n\nShipping is free on orders over EUR 50.",
        "https://shop.example/help/shipping",
    ),
    Article(
        "password",
        "Resetting your password",
        "Open the reset page and enter your email address. The reset link we send is valid for 1 hour. "
        "Check your spam folder if it does not arrive.",
        "https://shop.example/help/password",
    ),
    Article(
        "warranty",
        "Warranty",
        "Every product has a 2-year warranty against manufacturing defects. Accidental damage is not covered. "
        "Start a claim with your order number and a photo.",
        "https://shop.example/help/warranty",
    ),
]


@pytest.fixture(scope="session")
def encoder():
    from transformers.utils import logging as hf_logging

    from inference.encoder import SentenceEncoder

    hf_logging.set_verbosity_error()
    return SentenceEncoder(device="cpu", max_length=128)


@pytest.fixture(scope="session")
def tiny_index(encoder) -> KnowledgeIndex:
    return KnowledgeIndex.build(TINY, KnowledgeConfig(min_words=5, max_words=60), encoder)


# Labelled questions about TINY's articles, for the index versions' threshold and evaluation.
QUESTIONS = """question,article_id
how do i send something back,returns
can i return my order,returns
when do i get my refund,returns
how long is delivery,shipping
is shipping free,shipping
express delivery price,shipping
forgot my password,password
reset link not arriving,password
my lamp broke is it covered,warranty
how long is the warranty,warranty
do you sell gift cards,
can i pay with bitcoin,
where is your shop in paris,
do you have a loyalty program,
"""


# Question -> article pairs as helpful votes give them, for fine-tuning the encoder.
LEARNING_PAIRS = [
    ("can i send it back", "returns"),
    ("money back when", "returns"),
    ("refund how long", "returns"),
    ("parcel arrives when", "shipping"),
    ("delivery cost", "shipping"),
    ("express option", "shipping"),
    ("cant log in forgot pw", "password"),
    ("reset email never came", "password"),
    ("kettle stopped working", "warranty"),
    ("is a broken lamp covered", "warranty"),
]
