"""End to end with push notifications on (README.md#push-notifications): the stand-in notifies
`calendar_notification` on the functions host, which queues push jobs over the Pub/Sub emulator
to `sync_worker`; no scheduler run is involved. One sandbox for the module; the tests are one
story, in order."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import bootstrap
from shared.domain.models import ConnectionStatus, PushStatus
from shared.sandbox import emulators
from shared.sandbox.local import LocalSandbox, local_sandbox, sample_dir
from tests.support import sandbox as support

pytestmark = pytest.mark.e2e
TENANT = "northwind"
ANNA, BEN = "m-anna", "m-ben"
TEMPLATE_EVENT = "u50rsukj55flqvustjihlfaa9s"  # one of Anna's meetings, organised by her
ACME = "acc-acme"


# README.md#push-notifications promises "a burst of notifications costs at most two listings".
# It does not hold when the notifications trail the changes: a push job clears the member's
# pending claim (`push.queuedAt`) when it starts (FirestoreMemberStore.acquire_lease), so every
# notification delivered after that queues one more job, and each runs one more listing.
class Story:
    def __init__(self, sandbox: LocalSandbox) -> None:
        self.sandbox = sandbox
        self.emails = {m["id"]: m["email"] for m in support.sample_members()}
        self.bursts: dict[str, tuple[int, str]] = {}  # name -> (events.list calls, what happened)

    @property
    def standin(self) -> Any:
        return self.sandbox.standin

    def calendar(self, member_id: str) -> Any:
        return self.standin.calendar(self.emails[member_id])

    def listings(self) -> int:
        """events.list calls the stand-in served so far."""
        return sum(
            1
            for service, method, path in self.standin.requests.snapshot()
            if service == "calendar" and method == "GET" and path.endswith("/events")
        )

    def new_meeting(self, number: int, title: str) -> dict[str, Any]:
        """A new meeting of Anna's with an Acme contact (one interaction of acc-acme)."""
        event = copy.deepcopy(self.calendar(ANNA).get_event(TEMPLATE_EVENT))
        for name in ("etag", "created", "updated", "sequence", "htmlLink"):
            event.pop(name, None)
        event_id = f"pushburst{number:03d}"
        event.update(id=event_id, iCalUID=f"{event_id}@google.com", summary=title)
        event["attendees"] = [
            next(a for a in event["attendees"] if a.get("self")),
            {"email": "wile.coyote@acme.com", "responseStatus": "accepted"},
        ]
        return dict(event)

    def burst_report(self, answered_before: int, runs_before: int, started: float) -> str:
        """What the notifications and the worker runs of a burst did (for a failure message)."""
        answers = Counter(r.get("outcome") for r in self.notifications_answered()[answered_before:])
        runs = [
            (r.get("reason"), r.get("outcome"), r.get("events_seen"), r.get("resync_requested"))
            for r in self.sandbox.worker_summaries()[runs_before:]
        ]
        sent = [d.sent_at for d in self.standin.push.deliveries() if d.sent_at >= started]
        span = f"{max(sent) - min(sent):.2f} s" if sent else "none"
        return (
            f"notifications: {dict(answers)}, delivered over {span}; "
            f"worker runs (reason, outcome, events, resync): {runs}"
        )

    def notifications_answered(self) -> list[dict[str, Any]]:
        """The host's log lines of calendar_notification answers."""
        found = []
        for line in self.sandbox.host.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("function") == "calendar_notification" and record.get("message") == (
                "notification answered"
            ):
                found.append(record)
        return found


