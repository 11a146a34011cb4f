"""Exceptions named for what the caller should do with them.

- RetriableError: transient (network, 5xx, 429, object store hiccup); try again later.
- FatalError: configuration or programming problem; stop and fix, retrying will not help.
- BadInputError: one input (a feed body, a file) cannot be used; record it and carry on with the others.
- BadRecordError: one record inside an otherwise good input is unusable; skip it and record why.
"""

from __future__ import annotations


class WirefeedError(Exception):
    """Base class; `kind` is a short machine-readable tag used in logs, manifests and CLI errors."""

    kind = "error"

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def to_dict(self) -> dict[str, object]:
        return {"error": self.kind, "message": self.message, **self.fields}


class RetriableError(WirefeedError):
    kind = "retriable"

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: object) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class FatalError(WirefeedError):
    kind = "fatal"


class ConfigError(FatalError):
    kind = "config"


class BadInputError(WirefeedError):
    """An input that cannot be parsed. `kind` is refined per cause (empty, binary, malformed, ...)."""

    def __init__(self, kind: str, message: str, **fields: object) -> None:
        super().__init__(message, **fields)
        self.kind = kind


class BadRecordError(WirefeedError):
    kind = "bad_record"
