"""`FirestoreMemberStore`: members and their `calendar` state (connection, cursor, lease), and
the cross-tenant query of due members for the fan-out."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import random
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.firestore import fast_path
from shared.adapters.firestore.base import (
    MAX_WRITES_PER_COMMIT,
    MEMBERS,
    TENANTS,
    bounded,
    chunks,
    relative_path,
    translated,
)
from shared.adapters.firestore.codecs import (
    CALENDAR_FIELDS,
    calendar_from_document,
    calendar_updates,
    member_from_document,
)
from shared.domain.calendar_state import CalendarUpdate, Transition
from shared.domain.models import CalendarState, ConnectionStatus, Member
from shared.domain.push import Claim, claim, claimed
from shared.errors import NotFound, TransientError
from shared.services.ports import DueMember

_OPTIMISTIC_ATTEMPTS = 8  # read-then-write-if-unchanged rounds before giving up (contention)
_RESYNC_REQUESTED = "calendar." + CALENDAR_FIELDS["push_resync_requested"]
_QUEUED_AT = "calendar." + CALENDAR_FIELDS["push_queued_at"]
_RENEW_AT = CALENDAR_FIELDS["push_renew_at"]


class FirestoreMemberStore:
    """Implements `MemberStore` (shared.services.ports), plus `list_members` for the CLI."""

    def __init__(self, client: firestore.Client, request_timeout_s: float | None = None) -> None:
        """`request_timeout_s` bounds each call of `claim_push_job` (retries included):
        `calendar_notification` must answer within its own timeout, 503 when Firestore does not."""
        self._db = client
        self._bounded = bounded(request_timeout_s)

    def _ref(self, tenant_id: str, member_id: str) -> Any:
        return self._db.collection(TENANTS).document(tenant_id).collection(MEMBERS).document(member_id)

    def get_member(self, tenant_id: str, member_id: str) -> Member:
        """Raises NotFound for an unknown tenant or member; TransientError."""
        with translated("reading a member"):
            snapshot = self._ref(tenant_id, member_id).get()
        if not snapshot.exists:
            raise NotFound(f"unknown member {member_id!r} of tenant {tenant_id!r}")
        return member_from_document(snapshot.id, snapshot.to_dict() or {})

    def list_members(self, tenant_id: str) -> list[Member]:
        """Every member of the tenant, ordered by id. Raises TransientError."""
        members = self._db.collection(TENANTS).document(tenant_id).collection(MEMBERS)
        with translated("listing members"):
            return [member_from_document(s.id, s.to_dict() or {}) for s in members.stream()]

    def acquire_lease(
        self,
        tenant_id: str,
        member_id: str,
        owner: str,
        now: datetime,
        ttl_s: float,
        *,
        push_job: bool = False,
    ) -> Member | None:
        """Take the member's sync lease in a transaction, if free, expired or already `owner`'s.
        Returns the member as read inside the transaction (with the new lease), or None when
        another live owner holds it. A `push_job` that finds the lease busy asks the running
        sync for one more round and gives up its claim, in the same transaction. Raises
        NotFound, TransientError (contention included)."""
        ref = self._ref(tenant_id, member_id)
        expires = now + timedelta(seconds=ttl_s)

        @firestore.transactional
        def take(transaction: Any) -> Member | None:
            snapshot = ref.get(transaction=transaction)
            if not snapshot.exists:
                raise NotFound(f"unknown member {member_id!r} of tenant {tenant_id!r}")
            member = member_from_document(snapshot.id, snapshot.to_dict() or {})
            state = member.calendar
            held_by_other = (
                state.lease_owner is not None
                and state.lease_owner != owner
                and state.lease_expires_at is not None
                and state.lease_expires_at > now
            )
            if held_by_other:
                if push_job:  # this job ends here: the running sync takes its work over
                    transaction.update(ref, {_RESYNC_REQUESTED: True, _QUEUED_AT: None})
                return None
            transaction.update(ref, {"calendar.leaseOwner": owner, "calendar.leaseExpiresAt": expires})
            calendar = dataclasses.replace(state, lease_owner=owner, lease_expires_at=expires)
            return dataclasses.replace(member, calendar=calendar)

        try:
            with translated("taking a sync lease"):
                result: Member | None = take(self._db.transaction())
        except ValueError as error:  # the SDK's "failed to commit after N attempts"
            raise TransientError(f"lease contention on member {member_id!r}") from error
        return result

    def update_calendar(
        self,
        tenant_id: str,
        member_id: str,
        changes: CalendarUpdate | Transition,
        *,
        lease_owner: str | None = None,
    ) -> CalendarState | None:
        """Set the fields of `members/{id}.calendar` that `changes` sets.
        With `lease_owner`, only while that owner still holds the lease: the member is read,
        then written with a precondition on the update time read, so nothing can change in
        between (a concurrent write makes it read and try again); `changes` may then be a
        transition of the state read. Returns the state as read, or None without `lease_owner`.
        A lease taken over raises TransientError. Raises NotFound, TransientError."""
        ref = self._ref(tenant_id, member_id)
        with translated("updating a member's calendar state"):
            try:
                if lease_owner is None:
                    if not isinstance(changes, CalendarUpdate):
                        raise TypeError("a transition of the state read needs a lease owner")
                    if updates := calendar_updates(changes):
                        ref.update(updates)
                    return None
                return self._update_leased(ref, member_id, changes, lease_owner)
            except gexc.NotFound as error:
                raise NotFound(f"unknown member {member_id!r} of tenant {tenant_id!r}") from error

    def _update_leased(
        self, ref: Any, member_id: str, changes: CalendarUpdate | Transition, owner: str
    ) -> CalendarState:
        for attempt in range(_OPTIMISTIC_ATTEMPTS):
            snapshot = ref.get()
            if not snapshot.exists:
                raise NotFound(f"unknown member {member_id!r}")
            before = calendar_from_document((snapshot.to_dict() or {}).get("calendar"))
            if before.lease_owner != owner:
                raise TransientError(f"sync lease of member {member_id!r} is no longer held")
            updates = calendar_updates(changes if isinstance(changes, CalendarUpdate) else changes(before))
            if not updates:
                return before
            try:
                ref.update(updates, option=self._db.write_option(last_update_time=snapshot.update_time))
                return before
            except gexc.FailedPrecondition:  # written meanwhile (a notification, the fan-out)
                time.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 - jitter, not security
        raise TransientError(f"member {member_id!r} kept changing while its sync lease was checked")

    def claim_push_job(self, tenant_id: str, member_id: str, now: datetime) -> Claim:
        """Read the member, decide with `push.claim`, and write what the claim sets (if anything)
        with a precondition on the update time read (a concurrent write makes it read and decide
        again)."""
        ref = self._ref(tenant_id, member_id)
        with translated("claiming a push job"):
            for _ in range(_OPTIMISTIC_ATTEMPTS):
                snapshot = ref.get(**self._bounded)
                if not snapshot.exists:
                    return Claim.NOT_SYNCED
                decision = claim(calendar_from_document((snapshot.to_dict() or {}).get("calendar")), now)
                update = claimed(decision, now)
                if update is None:
                    return decision
                try:
                    option = self._db.write_option(last_update_time=snapshot.update_time)
                    ref.update(calendar_updates(update), option=option, **self._bounded)
                    return decision
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue
        raise TransientError(f"member {member_id!r} kept changing while a push job was claimed")

    def connected_members(self, tenant_id: str | None = None) -> Iterator[tuple[str, str]]:
        """(tenant id, member id) of every connected member, due or not, of one tenant or of
        every tenant (`calsync sync`): one query per tenant, served by automatic single-field
        indexes (no collection-group index needed).
        Raises TransientError."""
        with translated("listing connected members"):
            if tenant_id is None:  # tenants with members, even without a tenant document
                tenants = [ref.id for ref in self._db.collection(TENANTS).list_documents()]
            else:
                tenants = [tenant_id]
            for tenant in tenants:
                query = (
                    self._db.collection(TENANTS)
                    .document(tenant)
                    .collection(MEMBERS)
                    .where(filter=FieldFilter("calendar.status", "==", ConnectionStatus.CONNECTED.value))
                    .select([])
                )
                for document in fast_path.raw_documents(self._db, query):
                    yield tenant, relative_path(document.name).rsplit("/", 1)[1]

    def hold_members(self, members: Sequence[tuple[str, str]], until: datetime) -> int:
        """Set `calendar.nextSyncAt` of these (tenant id, member id) to `until`, each on its own
        (BatchWrite, 500 a request, 8 in flight); a member deleted meanwhile is skipped. Returns
        how many were held. Raises TransientError."""
        writes = [
            fast_path.field_update_write(
                fast_path.name_of(self._db, f"{TENANTS}/{tenant_id}/{MEMBERS}/{member_id}"),
                "calendar.nextSyncAt",
                until,
            )
            for tenant_id, member_id in members
        ]
        batches = list(chunks(writes, MAX_WRITES_PER_COMMIT))
        if not batches:
            return 0
        with (
            translated("holding queued members"),
            concurrent.futures.ThreadPoolExecutor(min(8, len(batches))) as pool,
        ):
            applied = list(pool.map(lambda batch: fast_path.batch_write(self._db, batch), batches))
        return sum(sum(result) for result in applied)

    def due_members(self, now: datetime, page_size: int) -> Iterator[DueMember]:
        """Every connected member whose `nextSyncAt` has come, across all tenants: a
        collection-group query paged with cursors, reading only `nextSyncAt` and the channel's
        renewal time. Members without `nextSyncAt` are never due. Raises TransientError.

        Production needs a collection-group composite index on `members`:
        (calendar.status ASC, calendar.nextSyncAt ASC)."""
        if page_size < 1:
            raise ValueError("page_size must be positive")
        query = (
            self._db.collection_group(MEMBERS)
            .where(filter=FieldFilter("calendar.status", "==", ConnectionStatus.CONNECTED.value))
            .where(filter=FieldFilter("calendar.nextSyncAt", "<=", now))
            .order_by("calendar.nextSyncAt")
            .order_by("__name__")
            .select(["calendar.nextSyncAt", f"calendar.{_RENEW_AT}"])
            .limit(page_size)
        )
        last: Any = None  # the raw protobuf Document the previous page ended with
        while True:
            page_query = query
            if last is not None:
                next_sync_at = last.fields["calendar"].map_value.fields["nextSyncAt"].timestamp_value
                page_query = query.start_after(
                    {
                        "calendar": {"nextSyncAt": DatetimeWithNanoseconds.from_timestamp_pb(next_sync_at)},
                        "__name__": self._db.document(relative_path(last.name)),
                    }
                )
            count = 0
            with translated("listing due members"):
                for document in fast_path.raw_documents(self._db, page_query):
                    count += 1
                    last = document
                    parts = relative_path(document.name).split("/")
                    if len(parts) == 4 and parts[0] == TENANTS:
                        yield DueMember(parts[1], parts[3], _renewal_due(document, now))
            if count < page_size:
                return


def _renewal_due(document: Any, now: datetime) -> bool:
    """Whether the raw document's `calendar.push.renewAt` has come."""
    fields = document.fields["calendar"].map_value.fields
    if "push" not in fields or "renewAt" not in fields["push"].map_value.fields:
        return False
    value = fields["push"].map_value.fields["renewAt"]
    if value.WhichOneof("value_type") != "timestamp_value":
        return False
    return bool(DatetimeWithNanoseconds.from_timestamp_pb(value.timestamp_value) <= now)
