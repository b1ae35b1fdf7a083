"""The pure rules of push channels (shared/domain/push.py): tokens, the verdict on a
notification, coalescing, what a finished sync does about the channel, renewal and scheduling."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import calendar_state, push
from shared.domain.models import CalendarState, ConnectionStatus, PushStatus
from shared.domain.push import ChannelAction, ChannelRecord, Claim, SyncFacts, Verdict

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32
WEEK = timedelta(days=7)
RECORD = ChannelRecord("calsync-abc", "t1", "m1", expires_at=NOW + WEEK, created_at=NOW, resource_id="res-1")
TOKEN = push.channel_token(KEY, "calsync-abc", "t1", "m1")
CONNECTED = CalendarState(status=ConnectionStatus.CONNECTED)
ACTIVE = dataclasses.replace(
    CONNECTED,
    push_status=PushStatus.ACTIVE,
    push_channel_id="calsync-abc",
    push_resource_id="res-1",
    push_started_at=NOW - timedelta(days=1),
    push_expires_at=NOW + timedelta(days=6),
    push_renew_at=NOW + timedelta(days=5),
)
QUIET_BACKSTOP = SyncFacts(previous_sync_at=NOW - timedelta(hours=6), changes_found=False, backstop=True)


def headers(
    state: str = "exists", token: str | None = TOKEN, resource: str | None = "res-1"
) -> dict[str, str]:
    found = {"X-Goog-Channel-ID": "calsync-abc", "X-Goog-Resource-State": state, "X-Goog-Message-Number": "2"}
    if token is not None:
        found["X-Goog-Channel-Token"] = token
    if resource is not None:
        found["X-Goog-Resource-ID"] = resource
    return found


def verdict(found: dict[str, str], record: ChannelRecord | None = RECORD, now: datetime = NOW) -> Verdict:
    notification = push.notification_from_headers(found)
    assert notification is not None
    return push.judge(notification, record, KEY, now)


# --- tokens and notifications -------------------------------------------------------------------


def test_a_token_names_channel_tenant_and_member_and_fits_googles_limits() -> None:
    others = {
        push.channel_token(KEY, "calsync-abd", "t1", "m1"),
        push.channel_token(KEY, "calsync-abc", "t2", "m1"),
        push.channel_token(KEY, "calsync-abc", "t1", "m2"),
        push.channel_token(b"j" * 32, "calsync-abc", "t1", "m1"),
    }
    assert TOKEN not in others
    assert len(others) == 4
    assert len(TOKEN) <= 256
    assert TOKEN.isascii()
    assert push.is_channel_id(push.new_channel_id())
    assert push.new_channel_id() != push.new_channel_id()


@pytest.mark.parametrize(
    "found",
    [
        {"X-Goog-Resource-State": "exists"},
        {"X-Goog-Channel-ID": "calsync-abc"},
        {"X-Goog-Channel-ID": "", "X-Goog-Resource-State": "exists"},
        {"X-Goog-Channel-ID": "calsync-abc", "X-Goog-Resource-State": "changed"},
    ],
)
def test_headers_without_a_channel_id_or_a_known_resource_state_are_no_notification(
    found: dict[str, str],
) -> None:
    assert push.notification_from_headers(found) is None


def test_a_change_with_the_channels_token_and_resource_is_a_change() -> None:
    assert verdict(headers()) is Verdict.CHANGED
    assert verdict(headers("not_exists")) is Verdict.CHANGED
    assert verdict(headers("sync")) is Verdict.STARTED


def test_a_wrong_or_missing_token_or_resource_id_is_forged() -> None:
    assert verdict(headers(token=TOKEN[:-1] + ("A" if TOKEN[-1] != "A" else "B"))) is Verdict.FORGED
    assert verdict(headers(token=None)) is Verdict.FORGED
    assert verdict(headers(token=push.channel_token(KEY, "calsync-abc", "t1", "m2"))) is Verdict.FORGED
    assert verdict(headers(resource="res-2")) is Verdict.FORGED
    assert verdict(headers("sync", resource="res-2")) is Verdict.FORGED


def test_the_resource_id_is_checked_only_once_known() -> None:
    """The first `sync` message may come before the watch call returned the resource id."""
    unknown_yet = dataclasses.replace(RECORD, resource_id=None)
    assert verdict(headers("sync", resource="anything"), unknown_yet) is Verdict.STARTED


def test_an_unknown_or_expired_channel_is_unknown() -> None:
    assert verdict(headers(), None) is Verdict.UNKNOWN_CHANNEL
    assert verdict(headers(), now=RECORD.expires_at) is Verdict.UNKNOWN_CHANNEL
    assert not push.is_channel_id("x" * 65)
    assert not push.is_channel_id("a b")


# --- coalescing -----------------------------------------------------------------------------------


def claimed(state: CalendarState, decision: Claim, now: datetime = NOW) -> CalendarState:
    update = push.claimed(decision, now)
    return state if update is None else update.apply_to(state)


def test_a_change_claims_a_job_unless_one_is_pending_or_the_member_is_not_connected() -> None:
    assert push.claim(CONNECTED, NOW) is Claim.QUEUE
    pending = claimed(CONNECTED, Claim.QUEUE)
    assert pending.push_queued_at == NOW
    assert pending.push_last_notification_at == NOW
    assert push.claim(pending, NOW + timedelta(minutes=9)) is Claim.PENDING
    assert push.claimed(Claim.PENDING, NOW) is None  # joining writes nothing
    assert push.claim(pending, NOW + push.PENDING_JOB_TTL) is Claim.QUEUE  # its job was lost
    assert push.claim(push.push_claim_released().apply_to(pending), NOW) is Claim.QUEUE


def test_a_change_while_the_claimed_job_runs_asks_it_for_one_more_round_once() -> None:
    running = dataclasses.replace(
        claimed(CONNECTED, Claim.QUEUE), lease_owner="worker-a", lease_expires_at=NOW + timedelta(minutes=9)
    )
    assert push.claim(running, NOW) is Claim.RESYNC
    asked = claimed(running, Claim.RESYNC)
    assert asked.push_resync_requested
    assert push.claim(asked, NOW) is Claim.PENDING  # the burst's other notifications join
    expired_lease = dataclasses.replace(running, lease_expires_at=NOW)
    assert push.claim(expired_lease, NOW) is Claim.PENDING  # no sync runs: the pending job lists it


def test_the_end_of_a_sync_frees_the_claim_and_takes_the_resync_request() -> None:
    asked = claimed(claimed(CONNECTED, Claim.QUEUE), Claim.RESYNC)
    ended = calendar_state.listing_completed("sync-2", now=NOW).apply_to(asked)
    assert ended.push_queued_at is None
    assert not ended.push_resync_requested
    assert push.claim(ended, NOW) is Claim.QUEUE
    passed_on = calendar_state.listing_completed("sync-2", now=NOW, resync_requested=True).apply_to(asked)
    assert passed_on.push_queued_at == NOW  # the claim passes to the resync job the caller queues
    assert not passed_on.push_resync_requested
    assert push.claim(passed_on, NOW) is Claim.PENDING
    for status in (
        ConnectionStatus.DISCONNECTED,
        ConnectionStatus.NEEDS_REAUTH,
        ConnectionStatus.NOT_CONNECTED,
    ):
        assert push.claim(dataclasses.replace(CONNECTED, status=status), NOW) is Claim.NOT_SYNCED


# --- what a sync does about the channel -----------------------------------------------------------


def action(state: CalendarState, facts: SyncFacts = QUIET_BACKSTOP, *, enabled: bool = True) -> ChannelAction:
    return push.channel_action(state, NOW, facts, push_enabled=enabled)


def test_a_member_without_a_live_channel_gets_one() -> None:
    assert action(CONNECTED) is ChannelAction.WATCH
    assert action(dataclasses.replace(ACTIVE, push_expires_at=NOW)) is ChannelAction.WATCH
    assert action(ACTIVE) is ChannelAction.NONE
    assert action(dataclasses.replace(CONNECTED, status=ConnectionStatus.DISCONNECTED)) is ChannelAction.NONE


def test_a_refused_watch_is_asked_again_only_a_day_later() -> None:
    refused = push.watch_refused(CONNECTED, "400 pushNotSupportedForRequestedResource", now=NOW).apply_to(
        CONNECTED
    )
    assert refused.push_status is PushStatus.FAILED
    assert refused.push_last_error == "400 pushNotSupportedForRequestedResource"
    assert action(refused) is ChannelAction.NONE
    later = push.channel_action(
        refused, NOW + push.WATCH_RETRY_AFTER_REFUSAL, QUIET_BACKSTOP, push_enabled=True
    )
    assert later is ChannelAction.WATCH


def test_a_refused_renewal_keeps_the_live_channel_active() -> None:
    refused = push.watch_refused(ACTIVE, "refused", now=NOW).apply_to(ACTIVE)
    assert refused.push_status is PushStatus.ACTIVE
    assert refused.push_channel_id == "calsync-abc"


def test_a_channel_past_its_renewal_time_is_renewed() -> None:
    assert action(dataclasses.replace(ACTIVE, push_renew_at=NOW)) is ChannelAction.RENEW


def test_a_backstop_sync_with_changes_no_notification_announced_replaces_the_channel() -> None:
    unannounced = SyncFacts(previous_sync_at=NOW - timedelta(hours=6), changes_found=True, backstop=True)
    assert action(ACTIVE, unannounced) is ChannelAction.REPLACE
    announced = dataclasses.replace(ACTIVE, push_last_notification_at=NOW - timedelta(hours=1))
    assert action(announced, unannounced) is ChannelAction.NONE
    pushed = dataclasses.replace(unannounced, backstop=False)  # a push job's own sync
    assert action(ACTIVE, pushed) is ChannelAction.NONE


def test_push_turned_off_stops_a_live_channel() -> None:
    assert action(ACTIVE, enabled=False) is ChannelAction.STOP
    assert action(CONNECTED, enabled=False) is ChannelAction.NONE


# --- renewal and scheduling -----------------------------------------------------------------------


def test_renewal_comes_when_less_than_a_quarter_is_left_and_spreads_channels_apart() -> None:
    times = [push.renew_time(push.new_channel_id(), NOW, NOW + WEEK) for _ in range(200)]
    assert all(NOW + WEEK * 3 / 4 <= t <= NOW + WEEK * 7 / 8 for t in times)
    assert max(times) - min(times) > timedelta(hours=12)  # not all at the same minute
    assert len({t.replace(second=0, microsecond=0) for t in times}) > 150
    assert push.renew_time("calsync-x", NOW, NOW + WEEK) == push.renew_time("calsync-x", NOW, NOW + WEEK)


def test_a_member_with_an_active_channel_is_due_at_the_backstop_or_its_renewal() -> None:
    six_hours = timedelta(hours=6)
    assert push.next_sync_time(CONNECTED, NOW, six_hours) == NOW
    assert push.next_sync_time(ACTIVE, NOW, None) == NOW  # push off: polled
    assert push.next_sync_time(ACTIVE, NOW, six_hours) == NOW + six_hours
    renewing = dataclasses.replace(ACTIVE, push_renew_at=NOW + timedelta(hours=1))
    assert push.next_sync_time(renewing, NOW, six_hours) == NOW + timedelta(hours=1)


def test_a_watched_channel_is_stored_with_its_renewal_and_due_time() -> None:
    expires = NOW + timedelta(days=2)  # Google granted less than asked
    update = push.channel_watched(RECORD, "res-9", expires, now=NOW, backstop=timedelta(hours=6))
    state = update.apply_to(dataclasses.replace(CONNECTED, push_last_error="old", push_retry_at=NOW))
    assert state.push_status is PushStatus.ACTIVE
    assert (state.push_channel_id, state.push_resource_id, state.push_expires_at) == (
        "calsync-abc",
        "res-9",
        expires,
    )
    assert state.push_renew_at is not None
    assert NOW + timedelta(days=1.5) <= state.push_renew_at < expires
    assert state.next_sync_at == NOW + timedelta(hours=6)
    assert state.push_last_error is None
    assert state.push_retry_at is None


def test_retiring_a_channel_forgets_it_and_any_pending_push_work() -> None:
    busy = dataclasses.replace(ACTIVE, push_queued_at=NOW, push_resync_requested=True)
    state = push.channel_retired().apply_to(busy)
    assert state.push_status is PushStatus.OFF
    assert state.push_channel_id is None
    assert state.push_queued_at is None
    assert not state.push_resync_requested
    assert push.claim(state, NOW) is Claim.QUEUE
