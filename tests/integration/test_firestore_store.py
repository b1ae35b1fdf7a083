"""The Firestore stores against the real Firestore emulator."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import firestore

from shared.adapters.firestore import FirestoreDirectoryStore, FirestoreMeetingStore, FirestoreMemberStore
from shared.adapters.firestore.codecs import interaction_to_json
from shared.domain.calendar_state import CalendarUpdate, lease_released
from shared.domain.ids import interaction_id, meeting_id
from shared.domain.models import (
    Account,
    ConnectionStatus,
    EventAttendee,
    Interaction,
    InteractionAttendee,
    MatchedBy,
    MeetingRecord,
    MeetingWrite,
    MemberCopy,
    Participant,
    Plan,
    TenantSettings,
    UnmatchedAddress,
    UnmatchedReason,
    User,
)
from shared.errors import NotFound, TransientError, WriteConflict

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _tenant(db: firestore.Client, tenant_id: str) -> firestore.DocumentReference:
    return db.collection("tenants").document(tenant_id)


def _member(db: firestore.Client, tenant_id: str, member_id: str, **calendar: object) -> None:
    _tenant(db, tenant_id).collection("members").document(member_id).set(
        {"email": f"{member_id}@cs.example", "name": member_id.upper(), "calendar": calendar}
    )


def _copy(
    member_id: str, key: str, *, event_id: str = "ev1", hour: int = 9, title: str = "Kick-off"
) -> MemberCopy:
    start = NOW.replace(hour=hour)
    return MemberCopy(
        member_id=member_id,
        event_id=event_id,
        meeting_key=key,
        updated=NOW - timedelta(minutes=5),
        title=title,
        start=start,
        end=start + timedelta(minutes=30),
        time_zone="Europe/Paris",
        organizer_email=f"{member_id}@cs.example",
        attendees=(
            EventAttendee(f"{member_id}@cs.example", "Me", "accepted", is_organizer=True, is_self=True),
            EventAttendee("ann@eu.logo.co.uk", "Ann", "needsAction"),
        ),
        generation=2,
    )


def _interaction(key: str, account_id: str, *, hour: int = 9, title: str = "Kick-off") -> Interaction:
    start = NOW.replace(hour=hour)
    return Interaction(
        id=interaction_id(key, account_id),
        account_id=account_id,
        meeting_key=key,
        title=title,
        date="2026-11-24",
        start_time=start,
        end_time=start + timedelta(minutes=30),
        time_zone="Europe/Paris",
        duration_minutes=30,
        participants=(
            Participant("m1@cs.example", "Me", "accepted", internal=True, organizer=True),
            Participant("ann@eu.logo.co.uk", "Ann", "needsAction", internal=False, organizer=False),
        ),
        attendees=(InteractionAttendee("ann@eu.logo.co.uk", "Ann", None, MatchedBy.DOMAIN, 30),),
        member_ids=("m1",),
        organizer_email="m1@cs.example",
        created_at=NOW,
        updated_at=NOW,
    )


# --- directory --------------------------------------------------------------------------------


def test_get_tenant_parses_settings_with_defaults(firestore_client: firestore.Client) -> None:
    store = FirestoreDirectoryStore(firestore_client)
    _tenant(firestore_client, "t1").set(
        {
            "name": "Acme CS",
            "internalDomains": ["CS.example", "https://www.cs-corp.example/"],
            "settings": {
                "backfillDays": 30,
                "freeMailDomainsAllowed": ["GMAIL.com"],
                "defaultTimeZone": "Nope/Nope",
            },
        }
    )
    tenant = store.get_tenant("t1")
    assert tenant.name == "Acme CS"
    assert tenant.internal_domains == ("cs.example", "cs-corp.example")
    assert tenant.settings == TenantSettings(
        backfill_days=30, free_mail_domains_allowed=frozenset({"gmail.com"}), default_time_zone="UTC"
    )
    _tenant(firestore_client, "t2").set({"name": "Bare"})
    assert store.get_tenant("t2").settings == TenantSettings()
    with pytest.raises(NotFound):
        store.get_tenant("nope")


def test_member_emails_are_normalised(firestore_client: firestore.Client) -> None:
    _tenant(firestore_client, "t1").collection("members").document("m1").set({"email": " Ann@CS.example "})
    _tenant(firestore_client, "t1").collection("members").document("m2").set({"email": "bob@cs.example"})
    _tenant(firestore_client, "t2").collection("members").document("m3").set({"email": "other@x.example"})
    store = FirestoreDirectoryStore(firestore_client)
    assert store.member_emails("t1") == frozenset({"ann@cs.example", "bob@cs.example"})


def test_lookup_batches_100_emails_and_40_domains(firestore_client: firestore.Client) -> None:
    tenant = _tenant(firestore_client, "t1")
    batch = firestore_client.batch()
    for i in range(40):
        batch.set(
            tenant.collection("accounts").document(f"a{i}"),
            {
                "name": f"A{i}",
                "domains": [f"d{i}.example"],
                "domainKeys": [f"d{i}.example", f"alt{i}.example"],
            },
        )
    for i in range(100):
        batch.set(
            tenant.collection("users").document(f"u{i}"),
            {
                "email": f"P{i}@d{i % 40}.example",
                "emailKey": f"p{i}@d{i % 40}.example",
                "name": f"P{i}",
                "accountId": f"a{i % 40}",
            },
        )
    # one address belonging to two accounts (ambiguous), one shared domain, and another tenant
    batch.set(
        tenant.collection("users").document("dup"),
        {"emailKey": "p0@d0.example", "name": "Dup", "accountId": "a1"},
    )
    batch.set(
        tenant.collection("accounts").document("shared"), {"name": "Shared", "domainKeys": ["d1.example"]}
    )
    batch.set(
        _tenant(firestore_client, "t2").collection("users").document("x"),
        {"emailKey": "p1@d1.example", "name": "X", "accountId": "zz"},
    )
    batch.commit()

    emails = [f"p{i}@d{i % 40}.example" for i in range(100)] + ["nobody@d0.example"]
    domains = [f"d{i}.example" for i in range(40)] + ["unknown.example"]
    snapshot = FirestoreDirectoryStore(firestore_client).lookup("t1", emails, domains)

    assert set(snapshot.users_by_email) == set(emails)
    assert snapshot.users_by_email["nobody@d0.example"] == ()
    assert snapshot.users_by_email["p57@d17.example"] == (User("u57", "p57@d17.example", "P57", "a17"),)
    assert [(u.id, u.account_id) for u in snapshot.users_by_email["p0@d0.example"]] == [
        ("dup", "a1"),
        ("u0", "a0"),
    ]
    assert {u.id for u in snapshot.users_by_email["p1@d1.example"]} == {"u1"}
    assert set(snapshot.accounts_by_domain) == set(domains)
    assert snapshot.accounts_by_domain["unknown.example"] == ()
    assert snapshot.accounts_by_domain["d5.example"] == (Account("a5", "A5", ("d5.example", "alt5.example")),)
    assert [a.id for a in snapshot.accounts_by_domain["d1.example"]] == ["a1", "shared"]


# --- members ----------------------------------------------------------------------------------


def test_get_member_and_update_calendar_map_fields(firestore_client: firestore.Client) -> None:
    store = FirestoreMemberStore(firestore_client)
    _member(firestore_client, "t1", "m1", status="not_connected")
    store.update_calendar(
        "t1",
        "m1",
        CalendarUpdate(
            status=ConnectionStatus.CONNECTED,
            google_email="m1@gmail.com",
            next_sync_at=NOW,
            consecutive_failures=2,
            sync_token="tok",
            listing_full=True,
        ),
    )
    raw = _tenant(firestore_client, "t1").collection("members").document("m1").get().to_dict()
    assert raw["calendar"] == {
        "status": "connected",
        "googleEmail": "m1@gmail.com",
        "nextSyncAt": NOW,
        "consecutiveFailures": 2,
        "syncToken": "tok",
        "listingFull": True,
    }
    member = store.get_member("t1", "m1")
    assert member.email == "m1@cs.example"
    assert member.calendar.status is ConnectionStatus.CONNECTED
    assert member.calendar.next_sync_at == NOW
    assert member.calendar.consecutive_failures == 2
    assert member.calendar.listing_full is True
    assert [m.id for m in store.list_members("t1")] == ["m1"]
    with pytest.raises(TypeError, match="nextSyncAt"):  # only CalendarState field names
        store.update_calendar("t1", "m1", CalendarUpdate(**{"nextSyncAt": NOW}))
    with pytest.raises(NotFound):
        store.get_member("t1", "nobody")
    with pytest.raises(NotFound):
        store.update_calendar("t1", "nobody", CalendarUpdate(status=ConnectionStatus.CONNECTED))


def test_lease_is_exclusive_until_it_expires(firestore_client: firestore.Client) -> None:
    store = FirestoreMemberStore(firestore_client)
    _member(firestore_client, "t1", "m1", status="connected")

    first = store.acquire_lease("t1", "m1", "worker-a", NOW, ttl_s=60)
    assert first is not None
    assert first.calendar.lease_owner == "worker-a"
    assert first.calendar.lease_expires_at == NOW + timedelta(seconds=60)
    assert store.acquire_lease("t1", "m1", "worker-b", NOW + timedelta(seconds=30), ttl_s=60) is None
    again = store.acquire_lease("t1", "m1", "worker-a", NOW + timedelta(seconds=30), ttl_s=60)
    assert again is not None  # the owner renews

    store.update_calendar("t1", "m1", CalendarUpdate(last_error="x"), lease_owner="worker-a")
    with pytest.raises(TransientError):
        store.update_calendar("t1", "m1", CalendarUpdate(last_error="y"), lease_owner="worker-b")

    taken = store.acquire_lease("t1", "m1", "worker-b", NOW + timedelta(seconds=91), ttl_s=60)
    assert taken is not None
    assert taken.calendar.lease_owner == "worker-b"
    with pytest.raises(TransientError):  # worker-a lost it: its writes are refused
        store.update_calendar("t1", "m1", CalendarUpdate(sync_token="stale"), lease_owner="worker-a")
    store.update_calendar("t1", "m1", lease_released(), lease_owner="worker-b")
    calendar = store.get_member("t1", "m1").calendar
    assert calendar.last_error == "x"
    assert calendar.sync_token is None
    assert calendar.lease_owner is None
    with pytest.raises(NotFound):
        store.acquire_lease("t1", "nobody", "worker-a", NOW, ttl_s=60)


def test_due_members_pages_across_tenants(firestore_client: firestore.Client) -> None:
    expected = set()
    batch = firestore_client.batch()
    for t in range(3):
        members = _tenant(firestore_client, f"t{t}").collection("members")
        for m in range(7):
            batch.set(
                members.document(f"m{m}"),
                {"calendar": {"status": "connected", "nextSyncAt": NOW - timedelta(minutes=m)}},
            )
            expected.add((f"t{t}", f"m{m}"))
        batch.set(members.document("exactly-now"), {"calendar": {"status": "connected", "nextSyncAt": NOW}})
        expected.add((f"t{t}", "exactly-now"))
        batch.set(
            members.document("later"),
            {"calendar": {"status": "connected", "nextSyncAt": NOW + timedelta(seconds=1)}},
        )
        batch.set(members.document("reauth"), {"calendar": {"status": "needs_reauth", "nextSyncAt": NOW}})
        batch.set(members.document("new"), {"calendar": {"status": "not_connected"}})
    batch.commit()

    store = FirestoreMemberStore(firestore_client)
    connected = {
        (f"t{t}", m) for t in range(3) for m in [*(f"m{i}" for i in range(7)), "exactly-now", "later"]
    }
    assert set(store.connected_members()) == connected
    assert set(store.connected_members("t1")) == {(t, m) for t, m in connected if t == "t1"}
    found = list(store.due_members(NOW, page_size=4))
    assert len(found) == len(expected) == 24
    assert {(d.tenant_id, d.member_id) for d in found} == expected
    assert not any(d.renew for d in found)  # no push channel to renew
    assert (
        list(FirestoreMemberStore(firestore_client).due_members(NOW - timedelta(days=1), page_size=4)) == []
    )


# --- meetings -----------------------------------------------------------------------------------


def _record(key: str, *copies: MemberCopy, accounts: dict[str, str] | None = None) -> MeetingRecord:
    accounts = accounts or {}
    return MeetingRecord(
        meeting_key=key,
        copies={c.member_id: c for c in copies},
        interaction_hashes=accounts,
        interaction_created_at=dict.fromkeys(accounts, NOW),
        unmatched=(UnmatchedAddress("bob@gmail.com", UnmatchedReason.FREE_MAIL),),
    )


def test_meeting_round_trip_and_index_queries(firestore_client: firestore.Client) -> None:
    store = FirestoreMeetingStore(firestore_client)
    key = "abc@google.com@20261124T090000Z"
    missing = store.read_meetings("t1", [key])[key]
    assert missing.version is None
    assert missing.record == MeetingRecord(meeting_key=key, copies={})

    record = _record(
        key, _copy("m1", key, event_id="e-1"), _copy("m2", key, event_id="e-2"), accounts={"acme": "h1"}
    )
    store.apply("t1", Plan(meeting_writes=(MeetingWrite(key, record, None),)))

    stored = store.read_meetings("t1", [key, "other"])
    assert stored[key].version is not None
    assert stored[key].record == record
    assert stored["other"].version is None
    raw = _tenant(firestore_client, "t1").collection("meetings").document(meeting_id(key)).get().to_dict()
    assert raw["eventRefs"] == ["m1/e-1", "m2/e-2"]
    assert raw["holders"] == ["m1", "m2"]
    assert "ann@eu.logo.co.uk" in raw["emails"]
    assert {"eu.logo.co.uk", "logo.co.uk"} <= set(raw["domains"])
    assert "co.uk" not in raw["domains"]
    assert raw["start"] == NOW.replace(hour=9)

    assert store.meeting_keys_for_events("t1", "m1", ["e-1", "e-2", "zzz"]) == {"e-1": key}
    assert store.meeting_keys_for_events("t1", "m2", [f"x{i}" for i in range(70)] + ["e-2"]) == {"e-2": key}
    assert store.meeting_keys_held_by("t1", "m2") == [key]
    assert store.list_unmatched("t1") == [(UnmatchedAddress("bob@gmail.com", UnmatchedReason.FREE_MAIL),)]
    assert store.list_unmatched("t2") == []
    assert store.meeting_keys_held_by("t1", "m3") == []
    assert store.meeting_keys_held_by("t2", "m1") == []


def test_apply_detects_conflicts_and_writes_nothing_of_the_losing_plan(
    firestore_client: firestore.Client,
) -> None:
    store = FirestoreMeetingStore(firestore_client)
    key = "k1"
    store.apply(
        "t1",
        Plan(
            meeting_writes=(MeetingWrite(key, _record(key, _copy("m1", key)), None),),
            interaction_upserts=(_interaction(key, "acme"),),
        ),
    )
    version = store.read_meetings("t1", [key])[key].version

    winner = Plan(
        meeting_writes=(
            MeetingWrite(key, _record(key, _copy("m1", key), _copy("m2", key, event_id="e2")), version),
        ),
        interaction_upserts=(dataclasses.replace(_interaction(key, "acme"), member_ids=("m1", "m2")),),
    )
    loser = Plan(
        meeting_writes=(
            MeetingWrite(key, _record(key, _copy("m1", key), _copy("m3", key, event_id="e3")), version),
            MeetingWrite("k2", _record("k2", _copy("m3", "k2")), None),
        ),
        interaction_upserts=(_interaction(key, "globex"),),
        interaction_deletes=(interaction_id(key, "acme"),),
    )
    store.apply("t1", winner)
    with pytest.raises(WriteConflict):
        store.apply("t1", loser)

    after = store.read_meetings("t1", [key, "k2"])
    assert set(after[key].record.copies) == {"m1", "m2"}
    assert after["k2"].version is None
    assert [(i.account_id, i.member_ids) for i in store.list_interactions("t1")] == [("acme", ("m1", "m2"))]

    # creating a meeting that exists meanwhile, and deleting one that changed, conflict too
    with pytest.raises(WriteConflict):
        store.apply("t1", Plan(meeting_writes=(MeetingWrite(key, _record(key, _copy("m9", key)), None),)))
    with pytest.raises(WriteConflict):
        store.apply("t1", Plan(meeting_writes=(MeetingWrite(key, None, version),)))

    current = store.read_meetings("t1", [key])[key].version
    store.apply(
        "t1",
        Plan(
            meeting_writes=(MeetingWrite(key, None, current),),
            interaction_deletes=(interaction_id(key, "acme"),),
        ),
    )
    assert store.read_meetings("t1", [key])[key].version is None
    assert store.list_interactions("t1") == []
    store.apply(
        "t1", Plan(interaction_deletes=(interaction_id(key, "acme"),))
    )  # deleting a missing doc is fine


def test_interactions_round_trip_ordered_and_per_account(firestore_client: firestore.Client) -> None:
    store = FirestoreMeetingStore(firestore_client)
    late = _interaction("k-late", "acme", hour=15)
    early = _interaction("k-early", "acme", hour=8)
    other = _interaction("k-other", "globex", hour=11)
    store.apply("t1", Plan(interaction_upserts=(late, early, other)))

    assert store.list_interactions("t1") == [early, other, late]
    assert store.list_interactions("t1", "acme") == [early, late]
    assert store.list_interactions("t1", "nobody") == []
    raw = _tenant(firestore_client, "t1").collection("interactions").document(early.id).get().to_dict()
    assert set(raw) == {
        "type",
        "accountId",
        "meetingKey",
        "title",
        "date",
        "startTime",
        "endTime",
        "timeZone",
        "durationMinutes",
        "participants",
        "attendees",
        "memberIds",
        "organizerEmail",
        "createdAt",
        "updatedAt",
    }
    assert raw["type"] == "Google calendar"
    assert raw["attendees"] == [
        {
            "email": "ann@eu.logo.co.uk",
            "name": "Ann",
            "userId": None,
            "matchedBy": "domain",
            "minutesInMeeting": 30,
        }
    ]
    as_json = interaction_to_json(early)
    assert as_json["id"] == early.id
    assert as_json["startTime"] == "2026-11-24T08:00:00.000Z"
    assert as_json["participants"][0] == {
        "email": "m1@cs.example",
        "name": "Me",
        "responseStatus": "accepted",
        "internal": True,
        "organizer": True,
    }
