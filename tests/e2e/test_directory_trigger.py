"""End to end: `directory_changed` served by functions-framework in its own process, receiving
Firestore document-written CloudEvents exactly as Eventarc delivers them (binary mode,
`application/protobuf` `DocumentEventData`), against the Firestore emulator holding the sample
tenant as synced by the production code."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests
from google.events.cloud.firestore_v1 import ArrayValue, Document, DocumentEventData, Value

from shared import bootstrap
from shared.sandbox.emulators import RunningProcess
from shared.sandbox.functions_host import start_functions_host
from shared.sandbox.google_standin import GoogleStandIn
from shared.services.sync import sync_member
from tests.support import sandbox
from tests.support.sandbox import TENANT, FixedClock

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("firestore_project")]

S29 = "57diakgmi160pqjpmnp67qu6je@google.com"  # founder@unknown-startup.io, no account
S22 = "5ehq5ag4m9eb1pb8tv0evud5cl@google.com"  # milton.waddams@initrode.com, user of Initrode


@pytest.fixture
def host(firestore_project: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningProcess]:
    with GoogleStandIn() as standin:
        sandbox.point_env_at(monkeypatch, standin)
        sandbox.import_sample_directory()
        sandbox.load_sample_calendars(standin)
        clock = FixedClock()
        for member in sandbox.sample_members():
            sandbox.connect(standin, member["id"], member["email"])
        deps = replace(bootstrap.sync_deps(), clock=clock, publisher=None)
        for member in sandbox.sample_members():
            assert sync_member(deps, TENANT, member["id"]).outcome == "synced"
        env = {"GOOGLE_CLOUD_PROJECT": firestore_project}
        running = start_functions_host(env, targets=["directory_changed"])
        try:
            yield running
        finally:
            running.stop()


def _value(item: Any) -> Value:
    if isinstance(item, list):
        return Value(array_value=ArrayValue(values=[_value(v) for v in item]))
    return Value(string_value=item)


def _document(path: str, fields: dict[str, Any] | None) -> Document | None:
    if fields is None:
        return None
    name = f"projects/p/databases/(default)/documents/{path}"
    return Document(name=name, fields={k: _value(v) for k, v in fields.items()})


def post_written(
    host: RunningProcess, path: str, old: dict[str, Any] | None, new: dict[str, Any] | None, event_id: str
) -> requests.Response:
    """POST a document-written event in CloudEvents binary mode, as Eventarc does."""
    data = DocumentEventData(value=_document(path, new), old_value=_document(path, old))
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "//firestore.googleapis.com/projects/p/databases/(default)",
        "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-subject": f"documents/{path}",
        "ce-document": path,
        "ce-database": "(default)",
        "ce-namespace": "(default)",
        "ce-time": "2026-11-24T12:00:00Z",
        "content-type": "application/protobuf",
    }
    return requests.post(
        f"http://{host.host}/directory_changed/",
        data=DocumentEventData.serialize(data),
        headers=headers,
        timeout=60,
    )


def accounts_of(meeting_key: str) -> set[str]:
    return {
        i.account_id
        for i in bootstrap.meeting_store().list_interactions(TENANT)
        if i.meeting_key == meeting_key
    }


def interaction_times() -> dict[str, Any]:
    return {i.id: i.updated_at for i in bootstrap.meeting_store().list_interactions(TENANT)}


def log_records(host: RunningProcess, message: str) -> list[dict[str, Any]]:
    records = []
    for line in host.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("function") == "directory_changed" and record.get("message") == message:
                records.append(record)
    return records


def test_a_user_written_by_the_cs_platform_is_matched_and_a_duplicate_changes_nothing(
    host: RunningProcess,
) -> None:
    db = bootstrap.firestore_client()
    path = f"tenants/{TENANT}/users/u-founder"
    new = {"email": "Founder@Unknown-Startup.io", "name": "Fiona", "accountId": "acc-hooli"}
    db.document(path).set(new)  # no emailKey, as the CS platform writes it
    assert accounts_of(S29) == set()

    event_id = uuid.uuid4().hex
    answer = post_written(host, path, None, new, event_id)
    assert answer.status_code == 200, host.log_tail()
    assert accounts_of(S29) == {"acc-hooli"}
    assert db.document(path).get().get("emailKey") == "founder@unknown-startup.io"
    finished = log_records(host, "re-match finished")
    assert finished[-1]["added"] == 1
    assert finished[-1]["document"] == "users/u-founder"

    before = interaction_times()
    assert post_written(host, path, None, new, event_id).status_code == 200  # redelivered
    assert interaction_times() == before
    assert log_records(host, "re-match finished")[-1]["changed"] == 0

    # the event of the trigger's own emailKey write: acknowledged, nothing looked at, no write
    fixed = db.document(path).get()
    assert post_written(host, path, new, fixed.to_dict(), uuid.uuid4().hex).status_code == 200
    assert log_records(host, "re-match finished")[-1]["skipped"]
    assert db.document(path).get().update_time == fixed.update_time


def test_an_account_change_moves_interactions(host: RunningProcess) -> None:
    db = bootstrap.firestore_client()
    path = f"tenants/{TENANT}/users/u-milton"
    old = db.document(path).get().to_dict()
    new = {**old, "accountId": "acc-hooli"}
    db.document(path).set(new)
    assert post_written(host, path, old, new, uuid.uuid4().hex).status_code == 200
    assert accounts_of(S22) == {"acc-hooli"}
    assert log_records(host, "re-match finished")[-1]["moved"] == 1


def test_malformed_events_are_acknowledged_with_an_error_log(host: RunningProcess) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "bad-1",
        "ce-source": "//firestore.googleapis.com/projects/p/databases/(default)",
        "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-subject": f"documents/tenants/{TENANT}/users/u-x",
        "content-type": "application/protobuf",
    }
    garbage = requests.post(
        f"http://{host.host}/directory_changed/", data=b"\xff\x00\x13", headers=headers, timeout=30
    )
    assert garbage.status_code == 200
    other = post_written(host, f"tenants/{TENANT}/members/m-anna", None, {"email": "x@y.example"}, "bad-2")
    assert other.status_code == 200
    rejected = log_records(host, "directory event rejected (acknowledged, not retried)")
    assert len(rejected) == 2
    assert all(r["severity"] == "ERROR" for r in rejected)
