"""Domain models shared by the matching core, the planner, the stores and the services.

All are immutable values. Times are timezone-aware UTC `datetime`s; emails and domains are
already normalised (trimmed, lower case) wherever a field says "normalised".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.exclusions import NO_EXCLUSIONS, Exclusions

INTERACTION_TYPE = "Google calendar"


# --- the tenant's directory -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantSettings:
    backfill_days: int = 365
    include_private_events: bool = False
    exclude_declined: bool = True
    free_mail_domains_allowed: frozenset[str] = frozenset()  # normalised domains
    default_time_zone: str = "UTC"
    # Whether a member may connect a Google account other than their own address or one on the
    # tenant's internal domains (README.md#security).
    allow_any_google_account: bool = False
    # Meetings no member captures (README.md#exclusions).
    excluded_addresses: Exclusions = NO_EXCLUSIONS


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    internal_domains: tuple[str, ...] = ()  # normalised
    settings: TenantSettings = field(default_factory=TenantSettings)
    # When the last re-match after a directory change began (`directoryChangedAt`, ours): a sync
    # that saw another value re-plans what it wrote (README.md#reliability).
    directory_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    domains: tuple[str, ...] = ()  # normalised (see emails.normalize_domain)


@dataclass(frozen=True, slots=True)
class User:
    """A person at a customer account."""

    id: str
    email: str  # normalised
    name: str
    account_id: str


@dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """The part of a tenant's directory that one matching run needs.

    Built by the directory store from batched lookups of exactly the emails and domains the
    meetings contain. A key that was looked up and found nothing maps to an empty tuple; the
    matcher treats a key that is absent the same way.
    """

    users_by_email: Mapping[str, tuple[User, ...]] = field(default_factory=dict)
    accounts_by_domain: Mapping[str, tuple[Account, ...]] = field(default_factory=dict)


# --- members and their connection -------------------------------------------------------------


class ConnectionStatus(StrEnum):
    NOT_CONNECTED = "not_connected"
    CONNECTED = "connected"
    NEEDS_REAUTH = "needs_reauth"
    DISCONNECTED = "disconnected"
    ERROR = "error"


class PushStatus(StrEnum):
    """`calendar.push.status` (README.md#push-notifications)."""

    ACTIVE = "active"  # a channel is watching the calendar; polling is only the backstop
    OFF = "off"  # no channel (push not configured, not set up yet, or retired)
    FAILED = "failed"  # Google refused the watch: the member is polled; retried later


@dataclass(frozen=True, slots=True)
class CalendarState:
    """`members/{id}.calendar`: contract fields first, then the sync cursor and lease."""

    status: ConnectionStatus = ConnectionStatus.NOT_CONNECTED
    google_email: str | None = None
    connected_at: datetime | None = None
    last_sync_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    # Scheduling and cursor (ours, not contract).
    next_sync_at: datetime | None = None
    sync_token: str | None = None  # Calendar nextSyncToken, saved after all it covers is written
    page_token: str | None = None  # resume point of a listing split over several jobs
    listing_full: bool = False  # whether the listing in progress is a full one
    listing_time_min: datetime | None = None  # timeMin of the full listing in progress
    generation: int = 0  # bumped at each full listing; copies not re-seen in it are stale
    # The directory-change mark the listing in progress first saw, saved with its cursor: a job
    # resuming the listing re-plans what earlier jobs wrote if the directory moved since.
    listing_directory_mark: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    # The push channel (`calendar.push.*`, README.md#push-notifications): contract fields first.
    push_status: PushStatus = PushStatus.OFF
    push_expires_at: datetime | None = None  # the expiry Google granted
    push_last_notification_at: datetime | None = None  # the last notification that queued a job
    push_last_error: str | None = None
    push_channel_id: str | None = None
    push_resource_id: str | None = None
    push_started_at: datetime | None = None  # when the channel was created (its lifetime's start)
    push_renew_at: datetime | None = None  # when the fan-out queues a `renew` job
    push_retry_at: datetime | None = None  # after a refused watch: when to ask again
    push_queued_at: datetime | None = None  # a push job is pending since (coalescing)
    push_resync_requested: bool = False  # a push job found a sync running: sync once more after it


@dataclass(frozen=True, slots=True)
class Member:
    """A CS team member who connects a calendar."""

    id: str
    email: str  # normalised
    name: str
    calendar: CalendarState = field(default_factory=CalendarState)
    excluded_addresses: Exclusions = NO_EXCLUSIONS  # the member's own (README.md#exclusions)


# --- events as the core sees them -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventAttendee:
    """A non-resource attendee that has an email (others are dropped when parsing)."""

    email: str  # normalised
    display_name: str
    response_status: str  # Google's value; "needsAction" when absent
    is_organizer: bool = False
    is_self: bool = False


@dataclass(frozen=True, slots=True)
class MemberCopy:
    """One member's copy of a meeting that passed the event rules
    (README.md#how-meetings-are-matched-to-accounts): the member holds it."""

    member_id: str
    event_id: str
    meeting_key: str
    updated: datetime
    title: str
    start: datetime
    end: datetime
    time_zone: str
    organizer_email: str  # normalised, may be ""
    attendees: tuple[EventAttendee, ...]
    generation: int = 0  # the member's listing generation that last saw this copy


class DropReason(StrEnum):
    """Why a member's copy of an event produces nothing (README.md#how-meetings-are-matched-to-accounts)."""

    CANCELLED = "cancelled"
    ALL_DAY = "all_day"
    NOT_AFTER_START = "end_not_after_start"
    EVENT_TYPE = "event_type"
    PRIVATE = "private"
    DECLINED = "declined"
    NO_ATTENDEES = "no_attendees"
    MALFORMED = "malformed"
    TOO_LARGE = "too_large"  # what would be stored about it exceeds the database's limits
    EXCLUDED = "excluded"  # its organizer or an attendee is excluded (README.md#exclusions)


@dataclass(frozen=True, slots=True)
class EventHeld:
    """The member holds this meeting, with these details."""

    copy: MemberCopy


@dataclass(frozen=True, slots=True)
class EventDropped:
    """The member's copy produces nothing: if it produced interactions before, the member is
    removed from them. `meeting_key` is None for bare cancelled stubs (look it up by event id)."""

    event_id: str
    meeting_key: str | None
    reason: DropReason
    detail: str = ""  # for MALFORMED: what was wrong (no secrets, no emails)


@dataclass(frozen=True, slots=True)
class EventOutsideWindow:
    """Starts before the backfill window: creates nothing and removes nothing."""

    event_id: str


EventChange = EventHeld | EventDropped | EventOutsideWindow


# --- matching ---------------------------------------------------------------------------------


class MatchedBy(StrEnum):
    EMAIL = "email"
    DOMAIN = "domain"


class UnmatchedReason(StrEnum):
    NO_MATCH = "no_match"
    AMBIGUOUS_DOMAIN = "ambiguous_domain"
    AMBIGUOUS_USER = "ambiguous_user"
    FREE_MAIL = "free_mail"


@dataclass(frozen=True, slots=True)
class AttendeeMatch:
    email: str
    account_id: str
    user_id: str | None
    matched_by: MatchedBy


@dataclass(frozen=True, slots=True)
class UnmatchedAddress:
    email: str
    reason: UnmatchedReason


@dataclass(frozen=True, slots=True)
class MeetingMatch:
    """What one copy's attendees matched: pairs per account, and what stayed unmatched."""

    matches: tuple[AttendeeMatch, ...]
    unmatched: tuple[UnmatchedAddress, ...]

    @property
    def account_ids(self) -> frozenset[str]:
        return frozenset(m.account_id for m in self.matches)


# --- the interaction document (docs/reference.md#the-interaction-document) ---------------------


@dataclass(frozen=True, slots=True)
class Participant:
    email: str
    name: str
    response_status: str
    internal: bool
    organizer: bool


@dataclass(frozen=True, slots=True)
class InteractionAttendee:
    email: str
    name: str
    user_id: str | None
    matched_by: MatchedBy
    minutes_in_meeting: int


@dataclass(frozen=True, slots=True)
class Interaction:
    """One (meeting, account) interaction; `id` is deterministic (see ids.interaction_id).

    `created_at`/`updated_at` are set by the planner from the injected clock: `created_at` is
    kept from the stored meeting record when the interaction already existed."""

    id: str
    account_id: str
    meeting_key: str
    title: str
    date: str  # YYYY-MM-DD in time_zone
    start_time: datetime
    end_time: datetime
    time_zone: str
    duration_minutes: int
    participants: tuple[Participant, ...]
    attendees: tuple[InteractionAttendee, ...]
    member_ids: tuple[str, ...]  # sorted
    organizer_email: str
    created_at: datetime
    updated_at: datetime
    type: str = INTERACTION_TYPE

    def contract_fields(self) -> dict[str, Any]:
        """The interaction document (docs/reference.md#the-interaction-document; contract field names; times
        as `datetime`; without `id`)."""
        return {
            "type": self.type,
            "accountId": self.account_id,
            "meetingKey": self.meeting_key,
            "title": self.title,
            "date": self.date,
            "startTime": self.start_time,
            "endTime": self.end_time,
            "timeZone": self.time_zone,
            "durationMinutes": self.duration_minutes,
            "participants": [
                {
                    "email": p.email,
                    "name": p.name,
                    "responseStatus": p.response_status,
                    "internal": p.internal,
                    "organizer": p.organizer,
                }
                for p in self.participants
            ],
            "attendees": [
                {
                    "email": a.email,
                    "name": a.name,
                    "userId": a.user_id,
                    "matchedBy": a.matched_by.value,
                    "minutesInMeeting": a.minutes_in_meeting,
                }
                for a in self.attendees
            ],
            "memberIds": list(self.member_ids),
            "organizerEmail": self.organizer_email,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }


# --- stored meetings and plans ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeetingRecord:
    """What calsync stores per meeting (tenants/{t}/meetings/{meeting_id}).

    It holds every member's copy, so the interactions of the meeting can be recomputed from it
    alone plus the directory: after another member's change, or after a directory change
    (re-matching without reading calendars). `interaction_hashes` says which interactions exist
    now (account id -> content hash, so unchanged ones are not rewritten) and
    `interaction_created_at` keeps their `createdAt`.
    """

    meeting_key: str
    copies: Mapping[str, MemberCopy]  # member id -> copy
    interaction_hashes: Mapping[str, str] = field(default_factory=dict)
    interaction_created_at: Mapping[str, datetime] = field(default_factory=dict)
    unmatched: tuple[UnmatchedAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredMeeting:
    """A meeting record as read, with the opaque version the store needs to write it back
    only if nobody changed it meanwhile (optimistic concurrency)."""

    record: MeetingRecord
    version: object | None  # None: the meeting did not exist when read


@dataclass(frozen=True, slots=True)
class MeetingWrite:
    """Replace (record) or delete (record is None) one meeting, if it is still at `expected`."""

    meeting_key: str
    record: MeetingRecord | None
    expected: object | None  # the StoredMeeting.version read; None = must not exist yet


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything one planning step decided; applied atomically per chunk by the store."""

    meeting_writes: tuple[MeetingWrite, ...] = ()
    interaction_upserts: tuple[Interaction, ...] = ()
    interaction_deletes: tuple[str, ...] = ()  # interaction ids

    @property
    def is_empty(self) -> bool:
        return not (self.meeting_writes or self.interaction_upserts or self.interaction_deletes)
