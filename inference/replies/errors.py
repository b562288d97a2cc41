"""Exceptions of the reply-suggestion model, so callers can tell bad input from a bad model."""

from inference import artifact


class ReplyModelError(Exception):
    """Base class of every error raised by inference.replies."""


class ReplyDataError(ReplyModelError, ValueError):
    """Training data or a conversation context is malformed."""


class ArtifactError(ReplyModelError, artifact.ArtifactError):
    """A model directory is missing, incomplete, damaged or of an unknown kind: the
    toolkit's ArtifactError, so one `except inference.ArtifactError` catches every kind's."""


class SuggestionTimeout(ReplyModelError, TimeoutError):
    """Generation ran past its time limit; partial replies are not returned."""
