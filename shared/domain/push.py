"""Push channels, the pure part (README.md#push-notifications).

Google Calendar can POST a notification to a public URL whenever a watched calendar changes.
calsync keeps one channel per connected member, and this module decides everything about them
without any I/O:
- the channel's token (an HMAC naming channel, tenant and member) and its constant-time check;
- what a notification's headers say, and the answer it gets (`judge`);
- whether a notification queues a sync job or joins one already pending (`claim`);
- what a finished sync does about the member's channel (`channel_action`), when a channel is
  renewed (`renew_time`, spread over a window), and when the member is synced next;
- the transitions of the channel fields of `members/{id}.calendar` (`CalendarUpdate`s).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.calendar_state import MAX_ERROR_LENGTH, CalendarUpdate, channel_retired
from shared.domain.models import CalendarState, ConnectionStatus, PushStatus

__all__ = ["channel_retired"]  # and everything public below; re-exported from calendar_state

# A push job claimed by a notification and not started by then is presumed lost (a publish that
# never arrived): the next notification claims a new one.
PENDING_JOB_TTL = timedelta(minutes=10)
# After Google refused a watch (the calendar does not support push), ask again this much later.
WATCH_RETRY_AFTER_REFUSAL = timedelta(hours=24)
# Google's limits: a channel id is at most 64 characters of this alphabet, a token 256.
_CHANNEL_ID = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")
_TOKEN_LABEL = b"calsync-channel-v1\x1f"


class ResourceState(StrEnum):
    """`X-Goog-Resource-State`."""

    SYNC = "sync"  # the channel has started: no change announced
    EXISTS = "exists"  # something in the calendar changed
    NOT_EXISTS = "not_exists"  # the resource is gone (treated as a change)


_RESOURCE_STATES = frozenset(state.value for state in ResourceState)


# --- tokens -----------------------------------------------------------------------------------


def new_channel_id() -> str:
    return "calsync-" + uuid.uuid4().hex


def channel_token(key: bytes, channel_id: str, tenant_id: str, member_id: str) -> str:
    """The token a channel is created with and every notification carries back: it proves the
    channel is ours and names its member. Never a refresh or access token."""
    message = _TOKEN_LABEL + "\x1f".join((channel_id, tenant_id, member_id)).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return "v1." + base64.urlsafe_b64encode(digest).decode().rstrip("=")


# --- notifications ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelRecord:
    """The lookup entry of a channel (`channels/{id}`), stored before the watch call so a
    notification that comes before the call returns is recognised."""

    channel_id: str
    tenant_id: str
    member_id: str
    expires_at: datetime
    created_at: datetime
    resource_id: str | None = None  # known once the watch call returned


@dataclass(frozen=True)
class Notification:
    """What the headers of one notification say."""

    channel_id: str
    resource_state: ResourceState
    token: str | None
    resource_id: str | None
    message_number: str | None


class Verdict(StrEnum):
    """The answer to a notification (HTTP status in the comment). Only `CHANGED` goes on."""

    BAD_REQUEST = "bad_request"  # 400: no channel id or resource state, or an unknown state
    UNKNOWN_CHANNEL = "unknown_channel"  # 404: not a channel of ours, stopped or expired
    FORGED = "forged"  # 403: the token or the resource id is not the channel's
    STARTED = "started"  # 200: the `sync` message of a new channel: nothing to do
    CHANGED = "changed"  # the calendar changed: queue a sync (200, or 503 when queueing failed)


def notification_from_headers(headers: Mapping[str, str]) -> Notification | None:
    """The notification the headers carry, or None when a required header is missing or the
    resource state is not one Google sends. Never raises."""
    channel_id = (headers.get("X-Goog-Channel-ID") or "").strip()
    state = (headers.get("X-Goog-Resource-State") or "").strip()
    if not channel_id or state not in _RESOURCE_STATES:
        return None
    return Notification(
        channel_id=channel_id,
        resource_state=ResourceState(state),
        token=headers.get("X-Goog-Channel-Token"),
        resource_id=headers.get("X-Goog-Resource-ID"),
        message_number=headers.get("X-Goog-Message-Number"),
    )


def is_channel_id(text: str) -> bool:
    """Whether `text` could be a channel id at all (anything else is unknown without a read)."""
    return _CHANNEL_ID.fullmatch(text) is not None


def judge(notification: Notification, record: ChannelRecord | None, key: bytes, now: datetime) -> Verdict:
    """The verdict on a notification, given its channel's lookup entry (None: none stored)."""
    if record is None or record.expires_at <= now:
        return Verdict.UNKNOWN_CHANNEL
    expected = channel_token(key, record.channel_id, record.tenant_id, record.member_id)
    if not hmac.compare_digest(expected.encode(), (notification.token or "").encode()):
        return Verdict.FORGED
    if record.resource_id is not None and notification.resource_id != record.resource_id:
        return Verdict.FORGED
    if notification.resource_state is ResourceState.SYNC:
        return Verdict.STARTED
    return Verdict.CHANGED


class Claim(StrEnum):
    """What a change notification does to the member's push job. A claimed job is pending from
    the notification that queued it until the end of the sync it runs."""

    QUEUE = "queue"  # none pending: claim one (then publish it)
    RESYNC = "resync"  # its sync is running (the lease is held): ask it for one more round
    PENDING = "pending"  # one is pending, or the running one was asked already: join it
    NOT_SYNCED = "not_synced"  # the member is not connected: nothing to sync


