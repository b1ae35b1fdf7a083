"""The transitions of a member's calendar state (`members/{id}.calendar`).

Every change a sync or a connection makes to that state is one of the functions below: a pure
function of the current state (where it matters) and its inputs — the time, the start of the
backfill window, the error message — returning a `CalendarUpdate` that names the fields it sets.
The member store writes the update; the sync keeps its copy of the state in step with
`CalendarUpdate.apply_to`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Final

from shared.domain.models import CalendarState, ConnectionStatus, PushStatus

# A change computed from the state as stored, in the same atomic step as it is written (the
# member store's leased update): for what depends on what others wrote meanwhile.
Transition = Callable[[CalendarState], "CalendarUpdate"]

MAX_ERROR_LENGTH = 300  # characters of an error message kept in `lastError`
BASE_FAILURE_BACKOFF = timedelta(minutes=2)
MAX_FAILURE_BACKOFF = timedelta(hours=6)


class Unset(Enum):
    """The type of `UNSET`: the field of a `CalendarUpdate` that the update leaves alone."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True, kw_only=True)
class CalendarUpdate:
    """The fields of a `CalendarState` that one transition sets; `UNSET` fields stay as they are.

    The fields mirror `CalendarState` one to one (a unit test keeps them in step)."""

    status: ConnectionStatus | Unset = UNSET
    google_email: str | Unset | None = UNSET
    connected_at: datetime | Unset | None = UNSET
    last_sync_at: datetime | Unset | None = UNSET
    last_success_at: datetime | Unset | None = UNSET
    last_error: str | Unset | None = UNSET
    consecutive_failures: int | Unset = UNSET
    next_sync_at: datetime | Unset | None = UNSET
    sync_token: str | Unset | None = UNSET
    page_token: str | Unset | None = UNSET
    listing_full: bool | Unset = UNSET
    listing_time_min: datetime | Unset | None = UNSET
    generation: int | Unset = UNSET
    listing_directory_mark: datetime | Unset | None = UNSET
    lease_owner: str | Unset | None = UNSET
    lease_expires_at: datetime | Unset | None = UNSET
    push_status: PushStatus | Unset = UNSET
    push_expires_at: datetime | Unset | None = UNSET
    push_last_notification_at: datetime | Unset | None = UNSET
    push_last_error: str | Unset | None = UNSET
    push_channel_id: str | Unset | None = UNSET
    push_resource_id: str | Unset | None = UNSET
    push_started_at: datetime | Unset | None = UNSET
    push_renew_at: datetime | Unset | None = UNSET
    push_retry_at: datetime | Unset | None = UNSET
    push_queued_at: datetime | Unset | None = UNSET
    push_resync_requested: bool | Unset = UNSET

    def changed_fields(self) -> dict[str, Any]:
        """The fields this update sets (CalendarState names, in declaration order) and their values."""
        values = ((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))
        return {name: value for name, value in values if value is not UNSET}

    def apply_to(self, state: CalendarState) -> CalendarState:
        """`state` with this update's fields set."""
        return dataclasses.replace(state, **self.changed_fields())


def failure_backoff(consecutive_failures: int) -> timedelta:
    """How long a member waits before its next scheduled sync after failures (doubling, capped)."""
    if consecutive_failures <= 0:
        return timedelta(0)
    backoff: timedelta = BASE_FAILURE_BACKOFF * 2 ** min(consecutive_failures - 1, 20)
    return min(backoff, MAX_FAILURE_BACKOFF)


# --- a sync ------------------------------------------------------------------------------------


def full_listing_started(
    state: CalendarState, *, window_start: datetime, lease_expires_at: datetime
) -> CalendarUpdate:
    """A full listing of the calendar from `window_start` begins: the cursor is dropped and the
    generation moves on (copies the listing does not see again are removed at its end)."""
    return CalendarUpdate(
        sync_token=None,
        page_token=None,
        listing_full=True,
        listing_time_min=window_start,
        listing_directory_mark=None,
        generation=state.generation + 1,
        lease_expires_at=lease_expires_at,
    )


def full_sync_requested() -> CalendarUpdate:
    """The next sync lists the whole calendar again (an exclusion was removed, so what it hid
    comes back, README.md#exclusions): the cursor and any listing in progress are dropped."""
    return CalendarUpdate(sync_token=None, page_token=None, listing_full=False, listing_time_min=None)


def page_saved(
    next_page_token: str, *, lease_expires_at: datetime, directory_mark: datetime | None = None
) -> CalendarUpdate:
    """A page is written: the listing resumes from the next page (in this job or another), and
    knows which directory-change mark it first saw."""
    return CalendarUpdate(
        page_token=next_page_token, lease_expires_at=lease_expires_at, listing_directory_mark=directory_mark
    )


