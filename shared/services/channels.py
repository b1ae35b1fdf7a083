"""The life of a member's push channel (README.md#push-notifications): created after a
successful sync, renewed before it expires, replaced when suspect, stopped when the member goes.

    sync ends -> push.channel_action (pure) -> none | watch | renew | replace | stop
              -> under the member's lease: lookup entry stored -> events.watch -> member's
                 channel fields saved -> the old channel stopped and its lookup entry deleted

The lookup entry is stored before the watch call because Google may send the channel's first
message before the call returns. The new channel is saved on the member before the old one is
stopped: during the overlap both may notify, which the coalescing absorbs. A watch Google refuses
leaves the member polled (`failed`, asked again a day later); one that fails for a passing reason
is tried again at the next sync. Nothing here fails the sync that ran before it.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from shared.domain import push
from shared.domain.calendar_state import channel_retired, lease_released
from shared.domain.models import CalendarState
from shared.domain.push import ChannelAction, ChannelRecord, SyncFacts
from shared.errors import CalsyncError, PermanentError, ReauthRequired, TokenMissing
from shared.logs import get_logger
from shared.services.ports import (
    CalendarChannels,
    ChannelStore,
    Clock,
    JobPublisher,
    JobReason,
    MemberStore,
    SyncJob,
    TokenVault,
)

LEASE_TTL_S = 120.0  # the lease a channel change holds: a watch and a stop, with retries
# Releasing the lease also takes over a push job's request for one more round (see
# maintain_channel), as the end of a sync does.
_RELEASED = dataclasses.replace(lease_released(), push_resync_requested=False)


@dataclass(frozen=True)
class PushSettings:
    notification_url: str | None  # None: push is off, members are polled
    token_key: bytes
    ttl_s: int = 604_800
    backstop_interval_s: int = 21_600

    @property
    def enabled(self) -> bool:
        return bool(self.notification_url)

    @property
    def backstop(self) -> timedelta:
        return timedelta(seconds=self.backstop_interval_s)


@dataclass(frozen=True)
class ChannelDeps:
    members: MemberStore
    channels: ChannelStore
    calendar: CalendarChannels
    vault: TokenVault
    clock: Clock
    settings: PushSettings


class ChannelOutcome(StrEnum):
    UNCHANGED = "unchanged"
    WATCHED = "watched"  # a channel was created (first one, renewal or replacement)
    STOPPED = "stopped"
    REFUSED = "refused"  # Google refused the watch: the member stays polled
    FAILED = "failed"  # the watch failed for a passing reason: the next sync tries again
    BUSY = "busy"  # another sync runs: it will decide


def maintain_channel(
    deps: ChannelDeps,
    tenant_id: str,
    member_id: str,
    state: CalendarState,
    facts: SyncFacts,
    *,
    publisher: JobPublisher | None = None,
) -> ChannelOutcome:
    """After a successful sync whose end left the member in `state`: create, renew, replace or
    stop its channel as `push.channel_action` says. A push job that came while this held the
    member's lease asked for one more round: it is published on `publisher` when the lease is
    released, as a sync does. Never raises for Google's answers; raises TransientError only when
    Firestore or the publish fails (the job is redelivered; the sync is idempotent)."""
    enabled = deps.settings.enabled
    if push.channel_action(state, deps.clock.now(), facts, push_enabled=enabled) is ChannelAction.NONE:
        return ChannelOutcome.UNCHANGED
    owner = "channel-" + uuid.uuid4().hex
    member = deps.members.acquire_lease(tenant_id, member_id, owner, deps.clock.now(), LEASE_TTL_S)
    if member is None:
        return ChannelOutcome.BUSY
    state = member.calendar
    action = push.channel_action(state, deps.clock.now(), facts, push_enabled=enabled)
    resync_requested = False  # read by the write that clears it (channel_retired() clears it too)
    try:
        if action is ChannelAction.NONE:
            return ChannelOutcome.UNCHANGED
        refresh_token = deps.vault.read(tenant_id, member_id)
        if action is ChannelAction.STOP:
            ChannelRetirer(deps.channels, deps.calendar).retire(state, refresh_token)
            before = deps.members.update_calendar(tenant_id, member_id, channel_retired(), lease_owner=owner)
            resync_requested = before is not None and before.push_resync_requested
            return ChannelOutcome.STOPPED
        return _watch(deps, tenant_id, member_id, state, refresh_token, owner, action)
    except (TokenMissing, ReauthRequired):
        return ChannelOutcome.FAILED  # the next sync finds out and retires the channel
    finally:
        before = deps.members.update_calendar(tenant_id, member_id, _RELEASED, lease_owner=owner)
        if before is not None and before.push_resync_requested:
            resync_requested = True
        if resync_requested and publisher is not None:
            publisher.publish([SyncJob(tenant_id, member_id, JobReason.PUSH)])


def _watch(
    deps: ChannelDeps,
    tenant_id: str,
    member_id: str,
    state: CalendarState,
    refresh_token: str,
    owner: str,
    action: ChannelAction,
) -> ChannelOutcome:
    settings = deps.settings
    assert settings.notification_url is not None
    now = deps.clock.now()
    record = ChannelRecord(
        channel_id=push.new_channel_id(),
        tenant_id=tenant_id,
        member_id=member_id,
        expires_at=now + timedelta(seconds=settings.ttl_s),
        created_at=now,
    )
    token = push.channel_token(settings.token_key, record.channel_id, tenant_id, member_id)
    deps.channels.create(record)
    log = get_logger(component="channels", tenant_id=tenant_id, member_id=member_id, action=str(action))
    try:
        watched = deps.calendar.watch(
            refresh_token, record.channel_id, settings.notification_url, token, settings.ttl_s
        )
    except CalsyncError as error:
        deps.channels.delete(record.channel_id)
        refused = isinstance(error, PermanentError) and not isinstance(error, ReauthRequired)
        update = push.watch_refused(state, str(error), now=now) if refused else push.watch_failed(str(error))
        deps.members.update_calendar(tenant_id, member_id, update, lease_owner=owner)
        log.warning("watch refused" if refused else "watch failed", error=str(error))
        return ChannelOutcome.REFUSED if refused else ChannelOutcome.FAILED
    deps.channels.set_resource(record.channel_id, watched.resource_id, watched.expires_at)
    saved = push.channel_watched(
        record, watched.resource_id, watched.expires_at, now=now, backstop=settings.backstop
    )
    deps.members.update_calendar(tenant_id, member_id, saved, lease_owner=owner)
    ChannelRetirer(deps.channels, deps.calendar).retire(state, refresh_token)
    log.info("channel watched", channel_id=record.channel_id, expires_at=watched.expires_at.isoformat())
    return ChannelOutcome.WATCHED


class ChannelRetirer:
    """Ends a member's channel: stopped at Google when a token is at hand (best effort: a token
    already revoked cannot stop it), and its lookup entry deleted, so any later notification of
    it is refused. The caller saves `channel_retired()` (or a new channel) on the member."""

    def __init__(self, channels: ChannelStore, calendar: CalendarChannels | None) -> None:
        self._channels = channels
        self._calendar = calendar

    def retire(self, state: CalendarState, refresh_token: str | None) -> None:
        """Raises TransientError when the lookup entry cannot be deleted (Firestore)."""
        channel_id, resource_id = state.push_channel_id, state.push_resource_id
        if channel_id is None:
            return
        if refresh_token and resource_id and self._calendar is not None:
            try:
                self._calendar.stop(refresh_token, channel_id, resource_id)
            except CalsyncError as error:
                get_logger(component="channels").warning(
                    "channel not stopped at Google; it expires by itself",
                    channel_id=channel_id,
                    error=str(error),
                )
        self._channels.delete(channel_id)