def titles() -> dict[str, str]:
    """meeting key -> title of Acme interactions."""
    return {
        i.meeting_key: i.title
        for i in bootstrap.meeting_store().list_interactions(TENANT)
        if i.account_id == ACME
    }


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str, story: Story) -> float:
    """Seconds until `predicate()` held; AssertionError with the host's log tail on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s\n{story.sandbox.host.log_tail(30)}")


def settle(story: Story, since: datetime, member_ids: tuple[str, ...] = (ANNA,)) -> None:
    """Deliveries done, the members synced after `since`, and the worker quiet."""
    assert story.standin.push.wait_idle(20)
    story.sandbox.wait_until_synced(list(member_ids), since, TENANT, timeout_s=30)
    assert story.standin.push.wait_idle(20)


@pytest.fixture(scope="module")
def story() -> Iterator[Story]:
    reason = emulators.missing_reason()
    if reason:
        pytest.skip(f"EMULATORS MISSING: {reason}")
    with local_sandbox(push=True) as sandbox:
        from shared.services.directory_import import import_directory

        import_directory((sample_dir() / "tenant.json").read_bytes(), bootstrap.directory_store())
        now = datetime.now(UTC)
        for member in support.sample_members():
            sandbox.standin.load_calendar_file(
                member["email"], sample_dir() / "calendars" / f"{member['id']}.json", now=now
            )
        for member_id in (ANNA, BEN):
            assert sandbox.connect_through_browser(TENANT, member_id).status_code == 200
        sandbox.wait_until_synced([ANNA, BEN], now, TENANT, timeout_s=60)
        sandbox.wait_until_watched([ANNA, BEN], TENANT, timeout_s=30)
        yield Story(sandbox)


def test_a_change_reaches_firestore_through_a_notification(story: Story, uses_emulators: None) -> None:
    pushes = story.sandbox.push_syncs()
    key = "pushburst000@google.com"
    assert key not in titles()

    story.calendar(ANNA).upsert_event(story.new_meeting(0, "Roadrunner review"))
    took = wait_for(lambda: key in titles(), 10, "the change through a notification", story)

    assert took < 10
    assert titles()[key] == "Roadrunner review"
    # the worker logs its run after what it wrote is visible (the channel work comes between)
    wait_for(lambda: story.sandbox.push_syncs() > pushes, 10, "the push job's log line", story)
    assert '"fan-out done"' not in story.sandbox.host.log_path.read_text()  # no scheduler run
    state = bootstrap.member_store().get_member(TENANT, ANNA).calendar
    assert state.push_status is PushStatus.ACTIVE
    assert state.push_last_notification_at is not None


def test_a_burst_of_fifty_changes_all_arrive(story: Story, uses_emulators: None) -> None:
    settle(story, datetime(2000, 1, 1, tzinfo=UTC))
    since = datetime.now(UTC)
    listed = story.listings()
    answered_before, runs_before = len(story.notifications_answered()), len(story.sandbox.worker_summaries())
    calendar = story.calendar(ANNA)
    started = time.monotonic()
    for number in range(1, 51):
        calendar.upsert_event(story.new_meeting(number, f"Burst {number}"))
    assert time.monotonic() - started < 1.0, "the burst took more than a second"
    expected = {f"pushburst{n:03d}@google.com": f"Burst {n}" for n in range(1, 51)}

    wait_for(lambda: expected.items() <= titles().items(), 30, "all 50 changes of the burst", story)
    settle(story, since)

    assert expected.items() <= titles().items()
    answers = story.notifications_answered()[answered_before:]
    assert len(answers) == 50
    assert {(r["status"], r["member_id"]) for r in answers} == {(200, ANNA)}
    story.bursts["fifty"] = (
        story.listings() - listed,
        story.burst_report(answered_before, runs_before, started),
    )


def test_a_burst_of_fifty_notifications_costs_at_most_two_listings(story: Story) -> None:
    listings, report = story.bursts["fifty"]
    assert listings <= 2, f"{listings} events.list calls; {report}"


def test_duplicated_and_reordered_notifications_give_the_right_final_state(
    story: Story, uses_emulators: None
) -> None:
    settle(story, datetime(2000, 1, 1, tzinfo=UTC))
    since = datetime.now(UTC)
    listed = story.listings()
    answered_before, runs_before = len(story.notifications_answered()), len(story.sandbox.worker_summaries())
    started = time.monotonic()
    counters = story.standin.push.counters()
    story.standin.push.faults.duplicate(5)
    story.standin.push.faults.reorder(3)
    calendar = story.calendar(ANNA)
    for number in range(1, 11):
        event = calendar.get_event(f"pushburst{number:03d}")
        event["summary"] = f"Burst {number} (moved)"
        calendar.upsert_event(event)
    calendar.cancel_event("pushburst011")
    expected = {f"pushburst{n:03d}@google.com": f"Burst {n} (moved)" for n in range(1, 11)}

    def done() -> bool:
        now = titles()
        return expected.items() <= now.items() and "pushburst011@google.com" not in now

    wait_for(done, 30, "the duplicated and reordered changes", story)
    settle(story, since)

    after = story.standin.push.counters()
    assert after["duplicated"] - counters["duplicated"] == 5
    assert after["delivered"] - counters["delivered"] >= 11 + 5
    final = titles()
    assert expected.items() <= final.items()
    assert "pushburst011@google.com" not in final
    assert {f"pushburst{n:03d}@google.com" for n in range(12, 51)} <= set(final)
    story.bursts["faulted"] = (
        story.listings() - listed,
        story.burst_report(answered_before, runs_before, started),
    )


def test_duplicated_and_reordered_notifications_cost_at_most_two_listings(story: Story) -> None:
    listings, report = story.bursts["faulted"]
    assert listings <= 2, f"{listings} events.list calls; {report}"


def test_messages_for_a_stopped_channel_are_answered_404(story: Story, uses_emulators: None) -> None:
    settle(story, datetime(2000, 1, 1, tzinfo=UTC), (ANNA, BEN))
    channel_id = bootstrap.member_store().get_member(TENANT, BEN).calendar.push_channel_id
    assert channel_id is not None
    assert [c.id for c in story.standin.push.channels(story.emails[BEN])] == [channel_id]

    bootstrap.connect_service(full_oauth=False).disconnect(TENANT, BEN)

    state = bootstrap.member_store().get_member(TENANT, BEN).calendar
    assert state.status is ConnectionStatus.DISCONNECTED
    assert state.push_status is PushStatus.OFF
    assert story.standin.push.channels(story.emails[BEN]) == []
    story.standin.push.faults.keep_sending_after_stop = True
    try:
        calendar = story.calendar(BEN)
        event = next(e for e in calendar.events if e.get("status") != "cancelled")
        calendar.upsert_event({**event, "summary": "After the stop"})
        assert story.standin.push.wait_idle(20)
    finally:
        story.standin.push.faults.keep_sending_after_stop = False

    statuses = [
        d.status
        for d in story.standin.push.deliveries()
        if d.channel_id == channel_id and d.state == "exists"
    ]
    assert statuses == [404]
    answers = [r for r in story.notifications_answered() if r.get("channel_id") == channel_id]
    assert [(r["status"], r["outcome"]) for r in answers if r["status"] != 200] == [(404, "unknown_channel")]
    pushes_for_ben = [
        r for r in story.sandbox.worker_summaries() if r.get("member_id") == BEN and r.get("reason") == "push"
    ]
    assert pushes_for_ben == []
