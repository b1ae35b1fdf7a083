"""What is kept of an oversized event (shared.domain.limits), Firestore's document-size count
(shared.adapters.firestore.document_size), the meeting document storing the guest list once
(meeting_codec), and the meeting store's check of a plan's documents
(docs/reference.md#size-limits). Pure: no emulator."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.firestore import FirestoreMeetingStore
from shared.adapters.firestore.document_size import (
    DOCUMENT_BYTES_ALLOWED,
    MAX_DOCUMENT_BYTES,
    document_size,
    name_size,
    value_size,
)
from shared.adapters.firestore.meeting_codec import meeting_from_document, meeting_to_document
from shared.domain import limits
from shared.domain.events import event_from_google
from shared.domain.matching import MatchingContext, match_copy
from shared.domain.models import (
    Account,
    DirectorySnapshot,
    EventAttendee,
    EventHeld,
    MeetingRecord,
    MeetingWrite,
    MemberCopy,
    Plan,
    Tenant,
    TenantSettings,
    UnmatchedAddress,
    UnmatchedReason,
)

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)
WINDOW = T0 - timedelta(days=365)


def guest(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"guest{n:04d}@acme.com",
        "displayName": f"Guest {n}",
        "responseStatus": "accepted",
        **extra,
    }


def big_event(guests: int, *, title: str = "Town hall", name_length: int = 0) -> dict[str, Any]:
    attendees = [guest(n) for n in range(guests)]
    if name_length:
        attendees = [{**a, "displayName": "N" * name_length} for a in attendees]
    attendees.append({"email": "ana@cs.example", "self": True, "responseStatus": "accepted"})
    attendees.insert(0, {"email": "org@acme.com", "organizer": True, "responseStatus": "accepted"})
    return {
        "id": "evt1",
        "iCalUID": "town-hall@acme.com",
        "status": "confirmed",
        "summary": title,
        "updated": "2026-11-20T10:00:00Z",
        "start": {"dateTime": "2026-11-25T10:00:00Z"},
        "end": {"dateTime": "2026-11-25T11:00:00Z"},
        "organizer": {"email": "org@acme.com"},
        "attendees": attendees,
    }


def parse(
    payload: dict[str, Any], member_id: str = "m-ana", member_email: str = "ana@cs.example"
) -> MemberCopy:
    change = event_from_google(
        payload,
        member_id=member_id,
        member_email=member_email,
        calendar_time_zone="UTC",
        settings=TenantSettings(),
        window_start=WINDOW,
        generation=1,
    )
    assert isinstance(change, EventHeld)
    return change.copy


# --- the caps ------------------------------------------------------------------------------------


def test_titles_and_names_are_cut_to_their_caps() -> None:
    assert limits.capped_title("t" * 5000) == "t" * limits.MAX_TITLE_CHARS
    assert limits.capped_name("n" * 500) == "n" * limits.MAX_NAME_CHARS
    assert limits.capped_title("Weekly sync") == "Weekly sync"


def test_the_guest_cap_keeps_the_member_and_the_organizer_and_then_the_first_in_order() -> None:
    people = [EventAttendee(f"g{n}@x.com", "", "accepted") for n in range(10)]
    people[7] = replace(people[7], is_self=True)
    people[9] = replace(people[9], is_organizer=True)
    kept = limits.capped_guests(people, limit=4)
    assert [a.email for a in kept] == ["g0@x.com", "g1@x.com", "g7@x.com", "g9@x.com"]
    assert limits.capped_guests(people[:3], limit=4) == tuple(people[:3])


def test_a_huge_invitation_keeps_2000_guests_whole_emails_and_cut_names_and_title() -> None:
    copy = parse(big_event(3000, title="T" * 4000, name_length=900))
    assert len(copy.attendees) == limits.MAX_GUESTS
    assert copy.title == "T" * limits.MAX_TITLE_CHARS
    assert {len(a.display_name) for a in copy.attendees if a.display_name} == {limits.MAX_NAME_CHARS}
    emails = [a.email for a in copy.attendees]
    assert emails[0] == "org@acme.com"  # the organizer, first in the invitation
    assert emails[-1] == "ana@cs.example"  # the member's own entry, last in it, is kept
    assert emails[1:-1] == [f"guest{n:04d}@acme.com" for n in range(limits.MAX_GUESTS - 2)]


def test_what_the_cap_cuts_does_not_change_how_the_guests_kept_are_matched() -> None:
    tenant = Tenant("t", "T", internal_domains=("cs.example",))
    acme = Account("acc-acme", "Acme", ("acme.com",))
    context = MatchingContext(
        tenant, frozenset({"ana@cs.example"}), DirectorySnapshot({}, {"acme.com": (acme,)})
    )
    small = parse(big_event(50))
    huge = parse(big_event(3000))
    kept = {a.email for a in huge.attendees}
    in_small = {m.email: m for m in match_copy(small, context).matches}
    in_huge = {m.email: m for m in match_copy(huge, context).matches}
    assert {e: in_huge[e] for e in in_small} == in_small  # the same verdict for the same guest
    assert set(in_huge) <= kept


def test_a_member_who_declined_beyond_the_cap_still_declined() -> None:
    payload = big_event(3000)
    payload["attendees"][-1]["responseStatus"] = "declined"
    change = event_from_google(
        payload,
        member_id="m-ana",
        member_email="ana@cs.example",
        calendar_time_zone="UTC",
        settings=TenantSettings(),
        window_start=WINDOW,
        generation=1,
    )
    assert not isinstance(change, EventHeld)


# --- Firestore's size count ------------------------------------------------------------------------


def test_the_document_size_follows_firestores_published_example() -> None:
    # "users/jeff/tasks/my_task_id" with four fields: 44 + 71 + 32 = 147 bytes.
    path = ("users", "jeff", "tasks", "my_task_id")
    fields = {"type": "Personal", "done": False, "priority": 1, "description": "Learn Cloud Firestore"}
    assert name_size(path) == 44
    assert document_size(path, fields) == 147


def test_values_count_as_firestore_counts_them() -> None:
    assert value_size("é") == 3  # UTF-8 bytes + 1
    assert value_size(None) == value_size(True) == 1
    assert value_size(7) == value_size(1.5) == value_size(T0) == 8
    assert value_size(["ab", "c"]) == 5
    assert value_size({"a": "b"}) == 4
    assert DOCUMENT_BYTES_ALLOWED < MAX_DOCUMENT_BYTES


# --- the meeting document ------------------------------------------------------------------------------


def thirty_copies(guests: int = 3000) -> MeetingRecord:
    """One invitation (the organizer, `guests` guests, then 30 members) on the 30 members'
    calendars: each copy flags its own entry `self`, and keeps it although it is past the cap."""
    payload = big_event(guests)
    members = [(f"m-{n:02d}", f"member{n:02d}@cs.example") for n in range(30)]
    everyone = [a for a in payload["attendees"] if a["email"] != "ana@cs.example"]
    everyone += [{"email": email, "responseStatus": "accepted"} for _, email in members]
    copies = {}
    for n, (member, email) in enumerate(members):
        own = {"email": email, "self": True, "responseStatus": "tentative" if n % 2 else "accepted"}
        event = {**payload, "id": f"evt-{member}", "updated": f"2026-11-20T10:{n:02d}:00Z"}
        event["attendees"] = [own if a["email"] == email else a for a in everyone]
        copies[member] = parse(event, member, email)
    unmatched = tuple(
        UnmatchedAddress(f"guest{n:04d}@acme.com", UnmatchedReason.NO_MATCH) for n in range(1998)
    )
    return MeetingRecord("town-hall@acme.com", copies, {"acc-acme": "h" * 32}, {"acc-acme": T0}, unmatched)


def test_a_meeting_document_reads_back_as_the_record_written() -> None:
    record = thirty_copies(20)
    assert meeting_from_document(record.meeting_key, meeting_to_document(record)) == record


def test_copies_whose_guest_lists_differ_are_stored_as_differences_or_whole_and_read_back() -> None:
    record = thirty_copies(20)
    reordered, shorter = record.copies["m-03"], record.copies["m-04"]
    copies = {
        **record.copies,
        "m-03": replace(reordered, attendees=reordered.attendees[::-1]),  # another order: whole
        "m-04": replace(shorter, attendees=shorter.attendees[1:]),  # one guest fewer: a difference
    }
    changed = replace(record, copies=copies)
    document = meeting_to_document(changed)
    assert "attendees" in document["copies"]["m-03"]
    assert document["copies"]["m-04"]["guestsMissing"] == ["org@acme.com"]
    assert "attendees" not in document["copies"]["m-05"]
    assert meeting_from_document(changed.meeting_key, document) == changed


def test_an_old_document_with_every_copy_whole_still_reads() -> None:
    record = thirty_copies(5)
    document = meeting_to_document(record)
    guests = {g["email"]: g for g in document.pop("guests")}
    for member, copy in document["copies"].items():
        diffs = {d["email"]: d for d in copy.pop("guestDiffs")}
        copy["attendees"] = [
            diffs.get(a.email, {**guests[a.email], "self": False}) for a in record.copies[member].attendees
        ]
    assert meeting_from_document(record.meeting_key, document) == record


def test_30_members_holding_a_3000_guest_invitation_fit_in_one_document() -> None:
    record = thirty_copies()
    document = meeting_to_document(record)
    size = document_size(("tenants", "t" * 128, "meetings", "x" * 64), document)
    assert size < 600_000, size
    assert not any("attendees" in copy for copy in document["copies"].values())
    assert len(document["guests"]) == limits.MAX_GUESTS
    assert meeting_from_document(record.meeting_key, document) == record
    plan = Plan(meeting_writes=(MeetingWrite(record.meeting_key, record, None),))
    assert FirestoreMeetingStore.oversized_meetings(plan) == frozenset()


def test_the_store_names_the_meetings_whose_documents_would_be_too_large() -> None:
    record = thirty_copies(20)
    long = "x" * 600
    copies = {  # 30 members, each with its own 80 long addresses: nothing to share
        m: replace(
            c, attendees=tuple(EventAttendee(f"{m}-{n}-{long}@acme.com", "", "accepted") for n in range(80))
        )
        for m, c in record.copies.items()
    }
    huge = replace(record, copies=copies)
    small = thirty_copies(5)
    plan = Plan(
        meeting_writes=(
            MeetingWrite(huge.meeting_key, huge, None),
            MeetingWrite("other", replace(small, meeting_key="other"), None),
        )
    )
    assert FirestoreMeetingStore.oversized_meetings(plan) == frozenset({huge.meeting_key})
