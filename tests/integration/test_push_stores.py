"""The store operations push notifications rely on (README.md#push-notifications), against the
Firestore emulator with the production client: claims, the lease's push handshake, leased saves
under contention, due members' renewal flag, the channel lookup, the push fields' codec."""

from __future__ import annotations

import concurrent.futures
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.document import DocumentReference

from shared.adapters.firestore import FirestoreChannelStore, FirestoreMemberStore
from shared.domain.calendar_state import (
    CalendarUpdate,
    connected,
    disconnected,
    listing_completed,
    page_saved,
    reauth_needed,
)
from shared.domain.models import CalendarState, ConnectionStatus, PushStatus
from shared.domain.push import PENDING_JOB_TTL, ChannelRecord, Claim
from shared.errors import NotFound, TransientError
from shared.services.ports import DueMember
from shared.services.sync_run import LeasedCalendar

TENANT = "acme-cs"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TTL_S = 540.0
# Between two writes of the interfering thread. Without a pause (one thread writing the member
# back to back, far beyond any real rate) a leased save ran out of its 8 immediate re-reads in
# about one run in eight (TransientError "kept changing while its sync lease was checked").
HAMMER_PAUSE_S = 0.005


@pytest.fixture
def members(firestore_client: firestore.Client) -> FirestoreMemberStore:
    return FirestoreMemberStore(firestore_client)


@pytest.fixture
def channels(firestore_client: firestore.Client) -> FirestoreChannelStore:
    return FirestoreChannelStore(firestore_client)


def _doc(db: firestore.Client, member_id: str, tenant: str = TENANT) -> Any:
    return db.collection("tenants").document(tenant).collection("members").document(member_id)


def add_member(
    db: firestore.Client,
    store: FirestoreMemberStore,
    member_id: str,
    *,
    tenant: str = TENANT,
    connect: bool = True,
) -> None:
    _doc(db, member_id, tenant).set({"email": f"{member_id}@acme-cs.example", "name": member_id})
    if connect:
        store.update_calendar(
            tenant, member_id, connected(CalendarState(), f"{member_id}@acme-cs.example", now=NOW)
        )


def raw_calendar(db: firestore.Client, member_id: str) -> dict[str, Any]:
    return dict((_doc(db, member_id).get().to_dict() or {}).get("calendar", {}))


# --- claim_push_job ------------------------------------------------------------------------


