"""Pending OAuth consents in Firestore: `oauthStates/{sha256(state)}` (README, "Data in Firestore").

The raw `state` never reaches Firestore: documents are keyed by its SHA-256. Each holds the
tenant, the member, `createdAt` and `expiresAt` (a TTL policy on that field deletes old
documents; expiry is also checked on read, TTL deletion is not immediate). No PKCE verifier is
stored: it is derived from the state and the signing key (shared.services.connect). Consuming a
state is an update with a precondition on the update time that was read: of two concurrent
callbacks only one wins, and the consumed document stays as a tombstone (`consumedAt`) so a
replay is recognised as such until the TTL removes it.

Errors: unavailable/contention -> TransientError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from shared.errors import TransientError
from shared.services.ports import PendingConsent

COLLECTION = "oauthStates"


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    from google.api_core import exceptions

    try:
        yield
    except (
        exceptions.ServiceUnavailable,
        exceptions.DeadlineExceeded,
        exceptions.InternalServerError,
        exceptions.Aborted,
        exceptions.ResourceExhausted,
        exceptions.Unknown,
        exceptions.GatewayTimeout,
        exceptions.RetryError,
    ) as error:
        raise TransientError(f"Firestore unavailable while {what}: {type(error).__name__}") from None


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class FirestoreOAuthStateStore:
    """Implements `OAuthStateStore` (shared.services.ports)."""

    def __init__(self, client: Any, collection: str = COLLECTION) -> None:
        self._db = client
        self._collection = collection

    def _ref(self, state_key: str) -> Any:
        return self._db.collection(self._collection).document(state_key)

    def create(self, state_key: str, pending: PendingConsent) -> None:
        """Store a new pending consent (create-only: a duplicate key raises TransientError,
        which a 256-bit random state makes practically impossible). Raises TransientError."""
        from google.api_core import exceptions

        with _translated("storing an OAuth state"):
            try:
                self._ref(state_key).create(
                    {
                        "tenantId": pending.tenant_id,
                        "memberId": pending.member_id,
                        "createdAt": pending.created_at,
                        "expiresAt": pending.expires_at,
                        "consumedAt": None,
                    }
                )
            except exceptions.Conflict:
                raise TransientError("OAuth state collision: start again") from None

    def get(self, state_key: str) -> PendingConsent | None:
        """The pending consent under this key (consumed or not), or None. Raises TransientError."""
        with _translated("reading an OAuth state"):
            snapshot = self._ref(state_key).get()
        if not snapshot.exists:
            return None
        data = snapshot.to_dict() or {}
        created, expires = _utc(data.get("createdAt")), _utc(data.get("expiresAt"))
        if not (isinstance(data.get("tenantId"), str) and isinstance(data.get("memberId"), str) and expires):
            return None  # not a document we wrote: treat as unknown
        return PendingConsent(
            tenant_id=data["tenantId"],
            member_id=data["memberId"],
            created_at=created or expires,
            expires_at=expires,
            consumed_at=_utc(data.get("consumedAt")),
            version=snapshot.update_time,
        )

    def consume(self, state_key: str, pending: PendingConsent, now: datetime) -> bool:
        """Mark the consent used, if it is still exactly as read (`pending.version`). False when
        it was consumed or changed meanwhile (a concurrent or replayed callback).
        Raises TransientError."""
        from google.api_core import exceptions

        option = self._db.write_option(last_update_time=pending.version)
        with _translated("consuming an OAuth state"):
            try:
                self._ref(state_key).update({"consumedAt": now}, option=option)
            except (exceptions.FailedPrecondition, exceptions.NotFound, exceptions.Conflict):
                return False
        return True