def listing_completed(
    next_sync_token: str | None,
    *,
    now: datetime,
    next_sync_at: datetime | None = None,
    resync_requested: bool = False,
) -> CalendarUpdate:
    """The last page is written: the sync token is the next cursor, the failures are over, the
    member is due again at `next_sync_at` (default now: the scheduler's interval applies; see
    `push.next_sync_time`) and the lease is released. The member's push job claim ends with it,
    unless a notification asked for one more round while it ran (`resync_requested`, as the state
    was read in the same step): the claim then passes to that round's job, which the caller
    queues (README.md#push-notifications)."""
    return CalendarUpdate(
        sync_token=next_sync_token,
        page_token=None,
        listing_full=False,
        listing_time_min=None,
        listing_directory_mark=None,
        last_sync_at=now,
        last_success_at=now,
        last_error=None,
        consecutive_failures=0,
        next_sync_at=now if next_sync_at is None else next_sync_at,
        lease_owner=None,
        lease_expires_at=None,
        push_queued_at=now if resync_requested else None,
        push_resync_requested=False,
    )


def sync_failed(state: CalendarState, message: str, *, now: datetime) -> CalendarUpdate:
    """A sync failed: the failure is counted, the next scheduled sync backs off, and the lease is
    released. The cursor stays, so the next sync resumes where this one stopped."""
    failures = state.consecutive_failures + 1
    return CalendarUpdate(
        last_error=message[:MAX_ERROR_LENGTH],
        last_sync_at=now,
        consecutive_failures=failures,
        next_sync_at=now + failure_backoff(failures),
        lease_owner=None,
        lease_expires_at=None,
    )


def reauth_needed(state: CalendarState, message: str, *, now: datetime) -> CalendarUpdate:
    """The member's consent is gone (revoked, expired, or no refresh token stored): no more
    scheduled syncs until the member connects again; the failure is counted like any other; the
    lease is released. Its push channel is retired (a refused token cannot stop it)."""
    return dataclasses.replace(
        channel_retired(),
        status=ConnectionStatus.NEEDS_REAUTH,
        last_error=message[:MAX_ERROR_LENGTH],
        last_sync_at=now,
        consecutive_failures=state.consecutive_failures + 1,
        lease_owner=None,
        lease_expires_at=None,
    )


def is_lease_held(state: CalendarState, now: datetime, *, margin: timedelta) -> bool:
    """Whether a sync may still write under the lease it took: the expiry it set (taking or
    renewing the lease) is more than `margin` away by this worker's clock. Another worker can take
    the lease over only once it has expired by *its* clock; the margin covers the skew between the
    two clocks, so a worker that was paused past its lease stops writing before anyone else
    starts."""
    return state.lease_expires_at is not None and now < state.lease_expires_at - margin


def lease_released() -> CalendarUpdate:
    """The sync stops without changing anything else (not connected, continued in another job)."""
    return CalendarUpdate(lease_owner=None, lease_expires_at=None)


def google_email_learned(google_email: str) -> CalendarUpdate:
    """The calendar's Google account became known (a token set by hand does not say it)."""
    return CalendarUpdate(google_email=google_email)


# --- connecting and disconnecting ----------------------------------------------------------------


def connected(state: CalendarState, google_email: str | None, *, now: datetime) -> CalendarUpdate:
    """A fresh connection: due for a sync now, failures forgotten. The sync cursor and the push
    channel belong to one Google account's calendar: they are kept only when the account is
    known to be the same one. Otherwise the lease goes too, so a sync still running on the old
    cursor can save nothing more (README.md#reliability): it fails, and its redelivered job
    starts over from the reset cursor."""
    same_account = google_email is not None and state.google_email == google_email
    update = CalendarUpdate(
        status=ConnectionStatus.CONNECTED,
        google_email=google_email,
        connected_at=now,
        last_error=None,
        consecutive_failures=0,
        next_sync_at=now,
    )
    if same_account:
        return update
    return dataclasses.replace(
        _merged(update, channel_retired()),
        sync_token=None,
        page_token=None,
        listing_full=False,
        listing_time_min=None,
        listing_directory_mark=None,
        lease_owner=None,
        lease_expires_at=None,
    )


def consent_not_given(message: str) -> CalendarUpdate:
    """A consent ended without connecting the calendar (declined, calendar access not granted):
    only the reason is recorded; the connection stays as it was."""
    return CalendarUpdate(last_error=message)


def disconnected() -> CalendarUpdate:
    """The member disconnected: no more syncs, nothing left to report, no push channel."""
    return dataclasses.replace(
        channel_retired(),
        status=ConnectionStatus.DISCONNECTED,
        last_error=None,
        consecutive_failures=0,
        next_sync_at=None,
    )


def channel_retired() -> CalendarUpdate:
    """The member has no push channel any more (stopped, disconnected, consent gone, push turned
    off, another Google account connected); notifications of the old one are refused."""
    return CalendarUpdate(
        push_status=PushStatus.OFF,
        push_channel_id=None,
        push_resource_id=None,
        push_started_at=None,
        push_expires_at=None,
        push_renew_at=None,
        push_retry_at=None,
        push_queued_at=None,
        push_resync_requested=False,
    )


def _merged(first: CalendarUpdate, second: CalendarUpdate) -> CalendarUpdate:
    """`first` with the fields `second` sets."""
    return dataclasses.replace(first, **second.changed_fields())
