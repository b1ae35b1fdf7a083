"""`calendar_notification` through functions-framework against the Firestore and Pub/Sub
emulators (README.md#push-notifications): the answers, what is written, what is queued."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask import Flask
from google.cloud import firestore, pubsub_v1

from shared import bootstrap
from shared.adapters.firestore import FirestoreChannelStore, FirestoreMemberStore
from shared.domain.calendar_state import connected, disconnected
from shared.domain.models import CalendarState
from shared.domain.push import ChannelRecord, channel_token, new_channel_id
from shared.services.directory_import import import_directory
from shared.services.jobs import decode_job
from shared.services.ports import JobReason, SyncJob

# the emulator's pull waits for messages otherwise; the flag is deprecated, not gone
pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag is deprecated")

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")
TENANT = "acme-cs"
TOKEN_KEY = "test-channel-token-key-0123456789abcdef"
RESOURCE_ID = "res-primary-anna"
MEMBERS = {"m-anna": "anna@acme-cs.example", "m-ben": "ben@acme-cs.example", "m-gone": "gone@acme-cs.example"}
DIRECTORY = {
    "tenant": {"id": TENANT, "name": "Acme CS", "internalDomains": ["acme-cs.example"]},
    "accounts": [],
    "users": [],
    "members": [{"id": m, "email": e, "name": m.removeprefix("m-").title()} for m, e in MEMBERS.items()],
}


@dataclass
class World:
    """One tenant with connected members, their channels, a subscription on the sync topic."""

    project: str
    topic: str
    db: firestore.Client
    members: FirestoreMemberStore
    channels: FirestoreChannelStore
    subscriber: pubsub_v1.SubscriberClient
    subscription: str
    app: Flask
    pubsub_host: str
    channel_id: str  # m-anna's live channel, resource id RESOURCE_ID
    token: str

    def post(self, headers: dict[str, str]) -> int:
        return int(self.app.test_client().post("/", headers=headers).status_code)

    def member_snapshot(self, member_id: str) -> tuple[dict[str, Any], datetime]:
        snapshot = (
            self.db.collection("tenants").document(TENANT).collection("members").document(member_id).get()
        )
        return snapshot.to_dict() or {}, snapshot.update_time

    def members_snapshot(self) -> dict[str, tuple[dict[str, Any], datetime]]:
        return {m: self.member_snapshot(m) for m in MEMBERS}

    def channels_snapshot(self) -> dict[str, tuple[dict[str, Any], datetime]]:
        return {s.id: (s.to_dict() or {}, s.update_time) for s in self.db.collection("channels").stream()}

    def pull(self) -> list[SyncJob]:
        """Every job published since the last pull (acknowledged)."""
        jobs: list[SyncJob] = []
        while True:
            response = self.subscriber.pull(
                subscription=self.subscription, max_messages=100, return_immediately=True, timeout=10
            )
            if not response.received_messages:
                return jobs
            jobs.extend(decode_job(m.message.data) for m in response.received_messages)
            self.subscriber.acknowledge(
                subscription=self.subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )

    def create_subscription(self) -> None:
        publisher = pubsub_v1.PublisherClient()
        topic_path = publisher.topic_path(self.project, self.topic)
        publisher.create_topic(name=topic_path)
        self.subscriber.create_subscription(name=self.subscription, topic=topic_path)

    def delete_topic(self) -> None:
        publisher = pubsub_v1.PublisherClient()
        publisher.delete_topic(topic=publisher.topic_path(self.project, self.topic))
        self.subscriber.delete_subscription(subscription=self.subscription)

    def add_channel(
        self, member_id: str, *, expires_in: timedelta = timedelta(days=7), resource_id: str | None = None
    ) -> tuple[str, str]:
        """A lookup entry for a new channel of `member_id`; returns (channel id, token)."""
        channel_id = new_channel_id()
        now = datetime.now(UTC)
        self.channels.create(
            ChannelRecord(
                channel_id=channel_id,
                tenant_id=TENANT,
                member_id=member_id,
                expires_at=now + expires_in,
                created_at=now - timedelta(minutes=1),
                resource_id=resource_id,
            )
        )
        return channel_id, channel_token(TOKEN_KEY.encode(), channel_id, TENANT, member_id)


def headers(
    channel_id: str | None,
    token: str | None,
    *,
    state: str | None = "exists",
    resource_id: str | None = RESOURCE_ID,
    number: str = "2",
) -> dict[str, str]:
    values = {
        "X-Goog-Channel-ID": channel_id,
        "X-Goog-Channel-Token": token,
        "X-Goog-Resource-ID": resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": number,
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
    }
    return {name: value for name, value in values.items() if value is not None}


@pytest.fixture
def world(
    firestore_project: str, firestore_client: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    topic = f"sync-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CALSYNC_SYNC_TOPIC", topic)
    monkeypatch.setenv("CALSYNC_CHANNEL_TOKEN_KEY", TOKEN_KEY)
    monkeypatch.delenv("CALSYNC_LINK_SIGNING_KEY", raising=False)
    bootstrap.reset()
    import_directory(json.dumps(DIRECTORY), bootstrap.directory_store())
    members = FirestoreMemberStore(firestore_client)
    now = datetime.now(UTC)
    for member_id, email in MEMBERS.items():
        members.update_calendar(TENANT, member_id, connected(CalendarState(), email, now=now))
    members.update_calendar(TENANT, "m-gone", disconnected())
    subscriber = pubsub_v1.SubscriberClient()
    built = World(
        project=firestore_project,
        topic=topic,
        db=firestore_client,
        members=members,
        channels=FirestoreChannelStore(firestore_client),
        subscriber=subscriber,
        subscription=subscriber.subscription_path(firestore_project, f"{topic}-sub"),
        pubsub_host=os.environ["PUBSUB_EMULATOR_HOST"],
        app=functions_framework.create_app(target="calendar_notification", source=MAIN),
        channel_id="",
        token="",
    )
    built.create_subscription()
    built.channel_id, built.token = built.add_channel("m-anna", resource_id=RESOURCE_ID)
    yield built
    subscriber.close()
    bootstrap.reset()


# --- requests refused before any read -------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_anything_but_post_is_405_with_allow_post(world: World, method: str) -> None:
    before = world.members_snapshot()
    response = world.app.test_client().open(
        "/", method=method, headers=headers(world.channel_id, world.token)
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert world.members_snapshot() == before
    assert world.pull() == []


@pytest.mark.parametrize(
    "case",
    [
        {"state": "exists", "channel_id": None},
        {"state": "exists", "channel_id": ""},
        {"state": "exists", "channel_id": "   "},
        {"state": None},
        {"state": ""},
        {"state": "changed"},
        {"state": "EXISTS"},
        {"state": "not-exists"},
    ],
    ids=lambda case: "-".join(f"{k}={v!r}" for k, v in case.items()),
)
def test_missing_channel_id_or_resource_state_or_an_unknown_state_is_400(
    world: World, case: dict[str, Any]
) -> None:
    before = world.members_snapshot()
    channel_id = case.get("channel_id", world.channel_id)
    assert world.post(headers(channel_id, world.token, state=case["state"])) == 400
    assert world.members_snapshot() == before
    assert world.pull() == []


# --- sync: a channel's first message --------------------------------------------------------


def test_sync_message_is_200_and_queues_and_writes_nothing(world: World) -> None:
    before = world.member_snapshot("m-anna")
    channels_before = world.channels_snapshot()
    assert world.post(headers(world.channel_id, world.token, state="sync", number="1")) == 200
    assert world.member_snapshot("m-anna") == before  # the whole document and its update time
    assert world.channels_snapshot() == channels_before
    assert world.pull() == []


def test_sync_message_with_a_forged_token_is_still_403(world: World) -> None:
    assert world.post(headers(world.channel_id, "v1.forged", state="sync", number="1")) == 403


def test_sync_message_before_the_resource_id_is_known_is_200(world: World) -> None:
    """Google may send `sync` before the watch call returned: the entry has no resource id yet."""
    channel_id, token = world.add_channel("m-ben", resource_id=None)
    assert world.post(headers(channel_id, token, state="sync", resource_id="res-new", number="1")) == 200
    assert world.pull() == []


# --- refused notifications: nothing written, nothing queued ---------------------------------


def _assert_refused(world: World, request_headers: dict[str, str], status: int) -> None:
    members_before = world.members_snapshot()
    channels_before = world.channels_snapshot()
    assert world.post(request_headers) == status
    assert world.members_snapshot() == members_before  # documents and update times
    assert world.channels_snapshot() == channels_before
    assert world.pull() == []


@pytest.mark.parametrize("state", ["exists", "not_exists"])
def test_wrong_token_is_403(world: World, state: str) -> None:
    forged = world.token[:-2] + ("AA" if not world.token.endswith("AA") else "BB")
    _assert_refused(world, headers(world.channel_id, forged, state=state), 403)


def test_missing_token_is_403(world: World) -> None:
    _assert_refused(world, headers(world.channel_id, None), 403)


def test_empty_token_is_403(world: World) -> None:
    _assert_refused(world, headers(world.channel_id, ""), 403)


def test_a_valid_token_of_another_member_is_403(world: World) -> None:
    token = channel_token(TOKEN_KEY.encode(), world.channel_id, TENANT, "m-ben")
    _assert_refused(world, headers(world.channel_id, token), 403)


def test_a_valid_token_of_another_channel_is_403(world: World) -> None:
    other_channel, other_token = world.add_channel("m-ben", resource_id="res-ben")
    _assert_refused(world, headers(world.channel_id, other_token), 403)
    # and the other channel's own token on its own channel, but anna's resource: still 403
    _assert_refused(world, headers(other_channel, other_token, resource_id=RESOURCE_ID), 403)


def test_a_token_made_with_another_key_is_403(world: World) -> None:
    token = channel_token(b"some-other-key-0123456789abcdef", world.channel_id, TENANT, "m-anna")
    _assert_refused(world, headers(world.channel_id, token), 403)


@pytest.mark.parametrize("resource_id", ["res-someone-else", None, ""])
def test_wrong_or_missing_resource_id_is_403(world: World, resource_id: str | None) -> None:
    _assert_refused(world, headers(world.channel_id, world.token, resource_id=resource_id), 403)


def test_unknown_channel_is_404(world: World) -> None:
    channel_id = new_channel_id()
    token = channel_token(TOKEN_KEY.encode(), channel_id, TENANT, "m-anna")
    _assert_refused(world, headers(channel_id, token), 404)


@pytest.mark.parametrize(
    "channel_id",
    ["c" * 65, "calsync-" + "0" * 57, "bad id with spaces", "calsync/../../tenants", "ä-umlaut"],
    ids=["65-chars", "calsync-65-chars", "spaces", "path", "non-ascii"],
)
def test_malformed_channel_id_is_404(world: World, channel_id: str) -> None:
    _assert_refused(world, headers(channel_id, world.token), 404)


def test_a_channel_id_of_64_characters_is_looked_up(world: World) -> None:
    """The boundary: 64 characters is a valid id (found and accepted), 65 is not."""
    channel_id = "calsync-" + "a" * 56
    assert len(channel_id) == 64
    now = datetime.now(UTC)
    world.channels.create(ChannelRecord(channel_id, TENANT, "m-ben", now + timedelta(days=1), now, "res-ben"))
    token = channel_token(TOKEN_KEY.encode(), channel_id, TENANT, "m-ben")
    assert world.post(headers(channel_id, token, resource_id="res-ben")) == 200
    assert [(j.member_id, j.reason) for j in world.pull()] == [("m-ben", JobReason.PUSH)]


def test_expired_channel_is_404(world: World) -> None:
    channel_id, token = world.add_channel("m-ben", expires_in=timedelta(seconds=-1), resource_id="res-ben")
    _assert_refused(world, headers(channel_id, token, resource_id="res-ben"), 404)
    _assert_refused(world, headers(channel_id, token, resource_id="res-ben", state="sync"), 404)


def test_retired_channel_is_404(world: World) -> None:
    """After a stop the lookup entry is deleted: the channel's later messages are refused."""
    channel_id, token = world.add_channel("m-ben", resource_id="res-ben")
    assert world.post(headers(channel_id, token, resource_id="res-ben", state="sync")) == 200
    world.channels.delete(channel_id)
    _assert_refused(world, headers(channel_id, token, resource_id="res-ben"), 404)


