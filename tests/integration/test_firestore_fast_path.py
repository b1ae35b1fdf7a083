"""The fast path (shared.adapters.firestore.fast_path) against the real Firestore emulator: each
use of SDK internals gives what the SDK's public path gives, so an SDK upgrade that changes them
fails here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions as gexc
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers as sdk_helpers
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.firestore import fast_path

NOW = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)

VALUES: list[object] = [
    None,
    True,
    0,
    -(2**62),
    "",
    "é ✓",
    1.5,
    NOW,
    datetime(2026, 11, 24, 12, 0),  # naive: taken as UTC
    DatetimeWithNanoseconds(2026, 11, 24, 12, 0, 0, nanosecond=123456789, tzinfo=UTC),
    b"\x00\xff",
    {"a": [1, {"b": None}], "c": "d"},
    [],
    (1, "two"),
]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(VALUES)])
def test_encode_value_builds_what_the_sdk_builds(value: object) -> None:
    assert fast_path.encode_value(value) == sdk_helpers.encode_value(value)._pb


def test_raw_documents_return_the_documents_query_stream_returns(firestore_client: firestore.Client) -> None:
    members = firestore_client.collection("tenants").document("t1").collection("members")
    for n in range(7):
        members.document(f"m{n}").set({"calendar": {"status": "connected" if n % 2 else "not_connected"}})
    query = members.where(filter=FieldFilter("calendar.status", "==", "connected")).select([])
    raw = list(fast_path.raw_documents(firestore_client, query))
    assert [d.name for d in raw] == [fast_path.document_name(s.reference) for s in query.stream()]
    assert [d.name.rsplit("/", 1)[1] for d in raw] == ["m1", "m3", "m5"]
    assert all(d.name.startswith(f"projects/{firestore_client.project}/databases/") for d in raw)


def test_a_raw_commit_writes_what_write_batch_writes(firestore_client: firestore.Client) -> None:
    data = {"title": "Kick-off", "start": NOW, "people": [{"email": "a@x.example", "n": 2}], "gone": None}
    fast_ref = firestore_client.collection("fast").document("d1")
    sdk_ref = firestore_client.collection("sdk").document("d1")
    fast_path.commit(firestore_client, [fast_path.create_write(fast_path.document_name(fast_ref), data)])
    sdk_ref.create(data)
    assert fast_ref.get().to_dict() == sdk_ref.get().to_dict() == data


def test_a_raw_create_fails_when_the_document_exists(firestore_client: firestore.Client) -> None:
    ref = firestore_client.collection("fast").document("d1")
    ref.set({"x": 1})
    with pytest.raises(gexc.Conflict):  # AlreadyExists
        fast_path.commit(firestore_client, [fast_path.create_write(fast_path.document_name(ref), {"x": 2})])
    assert ref.get().to_dict() == {"x": 1}


def test_a_raw_update_replaces_only_its_fields_and_only_at_the_version_read(
    firestore_client: firestore.Client,
) -> None:
    ref = firestore_client.collection("fast").document("d1")
    ref.set({"keep": "me", "odd name": 1, "n": 1})
    version = ref.get().update_time
    name = fast_path.document_name(ref)
    fast_path.commit(firestore_client, [fast_path.update_write(name, {"n": 2, "odd name": 3}, version)])
    assert ref.get().to_dict() == {"keep": "me", "odd name": 3, "n": 2}
    with pytest.raises(gexc.FailedPrecondition):  # written since `version`
        fast_path.commit(firestore_client, [fast_path.update_write(name, {"n": 9}, version)])
    assert ref.get().to_dict()["n"] == 2


def test_raw_deletes_honour_the_version_and_a_missing_document_is_fine(
    firestore_client: firestore.Client,
) -> None:
    ref = firestore_client.collection("fast").document("d1")
    ref.set({"x": 1})
    stale = ref.get().update_time - timedelta(seconds=1)
    name = fast_path.document_name(ref)
    with pytest.raises(gexc.FailedPrecondition):
        fast_path.commit(firestore_client, [fast_path.delete_write(name, stale)])
    assert ref.get().exists
    fast_path.commit(firestore_client, [fast_path.delete_write(name, ref.get().update_time)])
    assert not ref.get().exists
    fast_path.commit(firestore_client, [fast_path.delete_write(name)])  # already gone: success


def test_one_raw_commit_is_atomic(firestore_client: firestore.Client) -> None:
    existing = firestore_client.collection("fast").document("exists")
    existing.set({"x": 1})
    fresh = firestore_client.collection("fast").document("fresh")
    writes = [
        fast_path.set_write(fast_path.document_name(fresh), {"x": 1}),
        fast_path.create_write(fast_path.document_name(existing), {"x": 2}),
    ]
    with pytest.raises(gexc.Conflict):
        fast_path.commit(firestore_client, writes)
    assert not fresh.get().exists


def test_a_version_must_be_the_update_time_read() -> None:
    with pytest.raises(TypeError, match="update time"):
        fast_path.update_write("projects/p/databases/(default)/documents/a/b", {"x": 1}, "v1")
