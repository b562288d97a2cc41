"""The error a visitor's frame can meet: its code is one of docs/protocol.md's."""


class ProtocolError(Exception):
    """A frame the server refuses; `code` is one of the codes of docs/protocol.md."""

    def __init__(self, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra  # more fields for the error frame (rate_limited: retry_after)
