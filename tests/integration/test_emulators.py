"""The sandbox's emulator harness: real emulators, production clients, cleanup by group."""

from __future__ import annotations

import os

import pytest
from google.cloud import firestore, pubsub_v1

from shared.sandbox import emulators


def test_firestore_emulator_serves_the_production_client(
    firestore_client: firestore.Client,
) -> None:
    firestore_client.collection("probe").document("a").set({"n": 1})
    assert firestore_client.collection("probe").document("a").get().to_dict() == {"n": 1}


def test_each_test_gets_an_empty_firestore_project(firestore_client: firestore.Client) -> None:
    assert list(firestore_client.collection("probe").stream()) == []


def test_pubsub_emulator_round_trips_a_message(
    emulator_hosts: emulators.EmulatorHosts, monkeypatch: pytest.MonkeyPatch, uses_emulators: None
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator_hosts.pubsub)
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.topic_path("probe-project", "probe-topic")
    subscription = subscriber.subscription_path("probe-project", "probe-sub")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    publisher.publish(topic, b"hello").result(timeout=30)
    response = subscriber.pull(subscription=subscription, max_messages=1, timeout=30)
    assert [m.message.data for m in response.received_messages] == [b"hello"]


def test_wipe_empties_one_project_only(
    emulator_hosts: emulators.EmulatorHosts, uses_emulators: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator_hosts.firestore)
    one, other = firestore.Client(project="wipe-one"), firestore.Client(project="wipe-other")
    one.collection("c").document("d").set({"x": 1})
    other.collection("c").document("d").set({"x": 2})
    emulators.wipe_firestore(emulator_hosts.firestore, "wipe-one")
    assert not one.collection("c").document("d").get().exists
    assert other.collection("c").document("d").get().to_dict() == {"x": 2}


def test_stop_ends_the_whole_process_group(uses_emulators: None) -> None:
    if emulators.missing_reason():
        pytest.skip(f"EMULATORS MISSING: {emulators.missing_reason()}")
    running = emulators.start_pubsub()
    pid = running.process.pid
    assert os.getpgid(pid) == pid  # its own group
    running.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # signal 0: does the group still exist?
