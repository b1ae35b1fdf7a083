"""The few kinds of error that decide what calsync does.

| kind                 | raised when                                   | what the caller does              |
|----------------------|-----------------------------------------------|-----------------------------------|
| `TransientError`     | 429, 403 rate limits, 5xx, network, contention| retry with backoff, then fail the |
|                      |                                               | job so Pub/Sub redelivers it      |
| `ReauthRequired`     | `invalid_grant`: consent revoked or expired   | member -> `needs_reauth`, ack     |
| `CursorExpired`      | Calendar 410 `fullSyncRequired`               | full resync of that member now    |
| `TokenMissing`       | no refresh token stored for the member        | member -> `needs_reauth`, ack     |
| `NotFound`           | unknown tenant / member                       | ack with an error log             |
| `InvalidInput`       | malformed message, request or file            | ack / 4xx / non-zero exit         |
| `DocumentTooLarge`   | Firestore refused a document over 1 MiB       | drop what made it, go on          |
| `ConfigError`        | missing or malformed environment              | fail loudly at start              |

Messages never contain tokens or secrets.
"""

from __future__ import annotations


class CalsyncError(Exception):
    """Base of every error calsync raises on purpose."""


class ConfigError(CalsyncError):
    """The environment is missing or has malformed values (the message lists all of them)."""


class TransientError(CalsyncError):
    """Retrying later may succeed: rate limits, 5xx, network errors, write contention."""


class PermanentError(CalsyncError):
    """Retrying cannot help: acknowledge and record."""


class ReauthRequired(PermanentError):
    """The member's Google consent is revoked or expired (`invalid_grant`)."""


class TokenMissing(PermanentError):
    """No refresh token is stored for the member (never connected, or disconnected meanwhile)."""


class NotFound(PermanentError):
    """A tenant or member that the request names does not exist."""


class InvalidInput(PermanentError):
    """A malformed message, request, link or file."""


class DocumentTooLarge(PermanentError):
    """The database refused a write because a document would exceed its size limit: writing the
    same thing again cannot succeed. Raised by the meeting store for a plan the size check let
    through (it should not happen); the sync and the re-match drop the work it came from."""


class CursorExpired(CalsyncError):
    """The stored Calendar sync token is no longer valid (HTTP 410): a full resync is needed."""


class WriteConflict(TransientError):
    """A document changed between read and write (optimistic concurrency): re-read and re-plan."""
