"""The stand-in's Calendar push notifications (events.watch, channels.stop, the notifier and its
fault switches), driven through googleapiclient; notifications land in a local receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from shared.sandbox.emulators import free_port
from shared.sandbox.google_standin import GoogleStandIn
from shared.sandbox.standin.push import PushFaults
from tests.support.google_clients import calendar_service
from tests.support.push_receiver import NotificationReceiver
from tests.support.sandbox import FixedClock

EMAIL = "anna@northwind-cs.com"
BOB = "bob@northwind-cs.com"
WEEK_MS = 604800 * 1000


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


@pytest.fixture
def service(standin: GoogleStandIn) -> Any:
    return calendar_service(standin, standin.issue_refresh_token(EMAIL))


@pytest.fixture
def clocked(clock: FixedClock) -> Iterator[GoogleStandIn]:
    """A stand-in on the hand-moved clock."""
    with GoogleStandIn(clock=clock.now) as running:
        yield running


def watch(service: Any, channel_id: str, address: str, calendar_id: str = "primary", **extra: Any) -> Any:
    body = {"id": channel_id, "type": "web_hook", "address": address, **extra}
    return service.events().watch(calendarId=calendar_id, body=body).execute()


def stop(service: Any, channel: dict[str, Any]) -> Any:
    return service.channels().stop(body={"id": channel["id"], "resourceId": channel["resourceId"]}).execute()


def event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": f"Meeting {event_id}",
        "start": {"dateTime": "2026-11-24T10:00:00Z"},
        "end": {"dateTime": "2026-11-24T10:30:00Z"},
        **extra,
    }


def error_reason(error: HttpError) -> str:
    return str(json.loads(error.content)["error"]["errors"][0]["reason"])


def exists(receiver: NotificationReceiver) -> list[int]:
    return [n.number for n in receiver.received if n.state == "exists"]


def settle(standin: GoogleStandIn) -> None:
    assert standin.push.wait_idle(5)


# --- watch ----------------------------------------------------------------------------------------


def test_watch_answers_a_channel_resource(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    before_ms = int(time.time() * 1000)
    channel = watch(service, "chan-1", receiver.url, token="target=calsync")
    assert set(channel) == {"kind", "id", "resourceId", "resourceUri", "token", "expiration"}
    assert channel["kind"] == "api#channel"
    assert channel["id"] == "chan-1"
    assert channel["token"] == "target=calsync"
    assert channel["resourceUri"] == standin.calendar_endpoint + "calendars/primary/events?alt=json"
    assert isinstance(channel["expiration"], str)
    assert channel["expiration"].isdigit()
    assert before_ms + WEEK_MS - 1000 <= int(channel["expiration"]) <= int(time.time() * 1000) + WEEK_MS

    again = watch(service, "chan-2", receiver.url, calendar_id=EMAIL)  # own address = primary
    assert "token" not in again
    assert again["resourceId"] == channel["resourceId"]
    bob = calendar_service(standin, standin.issue_refresh_token(BOB))
    assert watch(bob, "chan-3", receiver.url)["resourceId"] != channel["resourceId"]
    assert [c.id for c in standin.push.channels(EMAIL)] == ["chan-1", "chan-2"]
    with pytest.raises(HttpError) as caught:
        watch(service, "chan-4", receiver.url, calendar_id=BOB)
    assert caught.value.resp.status == 404


def test_ttl_is_honoured_and_capped(
    clocked: GoogleStandIn, clock: FixedClock, receiver: NotificationReceiver
) -> None:
    service = calendar_service(clocked, clocked.issue_refresh_token(EMAIL))
    now_ms = int(clock.now().timestamp() * 1000)
    assert int(watch(service, "a", receiver.url, params={"ttl": "60"})["expiration"]) == now_ms + 60_000
    requested = now_ms + 90_000
    assert int(watch(service, "b", receiver.url, expiration=requested)["expiration"]) == requested
    assert int(watch(service, "c", receiver.url, params={"ttl": "9999999"})["expiration"]) == now_ms + WEEK_MS
    clocked.push.max_ttl_s = 100
    assert int(watch(service, "d", receiver.url, params={"ttl": "3600"})["expiration"]) == now_ms + 100_000
    assert int(watch(service, "e", receiver.url)["expiration"]) == now_ms + 100_000


# --- notifications --------------------------------------------------------------------------------


def test_sync_then_one_exists_per_change_with_every_header(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    channel = watch(service, "chan-1", receiver.url, token="tok-123")
    sync = receiver.wait_for(1)[0]
    calendar = standin.calendar(EMAIL)
    calendar.upsert_event(event("a"))
    calendar.upsert_event(event("b"))
    calendar.cancel_event("a")
    calendar.delete_event("b")
    calendar.load_events([event("c")])
    calendar.clear()
    calendar.expire_sync_tokens()  # not a change
    settle(standin)
    received = receiver.received
    assert [(n.state, n.number) for n in received] == [("sync", 1)] + [("exists", i) for i in range(2, 8)]
    expiration = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC).replace(microsecond=0)
    for note in received:
        assert note.body == b""
        assert note.path == "/notifications"
        assert note.headers["x-goog-channel-id"] == "chan-1"
        assert note.headers["x-goog-channel-token"] == "tok-123"
        assert note.headers["x-goog-resource-id"] == channel["resourceId"]
        assert note.headers["x-goog-resource-uri"] == channel["resourceUri"]
        assert note.headers["x-goog-channel-expiration"].endswith(" GMT")
        assert parsedate_to_datetime(note.headers["x-goog-channel-expiration"]) == expiration
    assert sync.state == "sync"
    log = standin.push.deliveries()
    assert [(d.state, d.number, d.status) for d in log] == [(n.state, n.number, 200) for n in received]
    assert all(d.changed_at <= d.sent_at for d in log)
    assert standin.push.counters()["delivered"] == 7


def test_no_token_header_without_a_token_and_other_calendars_stay_quiet(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    watch(service, "chan-1", receiver.url)
    standin.calendar(BOB).upsert_event(event("x"))
    standin.calendar(EMAIL).upsert_event(event("y"))
    settle(standin)
    assert [n.state for n in receiver.received] == ["sync", "exists"]
    assert all("x-goog-channel-token" not in n.headers for n in receiver.received)


def test_sync_can_arrive_before_the_watch_call_returns(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    standin.push.wait_for_sync = True
    returned = threading.Event()
    seen_before_return: list[bool] = []
    receiver.on_notification = lambda note: seen_before_return.append(not returned.is_set())
    channel = watch(service, "chan-1", receiver.url)
    returned.set()
    assert seen_before_return == [True]  # the receiver could not know the resourceId yet
    assert receiver.received[0].headers["x-goog-resource-id"] == channel["resourceId"]


def test_by_default_the_watch_answer_does_not_wait_for_the_sync_delivery(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    receiver.on_notification = lambda note: time.sleep(0.5)
    started = time.monotonic()
    watch(service, "chan-1", receiver.url)
    assert time.monotonic() - started < 0.4
    assert [n.state for n in receiver.wait_for(1)] == ["sync"]


# --- stop -----------------------------------------------------------------------------------------


def test_stop_answers_204_and_ends_notifications(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    channel = watch(service, "chan-1", receiver.url)
    receiver.wait_for(1)
    body = json.dumps({"id": channel["id"], "resourceId": channel["resourceId"]})
    answer, content = service._http.request(
        standin.calendar_endpoint + "channels/stop",
        method="POST",
        body=body,
        headers={"content-type": "application/json"},
    )
    assert answer.status == 204
    assert content == b""
    standin.calendar(EMAIL).upsert_event(event("a"))
    settle(standin)
    assert [n.state for n in receiver.received] == ["sync"]
    assert standin.push.channels(EMAIL) == []
    with pytest.raises(HttpError) as caught:  # stopped already
        stop(service, channel)
    assert caught.value.resp.status == 404
    assert error_reason(caught.value) == "notFound"
    assert "Channel 'chan-1' not found for project" in str(
        json.loads(caught.value.content)["error"]["message"]
    )


def test_stop_of_an_unknown_or_foreign_channel_is_404(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    channel = watch(service, "chan-1", receiver.url)
    bob = calendar_service(standin, standin.issue_refresh_token(BOB))
    for who, body in [
        (service, {"id": "nope", "resourceId": channel["resourceId"]}),
        (service, {"id": "chan-1", "resourceId": "not-its-resource"}),
        (bob, {"id": "chan-1", "resourceId": channel["resourceId"]}),
    ]:
        with pytest.raises(HttpError) as caught:
            who.channels().stop(body=body).execute()
        assert caught.value.resp.status == 404
    assert [c.id for c in standin.push.channels(EMAIL)] == ["chan-1"]
    assert stop(service, channel) in ({}, "")


def test_watch_and_stop_are_counted_as_calendar_requests(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    stop(service, watch(service, "chan-1", receiver.url))
    calendar_posts = [(m, p) for s, m, p in standin.requests if s == "calendar" and m == "POST"]
    assert calendar_posts == [
        ("POST", "/calendar/v3/calendars/primary/events/watch"),
        ("POST", "/calendar/v3/channels/stop"),
    ]


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"id": "c1", "type": "web_hook"}, "required"),
        ({"type": "web_hook", "address": "http://127.0.0.1:9/"}, "required"),
        ({"id": "c1", "type": "email", "address": "http://127.0.0.1:9/"}, "invalid"),
        ({"id": "c" * 65, "type": "web_hook", "address": "http://127.0.0.1:9/"}, "invalid"),
        ({"id": "bad id!", "type": "web_hook", "address": "http://127.0.0.1:9/"}, "invalid"),
        ({"id": "c1", "type": "web_hook", "address": "http://example.com/hook"}, "push.webhookUrlNotHttps"),
    ],
)
def test_invalid_watch_requests_are_400(service: Any, body: dict[str, Any], reason: str) -> None:
    with pytest.raises(HttpError) as caught:
        service.events().watch(calendarId="primary", body=body).execute()
    assert caught.value.resp.status == 400
    assert error_reason(caught.value) == reason


def test_a_live_channel_id_is_unique_until_stopped(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    channel = watch(service, "chan-1", receiver.url)
    with pytest.raises(HttpError) as caught:
        watch(service, "chan-1", receiver.url)
    assert error_reason(caught.value) == "channelIdNotUnique"
    stop(service, channel)
    assert watch(service, "chan-1", receiver.url, type="webhook")["id"] == "chan-1"


# --- retries --------------------------------------------------------------------------------------


def test_a_503_is_retried_until_200(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    receiver.statuses = [503, 502]
    watch(service, "chan-1", receiver.url)
    settle(standin)
    log = standin.push.deliveries()
    assert [(d.number, d.attempt, d.status) for d in log] == [(1, 1, 503), (1, 2, 502), (1, 3, 200)]
    assert log[1].sent_at - log[0].sent_at >= 0.05  # backoff
    assert log[2].sent_at - log[1].sent_at >= 0.1
    assert standin.push.counters()["retries"] == 2
    assert standin.push.counters()["delivered"] == 1


def test_a_404_is_not_retried(standin: GoogleStandIn, service: Any, receiver: NotificationReceiver) -> None:
    receiver.status = 404
    watch(service, "chan-1", receiver.url)
    standin.calendar(EMAIL).upsert_event(event("a"))
    settle(standin)
    assert [(d.number, d.status) for d in standin.push.deliveries()] == [(1, 404), (2, 404)]
    assert standin.push.counters()["failed"] == 2


def test_connection_errors_are_retried_then_given_up(standin: GoogleStandIn, service: Any) -> None:
    standin.push.retry_attempts = 3
    watch(service, "chan-1", f"http://127.0.0.1:{free_port()}/gone")
    settle(standin)
    log = standin.push.deliveries()
    assert [d.attempt for d in log] == [1, 2, 3]
    assert all(d.status is None and d.error for d in log)
    assert standin.push.counters()["failed"] == 1


def test_a_change_never_waits_for_a_slow_receiver(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    watch(service, "chan-1", receiver.url)
    receiver.wait_for(1)
    receiver.on_notification = lambda note: time.sleep(0.15)
    started = time.monotonic()
    for i in range(3):
        standin.calendar(EMAIL).upsert_event(event(f"e{i}"))
    assert time.monotonic() - started < 0.1
    settle(standin)
    assert exists(receiver) == [2, 3, 4]


# --- expiration -----------------------------------------------------------------------------------


def test_a_channel_stops_delivering_at_its_expiration(
    clocked: GoogleStandIn, clock: FixedClock, receiver: NotificationReceiver
) -> None:
    service = calendar_service(clocked, clocked.issue_refresh_token(EMAIL))
    watch(service, "chan-1", receiver.url, params={"ttl": "60"})
    clocked.calendar(EMAIL).upsert_event(event("a"))
    settle(clocked)
    clock.advance(seconds=61)
    clocked.calendar(EMAIL).upsert_event(event("b"))
    settle(clocked)
    assert [n.state for n in receiver.received] == ["sync", "exists"]
    assert clocked.push.channels(EMAIL) == []
    assert watch(service, "chan-1", receiver.url)["id"] == "chan-1"  # an expired id is free again


# --- fault switches -------------------------------------------------------------------------------


def started(standin: GoogleStandIn, service: Any, receiver: NotificationReceiver) -> dict[str, Any]:
    channel = watch(service, "chan-1", receiver.url)
    receiver.wait_for(1)
    return dict(channel)


def change(standin: GoogleStandIn, count: int = 1) -> None:
    for _ in range(count):
        standin.calendar(EMAIL).upsert_event(event("a"))


def test_drop_loses_messages_but_uses_their_numbers(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    started(standin, service, receiver)
    standin.push.faults.drop(2)
    change(standin, 3)
    settle(standin)
    assert exists(receiver) == [4]
    assert standin.push.counters()["dropped"] == 2


def test_duplicate_delivers_a_message_twice(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    started(standin, service, receiver)
    standin.push.faults.duplicate()
    change(standin, 2)
    settle(standin)
    assert exists(receiver) == [2, 2, 3]
    assert standin.push.counters()["duplicated"] == 1


def test_delay_lets_later_messages_overtake(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    started(standin, service, receiver)
    standin.push.faults.delay(0.3)
    changed = time.monotonic()
    change(standin, 2)
    settle(standin)
    assert exists(receiver) == [3, 2]
    late = next(n for n in receiver.received if n.number == 2)
    assert late.received_at - changed >= 0.3


def test_reorder_holds_messages_and_sends_them_reversed(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    started(standin, service, receiver)
    standin.push.faults.reorder(3)
    change(standin, 2)
    settle(standin)
    assert exists(receiver) == []  # held until the third
    change(standin, 2)
    settle(standin)
    assert exists(receiver) == [4, 3, 2, 5]


def test_probabilistic_faults_reproduce_with_the_seed() -> None:
    def plans(seed: int) -> list[tuple[bool, int]]:
        faults = PushFaults(seed)
        faults.drop_randomly(0.5)
        faults.duplicate_randomly(0.5)
        return [(p.drop, p.copies) for p in (faults.plan() for _ in range(40))]

    assert plans(7) == plans(7)
    assert plans(7) != plans(8)
    assert 5 < sum(drop for drop, _ in plans(7)) < 35


def test_keep_sending_after_stop(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    channel = started(standin, service, receiver)
    stop(service, channel)
    standin.push.faults.keep_sending_after_stop = True
    change(standin)
    settle(standin)
    assert exists(receiver) == [2]
    assert standin.push.channels(EMAIL) == []  # stopped, all the same


def test_refuse_watch_is_push_not_supported(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    standin.push.faults.refuse_watch()
    with pytest.raises(HttpError) as caught:
        watch(service, "chan-1", receiver.url)
    assert caught.value.resp.status == 400
    assert error_reason(caught.value) == "pushNotSupportedForRequestedResource"
    assert "Push notifications are not supported by this resource." in caught.value.content.decode()
    assert watch(service, "chan-1", receiver.url)["id"] == "chan-1"  # only the next one


def test_expire_early_ends_delivery_before_the_stated_expiration(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    first = started(standin, service, receiver)
    watch(service, "chan-2", receiver.url)
    receiver.wait_for(2)
    standin.push.expire_channel("chan-1")
    change(standin)
    settle(standin)
    assert [n.channel_id for n in receiver.received if n.state == "exists"] == ["chan-2"]
    assert int(first["expiration"]) > int(time.time() * 1000)  # what the client still believes
    assert standin.push.expire_channels(EMAIL) == 1
    change(standin)
    settle(standin)
    assert len(exists(receiver)) == 1


def test_reset_forgets_channels_deliveries_and_faults(
    standin: GoogleStandIn, service: Any, receiver: NotificationReceiver
) -> None:
    started(standin, service, receiver)
    standin.push.faults.drop(5)
    standin.push.faults.keep_sending_after_stop = True
    standin.reset()
    assert standin.push.channels() == []
    assert standin.push.deliveries() == []
    assert standin.push.counters()["delivered"] == 0
    assert not standin.push.faults.keep_sending_after_stop
    fresh = calendar_service(standin, standin.issue_refresh_token(EMAIL))
    watch(fresh, "chan-1", receiver.url)
    change(standin)
    settle(standin)
    assert exists(receiver) == [2]  # not dropped


def test_expiration_header_is_rfc_1123(
    clocked: GoogleStandIn, clock: FixedClock, receiver: NotificationReceiver
) -> None:
    service = calendar_service(clocked, clocked.issue_refresh_token(EMAIL))
    watch(service, "chan-1", receiver.url, params={"ttl": "3600"})
    header = receiver.wait_for(1)[0].headers["x-goog-channel-expiration"]
    expected = clock.now() + timedelta(hours=1)
    assert header == expected.strftime("%a, %d %b %Y %H:%M:%S GMT")
