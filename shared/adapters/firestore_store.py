"""Firestore adapters: the only code that talks to Firestore (layout in README, "Data in Firestore").

- `FirestoreDirectoryStore`: tenants, accounts, users, members' addresses; directory writes for
  `calsync import`.
- `FirestoreMemberStore`: members and their `calendar` state (connection, cursor, lease),
  and the cross-tenant query of due members for the fan-out.
- `FirestoreMeetingStore`: stored meetings (`MeetingRecord`) and the interactions derived from
  them, written together in one atomic batch with optimistic-concurrency preconditions.

SDK errors are translated here: precondition failures of a plan -> `WriteConflict`;
unavailability, deadlines, internal errors, aborted transactions, quota -> `TransientError`;
a missing tenant or member -> `NotFound`. Contract fields (SPEC §1, §3) are camelCase.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers as _sdk_helpers
from google.cloud.firestore_v1 import field_path as _sdk_field_path
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.types import common as common_types
from google.cloud.firestore_v1.types import document as document_types
from google.cloud.firestore_v1.types import write as write_types
from google.cloud.firestore_v1.types.firestore import CommitRequest
from google.protobuf.timestamp_pb2 import Timestamp

from shared.domain import directory_keys
from shared.domain import emails as email_rules
from shared.domain.calendar_state import CalendarUpdate
from shared.domain.directory_file import DirectoryFile, settings_from_document
from shared.domain.ids import meeting_id
from shared.domain.models import (
    Account,
    CalendarState,
    ConnectionStatus,
    DirectorySnapshot,
    EventAttendee,
    Interaction,
    InteractionAttendee,
    MatchedBy,
    MeetingRecord,
    Member,
    MemberCopy,
    Participant,
    Plan,
    StoredMeeting,
    Tenant,
    UnmatchedAddress,
    UnmatchedReason,
    User,
)
from shared.errors import NotFound, TransientError, WriteConflict

T = TypeVar("T")

TENANTS = "tenants"
ACCOUNTS = "accounts"
USERS = "users"
MEMBERS = "members"
MEETINGS = "meetings"
INTERACTIONS = "interactions"

IN_QUERY_LIMIT = 30  # Firestore: at most 30 values for `in` / `array-contains-any`
LOOKUP_CONCURRENCY = 8  # directory queries in flight at once (the client is thread-safe)
GET_ALL_CHUNK = 300  # document references per BatchGetDocuments call
WRITE_BATCH_LIMIT = 500  # writes per batch in directory imports (Firestore's batch limit)
MAX_WRITES_PER_COMMIT = 500  # Firestore's documented limit (the emulator does not enforce it)
MAX_COMMIT_BYTES = 8 * 1024 * 1024  # under the 10 MiB request limit, with room for encoding
_BYTES_PER_PERSON = 200  # generous estimate of one attendee entry (email, name, flags) on the wire

_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.Aborted,
    gexc.ResourceExhausted,
    gexc.Unknown,
    gexc.GatewayTimeout,
    gexc.RetryError,
)
_CONFLICT = (gexc.FailedPrecondition, gexc.Conflict, gexc.NotFound)  # Conflict covers AlreadyExists


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# CalendarState field (snake_case) -> `members/{m}.calendar` field (camelCase), derived from the
# dataclass so a field added to CalendarState is stored without touching this module.
CALENDAR_FIELDS: dict[str, str] = {f.name: _camel(f.name) for f in dataclasses.fields(CalendarState)}
_CALENDAR_TYPES: dict[str, Any] = typing.get_type_hints(CalendarState)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn SDK errors of reads and plain writes into our kinds (TransientError)."""
    try:
        yield
    except _TRANSIENT as error:
        raise TransientError(f"Firestore unavailable while {what}: {type(error).__name__}") from error


def _stream_all(queries: Sequence[Any]) -> list[list[Any]]:
    """The snapshots of each query, in order, with up to LOOKUP_CONCURRENCY queries in flight:
    a sync chunk needs dozens of directory queries, each mostly a wait for one round trip."""
    if len(queries) <= 1:
        return [list(query.stream()) for query in queries]
    workers = min(LOOKUP_CONCURRENCY, len(queries))
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="calsync-lookup"
    ) as pool:
        return list(pool.map(lambda query: list(query.stream()), queries))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _required_utc(value: Any) -> datetime:
    return _as_utc(value) or datetime.fromtimestamp(0, UTC)


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _firestore_value(value: Any) -> Any:
    """Plain values the SDK encodes without surprises (StrEnum -> str)."""
    if isinstance(value, ConnectionStatus | MatchedBy | UnmatchedReason):
        return str(value.value)
    return value


# --- members ------------------------------------------------------------------------------------