def test_channel_retired_while_its_watch_call_ran_is_404(world: World) -> None:
    """The entry is deleted (disconnect) while the watch call runs; the watch then returns and
    its resource id is recorded: the channel stays retired."""
    channel_id, token = world.add_channel("m-ben")
    world.channels.delete(channel_id)
    world.channels.set_resource(channel_id, "res-ben", datetime.now(UTC) + timedelta(days=7))
    _assert_refused(world, headers(channel_id, token, resource_id="res-ben"), 404)


def test_channel_of_a_disconnected_member_is_404(world: World) -> None:
    channel_id, token = world.add_channel("m-gone", resource_id="res-gone")
    _assert_refused(world, headers(channel_id, token, resource_id="res-gone"), 404)


def test_channel_of_a_member_removed_from_the_directory_is_404(world: World) -> None:
    channel_id, token = world.add_channel("m-nobody", resource_id="res-nobody")
    _assert_refused(world, headers(channel_id, token, resource_id="res-nobody"), 404)
    assert not world.db.document(f"tenants/{TENANT}/members/m-nobody").get().exists


# --- a change: one push job -----------------------------------------------------------------


@pytest.mark.parametrize("state", ["exists", "not_exists"])
def test_a_change_queues_one_push_job_and_records_it(world: World, state: str) -> None:
    before, _ = world.member_snapshot("m-anna")
    started = datetime.now(UTC)
    assert world.post(headers(world.channel_id, world.token, state=state)) == 200
    jobs = world.pull()
    assert jobs == [SyncJob(TENANT, "m-anna", JobReason.PUSH)]
    assert jobs[0].reason == "push"
    state_after = world.members.get_member(TENANT, "m-anna").calendar
    assert state_after.push_queued_at is not None
    assert state_after.push_queued_at >= started - timedelta(seconds=5)
    assert state_after.push_last_notification_at == state_after.push_queued_at
    after, _ = world.member_snapshot("m-anna")
    # only the claim changed
    push_before, push_after = before["calendar"].get("push", {}), after["calendar"]["push"]
    changed = {k for k in push_before.keys() | push_after.keys() if push_before.get(k) != push_after.get(k)}
    assert changed == {"queuedAt", "lastNotificationAt"}
    assert {k: v for k, v in after["calendar"].items() if k != "push"} == {
        k: v for k, v in before["calendar"].items() if k != "push"
    }
    assert {k: v for k, v in after.items() if k != "calendar"} == {
        k: v for k, v in before.items() if k != "calendar"
    }
    # the other members are untouched
    assert world.members.get_member(TENANT, "m-ben").calendar.push_queued_at is None


