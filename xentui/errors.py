"""The one error hierarchy every backend raises. Messages are written for an operator at 3 a.m."""

from __future__ import annotations


class BackendError(Exception):
    """An action or a poll failed. ``str(error)`` is the operator-facing message.

    ``detail`` keeps what the tool or library said, for a details pane or a log.
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidArgument(BackendError):
    """The request was refused before anything changed: a bad size, a count over the maximum..."""


class Unsupported(BackendError):
    """This backend or host cannot do that at all."""


class DomainNotFound(BackendError):
    """The domain is gone (destroyed, migrated away, saved) or never existed."""


class ReadOnlyError(Unsupported):
    """xentui was started with --read-only."""


class ConsoleBusy(BackendError):
    """Someone else holds the domain's console (xenconsole keeps one reader per domain)."""


class BackendUnavailable(BackendError):
    """The backend itself died or cannot be reached (toolstack missing, daemon down)."""
