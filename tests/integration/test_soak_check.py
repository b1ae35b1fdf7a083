"""The soak's comparison (soak/check.py) finds what differs between two projects'
interactions: a document missing on either side and each differing field, never createdAt or
updatedAt; and the sandbox-only switches of the functions host patch only what they name."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import firestore

from soak.check import compare


def _write(project: str, docs: dict[str, dict[str, object]]) -> None:
    client = firestore.Client(project=project)
    for doc_id, doc in docs.items():
        client.collection("tenants").document("t0").collection("interactions").document(doc_id).set(doc)
    client.close()


def test_compare_reports_each_field_and_missing_document(firestore_project: str) -> None:
    other = f"test-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    same = {"accountId": "acc-1", "title": "QBR", "memberIds": ["m1"], "createdAt": now, "updatedAt": now}
    later = now + timedelta(minutes=5)
    _write(
        firestore_project,
        {"a": same, "b": {**same, "title": "Renewal"}, "c": same, "d": {**same, "createdAt": later}},
    )
    _write(other, {"a": same, "b": same, "d": {**same, "updatedAt": later}, "e": same})

    differences, compared = compare(firestore_project, other, ["t0"])

    assert compared == 4
    found = {(d.interaction_id, d.field): (d.soak, d.reference) for d in differences}
    assert found == {
        ("b", "title"): ("Renewal", "QBR"),
        ("c", "<document>"): (found[("c", "<document>")][0], None),
        ("e", "<document>"): (None, found[("e", "<document>")][1]),
    }
    assert "title" in differences[0].line()


def test_sandbox_switches_skew_the_clock_and_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import bootstrap
    from shared.adapters.clock import SystemClock
    from shared.sandbox import functions_host

    monkeypatch.setattr(SystemClock, "now", SystemClock.now)
    monkeypatch.setattr(bootstrap, "sync_settings", bootstrap.sync_settings)
    patched = functions_host.apply_sandbox_switches(
        {functions_host.SKEW_ENV: "-120", functions_host.LEASE_TTL_ENV: "30"}
    )

    assert len(patched) == 2
    skew = SystemClock().now() - datetime.now(UTC)
    assert timedelta(seconds=-121) < skew < timedelta(seconds=-119)
    settings = bootstrap.sync_settings()
    assert settings.lease_ttl_s == 30.0
    assert dataclasses.replace(settings, lease_ttl_s=540.0).lease_fence_s == 240.0
    assert functions_host.apply_sandbox_switches({}) == []
