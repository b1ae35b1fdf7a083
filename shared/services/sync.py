"""Sync one member's calendar: the use case behind `sync_worker` and `calsync sync`.

    lease -> refresh token -> pages of events.list (shared.services.listing) -> per chunk:
    parse, read meetings, look up the directory, plan (pure), apply atomically
    (shared.services.page_writer) -> cursor saved after what it covers is written.

Every change to the member's calendar state is a transition of shared.domain.calendar_state.

What raises what (the retry contract):
- returns a `SyncSummary` for every outcome that must be acknowledged: synced, continued in a
  follow-up job, busy (another worker holds the lease), needs_reauth (consent revoked or no
  refresh token stored), not connected, failed permanently;
- raises `NotFound` for an unknown tenant or member (acknowledge with an error log);
- raises `TransientError` after recording the failure on the member (Pub/Sub redelivers;
  the scheduler backs the member off).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.domain.calendar_state import MAX_ERROR_LENGTH, lease_released, reauth_needed, sync_failed
from shared.domain.models import ConnectionStatus
from shared.errors import NotFound, PermanentError, ReauthRequired, TokenMissing, TransientError
from shared.services.listing import Listing
from shared.services.sync_run import (
    LeasedCalendar,
    SyncDeps,
    SyncOutcome,
    SyncSettings,
    SyncSummary,
)
from shared.services.timing import finished

__all__ = [
    "SyncDeps",
    "SyncOutcome",
    "SyncRunTotals",
    "SyncSettings",
    "SyncSummary",
    "new_lease_owner",
    "sync_member",
]

NO_TOKEN_MESSAGE = "no stored refresh token: reconnect the calendar"  # noqa: S105 - a message


def new_lease_owner() -> str:
    return uuid.uuid4().hex


def sync_member(
    deps: SyncDeps,
    tenant_id: str,
    member_id: str,
    *,
    settings: SyncSettings | None = None,
    full: bool = False,
    owner: str | None = None,
    on_page: Callable[[SyncSummary], None] | None = None,
    push_job: bool = False,
) -> SyncSummary:
    """Sync one member now. See the module docstring for what it returns and raises. A
    `push_job` (queued by a notification) that finds another sync running asks it for one more
    round (`SyncSummary.resync_requested` of that sync)."""
    settings = settings or SyncSettings()
    started = time.monotonic()
    summary = SyncSummary(tenant_id, member_id)
    owner = owner or new_lease_owner()
    member = deps.members.acquire_lease(
        tenant_id, member_id, owner, deps.clock.now(), settings.lease_ttl_s, push_job=push_job
    )
    if member is None:
        return _end(summary, SyncOutcome.BUSY, started)
    calendar = LeasedCalendar(deps.members, tenant_id, member, owner)
    summary.initial_state = member.calendar
    try:
        if member.calendar.status != ConnectionStatus.CONNECTED:
            calendar.save(lease_released())
            return _end(summary, SyncOutcome.NOT_CONNECTED, started, calendar)
        refresh_token = deps.vault.read(tenant_id, member_id)
        listing = Listing(deps, settings, calendar, summary, started=started, on_page=on_page)
        outcome = listing.run(refresh_token, force_full=full)
    except ReauthRequired as error:
        return _needs_reauth(deps, calendar, summary, str(error), started)
    except TokenMissing:
        return _needs_reauth(deps, calendar, summary, NO_TOKEN_MESSAGE, started)
    except NotFound:
        calendar.save_after_error(lease_released())
        raise
    except Exception as error:
        summary.error = _short(error)
        calendar.save_after_error(sync_failed(calendar.state, summary.error, now=deps.clock.now()))
        _end(summary, SyncOutcome.FAILED, started, calendar)
        if isinstance(error, PermanentError):
            return summary
        if isinstance(error, TransientError):
            raise
        raise TransientError(f"sync failed: {summary.error}") from error
    return _end(summary, outcome, started, calendar)


def _needs_reauth(
    deps: SyncDeps, calendar: LeasedCalendar, summary: SyncSummary, message: str, started: float
) -> SyncSummary:
    summary.error = message
    calendar.save_after_error(reauth_needed(calendar.state, message, now=deps.clock.now()))
    return _end(summary, SyncOutcome.NEEDS_REAUTH, started, calendar)


def _end(
    summary: SyncSummary, outcome: SyncOutcome, started: float, calendar: LeasedCalendar | None = None
) -> SyncSummary:
    summary.outcome = outcome
    if calendar is not None:
        summary.final_state = calendar.state
        summary.resync_requested = calendar.resync_requested
    return finished(summary, started)


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:MAX_ERROR_LENGTH]


@dataclass
class SyncRunTotals:
    """What `calsync sync` prints at the end."""

    members: int = 0
    outcomes: dict[SyncOutcome, int] = field(default_factory=dict)
    events_seen: int = 0
    interactions_written: int = 0
    interactions_deleted: int = 0
    unmatched: int = 0
    ambiguous: int = 0

    def add(self, summary: SyncSummary) -> None:
        self.members += 1
        self.outcomes[summary.outcome] = self.outcomes.get(summary.outcome, 0) + 1
        self.events_seen += summary.events_seen
        self.interactions_written += summary.interactions_written
        self.interactions_deleted += summary.interactions_deleted
        self.unmatched += summary.unmatched
        self.ambiguous += summary.ambiguous