def claim(state: CalendarState, now: datetime) -> Claim:
    if state.status is not ConnectionStatus.CONNECTED:
        return Claim.NOT_SYNCED
    if state.push_queued_at is None or now - state.push_queued_at >= PENDING_JOB_TTL:
        return Claim.QUEUE
    running = (
        state.lease_owner is not None and state.lease_expires_at is not None and state.lease_expires_at > now
    )
    if running and not state.push_resync_requested:
        return Claim.RESYNC
    return Claim.PENDING


def claimed(decision: Claim, now: datetime) -> CalendarUpdate | None:
    """What a claim writes on the member (None: nothing)."""
    if decision is Claim.QUEUE:
        return CalendarUpdate(push_queued_at=now, push_last_notification_at=now)
    if decision is Claim.RESYNC:
        return CalendarUpdate(push_resync_requested=True, push_last_notification_at=now)
    return None


def push_claim_released() -> CalendarUpdate:
    """The claimed job could not be published: the next notification claims again."""
    return CalendarUpdate(push_queued_at=None)


# --- the channel's lifecycle ------------------------------------------------------------------


class ChannelAction(StrEnum):
    NONE = "none"
    WATCH = "watch"  # no live channel: create one
    RENEW = "renew"  # the channel nears its expiry: create the next one, then stop it
    REPLACE = "replace"  # suspect (a backstop sync found changes no notification announced)
    STOP = "stop"  # push is no longer configured: stop the channel


@dataclass(frozen=True)
class SyncFacts:
    """What the finished sync tells the channel decision."""

    previous_sync_at: datetime | None  # when the member was synced before this sync
    changes_found: bool  # the listing returned changed events
    backstop: bool  # the job was a scheduled one (not a notification's, not a connection's)


def channel_action(
    state: CalendarState, now: datetime, facts: SyncFacts, *, push_enabled: bool
) -> ChannelAction:
    """What to do about the member's channel after a successful sync."""
    active = state.push_status is PushStatus.ACTIVE and state.push_channel_id is not None
    if not push_enabled:
        return ChannelAction.STOP if active else ChannelAction.NONE
    if state.status is not ConnectionStatus.CONNECTED:
        return ChannelAction.NONE
    # Google refused a watch lately: none is asked before the retry time, also not to renew or
    # replace a channel still live (it works until it expires).
    waiting = state.push_retry_at is not None and now < state.push_retry_at
    if not active or (state.push_expires_at is not None and state.push_expires_at <= now):
        return ChannelAction.NONE if waiting else ChannelAction.WATCH
    if waiting:
        return ChannelAction.NONE
    if state.push_renew_at is not None and state.push_renew_at <= now:
        return ChannelAction.RENEW
    if facts.backstop and facts.changes_found and not _announced_since(state, facts.previous_sync_at):
        return ChannelAction.REPLACE
    return ChannelAction.NONE


def _announced_since(state: CalendarState, previous_sync_at: datetime | None) -> bool:
    last = state.push_last_notification_at
    return last is not None and (previous_sync_at is None or last > previous_sync_at)


def renew_time(channel_id: str, started_at: datetime, expires_at: datetime) -> datetime:
    """When the channel is renewed: once less than a quarter of its lifetime is left, at a point
    of the next eighth picked by its id, so channels made at the same minute renew at different
    ones."""
    lifetime = expires_at - started_at
    spread = int.from_bytes(hashlib.sha256(channel_id.encode()).digest()[:4], "big") / 2**32
    return expires_at - lifetime / 4 + lifetime / 8 * spread


def next_sync_time(state: CalendarState, now: datetime, backstop: timedelta | None) -> datetime:
    """When a member is due after a successful sync: at the next scheduler run without an active
    channel; with one, after the backstop interval or at the channel's renewal, if sooner."""
    if backstop is None or state.push_status is not PushStatus.ACTIVE or state.push_channel_id is None:
        return now
    due = now + backstop
    return min(due, state.push_renew_at) if state.push_renew_at is not None else due


def channel_watched(
    record: ChannelRecord, resource_id: str, expires_at: datetime, *, now: datetime, backstop: timedelta
) -> CalendarUpdate:
    """Google accepted the watch: the new channel is the member's."""
    renew_at = renew_time(record.channel_id, record.created_at, expires_at)
    return CalendarUpdate(
        push_status=PushStatus.ACTIVE,
        push_channel_id=record.channel_id,
        push_resource_id=resource_id,
        push_started_at=record.created_at,
        push_expires_at=expires_at,
        push_renew_at=renew_at,
        push_retry_at=None,
        push_last_error=None,
        next_sync_at=min(now + backstop, renew_at),
    )


def watch_refused(state: CalendarState, message: str, *, now: datetime) -> CalendarUpdate:
    """Google refused the watch: polled as before, asked again a day later. A channel still
    live (a refused renewal) keeps working until it expires."""
    still_live = state.push_status is PushStatus.ACTIVE and (
        state.push_expires_at is None or state.push_expires_at > now
    )
    return CalendarUpdate(
        push_status=PushStatus.ACTIVE if still_live else PushStatus.FAILED,
        push_last_error=message[:MAX_ERROR_LENGTH],
        push_retry_at=now + WATCH_RETRY_AFTER_REFUSAL,
    )


def watch_failed(message: str) -> CalendarUpdate:
    """The watch call failed for a reason that may pass (network, 5xx): the next sync tries again."""
    return CalendarUpdate(push_last_error=message[:MAX_ERROR_LENGTH])
