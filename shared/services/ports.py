"""The ports the services use. Adapters in `shared.adapters` implement them against Google
(Firestore, Secret Manager, Calendar, OAuth, Pub/Sub); tests of pure services may use small
fakes. Each docstring says what raises what: that sentence is the retry contract
(`shared.errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.domain.calendar_state import CalendarUpdate
from shared.domain.models import (
    DirectorySnapshot,
    Member,
    Plan,
    StoredMeeting,
    Tenant,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class DirectoryStore(Protocol):
    """The tenant's directory: tenant document, accounts, users, members' addresses."""

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Raises NotFound for an unknown tenant, TransientError when Firestore is unavailable."""
        ...

    def member_emails(self, tenant_id: str) -> frozenset[str]:
        """Every member's normalised address (all are internal). Raises TransientError."""
        ...

    def lookup(self, tenant_id: str, emails: Iterable[str], domains: Iterable[str]) -> DirectorySnapshot:
        """Users whose address is one of `emails` and accounts owning one of `domains`,
        fetched in batches (never one query per attendee). Raises TransientError."""
        ...


class MemberStore(Protocol):
    """Members and their `calendar` state (connection, cursor, lease)."""

    def get_member(self, tenant_id: str, member_id: str) -> Member:
        """Raises NotFound for an unknown tenant or member; TransientError."""
        ...

    def acquire_lease(
        self, tenant_id: str, member_id: str, owner: str, now: datetime, ttl_s: float
    ) -> Member | None:
        """Take the member's sync lease in a transaction, if free, expired or already `owner`'s.
        Returns the member as read inside the transaction, or None when another live owner
        holds it. Raises NotFound, TransientError."""
        ...

    def update_calendar(
        self,
        tenant_id: str,
        member_id: str,
        changes: CalendarUpdate,
        *,
        lease_owner: str | None = None,
    ) -> None:
        """Set the fields of `members/{id}.calendar` that `changes` sets (and no other).
        With `lease_owner`, only while that owner still holds the lease (else raises
        TransientError: someone else took over). Raises NotFound, TransientError."""
        ...

    def due_members(self, now: datetime, page_size: int) -> Iterator[tuple[str, str]]:
        """(tenant id, member id) of every connected member whose next sync time has come,
        across all tenants, paged. Raises TransientError."""
        ...


class MeetingStore(Protocol):
    """Stored meetings (`tenants/{t}/meetings`) and the interactions derived from them."""

    def read_meetings(self, tenant_id: str, meeting_keys: Iterable[str]) -> dict[str, StoredMeeting]:
        """The stored meetings for these keys, batched; a key never stored maps to a
        StoredMeeting with an empty record and version None. Raises TransientError."""
        ...

    def meeting_keys_for_events(
        self, tenant_id: str, member_id: str, event_ids: Iterable[str]
    ) -> dict[str, str]:
        """event id -> meeting key, for events of this member held in stored meetings (to map
        bare cancelled stubs). Unknown event ids are left out. Raises TransientError."""
        ...

    def meeting_keys_held_by(self, tenant_id: str, member_id: str) -> list[str]:
        """Keys of every stored meeting that holds a copy of this member. Raises TransientError."""
        ...

    def apply(self, tenant_id: str, plan: Plan) -> None:
        """Write a plan atomically: all of it or nothing. Raises WriteConflict when a meeting
        changed since it was read (re-read and re-plan), TransientError."""
        ...

    def fits_in_one_commit(self, plan: Plan) -> bool:
        """Whether `apply` can write this plan in one atomic commit (the database's limits on
        writes and bytes per commit). Pure: raises nothing."""
        ...


@dataclass(frozen=True)
class EventPage:
    """One page of Calendar `events.list`."""

    items: Sequence[Mapping[str, Any]]  # raw Google event payloads
    calendar_time_zone: str | None
    next_page_token: str | None
    next_sync_token: str | None  # only on the last page
    owner_email: str | None = None  # the primary calendar's summary: its Google account's email


class CalendarSource(Protocol):
    def list_page(
        self,
        refresh_token: str,
        *,
        sync_token: str | None,
        page_token: str | None,
        time_min: datetime | None,
    ) -> EventPage:
        """One page of the member's primary calendar (`singleEvents=true`, `showDeleted=true`).
        Raises CursorExpired (410), ReauthRequired (invalid_grant), TransientError (after
        bounded retries of 429, 403 rate limits, 5xx, network)."""
        ...


class TokenVault(Protocol):
    """Refresh tokens in Secret Manager, one secret per member."""

    def read(self, tenant_id: str, member_id: str) -> str:
        """The latest enabled version. Raises TokenMissing (no secret or no enabled version),
        TransientError."""
        ...

    def store(self, tenant_id: str, member_id: str, refresh_token: str) -> None:
        """Add a version (creating the secret if needed), then destroy older versions.
        Raises TransientError."""
        ...

    def destroy(self, tenant_id: str, member_id: str) -> None:
        """Destroy every version and delete the secret; missing is success. Raises TransientError."""
        ...


@dataclass(frozen=True)
class SyncJob:
    """A sync job message: ids only, schema-versioned (see shared.services.jobs)."""

    tenant_id: str
    member_id: str
    reason: str = "scheduled"  # scheduled | connected | continuation | manual


class JobPublisher(Protocol):
    def publish(self, jobs: Iterable[SyncJob]) -> int:
        """Publish and wait until every message is confirmed; returns how many.
        Raises TransientError if any publish failed."""
        ...