def test_fifty_concurrent_notifications_queue_one_job_and_those_during_its_sync_ask_for_one_round(
    world: World,
) -> None:
    bootstrap.notification_deps()  # the clients, built once before the threads share them
    request_headers = headers(world.channel_id, world.token)

    def notify(number: int) -> int:
        client = world.app.test_client()
        return int(
            client.post("/", headers={**request_headers, "X-Goog-Message-Number": str(number)}).status_code
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(notify, range(2, 52)))
    assert statuses == [200] * 50
    assert world.pull() == [SyncJob(TENANT, "m-anna", JobReason.PUSH)]

    # still pending: more notifications join it
    assert world.post(request_headers) == 200
    assert world.pull() == []

    # the worker takes the lease for the push job: it stays claimed while its sync runs, and
    # notifications now ask it for one more round (once), publishing nothing
    taken = world.members.acquire_lease(TENANT, "m-anna", "worker-1", datetime.now(UTC), 540, push_job=True)
    assert taken is not None
    assert taken.calendar.push_queued_at is not None
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(notify, range(60, 76)))
    assert statuses == [200] * 16
    assert world.pull() == []
    assert world.members.get_member(TENANT, "m-anna").calendar.push_resync_requested is True


def test_a_claim_older_than_the_pending_ttl_is_claimed_again(world: World) -> None:
    from shared.domain.calendar_state import CalendarUpdate
    from shared.domain.push import PENDING_JOB_TTL

    lost = datetime.now(UTC) - PENDING_JOB_TTL - timedelta(seconds=5)
    world.members.update_calendar(TENANT, "m-anna", CalendarUpdate(push_queued_at=lost))
    assert world.post(headers(world.channel_id, world.token)) == 200
    assert world.pull() == [SyncJob(TENANT, "m-anna", JobReason.PUSH)]
    queued_at = world.members.get_member(TENANT, "m-anna").calendar.push_queued_at
    assert queued_at is not None
    assert queued_at > lost + PENDING_JOB_TTL


