"""Firestore's size rules: how many bytes a document counts against the 1 MiB limit.

As Firestore documents them ("Storage size calculations"): a string is its UTF-8 bytes + 1; a
boolean or null 1; an integer, a double or a timestamp 8; bytes their length; an array the sum of
its values; a map the sum of its keys (as strings) and values. A document is its name (each
collection and document id of its path as a string, + 16) plus its fields plus 32. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

MAX_DOCUMENT_BYTES = 1_048_576  # Firestore's limit for one document (the emulator enforces it)
# What calsync allows itself: under the limit by enough to absorb a difference in how the
# service or the emulator count (the refusal is still caught, docs/reference.md#size-limits).
DOCUMENT_BYTES_ALLOWED = MAX_DOCUMENT_BYTES - 32 * 1024

_NAME_EXTRA = 16
_DOCUMENT_EXTRA = 32


def string_size(text: str) -> int:
    return len(text.encode("utf-8")) + 1


def value_size(value: Any) -> int:
    """The storage size of one field value."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        # ASCII (nearly every email and name) costs no encoding
        return len(value) + 1 if value.isascii() else string_size(value)
    if isinstance(value, int | float | datetime):
        return 8
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, Mapping):
        return fields_size(value)
    if isinstance(value, list | tuple):
        return sum(value_size(v) for v in value)
    return 16  # a GeoPoint; calsync stores none


def fields_size(fields: Mapping[str, Any]) -> int:
    """The size of a map value, or of a document's fields."""
    return sum(string_size(key) + value_size(value) for key, value in fields.items())


def name_size(path: Sequence[str]) -> int:
    """The size of a document name given as its segments, e.g. ("tenants", "t", "meetings", "id")."""
    return sum(string_size(segment) for segment in path) + _NAME_EXTRA


def document_size(path: Sequence[str], fields: Mapping[str, Any]) -> int:
    """The size Firestore counts for a document with this name and these fields."""
    return name_size(path) + fields_size(fields) + _DOCUMENT_EXTRA


def is_within_document_limit(path: Sequence[str], fields: Mapping[str, Any]) -> bool:
    return document_size(path, fields) <= DOCUMENT_BYTES_ALLOWED
