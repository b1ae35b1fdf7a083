"""What one sync of a member is given (settings, dependencies), what it reports (`SyncSummary`),
and the member's calendar state as the sync holds it (`LeasedCalendar`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain.calendar_state import CalendarUpdate, Transition, is_lease_held
from shared.domain.models import CalendarState, Member
from shared.errors import TransientError
from shared.services.ports import (
    CalendarSource,
    Clock,
    DirectoryStore,
    JobPublisher,
    MeetingStore,
    MemberStore,
    TokenVault,
)


@dataclass(frozen=True)
class SyncSettings:
    budget_s: float = 420.0  # stop listing after this, save the position, continue in a new job
    lease_ttl_s: float = 540.0  # longer than the budget plus one page; expires if a worker dies
    # No meeting is written when the lease expires in less than this (by this worker's clock): the
    # margin covers clock skew between workers, two clocks each up to 2 minutes off
    # (calendar_state.is_lease_held).
    lease_fence_s: float = 240.0
    chunk_size: int = 200  # events planned and written atomically together
    max_conflict_retries: int = 8  # re-read and re-plan a chunk another member's worker changed
    max_listing_restarts: int = 2  # full listings restarted after a 410 in the middle of one
    # Chunks of one page read, planned and written at once: one chunk's Firestore round trips
    # (directory queries, reads, the commit) overlap another's planning. Chunks touching the same
    # meeting cannot both win: the loser's precondition fails and it re-reads and re-plans.
    chunk_concurrency: int = 2
    # With push channels (README.md#push-notifications): a member with an active channel is due
    # again after this long; None: push is off, every member is due at every scheduler run.
    backstop_interval_s: float | None = None

    @property
    def backstop(self) -> timedelta | None:
        return None if self.backstop_interval_s is None else timedelta(seconds=self.backstop_interval_s)


@dataclass(frozen=True)
class SyncDeps:
    directory: DirectoryStore
    members: MemberStore
    meetings: MeetingStore
    vault: TokenVault
    calendar: CalendarSource
    clock: Clock
    publisher: JobPublisher | None = None  # continuation jobs; None = keep going in-process


class SyncOutcome(StrEnum):
    """How a sync ended. Every outcome is acknowledged; `failed` is also raised as a
    TransientError unless the failure was permanent."""

    SYNCED = "synced"
    CONTINUED = "continued"  # the listing goes on in a follow-up job
    BUSY = "busy"  # another worker holds the member's lease
    NEEDS_REAUTH = "needs_reauth"
    NOT_CONNECTED = "not_connected"
    FAILED = "failed"


@dataclass
class SyncSummary:
    tenant_id: str
    member_id: str
    outcome: SyncOutcome = SyncOutcome.SYNCED
    full: bool = False
    resynced_after_expiry: bool = False
    pages: int = 0
    events_seen: int = 0
    held: int = 0
    dropped: int = 0
    outside_window: int = 0
    malformed: int = 0
    excluded: int = 0  # dropped: organizer or an attendee excluded (README.md#exclusions)
    too_large: int = 0  # held events dropped: what would be stored exceeds the database's limits
    replanned: int = 0  # meetings planned again: the directory changed while this sync ran
    meetings_written: int = 0
    interactions_written: int = 0
    interactions_deleted: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    conflicts: int = 0
    duration_ms: int = 0
    error: str | None = None
    resync_requested: bool = False  # a push job came while this ran: one more sync follows
    channel: str | None = None  # what became of the push channel afterwards (ChannelOutcome)
    # The member's calendar state when the sync took the lease and when it ended (not logged).
    initial_state: CalendarState | None = field(default=None, repr=False)
    final_state: CalendarState | None = field(default=None, repr=False)

    def as_log_fields(self) -> dict[str, Any]:
        hidden = ("initial_state", "final_state")
        return {k: v for k, v in self.__dict__.items() if v is not None and k not in hidden}


class LeasedCalendar:
    """A member's calendar state as one sync holds it: each update is written under the sync's
    lease, then applied to the copy in memory."""

    def __init__(self, members: MemberStore, tenant_id: str, member: Member, lease_owner: str) -> None:
        self._members = members
        self.tenant_id = tenant_id
        self.member = member
        self.lease_owner = lease_owner
        self.state: CalendarState = member.calendar
        # A push job found this sync running and asked for one more (README.md#push-notifications):
        # seen when the save that clears the request read it.
        self.resync_requested = False

    def save(self, update: CalendarUpdate | Transition) -> None:
        """Save an update, or a transition of the state as stored (computed in the same atomic
        step as its write). Raises TransientError (the lease was lost, Firestore unavailable),
        NotFound."""
        stored = self._members.update_calendar(
            self.tenant_id, self.member.id, update, lease_owner=self.lease_owner
        )
        read = stored or self.state
        applied = update if isinstance(update, CalendarUpdate) else update(read)
        if stored is not None and stored.push_resync_requested and applied.push_resync_requested is False:
            self.resync_requested = True
        self.state = applied.apply_to(read)

    def ensure_held(self, now: datetime, margin_s: float) -> None:
        """Raises TransientError when the lease may be lost by now: nothing more may be written
        (the job is redelivered and resumes from the saved cursor)."""
        if not is_lease_held(self.state, now, margin=timedelta(seconds=margin_s)):
            raise TransientError(f"sync lease of member {self.member.id!r} expired: stopped before writing")

    def save_after_error(self, update: CalendarUpdate) -> None:
        """Save the end of a sync that already failed, never raising: the sync's own error is the
        one to report, and the lease expires anyway."""
        try:
            self.save(update)
        except Exception:  # noqa: BLE001 - see the docstring
            return