def _calendar_value(kind: Any, value: Any, default: Any) -> Any:
    if kind is ConnectionStatus:
        try:
            return ConnectionStatus(value) if value is not None else default
        except ValueError:
            return ConnectionStatus.ERROR
    if kind == datetime | None:
        return _as_utc(value)
    if kind == str | None:
        return _opt_str(value)
    if kind is bool:
        return value if isinstance(value, bool) else default
    if kind is int:
        return _int(value, default)
    return value if value is not None else default


def calendar_from_document(raw: Any) -> CalendarState:
    """`members/{m}.calendar` -> CalendarState; absent or malformed fields take their defaults."""
    data = raw if isinstance(raw, Mapping) else {}
    values = {}
    for f in dataclasses.fields(CalendarState):
        values[f.name] = _calendar_value(
            _CALENDAR_TYPES[f.name], data.get(CALENDAR_FIELDS[f.name]), f.default
        )
    return CalendarState(**values)


def calendar_to_document(state: CalendarState) -> dict[str, Any]:
    return {camel: _firestore_value(getattr(state, snake)) for snake, camel in CALENDAR_FIELDS.items()}


def _member_from_snapshot(snapshot: Any) -> Member:
    data = snapshot.to_dict() or {}
    return Member(
        id=snapshot.id,
        email=email_rules.normalize_email(_str(data.get("email"))),
        name=_str(data.get("name")),
        calendar=calendar_from_document(data.get("calendar")),
    )


def _calendar_updates(changes: CalendarUpdate) -> dict[str, Any]:
    return {
        f"calendar.{CALENDAR_FIELDS[k]}": _firestore_value(v) for k, v in changes.changed_fields().items()
    }


def _relative_path(document_name: str) -> str:
    """`projects/p/databases/d/documents/tenants/t/members/m` -> `tenants/t/members/m`."""
    return document_name.split("/documents/", 1)[1]


def _raw_documents(client: firestore.Client, query: Any) -> Iterator[Any]:
    """The raw protobuf `Document`s a query returns, as they stream in.

    `Query.stream()` builds a DocumentSnapshot per result (~100 µs of Python each), which is most
    of the time of a 100,000-member fan-out. This sends the same request through the SDK's own
    request preparation and RPC, and reads the names off the protobufs. It relies on SDK
    internals (`_prep_stream`, `_firestore_api`, `_rpc_metadata`): the emulator tests of
    `due_members` exercise it, so an SDK upgrade that changes them fails loudly."""
    request, _, kwargs = query._prep_stream()
    responses = client._firestore_api.run_query(request=request, metadata=client._rpc_metadata, **kwargs)
    for response in responses:
        raw = response._pb
        if raw.HasField("document"):
            yield raw.document


