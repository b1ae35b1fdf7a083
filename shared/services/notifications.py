"""A push notification from Google Calendar -> at most one pending sync job for its member
(README.md#push-notifications). The use case behind the public `calendar_notification`.

    headers -> push.notification_from_headers -> the channel's lookup entry -> push.judge (pure:
    token and resource id checked in constant time) -> for a change: claim the member's push job
    (or join the pending one) -> publish it

It never reads the calendar and never syncs inline. Refused notifications (400, 403, 404) write
and queue nothing. A claimed job that cannot be published is released and answered 503, so
Google sends the notification again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.domain import push
from shared.domain.push import Claim, Verdict
from shared.errors import CalsyncError, TransientError
from shared.services.ports import ChannelStore, Clock, JobPublisher, JobReason, MemberStore, SyncJob

# The headers a notification is judged by (Google sends a few more).
NOTIFICATION_HEADERS = (
    "X-Goog-Channel-ID",
    "X-Goog-Channel-Token",
    "X-Goog-Resource-ID",
    "X-Goog-Resource-State",
    "X-Goog-Message-Number",
)


@dataclass(frozen=True)
class NotificationDeps:
    channels: ChannelStore
    members: MemberStore
    publisher: JobPublisher
    clock: Clock
    token_key: bytes


class NotificationOutcome(StrEnum):
    """How a notification was answered (the HTTP status in the comment)."""

    BAD_REQUEST = "bad_request"  # 400
    UNKNOWN_CHANNEL = "unknown_channel"  # 404: unknown, stopped or expired channel
    NOT_SYNCED = "not_synced"  # 404: the channel's member is not connected (a retired channel)
    FORGED = "forged"  # 403
    STARTED = "started"  # 200: a channel's first message
    QUEUED = "queued"  # 200: a sync job was queued
    COALESCED = "coalesced"  # 200: one was pending already
    UNAVAILABLE = "unavailable"  # 503: Firestore or Pub/Sub failed; Google retries


STATUS = {
    NotificationOutcome.BAD_REQUEST: 400,
    NotificationOutcome.UNKNOWN_CHANNEL: 404,
    NotificationOutcome.NOT_SYNCED: 404,
    NotificationOutcome.FORGED: 403,
    NotificationOutcome.STARTED: 200,
    NotificationOutcome.QUEUED: 200,
    NotificationOutcome.COALESCED: 200,
    NotificationOutcome.UNAVAILABLE: 503,
}
_VERDICTS = {
    Verdict.BAD_REQUEST: NotificationOutcome.BAD_REQUEST,
    Verdict.UNKNOWN_CHANNEL: NotificationOutcome.UNKNOWN_CHANNEL,
    Verdict.FORGED: NotificationOutcome.FORGED,
    Verdict.STARTED: NotificationOutcome.STARTED,
}
_CLAIMS = {
    Claim.PENDING: NotificationOutcome.COALESCED,
    Claim.RESYNC: NotificationOutcome.COALESCED,
    Claim.NOT_SYNCED: NotificationOutcome.NOT_SYNCED,
}


@dataclass(frozen=True)
class NotificationResult:
    outcome: NotificationOutcome
    channel_id: str | None = None
    tenant_id: str | None = None
    member_id: str | None = None
    error: str | None = None

    @property
    def status(self) -> int:
        return STATUS[self.outcome]


def handle_notification(deps: NotificationDeps, headers: Mapping[str, str]) -> NotificationResult:
    """Answer one notification. Never raises: Firestore or Pub/Sub failures are UNAVAILABLE."""
    notification = push.notification_from_headers(headers)
    if notification is None:
        return NotificationResult(NotificationOutcome.BAD_REQUEST)
    if not push.is_channel_id(notification.channel_id):
        return NotificationResult(NotificationOutcome.UNKNOWN_CHANNEL)
    channel_id = notification.channel_id
    try:
        record = deps.channels.get(channel_id)
        verdict = push.judge(notification, record, deps.token_key, deps.clock.now())
        if verdict is not Verdict.CHANGED or record is None:
            return NotificationResult(_VERDICTS.get(verdict, NotificationOutcome.UNKNOWN_CHANNEL), channel_id)
        found = NotificationResult(NotificationOutcome.QUEUED, channel_id, record.tenant_id, record.member_id)
        decision = deps.members.claim_push_job(record.tenant_id, record.member_id, deps.clock.now())
        if decision is not Claim.QUEUE:
            return _with(found, _CLAIMS[decision])
    except TransientError as error:
        return NotificationResult(NotificationOutcome.UNAVAILABLE, channel_id, error=str(error))
    return _publish(deps, found)


def _publish(deps: NotificationDeps, claimed: NotificationResult) -> NotificationResult:
    tenant_id, member_id = str(claimed.tenant_id), str(claimed.member_id)
    try:
        deps.publisher.publish([SyncJob(tenant_id, member_id, JobReason.PUSH)])
    except TransientError as error:
        with contextlib.suppress(CalsyncError):  # else the claim lapses (push.PENDING_JOB_TTL)
            deps.members.update_calendar(tenant_id, member_id, push.push_claim_released())
        return _with(claimed, NotificationOutcome.UNAVAILABLE, str(error))
    return claimed


def _with(
    result: NotificationResult, outcome: NotificationOutcome, error: str | None = None
) -> NotificationResult:
    return NotificationResult(outcome, result.channel_id, result.tenant_id, result.member_id, error)
