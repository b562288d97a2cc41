"""Readable text from a BERT WordPiece decoder, whose vocabulary is uncased and which
decodes punctuation as separate words ("i ' ll", "5 : 30", "$ 50. 00")."""

from __future__ import annotations

import re

_JOINS = [
    (re.compile(r"(\w) ' (\w)"), r"\1'\2"),  # i ' ll -> i'll
    (re.compile(r"(\d) ?([:.]) ?(\d)"), r"\1\2\3"),  # 5 : 30 -> 5:30, 50. 00 -> 50.00
    (re.compile(r"(\d) ?, ?(\d{3})\b"), r"\1,\2"),  # 1, 200 -> 1,200
    (re.compile(r"([$£€#@]) (\d)"), r"\1\2"),  # $ 50 -> $50
    (re.compile(r"(\w) ([-/]) (\w)"), r"\1\2\3"),  # check - in -> check-in
    (re.compile(r"\s+([.,!?;:%)])"), r"\1"),  # word . -> word.
    (re.compile(r"([(]) "), r"\1"),
]
_SENTENCE_START = re.compile(r"(^|[.!?] )([a-z])")
_PRONOUN_I = re.compile(r"\bi\b")


def tidy_wordpiece(text: str, restore_case: bool = True) -> str:
    """Join the pieces a WordPiece decode leaves apart; capitalise sentence starts and
    "I" when the tokenizer lowercased everything."""
    text = " ".join(text.split())
    for pattern, replacement in _JOINS:
        text = pattern.sub(replacement, text)
    if restore_case:
        text = _PRONOUN_I.sub("I", text)
        text = _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
    return text