class FirestoreMemberStore:
    """Implements `MemberStore` (shared.services.ports), plus `list_members` for the CLI."""

    def __init__(self, client: firestore.Client) -> None:
        self._db = client

    def _ref(self, tenant_id: str, member_id: str) -> Any:
        return self._db.collection(TENANTS).document(tenant_id).collection(MEMBERS).document(member_id)

    def get_member(self, tenant_id: str, member_id: str) -> Member:
        """Raises NotFound for an unknown tenant or member; TransientError."""
        with _translated("reading a member"):
            snapshot = self._ref(tenant_id, member_id).get()
        if not snapshot.exists:
            raise NotFound(f"unknown member {member_id!r} of tenant {tenant_id!r}")
        return _member_from_snapshot(snapshot)

    def list_members(self, tenant_id: str) -> list[Member]:
        """Every member of the tenant, ordered by id. Raises TransientError."""
        members = self._db.collection(TENANTS).document(tenant_id).collection(MEMBERS)
        with _translated("listing members"):
            return [_member_from_snapshot(s) for s in members.stream()]

    def acquire_lease(
        self, tenant_id: str, member_id: str, owner: str, now: datetime, ttl_s: float
    ) -> Member | None:
        """Take the member's sync lease in a transaction, if free, expired or already `owner`'s.
        Returns the member as read inside the transaction (with the new lease), or None when
        another live owner holds it. Raises NotFound, TransientError (contention included)."""
        ref = self._ref(tenant_id, member_id)
        expires = now + timedelta(seconds=ttl_s)

        @firestore.transactional
        def take(transaction: Any) -> Member | None:
            snapshot = ref.get(transaction=transaction)
            if not snapshot.exists:
                raise NotFound(f"unknown member {member_id!r} of tenant {tenant_id!r}")
            member = _member_from_snapshot(snapshot)
            state = member.calendar
            held_by_other = (
                state.lease_owner is not None
                and state.lease_owner != owner
                and state.lease_expires_at is not None
                and state.lease_expires_at > now
            )
            if held_by_other:
                return None
            transaction.update(ref, {"calendar.leaseOwner": owner, "calendar.leaseExpiresAt": expires})
            calendar = dataclasses.replace(state, lease_owner=owner, lease_expires_at=expires)
            return dataclasses.replace(member, calendar=calendar)

        try:
            with _translated("taking a sync lease"):
                result: Member | None = take(self._db.transaction())
        except ValueError as error:  # the SDK's "failed to commit after N attempts"
            raise TransientError(f"lease contention on member {member_id!r}") from error
        return result

    def update_calendar(
        self,
        tenant_id: str,
        member_id: str,
        changes: CalendarUpdate,
        *,
        lease_owner: str | None = None,
    ) -> None:
        """Set the fields of `members/{id}.calendar` that `changes` sets.
        With `lease_owner`, only while that owner still holds the lease: the write carries a
        precondition on the document's update time as read, so a lease taken over (or any
        concurrent change) in between raises TransientError. Raises NotFound, TransientError."""
        updates = _calendar_updates(changes)
        if not updates:
            return
        ref = self._ref(tenant_id, member_id)
        with _translated("updating a member's calendar state"):
            try:
                if lease_owner is None:
                    ref.update(updates)
                    return
                snapshot = ref.get(field_paths=["calendar.leaseOwner"])
                if not snapshot.exists:
                    raise NotFound(f"unknown member {member_id!r} of tenant {tenant_id!r}")
                holder = snapshot.get("calendar.leaseOwner") if snapshot.to_dict() else None
                if holder != lease_owner:
                    raise TransientError(f"sync lease of member {member_id!r} is no longer held")
                option = self._db.write_option(last_update_time=snapshot.update_time)
                ref.update(updates, option=option)
            except gexc.NotFound as error:
                raise NotFound(f"unknown member {member_id!r} of tenant {tenant_id!r}") from error
            except gexc.FailedPrecondition as error:
                raise TransientError(
                    f"member {member_id!r} changed while its sync lease was checked"
                ) from error
            except KeyError:  # no calendar.leaseOwner field at all
                raise TransientError(f"sync lease of member {member_id!r} is no longer held") from None

    def connected_members(self, tenant_id: str | None = None) -> Iterator[tuple[str, str]]:
        """(tenant id, member id) of every connected member, due or not, of one tenant or of
        every tenant (`calsync sync`): one query per tenant, served by automatic single-field
        indexes (no collection-group index needed).
        Raises TransientError."""
        with _translated("listing connected members"):
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
                for document in _raw_documents(self._db, query):
                    yield tenant, _relative_path(document.name).rsplit("/", 1)[1]

    def due_members(self, now: datetime, page_size: int) -> Iterator[tuple[str, str]]:
        """(tenant id, member id) of every connected member whose `nextSyncAt` has come, across
        all tenants: a collection-group query paged with cursors, reading only `nextSyncAt`.
        Members without `nextSyncAt` are never due. Raises TransientError.

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
            .select(["calendar.nextSyncAt"])
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
                        "__name__": self._db.document(_relative_path(last.name)),
                    }
                )
            count = 0
            with _translated("listing due members"):
                for document in _raw_documents(self._db, page_query):
                    count += 1
                    last = document
                    parts = _relative_path(document.name).split("/")
                    if len(parts) == 4 and parts[0] == TENANTS:
                        yield parts[1], parts[3]
            if count < page_size:
                return


# --- directory ----------------------------------------------------------------------------------


def _account_from_snapshot(snapshot: Any) -> Account:
    data = snapshot.to_dict() or {}
    keys = data.get("domainKeys")
    if not isinstance(keys, list):  # written by someone else than `calsync import`
        raw = data.get("domains")
        keys = (
            [email_rules.normalize_domain(d) for d in raw if isinstance(d, str)]
            if isinstance(raw, list)
            else []
        )
    return Account(id=snapshot.id, name=_str(data.get("name")), domains=tuple(_unique(keys)))


def _user_from_snapshot(snapshot: Any) -> User:
    data = snapshot.to_dict() or {}
    key = data.get("emailKey")
    email = key if isinstance(key, str) else email_rules.normalize_email(_str(data.get("email")))
    return User(
        id=snapshot.id, email=email, name=_str(data.get("name")), account_id=_str(data.get("accountId"))
    )


def tenant_from_document(tenant_id: str, data: Mapping[str, Any]) -> Tenant:
    raw_domains = data.get("internalDomains")
    domains = (
        _unique(email_rules.normalize_domain(d) for d in raw_domains if isinstance(d, str))
        if isinstance(raw_domains, list)
        else []
    )
    return Tenant(
        id=tenant_id,
        name=_str(data.get("name")),
        internal_domains=tuple(domains),
        settings=settings_from_document(data.get("settings")),
    )


class FirestoreDirectoryStore:
    """Implements `DirectoryStore` (shared.services.ports), plus the reads and writes of
    `calsync import`."""

    def __init__(self, client: firestore.Client) -> None:
        self._db = client

    def _tenant(self, tenant_id: str) -> Any:
        return self._db.collection(TENANTS).document(tenant_id)

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Settings parsed with the defaults of SPEC §1 (a malformed value counts as absent).
        Raises NotFound for an unknown tenant, TransientError."""
        with _translated("reading a tenant"):
            snapshot = self._tenant(tenant_id).get()
        if not snapshot.exists:
            raise NotFound(f"unknown tenant {tenant_id!r}")
        return tenant_from_document(tenant_id, snapshot.to_dict() or {})

    def member_emails(self, tenant_id: str) -> frozenset[str]:
        """Every member's normalised address. Raises TransientError."""
        members = self._tenant(tenant_id).collection(MEMBERS).select(["email"])
        with _translated("reading member addresses"):
            found = (s.to_dict().get("email") for s in members.stream())
            return frozenset(email_rules.normalize_email(e) for e in found if isinstance(e, str) and e)

    def lookup(self, tenant_id: str, emails: Iterable[str], domains: Iterable[str]) -> DirectorySnapshot:
        """Users whose `emailKey` is one of `emails` (`in`, 30 per query) and accounts whose
        `domainKeys` hold one of `domains` (`array-contains-any`, 30 per query). Every key looked
        up is in the snapshot, with an empty tuple when nothing matched. Raises TransientError."""
        email_keys = _unique(emails)
        domain_keys = _unique(domains)
        tenant = self._tenant(tenant_id)
        users: dict[str, list[User]] = {e: [] for e in email_keys}
        accounts: dict[str, list[Account]] = {d: [] for d in domain_keys}
        user_queries = [
            tenant.collection(USERS).where(filter=FieldFilter("emailKey", "in", list(chunk)))
            for chunk in _chunks(email_keys, IN_QUERY_LIMIT)
        ]
        account_queries = [
            tenant.collection(ACCOUNTS).where(
                filter=FieldFilter("domainKeys", "array_contains_any", list(chunk))
            )
            for chunk in _chunks(domain_keys, IN_QUERY_LIMIT)
        ]
        with _translated("looking up the directory"):
            results = _stream_all([*user_queries, *account_queries])
        for snapshots in results[: len(user_queries)]:
            for snapshot in snapshots:
                user = _user_from_snapshot(snapshot)
                if user.email in users:
                    users[user.email].append(user)
        wanted = set(domain_keys)
        for snapshots in results[len(user_queries) :]:
            for snapshot in snapshots:
                account = _account_from_snapshot(snapshot)
                for domain in account.domains:
                    if domain in wanted and all(a.id != account.id for a in accounts[domain]):
                        accounts[domain].append(account)
        return DirectorySnapshot(
            users_by_email={e: tuple(sorted(u, key=lambda x: x.id)) for e, u in users.items()},
            accounts_by_domain={d: tuple(sorted(a, key=lambda x: x.id)) for d, a in accounts.items()},
        )

    def refresh_derived_keys(
        self, tenant_id: str, collection: directory_keys.Collection, document_id: str
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Bring a user's `emailKey` or an account's `domainKeys` in line with its `email` /
        `domains` as the document is NOW (the CS platform may write documents without them),
        writing only when they differ, with a precondition on the update time read (re-read
        when someone wrote in between). Returns the (emails, domains) the document is found by
        afterwards (empty when it does not exist). Raises TransientError."""
        ref = self._tenant(tenant_id).collection(collection).document(document_id)
        for _ in range(5):
            with _translated("reading a directory document"):
                snapshot = ref.get()
            if not snapshot.exists:
                return frozenset(), frozenset()
            data = snapshot.to_dict() or {}
            updates = directory_keys.needs_derived_update(collection, data)
            if updates:
                option = self._db.write_option(last_update_time=snapshot.update_time)
                try:
                    with _translated("fixing a directory document's keys"):
                        ref.update(
                            {k: firestore.DELETE_FIELD if v is None else v for k, v in updates.items()},
                            option=option,
                        )
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue  # written or deleted meanwhile: look again
                data = {**data, **updates}
            return directory_keys.document_keys(collection, data)
        raise TransientError(f"{collection}/{document_id} of tenant {tenant_id!r} kept changing")

    def directory_documents(
        self, tenant_id: str, collection: directory_keys.Collection, document_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """The stored fields of these users or accounts (batched gets); missing ones are left
        out. Raises TransientError."""
        parent = self._tenant(tenant_id).collection(collection)
        refs = [parent.document(i) for i in _unique(document_ids)]
        found: dict[str, dict[str, Any]] = {}
        with _translated("reading directory documents"):
            for chunk in _chunks(refs, GET_ALL_CHUNK):
                for snapshot in self._db.get_all(list(chunk)):
                    if snapshot.exists:
                        found[snapshot.id] = snapshot.to_dict() or {}
        return found

    def existing_account_ids(self, tenant_id: str, account_ids: Iterable[str]) -> frozenset[str]:
        """Which of these account ids exist in the tenant (batched gets). Raises TransientError."""
        accounts = self._tenant(tenant_id).collection(ACCOUNTS)
        refs = [accounts.document(a) for a in _unique(account_ids)]
        found: set[str] = set()
        with _translated("reading accounts"):
            for chunk in _chunks(refs, GET_ALL_CHUNK):
                found.update(s.id for s in self._db.get_all(list(chunk), field_paths=["name"]) if s.exists)
        return frozenset(found)

    def write_directory(self, directory: DirectoryFile) -> dict[str, int]:
        """Upsert a validated directory: the tenant document (name, internalDomains, settings
        replaced as a whole), accounts (+ `domainKeys`), users (+ `emailKey`) and members
        (email and name only: an existing member's `calendar` is never touched; a new member
        gets `calendar.status = not_connected`). Documents not in the file are left alone, and
        fields of ours only are merged, so fields others added to these documents stay.
        Written in batches of at most 500 (validated beforehand, so all rows are good).
        Returns counts. Raises TransientError."""
        tenant_ref = self._tenant(directory.tenant.id)
        members = tenant_ref.collection(MEMBERS)
        member_refs = [members.document(m.id) for m in directory.members]
        existing: set[str] = set()
        with _translated("reading members"):
            for chunk in _chunks(member_refs, GET_ALL_CHUNK):
                existing.update(
                    s.id for s in self._db.get_all(list(chunk), field_paths=["email"]) if s.exists
                )

        writes: list[tuple[Any, dict[str, Any]]] = [
            (
                tenant_ref,
                {
                    "name": directory.tenant.name,
                    "internalDomains": list(directory.tenant.internal_domains),
                    "settings": dict(directory.settings_document),
                },
            )
        ]
        for account in directory.accounts:
            writes.append(
                (
                    tenant_ref.collection(ACCOUNTS).document(account.id),
                    {
                        "name": account.name,
                        "domains": list(account.raw_domains),
                        "domainKeys": list(account.domains),
                    },
                )
            )
        for user in directory.users:
            writes.append(
                (
                    tenant_ref.collection(USERS).document(user.id),
                    {
                        "email": user.email,
                        "name": user.name,
                        "accountId": user.account_id,
                        "emailKey": user.email,
                    },
                )
            )
        new_members = 0
        for member in directory.members:
            data: dict[str, Any] = {"email": member.email, "name": member.name}
            if member.id not in existing:
                data["calendar"] = {"status": ConnectionStatus.NOT_CONNECTED.value, "consecutiveFailures": 0}
                new_members += 1
            writes.append((members.document(member.id), data))

        with _translated("writing the directory"):
            for chunk in _chunks(writes, WRITE_BATCH_LIMIT):
                batch = self._db.batch()
                for ref, data in chunk:
                    batch.set(ref, data, merge=list(data))
                batch.commit()
        return {
            "accounts": len(directory.accounts),
            "users": len(directory.users),
            "members": len(directory.members),
            "newMembers": new_members,
        }


# --- raw protobuf encoding of the documents a sync writes ----------------------------------------

_VALUE = document_types.Value.pb()
_MAP_VALUE = document_types.MapValue.pb()
_ARRAY_VALUE = document_types.ArrayValue.pb()
_DOCUMENT = document_types.Document.pb()
_WRITE = write_types.Write.pb()
_PRECONDITION = common_types.Precondition.pb()
_DOCUMENT_MASK = common_types.DocumentMask.pb()
_COMMIT_REQUEST = CommitRequest.pb()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _timestamp_pb(value: datetime) -> Timestamp:
    """As the SDK encodes it: nanoseconds kept from a DatetimeWithNanoseconds, a naive value
    taken as UTC, otherwise microseconds since the epoch."""
    if isinstance(value, DatetimeWithNanoseconds):
        return value.timestamp_pb()
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    micros = (aware - _EPOCH) // _ONE_MICROSECOND
    seconds, rest = divmod(micros, 1_000_000)
    return Timestamp(seconds=seconds, nanos=rest * 1000)


def _value_pb(value: Any) -> Any:
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
        return _VALUE(map_value=_MAP_VALUE(fields=_fields_pb(value)))
    if isinstance(value, list | tuple):
        return _VALUE(array_value=_ARRAY_VALUE(values=[_value_pb(v) for v in value]))
    return _sdk_helpers.encode_value(value)._pb  # bytes, GeoPoint, ...: the SDK's own encoding


def _fields_pb(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _value_pb(value) for key, value in data.items()}


def _field_path(name: str) -> str:
    """A top-level field name as an update-mask path (back-quoted unless a simple name)."""
    return str(_sdk_field_path.render_field_path([name]))


def _updated_at(version: object) -> Any:
    """The precondition "unchanged since read": the document's update time as read, to the
    microsecond (as `client.write_option(last_update_time=...)` sends it)."""
    if not isinstance(version, datetime):
        raise TypeError(f"a meeting version is the update time read, not {type(version).__name__}")
    aware = version if version.tzinfo is not None else version.replace(tzinfo=UTC)
    micros = (aware - _EPOCH) // _ONE_MICROSECOND
    seconds, rest = divmod(micros, 1_000_000)
    return _PRECONDITION(update_time=Timestamp(seconds=seconds, nanos=rest * 1000))


# --- meetings and interactions ------------------------------------------------------------------


def _copy_to_document(copy: MemberCopy) -> dict[str, Any]:
    return {
        "eventId": copy.event_id,
        "updated": copy.updated,
        "title": copy.title,
        "start": copy.start,
        "end": copy.end,
        "timeZone": copy.time_zone,
        "organizerEmail": copy.organizer_email,
        "generation": copy.generation,
        "attendees": [
            {
                "email": a.email,
                "name": a.display_name,
                "responseStatus": a.response_status,
                "organizer": a.is_organizer,
                "self": a.is_self,
            }
            for a in copy.attendees
        ],
    }


def _copy_from_document(member_id: str, meeting_key: str, data: Mapping[str, Any]) -> MemberCopy:
    attendees = data.get("attendees")
    return MemberCopy(
        member_id=member_id,
        event_id=_str(data.get("eventId")),
        meeting_key=meeting_key,
        updated=_required_utc(data.get("updated")),
        title=_str(data.get("title")),
        start=_required_utc(data.get("start")),
        end=_required_utc(data.get("end")),
        time_zone=_str(data.get("timeZone"), "UTC"),
        organizer_email=_str(data.get("organizerEmail")),
        generation=_int(data.get("generation")),
        attendees=tuple(
            EventAttendee(
                email=_str(a.get("email")),
                display_name=_str(a.get("name")),
                response_status=_str(a.get("responseStatus"), "needsAction"),
                is_organizer=bool(a.get("organizer", False)),
                is_self=bool(a.get("self", False)),
            )
            for a in (attendees if isinstance(attendees, list) else [])
            if isinstance(a, Mapping)
        ),
    )


def _default_address_index(record: MeetingRecord) -> tuple[list[str], list[str]]:
    """Every attendee email of every copy, and every domain level of their domains (the
    re-matching index): which meetings a directory change may concern."""
    addresses = sorted({a.email for c in record.copies.values() for a in c.attendees if a.email})
    levels: set[str] = set()
    for domain in {email_rules.email_domain(e) for e in addresses}:
        if domain:
            levels.update(email_rules.candidate_domains(domain))
    return addresses, sorted(levels)


def meeting_to_document(record: MeetingRecord) -> dict[str, Any]:
    """The `meetings/{id}` document: the record, plus index fields for queries."""
    copies = record.copies
    emails, domains = _default_address_index(record)
    starts = [c.start for c in copies.values()]
    return {
        "meetingKey": record.meeting_key,
        "copies": {member_id: _copy_to_document(c) for member_id, c in copies.items()},
        "interactions": {
            account_id: {"hash": digest, "createdAt": record.interaction_created_at.get(account_id)}
            for account_id, digest in record.interaction_hashes.items()
        },
        "unmatched": [{"email": u.email, "reason": str(u.reason.value)} for u in record.unmatched],
        "eventRefs": sorted(f"{member_id}/{c.event_id}" for member_id, c in copies.items()),
        "holders": sorted(copies),
        "emails": emails,
        "domains": domains,
        "start": min(starts) if starts else None,
    }


def meeting_from_document(meeting_key: str, data: Mapping[str, Any]) -> MeetingRecord:
    key = _str(data.get("meetingKey"), meeting_key)
    raw_copies = data.get("copies")
    copies = {
        member_id: _copy_from_document(member_id, key, copy)
        for member_id, copy in (raw_copies.items() if isinstance(raw_copies, Mapping) else [])
        if isinstance(copy, Mapping)
    }
    raw_interactions = data.get("interactions")
    interactions = raw_interactions if isinstance(raw_interactions, Mapping) else {}
    hashes = {a: _str(v.get("hash")) for a, v in interactions.items() if isinstance(v, Mapping)}
    created = {
        a: created_at
        for a, v in interactions.items()
        if isinstance(v, Mapping) and (created_at := _as_utc(v.get("createdAt"))) is not None
    }
    unmatched: list[UnmatchedAddress] = []
    raw_unmatched = data.get("unmatched")
    for item in raw_unmatched if isinstance(raw_unmatched, list) else []:
        if isinstance(item, Mapping):
            try:
                reason = UnmatchedReason(_str(item.get("reason")))
            except ValueError:
                reason = UnmatchedReason.NO_MATCH
            unmatched.append(UnmatchedAddress(email=_str(item.get("email")), reason=reason))
    return MeetingRecord(
        meeting_key=key,
        copies=copies,
        interaction_hashes=hashes,
        interaction_created_at=created,
        unmatched=tuple(unmatched),
    )


def interaction_to_document(interaction: Interaction) -> dict[str, Any]:
    """The interaction document of SPEC §3 (camelCase; times as timestamps; no `id`)."""
    return interaction.contract_fields()


def interaction_from_document(interaction_id: str, data: Mapping[str, Any]) -> Interaction:
    def items(name: str) -> list[Mapping[str, Any]]:
        raw = data.get(name)
        return [i for i in raw if isinstance(i, Mapping)] if isinstance(raw, list) else []

    attendees = []
    for a in items("attendees"):
        try:
            matched_by = MatchedBy(_str(a.get("matchedBy")))
        except ValueError:
            matched_by = MatchedBy.DOMAIN
        attendees.append(
            InteractionAttendee(
                email=_str(a.get("email")),
                name=_str(a.get("name")),
                user_id=_opt_str(a.get("userId")),
                matched_by=matched_by,
                minutes_in_meeting=_int(a.get("minutesInMeeting")),
            )
        )
    member_ids = data.get("memberIds")
    return Interaction(
        id=interaction_id,
        account_id=_str(data.get("accountId")),
        meeting_key=_str(data.get("meetingKey")),
        title=_str(data.get("title")),
        date=_str(data.get("date")),
        start_time=_required_utc(data.get("startTime")),
        end_time=_required_utc(data.get("endTime")),
        time_zone=_str(data.get("timeZone"), "UTC"),
        duration_minutes=_int(data.get("durationMinutes")),
        participants=tuple(
            Participant(
                email=_str(p.get("email")),
                name=_str(p.get("name")),
                response_status=_str(p.get("responseStatus"), "needsAction"),
                internal=bool(p.get("internal", False)),
                organizer=bool(p.get("organizer", False)),
            )
            for p in items("participants")
        ),
        attendees=tuple(attendees),
        member_ids=tuple(m for m in member_ids if isinstance(m, str)) if isinstance(member_ids, list) else (),
        organizer_email=_str(data.get("organizerEmail")),
        created_at=_required_utc(data.get("createdAt")),
        updated_at=_required_utc(data.get("updatedAt")),
        type=_str(data.get("type"), "Google calendar"),
    )


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def interaction_to_json(interaction: Interaction) -> dict[str, Any]:
    """The §3 document plus its `id`, times as RFC 3339 UTC strings (`calsync interactions --json`)."""
    document = interaction_to_document(interaction)
    for name in ("startTime", "endTime", "createdAt", "updatedAt"):
        document[name] = _rfc3339(document[name])
    return {"id": interaction.id, **document}


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
        keys = _unique(meeting_keys)
        meetings = self._meetings(tenant_id)
        key_by_id = {meeting_id(k): k for k in keys}
        result = {k: StoredMeeting(MeetingRecord(meeting_key=k, copies={}), None) for k in keys}
        with _translated("reading meetings"):
            for chunk in _chunks(list(key_by_id), GET_ALL_CHUNK):
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
        refs = {f"{member_id}/{e}": e for e in _unique(event_ids)}
        found: dict[str, str] = {}
        with _translated("mapping event ids to meetings"):
            for chunk in _chunks(list(refs), IN_QUERY_LIMIT):
                query = (
                    self._meetings(tenant_id)
                    .where(filter=FieldFilter("eventRefs", "array_contains_any", list(chunk)))
                    .select(["meetingKey", "eventRefs"])
                )
                for snapshot in query.stream():
                    data = snapshot.to_dict() or {}
                    for ref in data.get("eventRefs") or []:
                        if ref in refs:
                            found[refs[ref]] = _str(data.get("meetingKey"))
        return found

    def meeting_keys_held_by(self, tenant_id: str, member_id: str) -> list[str]:
        """Keys of every stored meeting holding a copy of this member (`holders array-contains`).
        Raises TransientError."""
        query = (
            self._meetings(tenant_id)
            .where(filter=FieldFilter("holders", "array_contains", member_id))
            .select(["meetingKey"])
        )
        with _translated("listing a member's meetings"):
            return sorted(_str((s.to_dict() or {}).get("meetingKey")) for s in query.stream())

    def meeting_keys_for_addresses(
        self, tenant_id: str, emails: Iterable[str], domains: Iterable[str]
    ) -> list[str]:
        """Keys of the stored meetings that contain any of these attendee emails or domain levels
        (the index fields `emails`/`domains`, `array-contains-any`, 30 values per query; one
        read per meeting found), sorted. Raises TransientError."""
        found: set[str] = set()
        with _translated("finding the meetings a directory change concerns"):
            for field_name, values in (("emails", _unique(emails)), ("domains", _unique(domains))):
                for chunk in _chunks(values, IN_QUERY_LIMIT):
                    query = (
                        self._meetings(tenant_id)
                        .where(filter=FieldFilter(field_name, "array_contains_any", list(chunk)))
                        .select(["meetingKey"])
                    )
                    for document in _raw_documents(self._db, query):
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
                page_query = query.start_after({"__name__": self._db.document(_relative_path(last.name))})
            with _translated("listing meetings"):
                documents = list(_raw_documents(self._db, page_query))
            if documents:
                yield [_meeting_key_of(d) for d in documents]
                last = documents[-1]
            if len(documents) < page_size:
                return

    @staticmethod
    def fits_in_one_commit(plan: Plan) -> bool:
        """Whether a plan stays within Firestore's limits for one atomic commit (writes, and bytes
        estimated from the attendees it carries)."""
        writes = len(plan.meeting_writes) + len(plan.interaction_upserts) + len(plan.interaction_deletes)
        if writes > MAX_WRITES_PER_COMMIT:
            return False
        people = sum(len(i.participants) + len(i.attendees) for i in plan.interaction_upserts)
        for write in plan.meeting_writes:
            if write.record is not None:
                people += sum(len(c.attendees) for c in write.record.copies.values())
        return people * _BYTES_PER_PERSON <= MAX_COMMIT_BYTES

    def apply(self, tenant_id: str, plan: Plan) -> None:
        """Write a plan in ONE atomic batch: meeting creates (fail if the meeting exists),
        updates and deletes (only if still at the version read), interaction upserts (whole
        documents) and deletes (missing is fine). Callers keep plans to a few hundred meetings.
        Raises WriteConflict when a meeting changed since it was read (nothing is written),
        TransientError."""
        if plan.is_empty:
            return
        writes = self.plan_writes(tenant_id, plan)
        request = CommitRequest.wrap(_COMMIT_REQUEST(database=self._db._database_string, writes=writes))
        try:
            with _translated("applying a plan"):
                self._db._firestore_api.commit(request=request, metadata=self._db._rpc_metadata)
        except _CONFLICT as error:
            raise WriteConflict(
                f"a meeting of tenant {tenant_id!r} changed since it was read ({type(error).__name__})"
            ) from error

    def plan_writes(self, tenant_id: str, plan: Plan) -> list[Any]:
        """The raw protobuf `Write`s of a plan, as `WriteBatch` would build them (create:
        must not exist; update: the top-level fields, at the version read; set: the whole
        document; delete: at the version read, or unconditionally), encoded by `_value_pb`.

        `WriteBatch.create/set/update` spend ~1.5 ms of Python per meeting-sized document in
        proto-plus wrappers, most of a full sync's CPU time; this builds the same messages on the
        raw protobuf classes and commits them through the SDK's own RPC (`_firestore_api`,
        `_database_string`, `_rpc_metadata` are SDK internals: the emulator tests of the
        meeting store exercise them, so an SDK upgrade that changes them fails loudly)."""
        meetings = self._meetings(tenant_id)
        interactions = self._interactions(tenant_id)
        writes: list[Any] = []
        for write in plan.meeting_writes:
            name = meetings.document(meeting_id(write.meeting_key))._document_path
            if write.record is None:
                if write.expected is not None:
                    writes.append(_WRITE(delete=name, current_document=_updated_at(write.expected)))
            elif write.expected is None:
                document = _DOCUMENT(name=name, fields=_fields_pb(meeting_to_document(write.record)))
                writes.append(_WRITE(update=document, current_document=_PRECONDITION(exists=False)))
            else:
                data = meeting_to_document(write.record)
                writes.append(
                    _WRITE(
                        update=_DOCUMENT(name=name, fields=_fields_pb(data)),
                        update_mask=_DOCUMENT_MASK(field_paths=sorted(_field_path(k) for k in data)),
                        current_document=_updated_at(write.expected),
                    )
                )
        for interaction in plan.interaction_upserts:
            name = interactions.document(interaction.id)._document_path
            document = _DOCUMENT(name=name, fields=_fields_pb(interaction_to_document(interaction)))
            writes.append(_WRITE(update=document))
        for interaction_id in plan.interaction_deletes:
            writes.append(_WRITE(delete=interactions.document(interaction_id)._document_path))
        return writes

    def list_unmatched(self, tenant_id: str) -> list[tuple[UnmatchedAddress, ...]]:
        """Per stored meeting that has any, its unmatched and ambiguous addresses (ordered by
        meeting key): what a directory change could still match. Raises TransientError."""
        query = self._meetings(tenant_id).select(["meetingKey", "unmatched"])
        with _translated("listing unmatched addresses"):
            found = [meeting_from_document("", s.to_dict() or {}) for s in query.stream()]
        return [m.unmatched for m in sorted(found, key=lambda m: m.meeting_key) if m.unmatched]

    def list_interactions(self, tenant_id: str, account_id: str | None = None) -> list[Interaction]:
        """The tenant's interactions (optionally of one account), ordered by start time then id.
        Raises TransientError."""
        query = self._interactions(tenant_id)
        if account_id is not None:
            query = query.where(filter=FieldFilter("accountId", "==", account_id))
        with _translated("listing interactions"):
            found = [interaction_from_document(s.id, s.to_dict() or {}) for s in query.stream()]
        return sorted(found, key=lambda i: (i.start_time, i.id))