def test_claim_queues_once_then_joins_the_pending_job(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    assert members.claim_push_job(TENANT, "m-anna", NOW) is Claim.QUEUE
    state = members.get_member(TENANT, "m-anna").calendar
    assert state.push_queued_at == NOW
    assert state.push_last_notification_at == NOW
    assert members.claim_push_job(TENANT, "m-anna", NOW + timedelta(seconds=1)) is Claim.PENDING
    # joining writes nothing: the claim keeps its time
    assert members.get_member(TENANT, "m-anna").calendar.push_queued_at == NOW


def test_a_pending_claim_lapses_after_the_ttl(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    assert members.claim_push_job(TENANT, "m-anna", NOW) is Claim.QUEUE
    assert (
        members.claim_push_job(TENANT, "m-anna", NOW + PENDING_JOB_TTL - timedelta(seconds=1))
        is Claim.PENDING
    )
    later = NOW + PENDING_JOB_TTL
    assert members.claim_push_job(TENANT, "m-anna", later) is Claim.QUEUE
    assert members.get_member(TENANT, "m-anna").calendar.push_queued_at == later
    assert members.claim_push_job(TENANT, "m-anna", later + timedelta(seconds=1)) is Claim.PENDING


@pytest.mark.parametrize("ending", ["disconnected", "needs_reauth", "never_connected"])
def test_claim_for_a_member_not_connected_is_not_synced_and_writes_nothing(
    firestore_client: firestore.Client, members: FirestoreMemberStore, ending: str
) -> None:
    add_member(firestore_client, members, "m-ben", connect=ending != "never_connected")
    if ending == "disconnected":
        members.update_calendar(TENANT, "m-ben", disconnected())
    elif ending == "needs_reauth":
        members.update_calendar(TENANT, "m-ben", reauth_needed(CalendarState(), "invalid_grant", now=NOW))
    before = _doc(firestore_client, "m-ben").get()
    assert members.claim_push_job(TENANT, "m-ben", NOW) is Claim.NOT_SYNCED
    after = _doc(firestore_client, "m-ben").get()
    assert after.update_time == before.update_time
    assert after.to_dict() == before.to_dict()


def test_claim_for_an_unknown_member_or_tenant_is_not_synced_and_creates_nothing(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    assert members.claim_push_job(TENANT, "m-nobody", NOW) is Claim.NOT_SYNCED
    assert members.claim_push_job("no-such-tenant", "m-anna", NOW) is Claim.NOT_SYNCED
    assert not _doc(firestore_client, "m-nobody").get().exists
    assert not _doc(firestore_client, "m-anna", "no-such-tenant").get().exists


def test_sixteen_concurrent_claims_queue_exactly_one(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    start = threading.Barrier(16)

    def claim_one(i: int) -> Claim:
        start.wait()
        return members.claim_push_job(TENANT, "m-anna", NOW + timedelta(milliseconds=i))

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        claims = list(pool.map(claim_one, range(16)))
    assert claims.count(Claim.QUEUE) == 1
    assert claims.count(Claim.PENDING) == 15
    winner = claims.index(Claim.QUEUE)
    assert members.get_member(TENANT, "m-anna").calendar.push_queued_at == NOW + timedelta(
        milliseconds=winner
    )


# --- acquire_lease and the push job ---------------------------------------------------------


def test_a_push_job_keeps_its_claim_while_it_runs_and_a_notification_asks_it_for_one_more_round(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    members.claim_push_job(TENANT, "m-anna", NOW)
    taken = members.acquire_lease(TENANT, "m-anna", "push-worker", NOW, TTL_S, push_job=True)
    assert taken is not None
    assert taken.calendar.lease_owner == "push-worker"
    assert taken.calendar.push_queued_at == NOW  # claimed until its sync ends
    stored = members.get_member(TENANT, "m-anna").calendar
    assert stored.push_queued_at == NOW
    assert stored.lease_owner == "push-worker"
    assert stored.push_resync_requested is False
    # a notification now (the running sync may have listed before the change): one more round
    assert members.claim_push_job(TENANT, "m-anna", NOW + timedelta(seconds=1)) is Claim.RESYNC
    assert members.get_member(TENANT, "m-anna").calendar.push_resync_requested is True
    assert members.claim_push_job(TENANT, "m-anna", NOW + timedelta(seconds=2)) is Claim.PENDING


def test_a_push_job_finding_the_lease_held_asks_for_a_resync(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    assert members.acquire_lease(TENANT, "m-anna", "sync-worker", NOW, TTL_S) is not None
    members.claim_push_job(TENANT, "m-anna", NOW)
    busy = members.acquire_lease(
        TENANT, "m-anna", "push-worker", NOW + timedelta(seconds=5), TTL_S, push_job=True
    )
    assert busy is None
    stored = members.get_member(TENANT, "m-anna").calendar
    assert stored.push_resync_requested is True
    assert stored.lease_owner == "sync-worker"  # untouched
    assert stored.push_queued_at is None  # this job ends here: the running sync takes over


def test_a_non_push_job_neither_clears_the_claim_nor_asks_for_a_resync(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    members.claim_push_job(TENANT, "m-anna", NOW)
    taken = members.acquire_lease(TENANT, "m-anna", "scheduled-worker", NOW, TTL_S)
    assert taken is not None
    assert taken.calendar.push_queued_at == NOW
    assert members.get_member(TENANT, "m-anna").calendar.push_queued_at == NOW

    before = _doc(firestore_client, "m-anna").get()
    assert members.acquire_lease(TENANT, "m-anna", "other-worker", NOW + timedelta(seconds=1), TTL_S) is None
    after = _doc(firestore_client, "m-anna").get()
    assert after.to_dict() == before.to_dict()
    assert after.update_time == before.update_time  # nothing written
    assert members.get_member(TENANT, "m-anna").calendar.push_resync_requested is False


def test_a_push_job_takes_an_expired_lease_and_keeps_its_claim(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    members.acquire_lease(TENANT, "m-anna", "dead-worker", NOW, TTL_S)
    members.claim_push_job(TENANT, "m-anna", NOW)
    later = NOW + timedelta(seconds=TTL_S + 1)
    taken = members.acquire_lease(TENANT, "m-anna", "push-worker", later, TTL_S, push_job=True)
    assert taken is not None
    stored = members.get_member(TENANT, "m-anna").calendar
    assert stored.lease_owner == "push-worker"
    assert stored.push_queued_at == NOW
    assert stored.push_resync_requested is False


def test_acquire_lease_of_an_unknown_member_raises_not_found(members: FirestoreMemberStore) -> None:
    with pytest.raises(NotFound):
        members.acquire_lease(TENANT, "m-nobody", "w", NOW, TTL_S, push_job=True)


# --- update_calendar under the lease --------------------------------------------------------


def test_a_leased_update_returns_the_state_read_before_the_write(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    members.acquire_lease(TENANT, "m-anna", "w1", NOW, TTL_S)
    first = members.update_calendar(
        TENANT, "m-anna", page_saved("page-1", lease_expires_at=NOW), lease_owner="w1"
    )
    assert first is not None
    assert first.page_token is None
    assert first.lease_owner == "w1"
    second = members.update_calendar(
        TENANT, "m-anna", page_saved("page-2", lease_expires_at=NOW), lease_owner="w1"
    )
    assert second is not None
    assert second.page_token == "page-1"
    assert members.get_member(TENANT, "m-anna").calendar.page_token == "page-2"
    # an empty update writes nothing and still reads
    before = _doc(firestore_client, "m-anna").get()
    read = members.update_calendar(TENANT, "m-anna", CalendarUpdate(), lease_owner="w1")
    assert read is not None
    assert read.page_token == "page-2"
    assert _doc(firestore_client, "m-anna").get().update_time == before.update_time
    # without the lease owner nothing is returned
    assert members.update_calendar(TENANT, "m-anna", CalendarUpdate(page_token="x")) is None


def test_a_leased_update_by_someone_who_lost_the_lease_raises_and_writes_nothing(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    members.acquire_lease(TENANT, "m-anna", "w1", NOW, TTL_S)
    members.acquire_lease(TENANT, "m-anna", "w2", NOW + timedelta(seconds=TTL_S + 1), TTL_S)
    before = _doc(firestore_client, "m-anna").get()
    with pytest.raises(TransientError):
        members.update_calendar(TENANT, "m-anna", CalendarUpdate(sync_token="stale"), lease_owner="w1")
    assert _doc(firestore_client, "m-anna").get().update_time == before.update_time
    with pytest.raises(NotFound):
        members.update_calendar(TENANT, "m-nobody", CalendarUpdate(sync_token="x"), lease_owner="w1")


def test_leased_saves_succeed_while_notifications_and_the_fan_out_write_the_member(
    firestore_client: firestore.Client, members: FirestoreMemberStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notification's claim and the fan-out's hold write the member document between a leased
    save's read and its write: the save reads again, it does not fail. Three such writes per save
    are forced (right after its read), and a thread keeps claiming and holding meanwhile."""
    add_member(firestore_client, members, "m-anna")
    members.acquire_lease(TENANT, "m-anna", "w1", NOW, TTL_S)
    saver = threading.get_ident()
    conflicts = [0]
    real_update = DocumentReference.update

    def counting_update(self: DocumentReference, *args: Any, **kwargs: Any) -> Any:
        """The real update; counts the preconditions the emulator refused to the saving thread."""
        try:
            return real_update(self, *args, **kwargs)
        except gexc.FailedPrecondition:
            if threading.get_ident() == saver:
                conflicts[0] += 1
            raise

    real_get = DocumentReference.get
    injected = [0]  # writes still to make right after the saving thread's next reads
    held = [0]

    def interfered_get(self: DocumentReference, *args: Any, **kwargs: Any) -> Any:
        """The real read; then, for the saving thread, a fan-out hold written before its write."""
        snapshot = real_get(self, *args, **kwargs)
        if threading.get_ident() == saver and injected[0] > 0:
            injected[0] -= 1
            held[0] += 1
            members.hold_members([(TENANT, "m-anna")], NOW + timedelta(hours=held[0]))
        return snapshot

    monkeypatch.setattr(DocumentReference, "update", counting_update)
    monkeypatch.setattr(DocumentReference, "get", interfered_get)
    stop = threading.Event()
    interfering_writes = [0]

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            if i % 2:
                # lapsed claims: every call writes (a fresh claim per call)
                members.claim_push_job(TENANT, "m-anna", NOW + PENDING_JOB_TTL * i)
            else:
                members.hold_members([(TENANT, "m-anna")], NOW + timedelta(minutes=i))
            interfering_writes[0] += 1
            stop.wait(HAMMER_PAUSE_S)

    hammers = [threading.Thread(target=hammer)]
    for thread in hammers:
        thread.start()
    errors: list[BaseException] = []
    reads: list[CalendarState] = []
    try:
        for n in range(20):
            injected[0] = 3  # its first three attempts find the document written meanwhile
            try:
                read = members.update_calendar(
                    TENANT, "m-anna", page_saved(f"page-{n}", lease_expires_at=NOW), lease_owner="w1"
                )
                assert read is not None
                reads.append(read)
            except TransientError as error:
                errors.append(error)
    finally:
        stop.set()
        for thread in hammers:
            thread.join()
    assert errors == []
    assert [r.page_token for r in reads] == [None] + [f"page-{n}" for n in range(19)]
    assert interfering_writes[0] > 0
    assert held[0] == 60
    assert conflicts[0] >= 60  # each save retried at least three times
    assert members.get_member(TENANT, "m-anna").calendar.page_token == "page-19"


# --- the resync handshake -------------------------------------------------------------------


def test_the_final_save_of_a_sync_observes_and_clears_a_resync_request(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    member = members.acquire_lease(TENANT, "m-anna", "sync-worker", NOW, TTL_S)
    assert member is not None
    leased = LeasedCalendar(members, TENANT, member, "sync-worker")
    leased.save(page_saved("page-1", lease_expires_at=NOW + timedelta(seconds=TTL_S)))
    assert leased.resync_requested is False

    # a notification's job comes while the sync runs
    members.claim_push_job(TENANT, "m-anna", NOW + timedelta(seconds=2))
    assert (
        members.acquire_lease(
            TENANT, "m-anna", "push-worker", NOW + timedelta(seconds=3), TTL_S, push_job=True
        )
        is None
    )
    assert raw_calendar(firestore_client, "m-anna")["push"]["resyncRequested"] is True

    # a save that does not clear the flag does not take the request over
    leased.save(page_saved("page-2", lease_expires_at=NOW + timedelta(seconds=TTL_S)))
    assert leased.resync_requested is False
    assert raw_calendar(firestore_client, "m-anna")["push"]["resyncRequested"] is True

    leased.save(listing_completed("sync-token-1", now=NOW + timedelta(seconds=10)))
    assert leased.resync_requested is True
    stored = members.get_member(TENANT, "m-anna").calendar
    assert stored.push_resync_requested is False
    assert stored.lease_owner is None
    assert stored.sync_token == "sync-token-1"
    assert leased.state.push_resync_requested is False


def test_a_sync_without_a_push_job_meanwhile_sees_no_resync_request(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    member = members.acquire_lease(TENANT, "m-anna", "sync-worker", NOW, TTL_S)
    assert member is not None
    leased = LeasedCalendar(members, TENANT, member, "sync-worker")
    # a notification alone (a claim, no job run yet) is not a resync request
    members.claim_push_job(TENANT, "m-anna", NOW + timedelta(seconds=2))
    leased.save(listing_completed("sync-token-1", now=NOW + timedelta(seconds=10)))
    assert leased.resync_requested is False
    assert members.get_member(TENANT, "m-anna").calendar.push_resync_requested is False


# --- due_members and renewal ----------------------------------------------------------------


def test_due_members_flag_exactly_the_members_whose_renewal_has_come(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    due_at = NOW - timedelta(minutes=1)
    cases: dict[str, dict[str, Any]] = {
        "renew-past": {"renewAt": NOW - timedelta(hours=1)},
        "renew-now": {"renewAt": NOW},
        "renew-future": {"renewAt": NOW + timedelta(seconds=1)},
        "renew-none": {"renewAt": None},
        "renew-string": {"renewAt": "2026-11-24T11:00:00Z"},
        "push-without-renew": {"status": "active"},
        "no-push": None,
    }
    for tenant in (TENANT, "globex"):
        for member_id, push_map in cases.items():
            calendar: dict[str, Any] = {"status": "connected", "nextSyncAt": due_at}
            if push_map is not None:
                calendar["push"] = push_map
            _doc(firestore_client, member_id, tenant).set({"calendar": calendar})
        # not due: never listed, whatever their renewal time
        _doc(firestore_client, "later", tenant).set(
            {
                "calendar": {
                    "status": "connected",
                    "nextSyncAt": NOW + timedelta(hours=1),
                    "push": {"renewAt": due_at},
                }
            }
        )
        _doc(firestore_client, "gone", tenant).set(
            {"calendar": {"status": "disconnected", "nextSyncAt": due_at, "push": {"renewAt": due_at}}}
        )
    for page_size in (1, 3, 100):
        due = list(members.due_members(NOW, page_size))
        assert all(isinstance(d, DueMember) for d in due)
        assert len(due) == 2 * len(cases)
        flags = {(d.tenant_id, d.member_id): d.renew for d in due}
        expected_renew = {"renew-past", "renew-now"}
        for tenant in (TENANT, "globex"):
            for member_id in cases:
                assert flags[(tenant, member_id)] is (member_id in expected_renew), (
                    page_size,
                    tenant,
                    member_id,
                )


def test_due_members_sees_a_renewal_written_by_channel_watched(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    from shared.domain.push import channel_watched

    add_member(firestore_client, members, "m-anna")
    record = ChannelRecord("calsync-" + "a" * 32, TENANT, "m-anna", NOW + timedelta(days=7), NOW, None)
    update = channel_watched(record, "res-1", NOW + timedelta(days=7), now=NOW, backstop=timedelta(hours=6))
    members.update_calendar(TENANT, "m-anna", update)
    state = members.get_member(TENANT, "m-anna").calendar
    assert state.push_renew_at is not None
    assert state.next_sync_at == NOW + timedelta(hours=6)
    assert list(members.due_members(NOW + timedelta(hours=6), 10)) == [DueMember(TENANT, "m-anna", False)]
    renewal = state.push_renew_at
    assert list(members.due_members(renewal, 10)) == [DueMember(TENANT, "m-anna", True)]


# --- the channel lookup ---------------------------------------------------------------------


def test_channel_store_round_trip(
    firestore_client: firestore.Client, channels: FirestoreChannelStore
) -> None:
    record = ChannelRecord(
        channel_id="calsync-" + "b" * 32,
        tenant_id=TENANT,
        member_id="m-anna",
        expires_at=NOW + timedelta(days=7),
        created_at=NOW,
    )
    channels.create(record)
    assert channels.get(record.channel_id) == record  # resource id not known yet: None
    granted = NOW + timedelta(days=6, hours=23)
    channels.set_resource(record.channel_id, "res-anna", granted)
    updated = channels.get(record.channel_id)
    assert updated is not None
    assert updated.resource_id == "res-anna"
    assert updated.expires_at == granted
    assert (updated.tenant_id, updated.member_id, updated.created_at) == (TENANT, "m-anna", NOW)
    stored = firestore_client.collection("channels").document(record.channel_id).get().to_dict() or {}
    assert set(stored) == {"tenantId", "memberId", "resourceId", "createdAt", "expireAt"}  # no token
    channels.delete(record.channel_id)
    assert channels.get(record.channel_id) is None
    channels.delete(record.channel_id)  # missing is success
    assert channels.get(record.channel_id) is None


def test_channel_store_get_of_unknown_or_incomplete_entries_is_none(
    firestore_client: firestore.Client, channels: FirestoreChannelStore
) -> None:
    assert channels.get("calsync-" + "0" * 32) is None
    lookup = firestore_client.collection("channels")
    lookup.document("no-expiry").set({"tenantId": TENANT, "memberId": "m-anna", "createdAt": NOW})
    lookup.document("string-expiry").set(
        {"tenantId": TENANT, "memberId": "m-anna", "createdAt": NOW, "expireAt": "2026-12-01T00:00:00Z"}
    )
    lookup.document("empty").set({})
    assert channels.get("no-expiry") is None
    assert channels.get("string-expiry") is None
    assert channels.get("empty") is None


def test_set_resource_on_a_deleted_channel_does_not_bring_it_back_as_valid(
    channels: FirestoreChannelStore,
) -> None:
    """A watch that returns after the channel was retired (shared/services/channels.py: the
    member disconnected during the watch call): `set_resource` merges into a deleted entry, which
    must not read as a channel (it names no tenant and no member)."""
    channels.set_resource("calsync-" + "c" * 32, "res-x", NOW + timedelta(days=7))
    assert channels.get("calsync-" + "c" * 32) is None


# --- the codec of calendar.push -------------------------------------------------------------


def test_every_push_field_round_trips(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    add_member(firestore_client, members, "m-anna")
    update = CalendarUpdate(
        push_status=PushStatus.FAILED,
        push_expires_at=NOW + timedelta(days=7),
        push_last_notification_at=NOW - timedelta(minutes=3),
        push_last_error="pushNotSupportedForRequestedResource",
        push_channel_id="calsync-" + "d" * 32,
        push_resource_id="res-anna",
        push_started_at=NOW - timedelta(days=1),
        push_renew_at=NOW + timedelta(days=5, hours=3),
        push_retry_at=NOW + timedelta(days=1),
        push_queued_at=NOW - timedelta(minutes=2),
        push_resync_requested=True,
    )
    push_fields = set(update.changed_fields())
    assert push_fields == {
        f for f in CalendarState.__dataclass_fields__ if f.startswith("push_")
    }  # all of them
    members.update_calendar(TENANT, "m-anna", update)
    state = members.get_member(TENANT, "m-anna").calendar
    for name, value in update.changed_fields().items():
        assert getattr(state, name) == value, name
    assert state.status is ConnectionStatus.CONNECTED  # the rest untouched
    raw = raw_calendar(firestore_client, "m-anna")["push"]
    assert raw["status"] == "failed"
    assert raw["resyncRequested"] is True
    assert set(raw) == {
        "status",
        "expiresAt",
        "lastNotificationAt",
        "lastError",
        "channelId",
        "resourceId",
        "startedAt",
        "renewAt",
        "retryAt",
        "queuedAt",
        "resyncRequested",
    }
    # and cleared again: None round-trips too
    members.update_calendar(
        TENANT, "m-anna", CalendarUpdate(push_status=PushStatus.ACTIVE, push_queued_at=None)
    )
    state = members.get_member(TENANT, "m-anna").calendar
    assert state.push_status is PushStatus.ACTIVE
    assert state.push_queued_at is None
    assert state.push_resource_id == "res-anna"


def test_malformed_push_values_read_as_defaults(
    firestore_client: firestore.Client, members: FirestoreMemberStore
) -> None:
    _doc(firestore_client, "m-odd").set(
        {
            "calendar": {
                "status": "connected",
                "push": {
                    "status": "weird",
                    "expiresAt": "2026-12-01T00:00:00Z",
                    "lastNotificationAt": 12345,
                    "lastError": {"nested": "map"},
                    "channelId": 42,
                    "resourceId": ["list"],
                    "renewAt": True,
                    "queuedAt": "yesterday",
                    "resyncRequested": "yes",
                },
            }
        }
    )
    state = members.get_member(TENANT, "m-odd").calendar
    assert state.status is ConnectionStatus.CONNECTED
    assert state.push_status is PushStatus.OFF
    assert state.push_expires_at is None
    assert state.push_last_notification_at is None
    assert state.push_last_error is None
    assert state.push_channel_id is None
    assert state.push_resource_id is None
    assert state.push_renew_at is None
    assert state.push_queued_at is None
    assert state.push_resync_requested is False
    # a push map that is not a map at all
    _doc(firestore_client, "m-odder").set({"calendar": {"status": "connected", "push": "active"}})
    odd = members.get_member(TENANT, "m-odder").calendar
    assert odd.push_status is PushStatus.OFF
    assert odd.push_channel_id is None
    # and a malformed queuedAt does not block claims
    assert members.claim_push_job(TENANT, "m-odd", NOW) is Claim.QUEUE
    assert members.get_member(TENANT, "m-odd").calendar.push_queued_at == NOW
