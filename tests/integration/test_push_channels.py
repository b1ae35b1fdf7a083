"""The life of a member's push channel (README.md#push-notifications), in-process: `run_sync_job`
with the real adapters against the Firestore/Pub/Sub emulators and the Google stand-in, both on
one hand-moved clock; the stand-in's notifications go to a local receiver answering 200 (or are
fed to `handle_notification` with the headers the stand-in sent)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared import bootstrap
from shared.domain import push
from shared.domain.models import CalendarState, ConnectionStatus, PushStatus
from shared.sandbox.google_standin import GoogleStandIn
from shared.services.channels import ChannelOutcome
from shared.services.notifications import NOTIFICATION_HEADERS, NotificationDeps, handle_notification
from shared.services.ports import DueMember, JobReason, SyncJob
from shared.services.sync import SyncOutcome, SyncSettings, SyncSummary
from shared.services.worker import WorkerDeps, run_sync_job
from tests.support import sandbox
from tests.support.push_receiver import Notification, NotificationReceiver
from tests.support.sandbox import TENANT, FixedClock

pytestmark = pytest.mark.usefixtures("firestore_project")

MEMBER = "m-anna"
EMAIL = next(m["email"] for m in sandbox.sample_members() if m["id"] == MEMBER)
BACKSTOP_S = 21_600
TTL_S = 604_800
SETTINGS = SyncSettings(backstop_interval_s=float(BACKSTOP_S))
# An event of Anna's with an Initech attendee: adding an Acme one adds an interaction.
GROWN_EVENT = "u50rsukj55flqvustjihlfaa9s"
GROWN_KEY = (f"{GROWN_EVENT}@google.com", "acc-acme")


class RecordingPublisher:
    def __init__(self) -> None:
        self.jobs: list[SyncJob] = []

    def publish(self, jobs: Any) -> int:
        batch = list(jobs)
        self.jobs.extend(batch)
        return len(batch)


class SpyChannels:
    """The real `CalendarChannels`, recording each call and, at every stop, the channels the
    stand-in still lists live for the member."""

    def __init__(self, real: Any, standin: GoogleStandIn) -> None:
        self._real, self._standin = real, standin
        self.calls: list[str] = []
        self.live_at_stop: list[list[str]] = []
        self.probe: Callable[[], Any] | None = None  # what else to record at every stop
        self.probed_at_stop: list[Any] = []

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("watch")
        return self._real.watch(*args, **kwargs)

    def stop(self, refresh_token: str, channel_id: str, resource_id: str) -> None:
        self.calls.append("stop")
        self.live_at_stop.append(sorted(c.id for c in self._standin.push.channels(EMAIL)))
        if self.probe is not None:
            self.probed_at_stop.append(self.probe())
        self._real.stop(refresh_token, channel_id, resource_id)


@pytest.fixture
def standin(clock: FixedClock) -> Iterator[GoogleStandIn]:
    """The stand-in on the test's clock: granted expirations, channel expiry and access tokens
    follow the clock the services use."""
    with GoogleStandIn(clock=clock.now) as running:
        yield running


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


class World:
    def __init__(
        self,
        standin: GoogleStandIn,
        receiver: NotificationReceiver,
        clock: FixedClock,
        publisher: RecordingPublisher,
        db: Any,
        refresh_token: str,
    ) -> None:
        self.standin, self.receiver, self.clock, self.publisher, self.db = (
            standin,
            receiver,
            clock,
            publisher,
            db,
        )
        self.refresh_token = refresh_token
        base = bootstrap.worker_deps()
        self.spy = SpyChannels(base.channels.calendar, standin)
        self.deps = WorkerDeps(
            sync=replace(base.sync, clock=clock, publisher=publisher),
            channels=replace(base.channels, clock=clock, calendar=self.spy),
            publisher=publisher,
            resync_pause_s=0.0,
        )
        self.notifications: NotificationDeps = replace(
            bootstrap.notification_deps(), clock=clock, publisher=publisher
        )
        self.spy.probe = lambda: (self.state().push_channel_id, self.lookup_ids())

    @property
    def key(self) -> bytes:
        return self.deps.channels.settings.token_key

    def run(self, reason: JobReason = JobReason.SCHEDULED, deps: WorkerDeps | None = None) -> SyncSummary:
        return run_sync_job(deps or self.deps, SyncJob(TENANT, MEMBER, reason), SETTINGS)

    def with_push(self, **changes: Any) -> WorkerDeps:
        settings = replace(self.deps.channels.settings, **changes)
        return replace(self.deps, channels=replace(self.deps.channels, settings=settings))

    def state(self) -> CalendarState:
        return bootstrap.member_store().get_member(TENANT, MEMBER).calendar

    def lookup(self, channel_id: str) -> dict[str, Any] | None:
        snapshot = self.db.collection("channels").document(channel_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def lookup_ids(self) -> list[str]:
        return sorted(d.id for d in self.db.collection("channels").stream())

    def push_doc(self) -> dict[str, Any]:
        member = self.db.collection("tenants").document(TENANT).collection("members").document(MEMBER)
        return dict((member.get().to_dict() or {})["calendar"]["push"])

    def live(self) -> list[str]:
        return sorted(c.id for c in self.standin.push.channels(EMAIL))

    def settle(self) -> None:
        assert self.standin.push.wait_idle(10), "stand-in deliveries did not finish"

    def requests(self, method: str, suffix: str) -> list[int]:
        """Indexes in the stand-in's request log of calendar requests `method ...suffix`."""
        return [
            i
            for i, (service, m, path) in enumerate(self.standin.requests.snapshot())
            if service == "calendar" and m == method and path.endswith(suffix)
        ]

    def watch_posts(self) -> int:
        return len(self.requests("POST", "/events/watch"))

    def grow_event(self, address: str = "wile.coyote@acme.com") -> None:
        calendar = self.standin.calendar(EMAIL)
        event = calendar.get_event(GROWN_EVENT)
        assert event is not None
        event["attendees"] = [*event["attendees"], {"email": address, "responseStatus": "accepted"}]
        calendar.upsert_event(event)

    def due(self, at: datetime) -> list[DueMember]:
        return [d for d in bootstrap.member_store().due_members(at, 1000) if d.member_id == MEMBER]

    def handle(self, note: Notification) -> int:
        """Answer a notification the stand-in sent, with its headers as Google sends them."""
        headers = {name: note.headers.get(name.lower(), "") for name in NOTIFICATION_HEADERS}
        return handle_notification(self.notifications, headers).status

    def change_notifications(self, since: int = 0) -> list[Notification]:
        return [n for n in self.receiver.received[since:] if n.state == "exists"]


