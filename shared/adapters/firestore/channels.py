"""`FirestoreChannelStore`: the lookup from a push channel's id to its member, `channels/{id}`
(README.md#push-notifications).

A notification names only its channel, so the lookup sits outside the tenants, one document per
live channel: `tenantId`, `memberId`, `resourceId` (once the watch call returned it),
`createdAt`, and `expireAt`, on which a TTL policy deletes the entries of expired channels
(deletion is not immediate: readers check the expiry too). No token is stored: it is recomputed
from the channel key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore

from shared.adapters.firestore.base import bounded, translated
from shared.adapters.firestore.codecs import as_utc, opt_str, required_utc, str_or
from shared.domain.push import ChannelRecord

CHANNELS = "channels"


class FirestoreChannelStore:
    """Implements `ChannelStore` (shared.services.ports)."""

    def __init__(self, client: firestore.Client, request_timeout_s: float | None = None) -> None:
        """`request_timeout_s` bounds each read (retries included): `calendar_notification`
        must answer within its own timeout, 503 when Firestore does not."""
        self._db = client
        self._bounded = bounded(request_timeout_s)

    def _ref(self, channel_id: str) -> Any:
        return self._db.collection(CHANNELS).document(channel_id)

    def create(self, record: ChannelRecord) -> None:
        document = {
            "tenantId": record.tenant_id,
            "memberId": record.member_id,
            "resourceId": record.resource_id,
            "createdAt": record.created_at,
            "expireAt": record.expires_at,
        }
        with translated("storing a push channel"):
            self._ref(record.channel_id).set(document)

    def get(self, channel_id: str) -> ChannelRecord | None:
        with translated("reading a push channel"):
            snapshot = self._ref(channel_id).get(**self._bounded)
        data = snapshot.to_dict() if snapshot.exists else None
        # No expiry, tenant or member: not a channel. A watch that returned after its channel was
        # retired merges its resource id into the deleted entry (`set_resource`), naming no one.
        if (
            not data
            or not as_utc(data.get("expireAt"))
            or not data.get("tenantId")
            or not data.get("memberId")
        ):
            return None
        return ChannelRecord(
            channel_id=channel_id,
            tenant_id=str_or(data.get("tenantId")),
            member_id=str_or(data.get("memberId")),
            resource_id=opt_str(data.get("resourceId")),
            expires_at=required_utc(data.get("expireAt")),
            created_at=required_utc(data.get("createdAt")),
        )

    def set_resource(self, channel_id: str, resource_id: str, expires_at: datetime) -> None:
        with translated("recording a push channel's resource"):
            self._ref(channel_id).set({"resourceId": resource_id, "expireAt": expires_at}, merge=True)

    def delete(self, channel_id: str) -> None:
        with translated("deleting a push channel"):
            self._ref(channel_id).delete()
