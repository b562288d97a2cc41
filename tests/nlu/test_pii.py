"""Personal data is masked before visitor text becomes training data."""

import pytest
from django.test import override_settings

from chatbot.nlu.pii import luhn_ok, mask_pii


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail me at jo.doe+shop@mail.example.com please", "mail me at [email] please"),
        ("where is NW-123456?", "where is [order_id]?"),
        ("order nw123456 is late", "order [order_id] is late"),
        ("card 4111 1111 1111 1111 was charged twice", "card [card] was charged twice"),
        ("card 4111-1111-1111-1111", "card [card]"),
        ("my amex 378282246310005", "my amex [card]"),
        ("call me on +49 30 1234567", "call me on [phone]"),
        ("call (555) 123-4567 after six", "call [phone] after six"),
        ("my number is 0612345678", "my number is [phone]"),
        (
            "NW-654321 to a@b.io, card 5555555555554444, tel +1 415 555 0100",
            "[order_id] to [email], card [card], tel [phone]",
        ),
    ],
)
def test_personal_data_is_masked(text, masked):
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "I want 2 lamps for 30 euros",
        "my zip code is 10115",
        "it was delivered on 12.03.2024",
        "order from 2023",
        "it arrived 2024-03-12",
        "where is my parcel",
    ],
)
def test_ordinary_numbers_are_left_alone(text):
    assert mask_pii(text) == text


def test_a_sixteen_digit_number_failing_luhn_is_not_called_a_card():
    assert not luhn_ok("4111111111111112")
    assert "[card]" not in mask_pii("ref 4111 1111 1111 1112")


def test_luhn_checks_known_card_numbers():
    assert luhn_ok("4111111111111111") and luhn_ok("5555555555554444") and luhn_ok("378282246310005")


@override_settings(PII_ORDER_ID_PATTERN=r"\bORD\d{4}\b")
def test_order_id_pattern_comes_from_the_setting():
    assert mask_pii("ORD1234 and NW-123456") == "[order_id] and NW-123456"