@pytest.fixture
def world(
    standin: GoogleStandIn,
    receiver: NotificationReceiver,
    clock: FixedClock,
    publisher: RecordingPublisher,
    firestore_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    extra = {
        "CALSYNC_NOTIFICATION_URL": receiver.url,
        "CALSYNC_CHANNEL_TTL_S": str(TTL_S),
        "CALSYNC_BACKSTOP_INTERVAL_S": str(BACKSTOP_S),
        "OAUTHLIB_INSECURE_TRANSPORT": "1",  # disconnect revokes at the stand-in (plain http)
    }
    sandbox.point_env_at(monkeypatch, standin, extra)
    sandbox.import_sample_directory()
    sandbox.load_sample_calendars(standin)
    token = sandbox.connect(standin, MEMBER, EMAIL)
    return World(standin, receiver, clock, publisher, firestore_client, token)


def first_sync(world: World) -> CalendarState:
    summary = world.run(JobReason.CONNECTED)
    assert summary.outcome is SyncOutcome.SYNCED
    assert summary.channel == ChannelOutcome.WATCHED
    world.settle()
    state = world.state()
    assert state.push_status is PushStatus.ACTIVE
    return state


# --- creation ---------------------------------------------------------------------------------


def test_the_first_sync_creates_a_channel_whose_lookup_entry_exists_before_the_watch_returns(
    world: World, firestore_client: Any
) -> None:
    world.standin.push.wait_for_sync = True  # the watch answers once its `sync` message was delivered
    seen_during_watch: list[dict[str, Any] | None] = []

    def read_lookup(note: Notification) -> None:
        if note.state == "sync":
            seen_during_watch.append(world.lookup(note.channel_id))

    world.receiver.on_notification = read_lookup
    summary = world.run(JobReason.CONNECTED)

    assert summary.outcome is SyncOutcome.SYNCED
    assert summary.channel == ChannelOutcome.WATCHED
    state = world.state()
    assert state.push_status is PushStatus.ACTIVE
    channel_id = state.push_channel_id
    assert channel_id is not None
    assert channel_id.startswith("calsync-")
    [granted] = world.standin.push.channels(EMAIL)
    assert granted.id == channel_id
    assert state.push_resource_id == granted.resource_id == world.standin.push.resource_id(EMAIL)
    assert state.push_expires_at == granted.expiration == world.clock.now() + timedelta(seconds=TTL_S)
    assert state.push_started_at == world.clock.now()
    assert state.push_renew_at is not None
    assert state.push_expires_at - timedelta(seconds=TTL_S / 4) <= state.push_renew_at
    assert state.push_renew_at <= state.push_expires_at - timedelta(seconds=TTL_S / 8)
    assert state.push_last_error is None
    raw = world.push_doc()
    assert raw["status"] == "active"
    assert {"channelId", "resourceId", "expiresAt", "renewAt", "startedAt"} <= set(raw)

    entry = world.lookup(channel_id)
    assert entry is not None
    assert (entry["tenantId"], entry["memberId"], entry["resourceId"]) == (
        TENANT,
        MEMBER,
        granted.resource_id,
    )
    assert entry["expireAt"] == granted.expiration
    assert world.lookup_ids() == [channel_id]

    [sync_message] = world.receiver.received
    assert (sync_message.state, sync_message.channel_id, sync_message.number) == ("sync", channel_id, 1)
    assert sync_message.headers["x-goog-channel-token"] == push.channel_token(
        world.key, channel_id, TENANT, MEMBER
    )
    # The receiver read the lookup entry while the watch call was still waiting for this message.
    assert len(seen_during_watch) == 1
    during = seen_during_watch[0]
    assert during is not None, "the lookup entry was not stored before the watch call returned"
    assert (during["tenantId"], during["memberId"]) == (TENANT, MEMBER)
    assert during["resourceId"] is None  # the watch had not returned yet
    assert world.spy.calls == ["watch"]


def test_next_sync_is_the_backstop_or_the_renewal_whichever_comes_first(world: World) -> None:
    state = first_sync(world)
    now = world.clock.now()
    assert state.push_renew_at is not None
    assert state.next_sync_at == min(now + timedelta(seconds=BACKSTOP_S), state.push_renew_at)
    assert state.next_sync_at == now + timedelta(seconds=BACKSTOP_S)  # a week's channel renews later
    assert world.due(now) == []
    assert world.due(state.next_sync_at - timedelta(seconds=1)) == []
    assert world.due(state.next_sync_at) == [DueMember(TENANT, MEMBER, False)]


def test_a_short_channel_makes_the_member_due_at_its_renewal_before_the_backstop(world: World) -> None:
    deps = world.with_push(ttl_s=3600)
    assert world.run(JobReason.CONNECTED, deps).channel == ChannelOutcome.WATCHED
    state = world.state()
    now = world.clock.now()
    assert state.push_renew_at is not None
    assert state.push_renew_at < now + timedelta(seconds=BACKSTOP_S)
    assert state.next_sync_at == state.push_renew_at
    assert world.due(state.push_renew_at - timedelta(seconds=1)) == []
    assert world.due(state.push_renew_at) == [DueMember(TENANT, MEMBER, True)]


# --- refusal ----------------------------------------------------------------------------------


def test_a_refused_watch_leaves_the_member_polled_and_is_asked_again_a_day_later(world: World) -> None:
    world.standin.push.faults.refuse_watch()
    summary = world.run(JobReason.CONNECTED)

    assert summary.outcome is SyncOutcome.SYNCED
    assert summary.channel == ChannelOutcome.REFUSED
    state = world.state()
    assert state.push_status is PushStatus.FAILED
    assert state.push_last_error is not None
    assert "pushNotSupportedForRequestedResource" in state.push_last_error
    assert state.push_channel_id is None
    assert world.lookup_ids() == []
    assert world.live() == []
    assert state.next_sync_at == world.clock.now()  # polled at every run
    assert world.due(world.clock.now()) == [DueMember(TENANT, MEMBER, False)]
    assert world.watch_posts() == 1

    refused_at = world.clock.now()
    for hours in (1, 6, 23):  # the next syncs (every scheduler run) do not ask again
        world.clock.value = refused_at + timedelta(hours=hours)
        summary = world.run()
        assert summary.outcome is SyncOutcome.SYNCED
        assert summary.channel == ChannelOutcome.UNCHANGED
        assert world.state().next_sync_at == world.clock.now()
    assert world.watch_posts() == 1
    assert world.state().push_status is PushStatus.FAILED

    world.clock.value = refused_at + push.WATCH_RETRY_AFTER_REFUSAL
    summary = world.run()
    assert summary.channel == ChannelOutcome.WATCHED
    assert world.watch_posts() == 2
    after = world.state()
    assert after.push_status is PushStatus.ACTIVE
    assert after.push_last_error is None
    assert after.push_retry_at is None
    assert world.lookup_ids() == [after.push_channel_id]


# --- renewal ----------------------------------------------------------------------------------


def test_renewal_creates_and_stores_the_next_channel_then_stops_the_old_one(world: World) -> None:
    old = first_sync(world)
    assert old.push_renew_at is not None
    world.clock.value = old.push_renew_at + timedelta(seconds=1)
    assert world.due(world.clock.now()) == [DueMember(TENANT, MEMBER, True)]
    world.standin.requests.clear()

    summary = world.run(JobReason.RENEW)

    assert summary.outcome is SyncOutcome.SYNCED
    assert summary.channel == ChannelOutcome.WATCHED
    new = world.state()
    assert new.push_status is PushStatus.ACTIVE
    assert new.push_channel_id not in (None, old.push_channel_id)
    [watch_at] = world.requests("POST", "/events/watch")
    [stop_at] = world.requests("POST", "/channels/stop")
    assert watch_at < stop_at
    assert world.spy.calls == ["watch", "watch", "stop"]
    # During the overlap both channels were live at the stand-in.
    assert world.spy.live_at_stop == [sorted([str(old.push_channel_id), str(new.push_channel_id)])]
    # When the old one was stopped, the new one was already the member's, with its lookup entry.
    assert world.spy.probed_at_stop == [
        (new.push_channel_id, sorted([str(old.push_channel_id), str(new.push_channel_id)]))
    ]
    assert world.live() == [new.push_channel_id]
    assert world.lookup(str(old.push_channel_id)) is None
    assert world.lookup_ids() == [new.push_channel_id]
    [granted] = world.standin.push.channels(EMAIL)
    assert new.push_expires_at == granted.expiration  # the granted one (whole milliseconds)
    assert abs(granted.expiration - (world.clock.now() + timedelta(seconds=TTL_S))) < timedelta(seconds=1)
    assert new.push_renew_at is not None
    assert new.push_renew_at > world.clock.now()
    assert world.due(world.clock.now()) == []

    world.settle()
    before = len(world.receiver.received)
    world.grow_event()
    world.settle()
    changes = world.change_notifications(before)
    assert [n.channel_id for n in changes] == [new.push_channel_id]
    assert world.handle(changes[0]) == 200


# --- suspect channel ---------------------------------------------------------------------------


def test_a_backstop_sync_finding_an_unannounced_change_replaces_the_channel(world: World) -> None:
    old = first_sync(world)
    world.standin.push.faults.drop()
    before = len(world.receiver.received)
    world.grow_event()
    world.settle()
    assert world.change_notifications(before) == []  # the notification was lost
    assert world.standin.push.counters()["dropped"] == 1

    world.clock.advance(seconds=BACKSTOP_S)
    assert world.due(world.clock.now()) == [DueMember(TENANT, MEMBER, False)]
    summary = world.run(JobReason.SCHEDULED)

    assert summary.outcome is SyncOutcome.SYNCED
    assert summary.events_seen >= 1
    assert GROWN_KEY in sandbox.stored_interactions()
    assert summary.channel == ChannelOutcome.WATCHED
    new = world.state()
    assert new.push_status is PushStatus.ACTIVE
    assert new.push_channel_id not in (None, old.push_channel_id)
    assert world.spy.calls == ["watch", "watch", "stop"]
    assert world.live() == [new.push_channel_id]
    assert world.lookup_ids() == [new.push_channel_id]


def test_a_channel_google_ended_early_is_replaced_by_the_backstop_sync(world: World) -> None:
    old = first_sync(world)
    world.standin.push.expire_channel(str(old.push_channel_id))  # Google forgot it, silently
    before = len(world.receiver.received)
    world.grow_event()
    world.settle()
    assert world.change_notifications(before) == []

    world.clock.advance(seconds=BACKSTOP_S)
    summary = world.run(JobReason.SCHEDULED)

    assert summary.events_seen >= 1
    assert GROWN_KEY in sandbox.stored_interactions()
    assert summary.channel == ChannelOutcome.WATCHED
    new = world.state()
    assert new.push_channel_id not in (None, old.push_channel_id)
    assert world.live() == [new.push_channel_id]
    assert world.lookup_ids() == [new.push_channel_id]
    before = len(world.receiver.received)
    world.grow_event("road.runner@acme.com")
    world.settle()
    assert [n.channel_id for n in world.change_notifications(before)] == [new.push_channel_id]


def test_a_backstop_sync_after_an_announced_change_keeps_the_channel(world: World) -> None:
    old = first_sync(world)
    world.clock.advance(minutes=1)
    before = len(world.receiver.received)
    world.grow_event()
    world.settle()
    [note] = world.change_notifications(before)
    assert world.handle(note) == 200  # queued: the member's lastNotificationAt is set
    assert [j.reason for j in world.publisher.jobs] == [JobReason.PUSH]

    world.clock.advance(seconds=BACKSTOP_S)
    summary = world.run(JobReason.SCHEDULED)
    assert summary.events_seen >= 1
    assert summary.channel == ChannelOutcome.UNCHANGED
    assert world.state().push_channel_id == old.push_channel_id
    assert world.spy.calls == ["watch"]


# --- retiring ---------------------------------------------------------------------------------


def test_needs_reauth_retires_the_channel_and_its_notifications_get_404(world: World) -> None:
    old = first_sync(world)
    world.standin.revoke_refresh_token(world.refresh_token)

    summary = world.run()

    assert summary.outcome is SyncOutcome.NEEDS_REAUTH
    state = world.state()
    assert state.status is ConnectionStatus.NEEDS_REAUTH
    assert state.push_status is PushStatus.OFF
    assert state.push_channel_id is None
    assert world.lookup(str(old.push_channel_id)) is None
    assert world.spy.calls == ["watch"]  # a refused token cannot stop the channel
    assert world.live() == [old.push_channel_id]  # so Google keeps sending until it expires

    before = len(world.receiver.received)
    world.grow_event()
    world.settle()
    [note] = world.change_notifications(before)
    assert note.channel_id == old.push_channel_id
    assert world.handle(note) == 404
    assert world.publisher.jobs == []


def test_disconnect_stops_the_channel_and_later_messages_get_404(world: World) -> None:
    old = first_sync(world)

    bootstrap.connect_service(full_oauth=False).disconnect(TENANT, MEMBER)

    state = world.state()
    assert state.status is ConnectionStatus.DISCONNECTED
    assert state.push_status is PushStatus.OFF
    assert state.push_channel_id is None
    assert world.lookup_ids() == []
    assert world.live() == []  # stopped at the stand-in
    assert len(world.requests("POST", "/channels/stop")) == 1

    world.standin.push.faults.keep_sending_after_stop = True
    before = len(world.receiver.received)
    world.grow_event()
    world.settle()
    [note] = world.change_notifications(before)
    assert note.channel_id == old.push_channel_id
    assert world.handle(note) == 404
    assert world.publisher.jobs == []


def test_turning_push_off_stops_the_channel_at_the_next_sync(world: World) -> None:
    old = first_sync(world)
    off = world.with_push(notification_url=None)

    world.clock.advance(seconds=BACKSTOP_S)
    summary = world.run(JobReason.SCHEDULED, off)

    assert summary.outcome is SyncOutcome.SYNCED
    assert summary.channel == ChannelOutcome.STOPPED
    state = world.state()
    assert state.push_status is PushStatus.OFF
    assert state.push_channel_id is None
    assert world.live() == []
    assert world.lookup(str(old.push_channel_id)) is None
    assert world.spy.calls == ["watch", "stop"]
    # And nothing more happens at the next sync.
    world.clock.advance(minutes=10)
    assert world.run(JobReason.SCHEDULED, off).channel == ChannelOutcome.UNCHANGED
    assert world.spy.calls == ["watch", "stop"]


# --- a notification while a sync runs ------------------------------------------------------------


class PausedListing:
    """The real calendar source; the first listing, once answered, waits until released, so a
    change made meanwhile is certainly not in it."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.listed = threading.Event()
        self.release = threading.Event()
        self._paused = False

    def list_page(self, *args: Any, **kwargs: Any) -> Any:
        page = self._real.list_page(*args, **kwargs)
        if not self._paused:
            self._paused = True
            self.listed.set()
            assert self.release.wait(30)
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_notification_during_a_running_sync_is_not_lost(world: World) -> None:
    first_sync(world)
    world.clock.advance(minutes=5)
    # The running sync is slow (its listing is answered late), then pauses after it.
    world.standin.faults.inject("calendar", delay_s=0.5)
    paused = PausedListing(world.deps.sync.calendar)
    deps = replace(world.deps, sync=replace(world.deps.sync, calendar=paused))
    results: dict[str, SyncSummary] = {}
    running = threading.Thread(
        target=lambda: results.setdefault("first", world.run(JobReason.SCHEDULED, deps))
    )
    running.start()
    try:
        assert paused.listed.wait(30), "the first sync never listed"
        before = len(world.receiver.received)
        world.grow_event()
        world.settle()
        [note] = world.change_notifications(before)
        assert world.handle(note) == 200
        [queued] = world.publisher.jobs
        assert queued == SyncJob(TENANT, MEMBER, JobReason.PUSH)
        delivered: dict[str, SyncSummary] = {}
        push_job = threading.Thread(
            target=lambda: delivered.setdefault("push", run_sync_job(world.deps, queued, SETTINGS))
        )
        push_job.start()
        push_job.join(30)
        assert delivered["push"].outcome is SyncOutcome.BUSY
        assert world.state().push_resync_requested
    finally:
        paused.release.set()
        running.join(30)

    first = results["first"]
    assert first.outcome is SyncOutcome.SYNCED
    assert first.resync_requested
    assert GROWN_KEY not in sandbox.stored_interactions()  # the first sync listed before the change
    assert world.publisher.jobs == [queued, SyncJob(TENANT, MEMBER, JobReason.RESYNC)]
    assert not world.state().push_resync_requested

    follow_up = run_sync_job(world.deps, world.publisher.jobs[-1], SETTINGS)
    assert follow_up.outcome is SyncOutcome.SYNCED
    assert follow_up.events_seen >= 1
    assert not follow_up.resync_requested
    assert GROWN_KEY in sandbox.stored_interactions()
    assert len(world.publisher.jobs) == 2


def test_a_notification_while_the_channel_is_being_created_is_not_lost(world: World) -> None:
    """The channel's work holds the member's lease too (after the sync released it): a push job
    that finds it taken asks for one more round, which must follow."""
    world.standin.push.wait_for_sync = True  # the watch call waits while this hook runs
    during: dict[str, Any] = {}

    def change_and_notify(note: Notification) -> None:
        if note.state != "sync" or during:
            return
        world.grow_event()  # the calendar changes while the watch call is under way
        headers = {
            "X-Goog-Channel-ID": note.channel_id,
            "X-Goog-Channel-Token": note.headers["x-goog-channel-token"],
            "X-Goog-Resource-ID": note.headers["x-goog-resource-id"],
            "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": "2",
        }
        during["answer"] = handle_notification(world.notifications, headers).status
        during["job"] = run_sync_job(world.deps, world.publisher.jobs[-1], SETTINGS)

    world.receiver.on_notification = change_and_notify
    summary = world.run(JobReason.CONNECTED)
    world.receiver.on_notification = None

    assert summary.channel == ChannelOutcome.WATCHED
    assert during["answer"] == 200
    assert during["job"].outcome is SyncOutcome.BUSY  # the channel's lease
    assert GROWN_KEY not in sandbox.stored_interactions()
    push_jobs = [j for j in world.publisher.jobs if j.reason in (JobReason.PUSH, JobReason.RESYNC)]
    assert [j.reason for j in push_jobs] == [JobReason.PUSH, JobReason.RESYNC], (
        "no follow-up job: the notification's change waits for the backstop"
    )
    follow_up = run_sync_job(world.deps, push_jobs[-1], SETTINGS)
    assert follow_up.outcome is SyncOutcome.SYNCED
    assert GROWN_KEY in sandbox.stored_interactions()
    state = world.state()
    assert not state.push_resync_requested
    assert state.push_queued_at is None


def test_a_refused_renewal_keeps_the_live_channel_and_is_asked_again_a_day_later(world: World) -> None:
    old = first_sync(world)
    assert old.push_renew_at is not None
    world.clock.value = old.push_renew_at + timedelta(seconds=1)
    world.standin.push.faults.refuse_watch()

    summary = world.run(JobReason.RENEW)

    assert summary.channel == ChannelOutcome.REFUSED
    refused_at = world.clock.now()
    state = world.state()
    assert state.push_status is PushStatus.ACTIVE  # the old channel still works until it expires
    assert state.push_channel_id == old.push_channel_id
    assert state.push_last_error is not None
    assert "pushNotSupportedForRequestedResource" in state.push_last_error
    assert world.live() == [old.push_channel_id]
    assert world.lookup_ids() == [old.push_channel_id]
    assert world.watch_posts() == 2
    assert state.next_sync_at is not None
    assert state.next_sync_at <= world.clock.now()  # polled at every run while the channel ends

    for minutes in (5, 60, 600):  # the next runs do not ask Google again
        world.clock.value = refused_at + timedelta(minutes=minutes)
        assert [d.member_id for d in world.due(world.clock.now())] == [MEMBER]
        summary = world.run(JobReason.RENEW)
        assert summary.outcome is SyncOutcome.SYNCED
        assert summary.channel == ChannelOutcome.UNCHANGED
    assert world.watch_posts() == 2

    world.clock.value = refused_at + push.WATCH_RETRY_AFTER_REFUSAL
    summary = world.run(JobReason.RENEW)
    assert summary.channel == ChannelOutcome.WATCHED
    assert world.watch_posts() == 3
    renewed = world.state()
    assert renewed.push_channel_id not in (None, old.push_channel_id)
    assert renewed.push_retry_at is None
    assert renewed.push_last_error is None
    assert world.lookup_ids() == [renewed.push_channel_id]
