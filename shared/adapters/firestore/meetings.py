"""`FirestoreMeetingStore`: stored meetings (`MeetingRecord`) and the interactions derived from
them, written together in one atomic commit with optimistic-concurrency preconditions (through
`fast_path`), and the index queries that find the meetings a change concerns."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.firestore import fast_path
from shared.adapters.firestore.base import (
    CONFLICT,
    GET_ALL_CHUNK,
    IN_QUERY_LIMIT,
    INTERACTIONS,
    MAX_WRITES_PER_COMMIT,
    MEETINGS,
    TENANTS,
    chunks,
    relative_path,
    translated,
    unique,
)
from shared.adapters.firestore.codecs import interaction_from_document, interaction_to_document
from shared.adapters.firestore.document_size import DOCUMENT_BYTES_ALLOWED, document_size
from shared.adapters.firestore.meeting_codec import (
    meeting_from_document,
    meeting_key_from_document,
    meeting_to_document,
)
from shared.domain.ids import meeting_id
from shared.domain.models import Interaction, MeetingRecord, Plan, StoredMeeting, UnmatchedAddress
from shared.errors import DocumentTooLarge, WriteConflict

MAX_COMMIT_BYTES = 8 * 1024 * 1024  # under the 10 MiB request limit, with room for encoding
# Sizes are checked before the tenant is known: count a document name with the longest tenant id.
_LONGEST_TENANT_ID = "t" * 128
# How Firestore (and its emulator: "maximum entity size is 1048576 bytes") refuses a document
# over 1 MiB: InvalidArgument with one of these in the message.
_TOO_LARGE_MESSAGES = ("maximum entity size", "exceeds the maximum allowed size", "too large")


@dataclass(frozen=True)
class _EncodedPlan:
    """A plan's documents as they will be written, and their sizes (Firestore's count)."""

    plan: Plan
    meetings: dict[str, dict[str, Any]]  # meeting key -> document (written ones only)
    interactions: dict[str, dict[str, Any]]  # interaction id -> document
    oversized: frozenset[str]  # meeting keys whose document or one of their interactions is too large
    total_bytes: int


_last_encoded = threading.local()  # the last plan encoded by this thread (checked, then applied)


def _encoded(plan: Plan) -> _EncodedPlan:
    """Encode a plan once: the size checks and `apply` that follow on the same thread reuse it."""
    cached: _EncodedPlan | None = getattr(_last_encoded, "value", None)
    if cached is not None and cached.plan is plan:
        return cached
    meetings: dict[str, dict[str, Any]] = {}
    interactions: dict[str, dict[str, Any]] = {}
    oversized: set[str] = set()
    total = 0
    for write in plan.meeting_writes:
        if write.record is not None:
            document = meetings[write.meeting_key] = meeting_to_document(write.record)
            size = document_size(
                (TENANTS, _LONGEST_TENANT_ID, MEETINGS, meeting_id(write.meeting_key)), document
            )
            total += size
            if size > DOCUMENT_BYTES_ALLOWED:
                oversized.add(write.meeting_key)
    for interaction in plan.interaction_upserts:
        document = interactions[interaction.id] = interaction_to_document(interaction)
        size = document_size((TENANTS, _LONGEST_TENANT_ID, INTERACTIONS, interaction.id), document)
        total += size
        if size > DOCUMENT_BYTES_ALLOWED:
            oversized.add(interaction.meeting_key)
    encoded = _EncodedPlan(plan, meetings, interactions, frozenset(oversized), total)
    _last_encoded.value = encoded
    return encoded


def _is_too_large(error: gexc.InvalidArgument) -> bool:
    message = str(error).lower()
    return any(text in message for text in _TOO_LARGE_MESSAGES)


def _meeting_key_of(document: Any) -> str:
    """The `meetingKey` of a raw protobuf meeting `Document`."""
    value = document.fields.get("meetingKey")
    return str(value.string_value) if value is not None else ""


class FirestoreMeetingStore:
    """Implements `MeetingStore` (shared.services.ports), plus `list_interactions` for the CLI."""

    def __init__(self, client: firestore.Client) -> None:
        self._db = client

    def _meetings(self, tenant_id: str) -> Any:
        return self._db.collection(TENANTS).document(tenant_id).collection(MEETINGS)

    def _interactions(self, tenant_id: str) -> Any:
        return self._db.collection(TENANTS).document(tenant_id).collection(INTERACTIONS)

    def read_meetings(self, tenant_id: str, meeting_keys: Iterable[str]) -> dict[str, StoredMeeting]:
        """The stored meetings for these keys (batched gets); the version is the document's
        update time. A key never stored maps to an empty record with version None.
        Raises TransientError."""
        keys = unique(meeting_keys)
        meetings = self._meetings(tenant_id)
        key_by_id = {meeting_id(k): k for k in keys}
        result = {k: StoredMeeting(MeetingRecord(meeting_key=k, copies={}), None) for k in keys}
        with translated("reading meetings"):
            for chunk in chunks(list(key_by_id), GET_ALL_CHUNK):
                for snapshot in self._db.get_all([meetings.document(i) for i in chunk]):
                    if not snapshot.exists:
                        continue
                    key = key_by_id[snapshot.id]
                    record = meeting_from_document(key, snapshot.to_dict() or {})
                    result[key] = StoredMeeting(record, snapshot.update_time)
        return result

    def meeting_keys_for_events(
        self, tenant_id: str, member_id: str, event_ids: Iterable[str]
    ) -> dict[str, str]:
        """event id -> meeting key for this member's events held in stored meetings
        (`eventRefs array-contains-any`, 30 per query). Raises TransientError."""
        refs = {f"{member_id}/{e}": e for e in unique(event_ids)}
        found: dict[str, str] = {}
        with translated("mapping event ids to meetings"):
            for chunk in chunks(list(refs), IN_QUERY_LIMIT):
                query = (
                    self._meetings(tenant_id)
                    .where(filter=FieldFilter("eventRefs", "array_contains_any", list(chunk)))
                    .select(["meetingKey", "eventRefs"])
                )
                for snapshot in query.stream():
                    data = snapshot.to_dict() or {}
                    for ref in data.get("eventRefs") or []:
                        if ref in refs:
                            found[refs[ref]] = meeting_key_from_document(data)
        return found

    def meeting_keys_held_by(self, tenant_id: str, member_id: str) -> list[str]:
        """Keys of every stored meeting holding a copy of this member (`holders array-contains`).
        Raises TransientError."""
        query = (
            self._meetings(tenant_id)
            .where(filter=FieldFilter("holders", "array_contains", member_id))
            .select(["meetingKey"])
        )
        with translated("listing a member's meetings"):
            return sorted(meeting_key_from_document(s.to_dict() or {}) for s in query.stream())

    def meeting_keys_for_addresses(
        self, tenant_id: str, emails: Iterable[str], domains: Iterable[str]
    ) -> list[str]:
        """Keys of the stored meetings that contain any of these attendee emails or domain levels
        (the index fields `emails`/`domains`, `array-contains-any`, 30 values per query; one
        read per meeting found), sorted. Raises TransientError."""
        found: set[str] = set()
        with translated("finding the meetings a directory change concerns"):
            for field_name, values in (("emails", unique(emails)), ("domains", unique(domains))):
                for chunk in chunks(values, IN_QUERY_LIMIT):
                    query = (
                        self._meetings(tenant_id)
                        .where(filter=FieldFilter(field_name, "array_contains_any", list(chunk)))
                        .select(["meetingKey"])
                    )
                    for document in fast_path.raw_documents(self._db, query):
                        found.add(_meeting_key_of(document))
        return sorted(found)

    def meeting_keys(self, tenant_id: str, page_size: int = 1000) -> Iterator[list[str]]:
        """Every stored meeting's key, a page at a time (ordered by document id, paged with
        cursors; one read per meeting). Raises TransientError."""
        query = self._meetings(tenant_id).order_by("__name__").select(["meetingKey"]).limit(page_size)
        last: Any = None
        while True:
            page_query = query
            if last is not None:
                page_query = query.start_after({"__name__": self._db.document(relative_path(last.name))})
            with translated("listing meetings"):
                documents = list(fast_path.raw_documents(self._db, page_query))
            if documents:
                yield [_meeting_key_of(d) for d in documents]
                last = documents[-1]
            if len(documents) < page_size:
                return

    @staticmethod
    def fits_in_one_commit(plan: Plan) -> bool:
        """Whether a plan stays within Firestore's limits for one atomic commit: at most 500
        writes, and the documents' sizes (Firestore's count) under MAX_COMMIT_BYTES."""
        writes = len(plan.meeting_writes) + len(plan.interaction_upserts) + len(plan.interaction_deletes)
        if writes > MAX_WRITES_PER_COMMIT:
            return False
        return _encoded(plan).total_bytes <= MAX_COMMIT_BYTES

    @staticmethod
    def oversized_meetings(plan: Plan) -> frozenset[str]:
        """The meetings of a plan whose document, or one of whose interaction documents, would
        exceed Firestore's 1 MiB document limit (counted as Firestore does, with a margin)."""
        return _encoded(plan).oversized

    def apply(self, tenant_id: str, plan: Plan) -> None:
        """Write a plan in ONE atomic batch: meeting creates (fail if the meeting exists),
        updates and deletes (only if still at the version read), interaction upserts (whole
        documents) and deletes (missing is fine). Callers keep plans to a few hundred meetings.
        Raises WriteConflict when a meeting changed since it was read (nothing is written),
        DocumentTooLarge when Firestore refuses a document over its size limit (nothing is
        written; `oversized_meetings` should have said so), TransientError."""
        if plan.is_empty:
            return
        writes = self._writes_of(tenant_id, plan)
        try:
            with translated("applying a plan"):
                fast_path.commit(self._db, writes)
        except CONFLICT as error:
            raise WriteConflict(
                f"a meeting of tenant {tenant_id!r} changed since it was read ({type(error).__name__})"
            ) from error
        except gexc.InvalidArgument as error:
            if _is_too_large(error):
                raise DocumentTooLarge(
                    f"Firestore refused a document of tenant {tenant_id!r} as too large"
                ) from error
            raise

    def _writes_of(self, tenant_id: str, plan: Plan) -> list[Any]:
        """The raw `Write`s of a plan, as `WriteBatch` would build them (fast_path: a meeting
        created must not exist; updated or deleted, it must still be at the version read)."""
        meetings = self._meetings(tenant_id)
        interactions = self._interactions(tenant_id)
        encoded = _encoded(plan)
        writes: list[Any] = []
        for write in plan.meeting_writes:
            name = fast_path.document_name(meetings.document(meeting_id(write.meeting_key)))
            if write.record is None:
                if write.expected is not None:
                    writes.append(fast_path.delete_write(name, write.expected))
            elif write.expected is None:
                writes.append(fast_path.create_write(name, encoded.meetings[write.meeting_key]))
            else:
                writes.append(
                    fast_path.update_write(name, encoded.meetings[write.meeting_key], write.expected)
                )
        for interaction in plan.interaction_upserts:
            name = fast_path.document_name(interactions.document(interaction.id))
            writes.append(fast_path.set_write(name, encoded.interactions[interaction.id]))
        for interaction_id in plan.interaction_deletes:
            writes.append(
                fast_path.delete_write(fast_path.document_name(interactions.document(interaction_id)))
            )
        return writes

    def list_unmatched(self, tenant_id: str) -> list[tuple[UnmatchedAddress, ...]]:
        """Per stored meeting that has any, its unmatched and ambiguous addresses (ordered by
        meeting key): what a directory change could still match. Raises TransientError."""
        query = self._meetings(tenant_id).select(["meetingKey", "unmatched"])
        with translated("listing unmatched addresses"):
            found = [meeting_from_document("", s.to_dict() or {}) for s in query.stream()]
        return [m.unmatched for m in sorted(found, key=lambda m: m.meeting_key) if m.unmatched]

    def list_interactions(self, tenant_id: str, account_id: str | None = None) -> list[Interaction]:
        """The tenant's interactions (optionally of one account), ordered by start time then id.
        Raises TransientError."""
        query = self._interactions(tenant_id)
        if account_id is not None:
            query = query.where(filter=FieldFilter("accountId", "==", account_id))
        with translated("listing interactions"):
            found = [interaction_from_document(s.id, s.to_dict() or {}) for s in query.stream()]
        return sorted(found, key=lambda i: (i.start_time, i.id))
