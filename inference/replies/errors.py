"""Exceptions of the reply-suggestion model, so callers can tell bad input from a bad model."""


class ReplyModelError(Exception):
    """Base class of every error raised by inference.replies."""


class ReplyDataError(ReplyModelError, ValueError):
    """Training data or a conversation context is malformed."""


class ArtifactError(ReplyModelError):
    """A model directory is missing, incomplete, damaged or of an unknown kind."""


class SuggestionTimeout(ReplyModelError, TimeoutError):
    """Generation ran past its time limit; partial replies are not returned."""