# --- Pub/Sub unavailable: 503, the claim released -------------------------------------------


def test_503_when_the_job_cannot_be_published_and_the_claim_is_released(world: World) -> None:
    """Publishing fails (the topic is gone: NotFound, not retried): 503 so that Google retries,
    and the claim is released so that the retry queues a job."""
    assert world.post(headers(world.channel_id, world.token)) == 200  # the publisher knows the topic now
    assert len(world.pull()) == 1
    from shared.domain.push import push_claim_released

    world.members.update_calendar(TENANT, "m-anna", push_claim_released())  # that job's sync ended
    world.delete_topic()

    assert world.post(headers(world.channel_id, world.token)) == 503
    state = world.members.get_member(TENANT, "m-anna").calendar
    assert state.push_queued_at is None  # released
    assert state.push_last_notification_at is not None

    world.create_subscription()
    assert world.post(headers(world.channel_id, world.token)) == 200
    assert world.pull() == [SyncJob(TENANT, "m-anna", JobReason.PUSH)]
    assert world.members.get_member(TENANT, "m-anna").calendar.push_queued_at is not None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(60)
def test_503_within_the_function_timeout_when_the_pubsub_host_is_unreachable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pub/Sub down (connections refused): the answer must come well within the function's
    30 s timeout (infra/functions.tf), as a 503 with the claim released, not a request killed
    by the platform with the claim left pending for PENDING_JOB_TTL."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{_closed_port()}")
    bootstrap.reset()
    started = time.monotonic()
    assert world.post(headers(world.channel_id, world.token)) == 503
    elapsed = time.monotonic() - started
    assert elapsed < 25, f"answered after {elapsed:.1f} s"
    assert world.members.get_member(TENANT, "m-anna").calendar.push_queued_at is None  # released

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", world.pubsub_host)
    bootstrap.reset()
    assert world.post(headers(world.channel_id, world.token)) == 200
    assert world.pull() == [SyncJob(TENANT, "m-anna", JobReason.PUSH)]


