"""Every port the services use, and the value types that cross them. Adapters in
`shared.adapters` implement the ports against Google (Firestore, Secret Manager, Calendar, OAuth,
Pub/Sub); `shared.bootstrap` returns the adapters as these types, so `mypy --strict` checks that
each adapter satisfies its port. Tests of pure services may use small fakes. Each docstring says
what raises what: that sentence is the retry contract (`shared.errors`).

Ports, and the adapter implementing each (all under `shared/adapters/`):
- `Clock`: `clock.SystemClock`;
- `DirectoryStore` (sync) < `RematchDirectoryStore`, with `DirectoryImportStore` combined as
  `DirectoryAdminStore`: `firestore.FirestoreDirectoryStore`;
- `MemberStore`: `firestore.FirestoreMemberStore`;
- `MeetingStore` (sync) < `RematchMeetingStore` < `MeetingAdminStore` (CLI listings):
  `firestore.FirestoreMeetingStore`;
- `CalendarSource`: `calendar.GoogleCalendarSource`; `TokenVault`:
  `secrets.SecretManagerTokenVault`; `JobPublisher`: `pubsub.PubSubJobPublisher`;
- `OAuthStateStore`: `firestore.FirestoreOAuthStateStore`; `OAuthProvider`:
  `oauth.GoogleOAuthClient`;
- `ReportStore` (the operator report's aggregate reads): `firestore.FirestoreReportStore`;
- `CalendarChannels` (push channels): `calendar.GoogleCalendarSource`; `ChannelStore`:
  `firestore.FirestoreChannelStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from shared.domain import consent
from shared.domain.calendar_state import CalendarUpdate, Transition
from shared.domain.directory_file import DirectoryFile
from shared.domain.directory_keys import Collection
from shared.domain.exclusions import Exclusions
from shared.domain.models import (
    CalendarState,
    DirectorySnapshot,
    Interaction,
    Member,
    Plan,
    StoredMeeting,
    Tenant,
    UnmatchedAddress,
)
from shared.domain.push import ChannelRecord, Claim
from shared.domain.report import RecentMeeting


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class TenantStore(Protocol):
    """Tenant documents (name, internal domains, settings)."""

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Raises NotFound for an unknown tenant, TransientError when Firestore is unavailable."""
        ...


