"""The fast path: the one module that uses google-cloud-firestore internals.

Two hot paths are too slow through the SDK's public classes, so they go one level down, through
the SDK's own request preparation and RPC stubs:

- **Raw query results** (`raw_documents`): `Query.stream()` builds a `DocumentSnapshot` per
  result (~100 µs of Python each), most of the time of a 100,000-member fan-out. The fan-out and
  the index queries of the meeting store only need names and one or two fields, read here off
  the protobuf `Document`s.
- **Raw commits** (`commit`, `batch_write`, and the `Write` builders): `WriteBatch.create/set/update` spend
  ~1.5 ms of Python per meeting-sized document in proto-plus wrappers, most of a full sync's CPU
  time. The builders here make the same messages on the raw protobuf classes; `encode_value`
  encodes exactly as the SDK's `_helpers.encode_value` does.

SDK internals used, all of them here and nowhere else: `Query._prep_stream`,
`Client._firestore_api` (its `run_query`, `commit` and `batch_write`),
`Client._rpc_metadata`, `Client._database_string`,
`DocumentReference._document_path`, the proto-plus `._pb` of a response, and
`firestore_v1._helpers.encode_value` for the rare value types. `tests/integration/
test_firestore_fast_path.py` checks each against the emulator and against the SDK's own public
path, so an SDK upgrade that changes them fails loudly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers as _sdk_helpers
from google.cloud.firestore_v1 import field_path as _sdk_field_path
from google.cloud.firestore_v1.types import common as common_types
from google.cloud.firestore_v1.types import document as document_types
from google.cloud.firestore_v1.types import write as write_types
from google.cloud.firestore_v1.types.firestore import BatchWriteRequest, CommitRequest
from google.protobuf.timestamp_pb2 import Timestamp


def raw_documents(client: firestore.Client, query: Any) -> Iterator[Any]:
    """The raw protobuf `Document`s a query returns, as they stream in (the same request as
    `query.stream()`, without a DocumentSnapshot per result)."""
    request, _, kwargs = query._prep_stream()
    responses = client._firestore_api.run_query(request=request, metadata=client._rpc_metadata, **kwargs)
    for response in responses:
        raw = response._pb
        if raw.HasField("document"):
            yield raw.document


def commit(client: firestore.Client, writes: Sequence[Any]) -> None:
    """Commit raw `Write`s in one atomic request. Raises the SDK's errors (callers translate)."""
    request = CommitRequest.wrap(_COMMIT_REQUEST(database=client._database_string, writes=list(writes)))
    client._firestore_api.commit(request=request, metadata=client._rpc_metadata)


def batch_write(client: firestore.Client, writes: Sequence[Any]) -> list[bool]:
    """Apply raw `Write`s independently (not atomically: Firestore's BatchWrite, at most 500);
    returns, per write, whether it was applied (a failed precondition fails that write only).
    Raises the SDK's errors for the request as a whole (callers translate)."""
    request = BatchWriteRequest.wrap(
        _BATCH_WRITE_REQUEST(database=client._database_string, writes=list(writes))
    )
    response = client._firestore_api.batch_write(request=request, metadata=client._rpc_metadata)
    return [status.code == 0 for status in response._pb.status]


def name_of(client: firestore.Client, path: str) -> str:
    """The full resource name of the document at `path` (`tenants/t/members/m`), without
    building a DocumentReference (the fan-out names 100,000 of them)."""
    return f"{client._database_string}/documents/{path}"


def document_name(reference: Any) -> str:
    """The full resource name of a `DocumentReference` (`projects/…/documents/…`)."""
    return str(reference._document_path)


def create_write(name: str, data: Mapping[str, Any]) -> Any:
    """Create the whole document; the commit fails if it exists."""
    document = _DOCUMENT(name=name, fields=encode_fields(data))
    return _WRITE(update=document, current_document=_PRECONDITION(exists=False))


def update_write(name: str, data: Mapping[str, Any], version: object) -> Any:
    """Replace these top-level fields, only if the document is still at `version` (its update
    time as read)."""
    return _WRITE(
        update=_DOCUMENT(name=name, fields=encode_fields(data)),
        update_mask=_DOCUMENT_MASK(field_paths=sorted(_field_path(k) for k in data)),
        current_document=_unchanged_since(version),
    )


