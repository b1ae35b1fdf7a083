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

import contextlib
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain import push
from shared.domain.calendar_state import UNSET, CalendarUpdate, channel_retired, lease_released
from shared.domain.models import CalendarState
from shared.domain.push import ChannelAction, ChannelRecord, SyncFacts
from shared.errors import CalsyncError, PermanentError, ReauthRequired, TokenMissing
from shared.logs import get_logger
from shared.services.ports import CalendarChannels, ChannelStore, Clock, MemberStore, TokenVault

LEASE_TTL_S = 120.0  # the lease a channel change holds: a watch and a stop, with retries


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


@dataclass(frozen=True)
class ChannelChange:
    outcome: ChannelOutcome
    # A push job came while the channel's lease was held: the caller queues one more sync.
    resync_requested: bool = False


def maintain_channel(
    deps: ChannelDeps, tenant_id: str, member_id: str, state: CalendarState, facts: SyncFacts
) -> ChannelChange:
    """After a successful sync whose end left the member in `state`: create, renew, replace or
    stop its channel as `push.channel_action` says, under a lease of its own. Never raises for
    Google's answers; raises TransientError only when Firestore fails (the job is redelivered;
    the sync is idempotent)."""
    enabled = deps.settings.enabled
    if push.channel_action(state, deps.clock.now(), facts, push_enabled=enabled) is ChannelAction.NONE:
        return ChannelChange(ChannelOutcome.UNCHANGED)
    owner = "channel-" + uuid.uuid4().hex
    member = deps.members.acquire_lease(tenant_id, member_id, owner, deps.clock.now(), LEASE_TTL_S)
    if member is None:
        return ChannelChange(ChannelOutcome.BUSY)
    outcome = ChannelOutcome.FAILED  # TokenMissing, ReauthRequired: the next sync finds out
    with contextlib.suppress(TokenMissing, ReauthRequired):
        outcome = _change(deps, tenant_id, member_id, member.calendar, facts, owner)
    # Released the way a sync ends (README.md#push-notifications): a push job that found this
    # lease taken asked for one more sync, and that request is taken over here.
    before = deps.members.update_calendar(
        tenant_id, member_id, lambda stored: _released(stored, deps.clock.now()), lease_owner=owner
    )
    return ChannelChange(outcome, resync_requested=bool(before and before.push_resync_requested))


def _released(stored: CalendarState, now: datetime) -> CalendarUpdate:
    """The channel work's lease released; a round asked for meanwhile takes the push claim over
    (as at the end of a sync, calendar_state.listing_completed)."""
    if not stored.push_resync_requested:
        return lease_released()
    return dataclasses.replace(lease_released(), push_resync_requested=False, push_queued_at=now)


def _change(
    deps: ChannelDeps, tenant_id: str, member_id: str, state: CalendarState, facts: SyncFacts, owner: str
) -> ChannelOutcome:
    action = push.channel_action(state, deps.clock.now(), facts, push_enabled=deps.settings.enabled)
    if action is ChannelAction.NONE:
        return ChannelOutcome.UNCHANGED
    refresh_token = deps.vault.read(tenant_id, member_id)
    if action is ChannelAction.STOP:
        ChannelRetirer(deps.channels, deps.calendar).retire(state, refresh_token)
        # the member is still synced: a re-sync asked for meanwhile is left for the release
        stopped = dataclasses.replace(channel_retired(), push_resync_requested=UNSET, push_queued_at=UNSET)
        deps.members.update_calendar(tenant_id, member_id, stopped, lease_owner=owner)
        return ChannelOutcome.STOPPED
    return _watch(deps, tenant_id, member_id, state, refresh_token, owner, action)


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
