"""Masking personal data in visitor text before it becomes training data.

Models memorise: an email address in a training example can come back out of
a model, and it sits in every export. Order ids are masked too (the shape is a
setting), so the model learns "[order_id]" as a slot rather than one number.
"""

import re
from functools import lru_cache

from django.conf import settings

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# 13 to 19 digits, optionally in groups split by spaces or dashes.
CARD_CANDIDATE = re.compile(r"(?<![\w+])\d(?:[ -]?\d){12,18}(?!\w)")
# An optional +country code, then 7 to 15 digits with spaces, dots, dashes or
# brackets between them: "+49 30 1234567", "(555) 123-4567", "0612345678".
PHONE = re.compile(r"(?<![\w])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d(?:[\s.-]?\d){6,14}(?!\w)")

# Dates look like short phone numbers: "12.03.2024", "2024-03-12".
DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}[./-]\d{1,2}[./-]\d{1,2}")


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


@lru_cache(maxsize=8)
def _order_id_pattern(pattern: str) -> re.Pattern | None:
    return re.compile(pattern, re.IGNORECASE) if pattern else None


def _mask_cards(text: str) -> str:
    def replace(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group())
        return "[card]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group()

    return CARD_CANDIDATE.sub(replace, text)


def mask_pii(text: str) -> str:
    """The text with emails, order ids, card numbers (Luhn-checked) and phone
    numbers replaced by "[email]", "[order_id]", "[card]" and "[phone]"."""
    text = EMAIL.sub("[email]", text)
    order_ids = _order_id_pattern(settings.PII_ORDER_ID_PATTERN)
    if order_ids is not None:
        text = order_ids.sub("[order_id]", text)
    # Cards before phones: a card number also looks like a long phone number.
    text = _mask_cards(text)
    return PHONE.sub(lambda m: m.group() if DATE.fullmatch(m.group()) else "[phone]", text)