@pytest.mark.timeout(60)
def test_503_within_the_function_timeout_when_firestore_does_not_answer(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Firestore unreachable: the lookup is bounded too, so the answer is a 503 (Google retries)
    well within the function's timeout, and nothing is published."""
    firestore_host = os.environ["FIRESTORE_EMULATOR_HOST"]
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{_closed_port()}")
    bootstrap.reset()
    started = time.monotonic()
    assert world.post(headers(world.channel_id, world.token)) == 503
    elapsed = time.monotonic() - started
    assert elapsed < 25, f"answered after {elapsed:.1f} s"
    assert world.pull() == []

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_host)
    bootstrap.reset()
    assert world.post(headers(world.channel_id, world.token)) == 200
    assert world.pull() == [SyncJob(TENANT, "m-anna", JobReason.PUSH)]


# --- logs -----------------------------------------------------------------------------------


def test_the_token_never_appears_in_the_logs(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    forged = channel_token(TOKEN_KEY.encode(), world.channel_id, TENANT, "m-ben")
    answers = [
        world.post(headers(world.channel_id, world.token, state="sync", number="1")),
        world.post(headers(world.channel_id, world.token)),
        world.post(headers(world.channel_id, world.token)),
        world.post(headers(world.channel_id, forged)),
        world.post(headers(world.channel_id, world.token, resource_id="res-other")),
    ]
    assert answers == [200, 200, 200, 403, 403]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    answered = [json.loads(line) for line in lines if '"notification answered"' in line]
    assert len(answered) == 5
    assert [entry["status"] for entry in answered] == answers
    assert [entry["outcome"] for entry in answered] == ["started", "queued", "coalesced", "forged", "forged"]
    assert all(entry["channel_id"] == world.channel_id for entry in answered)
    assert {entry["severity"] for entry in answered[3:]} == {"WARNING"}
    for line in lines:
        assert world.token not in line
        assert forged not in line
        assert TOKEN_KEY not in line