def field_update_write(name: str, field_path: str, value: Any) -> Any:
    """Set one (possibly nested, dotted) field of an existing document; fails if it is missing."""
    *parents, leaf = field_path.split(".")
    data: dict[str, Any] = {leaf: value}
    for parent in reversed(parents):
        data = {parent: data}
    return _WRITE(
        update=_DOCUMENT(name=name, fields=encode_fields(data)),
        update_mask=_DOCUMENT_MASK(field_paths=[field_path]),
        current_document=_PRECONDITION(exists=True),
    )


def set_write(name: str, data: Mapping[str, Any]) -> Any:
    """Write the whole document, whatever is there."""
    return _WRITE(update=_DOCUMENT(name=name, fields=encode_fields(data)))


def delete_write(name: str, version: object | None = None) -> Any:
    """Delete the document: only if still at `version` when one is given; missing is fine."""
    if version is None:
        return _WRITE(delete=name)
    return _WRITE(delete=name, current_document=_unchanged_since(version))


# --- raw protobuf encoding, as the SDK encodes ---------------------------------------------------

_VALUE = document_types.Value.pb()
_MAP_VALUE = document_types.MapValue.pb()
_ARRAY_VALUE = document_types.ArrayValue.pb()
_DOCUMENT = document_types.Document.pb()
_WRITE = write_types.Write.pb()
_PRECONDITION = common_types.Precondition.pb()
_DOCUMENT_MASK = common_types.DocumentMask.pb()
_COMMIT_REQUEST = CommitRequest.pb()
_BATCH_WRITE_REQUEST = BatchWriteRequest.pb()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _timestamp_pb(value: datetime) -> Timestamp:
    """As the SDK encodes it: nanoseconds kept from a DatetimeWithNanoseconds, a naive value
    taken as UTC, otherwise microseconds since the epoch."""
    if isinstance(value, DatetimeWithNanoseconds):
        return value.timestamp_pb()
    return _microsecond_timestamp(value)


def _microsecond_timestamp(value: datetime) -> Timestamp:
    """A datetime to the microsecond (naive taken as UTC) as a protobuf Timestamp."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    micros = (aware - _EPOCH) // _ONE_MICROSECOND
    seconds, rest = divmod(micros, 1_000_000)
    return Timestamp(seconds=seconds, nanos=rest * 1000)


def encode_value(value: Any) -> Any:
    """A plain Python value (None, bool, int, float, str, datetime, bytes, mapping, list/tuple)
    as a raw `Value`, equal to what the SDK's `_helpers.encode_value` builds."""
    if value is None:
        return _VALUE(null_value=0)
    if isinstance(value, bool):
        return _VALUE(boolean_value=value)
    if isinstance(value, int):
        return _VALUE(integer_value=value)
    if isinstance(value, str):
        return _VALUE(string_value=value)
    if isinstance(value, float):
        return _VALUE(double_value=value)
    if isinstance(value, datetime):
        return _VALUE(timestamp_value=_timestamp_pb(value))
    if isinstance(value, Mapping):
        return _VALUE(map_value=_MAP_VALUE(fields=encode_fields(value)))
    if isinstance(value, list | tuple):
        return _VALUE(array_value=_ARRAY_VALUE(values=[encode_value(v) for v in value]))
    return _sdk_helpers.encode_value(value)._pb  # bytes, GeoPoint, ...: the SDK's own encoding


def encode_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: encode_value(value) for key, value in data.items()}


def _field_path(name: str) -> str:
    """A top-level field name as an update-mask path (back-quoted unless a simple name)."""
    return str(_sdk_field_path.render_field_path([name]))


def _unchanged_since(version: object) -> Any:
    """The precondition "unchanged since read": the document's update time as read, to the
    microsecond (as `client.write_option(last_update_time=...)` sends it)."""
    if not isinstance(version, datetime):
        raise TypeError(f"a document version is the update time read, not {type(version).__name__}")
    return _PRECONDITION(update_time=_microsecond_timestamp(version))
