"""`schedule_sync` through functions-framework against the Firestore and Pub/Sub emulators."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest
from google.cloud import firestore, pubsub_v1

from shared import bootstrap
from shared.services.jobs import decode_job

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")


@pytest.fixture
def topic(firestore_project: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"sync-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CALSYNC_SYNC_TOPIC", name)
    bootstrap.reset()
    yield name
    bootstrap.reset()


def _subscribe(project: str, topic: str) -> tuple[pubsub_v1.SubscriberClient, str]:
    publisher = pubsub_v1.PublisherClient()
    topic_path = publisher.topic_path(project, topic)
    publisher.create_topic(name=topic_path)  # exists before the function runs: it must tolerate that
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(project, f"{topic}-sub")
    subscriber.create_subscription(name=subscription, topic=topic_path)
    return subscriber, subscription


def _pull_all(subscriber: pubsub_v1.SubscriberClient, subscription: str) -> list[bytes]:
    received: list[bytes] = []
    while True:  # the emulator returns at most 100 messages per pull
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=10)
        if not response.received_messages:
            return received
        received.extend(m.message.data for m in response.received_messages)
        subscriber.acknowledge(
            subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
        )


def test_schedule_sync_publishes_one_job_per_due_connected_member(
    firestore_client: firestore.Client, firestore_project: str, topic: str
) -> None:
    now = datetime.now(UTC)
    expected = set()
    batch = firestore_client.batch()
    for t in ("acme", "globex"):
        members = firestore_client.collection("tenants").document(t).collection("members")
        for i in range(30):
            batch.set(
                members.document(f"m{i}"),
                {"calendar": {"status": "connected", "nextSyncAt": now - timedelta(minutes=i)}},
            )
            expected.add((t, f"m{i}"))
        batch.set(
            members.document("later"),
            {"calendar": {"status": "connected", "nextSyncAt": now + timedelta(hours=1)}},
        )
        batch.set(members.document("new"), {"calendar": {"status": "not_connected"}})
        batch.set(
            members.document("revoked"),
            {"calendar": {"status": "needs_reauth", "nextSyncAt": now - timedelta(hours=1)}},
        )
        batch.set(
            members.document("gone"),
            {"calendar": {"status": "disconnected", "nextSyncAt": now - timedelta(hours=1)}},
        )
    batch.commit()
    subscriber, subscription = _subscribe(firestore_project, topic)

    client = functions_framework.create_app(target="schedule_sync", source=MAIN).test_client()
    response = client.post("/")
    assert response.status_code == 200
    assert response.get_json() == {"published": 60}

    jobs = [decode_job(data) for data in _pull_all(subscriber, subscription)]
    assert len(jobs) == 60
    assert {(j.tenant_id, j.member_id) for j in jobs} == expected
    assert {j.reason for j in jobs} == {"scheduled"}


def test_schedule_sync_creates_a_missing_topic_and_answers_zero(firestore_project: str, topic: str) -> None:
    client = functions_framework.create_app(target="schedule_sync", source=MAIN).test_client()
    assert client.get("/").get_json() == {"published": 0}
    publisher = pubsub_v1.PublisherClient()
    assert publisher.get_topic(topic=publisher.topic_path(firestore_project, topic)).name.endswith(topic)
    assert client.put("/").status_code == 405


def test_schedule_sync_answers_503_when_firestore_is_unreachable(
    firestore_project: str, topic: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.errors import TransientError
    from shared.services import schedule

    def unavailable(*_: object, **__: object) -> dict[str, int]:
        raise TransientError("Firestore unavailable while listing due members: ServiceUnavailable")

    monkeypatch.setattr(schedule, "schedule_sync", unavailable)
    client = functions_framework.create_app(target="schedule_sync", source=MAIN).test_client()
    response = client.post("/")
    assert response.status_code == 503
    assert '"severity": "ERROR"' in capsys.readouterr().out


def test_publisher_raises_transient_error_when_publishing_fails(firestore_project: str) -> None:
    from shared.adapters.pubsub import PubSubJobPublisher
    from shared.errors import TransientError
    from shared.services.ports import SyncJob

    client = pubsub_v1.PublisherClient()
    publisher = PubSubJobPublisher(client, firestore_project, "no-such-topic", batch_size=2)
    with pytest.raises(TransientError, match="publish requests failed"):
        publisher.publish(SyncJob("t", f"m{i}") for i in range(5))

    topic = f"t-{uuid.uuid4().hex[:8]}"
    creating = PubSubJobPublisher(client, firestore_project, topic, create_topic=True, batch_size=2)
    assert creating.publish(SyncJob("t", f"m{i}") for i in range(5)) == 5
    assert creating.publish([]) == 0


def test_three_scheduler_runs_with_workers_stopped_publish_each_member_once(
    firestore_client: firestore.Client, firestore_project: str, topic: str
) -> None:
    """A backlog does not amplify itself: a member whose job is still queued is not published
    again until the job ends (here: `listing_completed`) or the hold passes."""
    from shared.domain.calendar_state import listing_completed
    from shared.services.schedule import QUEUED_HOLD, schedule_sync

    now = datetime.now(UTC)
    members = firestore_client.collection("tenants").document("acme").collection("members")
    batch = firestore_client.batch()
    for i in range(40):
        batch.set(members.document(f"m{i}"), {"calendar": {"status": "connected", "nextSyncAt": now}})
    batch.commit()
    subscriber, subscription = _subscribe(firestore_project, topic)
    store, publisher = bootstrap.member_store(), bootstrap.job_publisher()

    runs = [schedule_sync(store, publisher, now + timedelta(minutes=15 * n))["published"] for n in range(3)]
    assert runs == [40, 0, 0]
    assert len(_pull_all(subscriber, subscription)) == 40

    # m0's job ran and ended: due again at the next run; the others are still queued
    store.update_calendar("acme", "m0", listing_completed("sync-1", now=now + timedelta(minutes=40)))
    assert schedule_sync(store, publisher, now + timedelta(minutes=45)) == {"published": 1}
    # a job lost in Pub/Sub is published again once the hold has passed
    later = now + QUEUED_HOLD + timedelta(minutes=1)
    assert schedule_sync(store, publisher, later) == {"published": 39}
    jobs = [decode_job(data) for data in _pull_all(subscriber, subscription)]
    assert sorted(j.member_id for j in jobs) == sorted(f"m{i}" for i in range(40))


def test_holding_members_skips_a_member_deleted_meanwhile(firestore_client: firestore.Client) -> None:
    from shared.adapters.firestore import FirestoreMemberStore

    members = firestore_client.collection("tenants").document("acme").collection("members")
    members.document("kept").set({"email": "k@cs.example", "calendar": {"status": "connected"}})
    until = datetime(2026, 11, 24, 13, tzinfo=UTC)
    held = FirestoreMemberStore(firestore_client).hold_members([("acme", "kept"), ("acme", "gone")], until)
    assert held == 1
    assert not members.document("gone").get().exists  # never created by the hold
    kept = members.document("kept").get().to_dict()
    assert kept["calendar"]["nextSyncAt"] == until
    assert kept["calendar"]["status"] == "connected"
    assert kept["email"] == "k@cs.example"