class DirectoryStore(TenantStore, Protocol):
    """The tenant's directory: tenant document, accounts, users, members' addresses."""

    def member_emails(self, tenant_id: str) -> frozenset[str]:
        """Every member's normalised address (all are internal). Raises TransientError."""
        ...

    def members_for_matching(self, tenant_id: str) -> tuple[frozenset[str], Mapping[str, Exclusions]]:
        """Every member's normalised address, and the members' own exclusions (members without
        any may be absent), read together. Raises TransientError."""
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
        self,
        tenant_id: str,
        member_id: str,
        owner: str,
        now: datetime,
        ttl_s: float,
        *,
        push_job: bool = False,
    ) -> Member | None:
        """Take the member's sync lease in a transaction, if free, expired or already `owner`'s.
        Returns the member as read inside the transaction, or None when another live owner
        holds it. A `push_job` (README.md#push-notifications) that finds the lease held requests
        a re-sync after the running one and gives up its claim, in the same transaction.
        Raises NotFound, TransientError."""
        ...

    def update_calendar(
        self,
        tenant_id: str,
        member_id: str,
        changes: CalendarUpdate | Transition,
        *,
        lease_owner: str | None = None,
    ) -> CalendarState | None:
        """Set the fields of `members/{id}.calendar` that `changes` sets (and no other).
        With `lease_owner`, only while that owner still holds the lease (else raises
        TransientError: someone else took over), and returns the state as read just before the
        write, in the same atomic step (None without `lease_owner`); `changes` may then be a
        transition of that state. Raises NotFound, TransientError."""
        ...

    def claim_push_job(self, tenant_id: str, member_id: str, now: datetime) -> Claim:
        """For a change notification: read the member, decide with `push.claim`, and write what
        that claim sets (`push.claimed`) atomically with the read. Unknown members are
        NOT_SYNCED. Raises TransientError."""
        ...

    def due_members(self, now: datetime, page_size: int) -> Iterator[DueMember]:
        """Every connected member whose next sync time has come, across all tenants, paged, and
        whether its push channel is due for renewal. Raises TransientError."""
        ...

    def hold_members(self, members: Sequence[tuple[str, str]], until: datetime) -> int:
        """Move these (tenant id, member id)'s next sync time to `until`: they have a job queued,
        and the fan-out leaves them alone until that job ends (its end sets the next sync time)
        or `until` passes. Members deleted meanwhile are skipped; returns how many were held.
        Raises TransientError."""
        ...

    def connected_members(self, tenant_id: str | None = None) -> Iterator[tuple[str, str]]:
        """(tenant id, member id) of every connected member, due or not, of one tenant or of all
        (`calsync sync`). Raises TransientError."""
        ...

    def list_members(self, tenant_id: str) -> list[Member]:
        """Every member of the tenant, ordered by id (`calsync status`). Raises TransientError."""
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
        changed since it was read (re-read and re-plan), DocumentTooLarge when the database
        refused a document as too large (nothing written; leave out what made it),
        TransientError."""
        ...

    def fits_in_one_commit(self, plan: Plan) -> bool:
        """Whether `apply` can write this plan in one atomic commit (the database's limits on
        writes and bytes per commit). Pure: raises nothing."""
        ...

    def oversized_meetings(self, plan: Plan) -> frozenset[str]:
        """The meeting keys of the plan whose meeting document, or one of whose interaction
        documents, would exceed the database's limit for one document: `apply` would fail on
        them whatever the commit (docs/reference.md#size-limits). Pure: raises nothing."""
        ...


# --- re-matching and import ---------------------------------------------------------------


class RematchMeetingStore(MeetingStore, Protocol):
    def meeting_keys_for_addresses(
        self, tenant_id: str, emails: Iterable[str], domains: Iterable[str]
    ) -> list[str]:
        """Keys of the stored meetings containing any of these attendee emails or domain levels,
        found through an index (never a scan). Raises TransientError."""
        ...

    def meeting_keys(self, tenant_id: str, page_size: int = 1000) -> Iterator[list[str]]:
        """Every stored meeting's key, a page at a time. Raises TransientError."""
        ...


class RematchDirectoryStore(DirectoryStore, Protocol):
    def mark_directory_changed(self, tenant_id: str, at: datetime) -> None:
        """Record that a re-match after a directory change begins (`Tenant.directory_changed_at`):
        a sync that looked the directory up before sees the mark at its end and re-plans what it
        wrote. An unknown tenant is left alone. Raises TransientError."""
        ...

    def refresh_derived_keys(
        self, tenant_id: str, collection: Collection, document_id: str
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Fix a user's `emailKey` / an account's `domainKeys` from the document as it is now
        (writing only when they differ); returns the (emails, domains) it is found by.
        Raises TransientError."""
        ...

    def directory_documents(
        self, tenant_id: str, collection: Collection, document_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """The stored fields of these users or accounts; missing ones left out. Raises
        TransientError."""
        ...


class DirectoryImportStore(Protocol):
    """What an import needs from the directory store ."""

    def existing_account_ids(self, tenant_id: str, account_ids: Iterable[str]) -> frozenset[str]:
        """Which of these accounts exist in the tenant. Raises TransientError."""
        ...

    def write_directory(self, directory: DirectoryFile) -> dict[str, int]:
        """Upsert a validated directory; returns counts. Raises TransientError."""
        ...

    def pending_rematch(self, tenant_id: str) -> tuple[frozenset[str], frozenset[str], bool]:
        """The (emails, domains, every meeting) an import recorded before writing and did not
        re-match (it stopped midway); empty when none. Raises TransientError."""
        ...

    def save_pending_rematch(
        self, tenant_id: str, emails: frozenset[str], domains: frozenset[str], every_meeting: bool
    ) -> None:
        """Record what an import is about to change for matching, before it writes anything.
        Raises TransientError."""
        ...

    def clear_pending_rematch(self, tenant_id: str) -> None:
        """The import's re-match is done. Raises TransientError."""
        ...


class ExclusionStore(Protocol):
    """The tenant's and the members' `excludedAddresses` (README.md#exclusions)."""

    def excluded_addresses(self, tenant_id: str, member_id: str | None) -> Exclusions:
        """The tenant's list (`member_id` None) or the member's own. Raises NotFound for an
        unknown tenant or member, TransientError."""
        ...

    def set_excluded_addresses(self, tenant_id: str, member_id: str | None, exclusions: Exclusions) -> None:
        """Replace the tenant's list or the member's own. Raises NotFound, TransientError."""
        ...


class DirectoryAdminStore(RematchDirectoryStore, DirectoryImportStore, ExclusionStore, Protocol):
    """Everything the directory adapter offers: matching reads, re-matching, import, exclusions."""


class MeetingAdminStore(RematchMeetingStore, Protocol):
    """The meeting store with the listings of the CLI and the sandbox."""

    def list_interactions(self, tenant_id: str, account_id: str | None = None) -> list[Interaction]:
        """The tenant's interactions (optionally of one account), ordered by start time then id.
        Raises TransientError."""
        ...

    def list_unmatched(self, tenant_id: str) -> list[tuple[UnmatchedAddress, ...]]:
        """Per stored meeting that has any, its unmatched and ambiguous addresses. Raises
        TransientError."""
        ...


class ReportStore(Protocol):
    """The bounded reads of the operator report (README.md#operator-report)."""

    def count_interactions(self, tenant_id: str, ranges: Sequence[tuple[datetime, datetime]]) -> list[int]:
        """Per [start, end) range, how many interactions start in it, counted by the database
        (an aggregation over the `startTime` index, no document read). Raises TransientError."""
        ...

    def recent_meetings(
        self, tenant_id: str, since: datetime, limit: int
    ) -> tuple[list[RecentMeeting], bool]:
        """The stored meetings starting at or after `since` (at most `limit`, earliest first),
        and whether that was all of them. Raises TransientError."""
        ...


@dataclass(frozen=True)
class DirectoryChange:
    """A user or account document written: its fields before (None: created) and after (None:
    deleted), as the event carried them."""

    tenant_id: str
    collection: Collection
    document_id: str
    old: Mapping[str, Any] | None
    new: Mapping[str, Any] | None


# --- calendars, tokens, jobs ------------------------------------------------------------------


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


class JobReason(StrEnum):
    """Why a sync job was queued (carried in the message, logged by the worker)."""

    SCHEDULED = "scheduled"  # the fan-out: the member is due (polling, or the push backstop)
    PUSH = "push"  # a push notification: the calendar changed
    RESYNC = "resync"  # notifications came while the member's sync ran: one more, after a pause
    RENEW = "renew"  # the fan-out: the member's push channel nears its expiry
    CONNECTED = "connected"  # the first sync after connecting
    CONTINUATION = "continuation"  # a sync that spent its time budget goes on
    MANUAL = "manual"  # an operator asked


@dataclass(frozen=True)
class SyncJob:
    """A sync job message: ids only, schema-versioned (see shared.services.jobs)."""

    tenant_id: str
    member_id: str
    reason: JobReason = JobReason.SCHEDULED


class DueMember(NamedTuple):
    tenant_id: str
    member_id: str
    renew: bool = False  # its push channel is due for renewal


class JobPublisher(Protocol):
    def publish(self, jobs: Iterable[SyncJob]) -> int:
        """Publish and wait until every message is confirmed; returns how many.
        Raises TransientError if any publish failed."""
        ...


# --- push channels (README.md#push-notifications) -----------------------------------------------


@dataclass(frozen=True)
class WatchedChannel:
    """What Google answered to a watch: the watched resource's id and the granted expiry."""

    resource_id: str
    expires_at: datetime


class CalendarChannels(Protocol):
    """Calendar push channels (`events.watch`, `channels.stop`) of a member's primary calendar."""

    def watch(
        self, refresh_token: str, channel_id: str, address: str, token: str, ttl_s: int
    ) -> WatchedChannel:
        """Create a channel. Raises PermanentError when Google refuses (e.g. the calendar does
        not support push), ReauthRequired, TransientError (after bounded retries)."""
        ...

    def stop(self, refresh_token: str, channel_id: str, resource_id: str) -> None:
        """Stop a channel; one Google no longer knows is success. Raises ReauthRequired,
        TransientError, PermanentError."""
        ...


class ChannelStore(Protocol):
    """The lookup from channel id to its member (`channels/{id}`)."""

    def create(self, record: ChannelRecord) -> None:
        """Raises TransientError."""
        ...

    def get(self, channel_id: str) -> ChannelRecord | None:
        """None when unknown. Raises TransientError."""
        ...

    def set_resource(self, channel_id: str, resource_id: str, expires_at: datetime) -> None:
        """Record what the watch call returned. Raises TransientError."""
        ...

    def delete(self, channel_id: str) -> None:
        """Missing is success. Raises TransientError."""
        ...


# --- connecting calendars (OAuth) ----------------------------------------------------------------

CALENDAR_SCOPE = consent.CALENDAR_SCOPE


@dataclass(frozen=True)
class PendingConsent:
    """A consent started by `oauth_connect` and not yet completed (`oauthStates/{sha256(state)}`)."""

    tenant_id: str
    member_id: str
    created_at: datetime
    expires_at: datetime
    consumed_at: datetime | None = None
    version: object | None = field(default=None, compare=False)  # store's opaque version


class OAuthStateStore(Protocol):
    def create(self, state_key: str, pending: PendingConsent) -> None:
        """Store a new pending consent. Raises TransientError."""
        ...

    def get(self, state_key: str) -> PendingConsent | None:
        """The pending consent (consumed or not), or None if unknown. Raises TransientError."""
        ...

    def consume(self, state_key: str, pending: PendingConsent, now: datetime) -> bool:
        """Mark it used if unchanged since read; False if someone else consumed it first.
        Raises TransientError."""
        ...


@dataclass(frozen=True)
class OAuthGrant:
    """What a successful code exchange yields (no access token: it is not needed)."""

    refresh_token: str = field(repr=False)
    granted_scopes: frozenset[str]
    email: str | None  # the Google account: the id token's verified email (normalised), if any


class OAuthProvider(Protocol):
    def authorization_url(self, state: str, code_verifier: str, login_hint: str) -> str:
        """The consent URL (scopes, offline access, prompt=consent, PKCE S256)."""
        ...

    def exchange_code(self, code: str, code_verifier: str) -> OAuthGrant:
        """Raises InvalidInput (code refused), TransientError, PermanentError."""
        ...

    def revoke(self, refresh_token: str) -> None:
        """Already revoked or expired (Google: 400 `invalid_token`/`invalid_grant`) is success.
        Raises TransientError (5xx, 429, network: retry later), PermanentError (any other refusal)."""
        ...
