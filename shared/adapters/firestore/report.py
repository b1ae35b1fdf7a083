"""`FirestoreReportStore`: the operator report's reads (README.md#operator-report), each bounded.

- Interactions per week: one aggregation `count()` per week over the automatic single-field
  index on `startTime` (infra/firestore.tf keeps it), run concurrently. The database counts
  index entries: no document is read or sent, whatever the tenant's size.
- Recent meetings: the meetings whose `start` (indexed) is at or after a date, with a field mask
  (`start`, the account ids of `interactions`, `unmatched`) and a cap. `unmatched` is not
  indexed (it is a big array), so the meetings of the window are read, not only those with
  unmatched addresses: linear in the window's meetings, never in the tenant's history.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.firestore.base import (
    INTERACTIONS,
    LOOKUP_CONCURRENCY,
    MEETINGS,
    TENANTS,
    translated,
)
from shared.adapters.firestore.codecs import as_utc
from shared.adapters.firestore.meeting_codec import meeting_from_document
from shared.domain.report import RecentMeeting

_MEETING_FIELDS = ["start", "interactions", "unmatched"]


class FirestoreReportStore:
    """Implements `ReportStore` (shared.services.ports)."""

    def __init__(self, client: firestore.Client) -> None:
        self._db = client

    def _collection(self, tenant_id: str, name: str) -> Any:
        return self._db.collection(TENANTS).document(tenant_id).collection(name)

    def count_interactions(self, tenant_id: str, ranges: Sequence[tuple[datetime, datetime]]) -> list[int]:
        """Per [start, end) range, the interactions starting in it (aggregation queries).
        Raises TransientError."""
        interactions = self._collection(tenant_id, INTERACTIONS)

        def count(bounds: tuple[datetime, datetime]) -> int:
            query = interactions.where(filter=FieldFilter("startTime", ">=", bounds[0])).where(
                filter=FieldFilter("startTime", "<", bounds[1])
            )
            result = query.count(alias="n").get()
            return int(result[0][0].value) if result and result[0] else 0

        if not ranges:
            return []
        with (
            translated("counting interactions"),
            concurrent.futures.ThreadPoolExecutor(
                max_workers=min(LOOKUP_CONCURRENCY, len(ranges)), thread_name_prefix="calsync-report"
            ) as pool,
        ):
            return list(pool.map(count, ranges))

    def recent_meetings(
        self, tenant_id: str, since: datetime, limit: int
    ) -> tuple[list[RecentMeeting], bool]:
        """The meetings starting at or after `since`, earliest first, at most `limit`, and
        whether that was all. Raises TransientError."""
        query = (
            self._collection(tenant_id, MEETINGS)
            .where(filter=FieldFilter("start", ">=", since))
            .order_by("start")
            .select(_MEETING_FIELDS)
            .limit(limit + 1)
        )
        with translated("reading recent meetings"):
            found = [_recent_meeting(s.to_dict() or {}) for s in query.stream()]
        return found[:limit], len(found) <= limit


def _recent_meeting(data: Mapping[str, Any]) -> RecentMeeting:
    record = meeting_from_document("", data)
    return RecentMeeting(
        start=as_utc(data.get("start")),
        account_ids=tuple(sorted(record.interaction_hashes)),
        unmatched=record.unmatched,
    )
