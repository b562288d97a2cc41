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


def mask_cards(text: str) -> str:
    """Only card numbers (Luhn-checked) replaced by "[card]": what is masked at rest."""

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
    text = mask_cards(text)
    # IBANs before phones: their digit groups also look like phone numbers.
    text = mask_ibans(text)
    text = PHONE.sub(lambda m: m.group() if DATE.fullmatch(m.group()) else "[phone]", text)
    text = mask_addresses(text)
    return mask_names(text)


# --- Wider masking (issue 13): IBANs, street addresses and postcodes, names ------------
# Regular expressions with context cues, not a named-entity model: bench/pii_masking.py
# measured Presidio's cost and recall against these on this product's CPU budget.

# Two letters, two check digits, then 11 to 30 letters or digits, in groups of four or not.
IBAN_CANDIDATE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{1,4}){3,8}\b")


def iban_ok(candidate: str) -> bool:
    """The ISO 13616 check: move the first four characters to the end, read letters
    as 10..35, and the number modulo 97 is 1."""
    compact = re.sub(r"\s", "", candidate).upper()
    if not 15 <= len(compact) <= 34:
        return False
    digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def mask_ibans(text: str) -> str:
    def replace(match: re.Match) -> str:
        # The candidate may run into a following word ("... 0130 00 OK"): the longest
        # prefix of its groups that passes the check is the IBAN.
        parts = match.group().split(" ")
        for end in range(len(parts), 0, -1):
            if iban_ok(" ".join(parts[:end])):
                return " ".join(["[iban]", *parts[end:]])
        return match.group()

    return IBAN_CANDIDATE.sub(replace, text)


STREET_WORDS = (
    r"street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|square|sq|terrace|"
    r"close|crescent|parkway|highway|hwy|strasse|straße|str|weg|allee|platz|gasse|rue|calle|via|laan|straat"
)
# "221B Baker Street", "12 Rue de la Paix", "Hauptstraße 5", "Apt 4, 10 Main St".
ADDRESS = re.compile(
    rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][\w'-]*\s+){{0,3}}(?:{STREET_WORDS})\b\.?"
    rf"|\b(?:rue|calle|via)\s+(?:[\w'-]+\s+){{0,3}}[\w'-]+"
    rf"|\b[A-ZÄÖÜ][\wäöüß-]*(?:{STREET_WORDS})\s+\d{{1,5}}[a-z]?\b",
    re.IGNORECASE,
)
# UK postcodes ("SW1A 1AA"), US ZIP+4, and 4-5 digit codes after a state/country word are left
# to the address rule; UK ones are distinctive enough on their own.
UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")


def mask_addresses(text: str) -> str:
    return UK_POSTCODE.sub("[postcode]", ADDRESS.sub("[address]", text))


# A name is one to three capitalised words after a cue that introduces one.
NAME_CUE = re.compile(
    r"(?P<cue>\b(?i:my name is|my name's|name is|this is|i am|i'm|im|call me|signed|regards,?|thanks,?|"
    r"cheers,?|mr\.?|mrs\.?|ms\.?|miss|dr\.?)\s+)"
    r"(?P<name>[A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+){0,2})",
)
# Words that follow "I am" / "this is" without being names.
NOT_NAMES = {
    "a",
    "an",
    "the",
    "not",
    "so",
    "very",
    "just",
    "still",
    "trying",
    "looking",
    "having",
    "getting",
    "going",
    "waiting",
    "unable",
    "interested",
    "here",
    "there",
    "it",
    "that",
    "about",
    "from",
    "in",
    "on",
    "at",
    "sorry",
    "happy",
    "fine",
    "ok",
    "okay",
    "good",
    "great",
    "new",
    "back",
    "done",
    "sure",
    "ready",
    "urgent",
}


def mask_names(text: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group("name")
        # Only capitalised words count (I am Anna, not I am waiting).
        if name.split()[0].lower() in NOT_NAMES:
            return match.group()
        return match.group("cue") + "[name]"

    return NAME_CUE.sub(replace, text)
