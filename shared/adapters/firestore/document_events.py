"""Firestore document-written CloudEvents (Eventarc, `google.cloud.firestore.document.v1.written`)
-> `DirectoryChange`.

The event's data is a protobuf `DocumentEventData` (`value`: the document after the write,
absent on a delete; `oldValue`: before, absent on a create), decoded with Google's published
event types (`google-events`). A JSON rendering of the same message (`application/json`) is
accepted too. The document path comes from the event's `document` attribute, else its `subject`
(`documents/tenants/t/users/u`), else the names inside the data, and must be a user or an account
of a tenant. Anything else raises InvalidInput: retrying cannot help.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.events.cloud.firestore_v1 import DocumentEventData
from google.protobuf.json_format import ParseError
from google.protobuf.message import DecodeError

from shared.domain import ids
from shared.domain.directory_keys import ACCOUNTS, USERS, Collection
from shared.errors import InvalidInput
from shared.services.ports import DirectoryChange

WRITTEN = "google.cloud.firestore.document.v1.written"


def directory_change_from_event(attributes: Mapping[str, Any], data: Any) -> DirectoryChange:
    """The change a document-written event describes. `attributes` are the CloudEvent's (type,
    subject, document, ...), `data` its payload (bytes, or a dict for the JSON format).
    Raises InvalidInput."""
    event_type = attributes.get("type")
    if event_type is not None and event_type != WRITTEN:
        raise InvalidInput(f"not a Firestore document-written event: {str(event_type)[:100]}")
    message = _decode(data)
    path = _document_path(attributes, message)
    parts = path.split("/")
    in_directory = len(parts) == 4 and parts[0] == "tenants" and parts[2] in (USERS, ACCOUNTS)
    if not in_directory or not (ids.is_valid_id(parts[1]) and ids.is_valid_id(parts[3])):
        raise InvalidInput(f"not a user or account document: {path[:200]!r}")
    collection: Collection = USERS if parts[2] == USERS else ACCOUNTS
    return DirectoryChange(
        tenant_id=parts[1],
        collection=collection,
        document_id=parts[3],
        old=_fields(message.old_value) if message.HasField("old_value") else None,
        new=_fields(message.value) if message.HasField("value") else None,
    )


def _decode(data: Any) -> Any:
    """The raw protobuf DocumentEventData."""
    message_type = DocumentEventData.pb()
    try:
        if isinstance(data, bytes | bytearray):
            return message_type.FromString(bytes(data))
        if isinstance(data, Mapping):
            return DocumentEventData.pb(DocumentEventData.from_json(json.dumps(data)))
    except (DecodeError, ParseError, ValueError, TypeError) as error:
        raise InvalidInput(f"event data is not a DocumentEventData: {type(error).__name__}") from None
    raise InvalidInput(f"event data is not a DocumentEventData: {type(data).__name__}")


def _document_path(attributes: Mapping[str, Any], message: Any) -> str:
    document = attributes.get("document")
    if isinstance(document, str) and document:
        return document.strip("/")
    subject = attributes.get("subject")
    if isinstance(subject, str) and subject.startswith("documents/"):
        return subject.removeprefix("documents/").strip("/")
    for value in (message.value, message.old_value):
        if value.name and "/documents/" in value.name:
            return str(value.name.split("/documents/", 1)[1])
    raise InvalidInput("the event names no document")


def _fields(document: Any) -> dict[str, Any]:
    return {name: _value(value) for name, value in document.fields.items()}


def _value(value: Any) -> Any:
    """A Firestore `Value` as a plain Python value (what the document's reader would see)."""
    kind = value.WhichOneof("value_type")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "map_value":
        return {k: _value(v) for k, v in value.map_value.fields.items()}
    if kind == "null_value" or kind is None:
        return None
    if kind == "timestamp_value":
        return value.timestamp_value.ToDatetime(tzinfo=None).isoformat()
    if kind == "geo_point_value":
        return (value.geo_point_value.latitude, value.geo_point_value.longitude)
    return getattr(value, kind)
