"""Oversized events (docs/reference.md#size-limits) against the Firestore emulator, which refuses
documents over 1 MiB, with the production adapters and the Google stand-in serving calendars.

A 3,000-guest invitation on 30 members' calendars used to be one meeting document of ~9 MB (every
copy with the whole guest list): its commit was refused, the job retried until dead-lettered, and
the members' cursors never passed it. It is now stored once, capped, and synced like any other;
an event too large even so is dropped and counted, and the sync goes on past it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from shared import bootstrap
from shared.domain import ids, limits
from shared.sandbox.google_standin import GoogleStandIn
from shared.services.ports import DirectoryChange
from shared.services.rematch import rematch_directory_change, rematch_tenant
from shared.services.sync import SyncDeps, sync_member
from tests.support import sandbox
from tests.support.sandbox import TENANT, FixedClock

pytestmark = pytest.mark.usefixtures("firestore_project")

TOWN_HALL = "town-hall-3000@acme.com"
EXTRA_MEMBERS = [(f"m-x{n:02d}", f"x{n:02d}@northwind-cs.com") for n in range(27)]


def all_members() -> list[tuple[str, str]]:
    return [(m["id"], m["email"]) for m in sandbox.sample_members()] + EXTRA_MEMBERS


@pytest.fixture
def deps(standin: GoogleStandIn, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> SyncDeps:
    """The sample tenant with 27 more members (30 in all), every one connected."""
    from shared.services.directory_import import import_directory

    sandbox.point_env_at(monkeypatch, standin)
    directory = json.loads((sandbox.SAMPLE_DIR / "tenant.json").read_text())
    directory["members"] += [{"id": m, "email": e, "name": f"Member {m}"} for m, e in EXTRA_MEMBERS]
    import_directory(json.dumps(directory), bootstrap.directory_store())
    sandbox.load_sample_calendars(standin)
    for member_id, email in all_members():
        sandbox.connect(standin, member_id, email)
    return replace(bootstrap.sync_deps(), clock=clock, publisher=None)


def town_hall(guests: int = 3000) -> dict[str, Any]:
    """An invitation from Anna to `guests` Acme guests, then the 30 members (past the cap)."""
    attendees = [{"email": "anna@northwind-cs.com", "organizer": True, "responseStatus": "accepted"}]
    attendees += [
        {
            "email": f"guest{n:04d}@acme.com",
            "displayName": f"Guest {n:04d} of Acme",
            "responseStatus": "accepted",
        }
        for n in range(guests)
    ]
    attendees += [{"email": e, "responseStatus": "accepted"} for _, e in all_members()[1:]]
    return {
        "id": "townhall3000",
        "iCalUID": TOWN_HALL,
        "status": "confirmed",
        "summary": "Acme all-hands",
        "updated": "2026-11-20T10:00:00.000Z",
        "start": {"dateTime": "2026-11-25T16:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2026-11-25T17:00:00Z", "timeZone": "UTC"},
        "organizer": {"email": "anna@northwind-cs.com"},
        "attendees": attendees,
    }


def put_on_calendars(standin: GoogleStandIn, event: dict[str, Any], members: list[tuple[str, str]]) -> None:
    for _, email in members:
        standin.calendar(email).upsert_event(event)


def meeting_document(key: str) -> dict[str, Any]:
    db = bootstrap.firestore_client()
    ref = db.collection("tenants").document(TENANT).collection("meetings").document(ids.meeting_id(key))
    return ref.get().to_dict() or {}


def meeting_document_size(key: str) -> int:
    from shared.adapters.firestore.document_size import document_size

    path = ("tenants", TENANT, "meetings", ids.meeting_id(key))
    return document_size(path, meeting_document(key))


def test_a_3000_guest_invitation_on_30_calendars_syncs_stored_once_and_re_matches(
    deps: SyncDeps, standin: GoogleStandIn, clock: FixedClock
) -> None:
    put_on_calendars(standin, town_hall(), all_members())
    summaries = [sync_member(deps, TENANT, member_id) for member_id, _ in all_members()]

    assert {s.outcome for s in summaries} == {"synced"}
    assert sum(s.too_large for s in summaries) == 0
    views = sandbox.stored_interactions()
    acme = views[(TOWN_HALL, "acc-acme")]
    assert acme.member_ids == tuple(sorted(m for m, _ in all_members()))
    (interaction,) = [
        i
        for i in bootstrap.meeting_store().list_interactions(TENANT, "acc-acme")
        if i.meeting_key == TOWN_HALL
    ]
    assert len(interaction.participants) == limits.MAX_GUESTS
    size = meeting_document_size(TOWN_HALL)
    print(f"\nmeeting document of the 3,000-guest, 30-member invitation: {size} bytes")
    assert size < 1_000_000
    assert len(meeting_document(TOWN_HALL)["guests"]) == limits.MAX_GUESTS
    for member_id, _ in all_members():
        state = bootstrap.member_store().get_member(TENANT, member_id).calendar
        assert state.sync_token
        assert state.page_token is None

    # a directory change touching the meeting: re-matching reads and writes it (`directory_changed`)
    rematch = replace(bootstrap.rematch_deps(), clock=clock)
    users = bootstrap.firestore_client().collection("tenants").document(TENANT).collection("users")
    new_user = {"email": "Guest0007@acme.com", "name": "Seven", "accountId": "acc-acme"}
    users.document("u-seven").set(new_user)

    change = DirectoryChange(TENANT, "users", "u-seven", None, new_user)
    summary = rematch_directory_change(rematch, change)

    assert (summary.meetings, summary.updated, summary.too_large) == (1, 1, 0)
    (interaction,) = [
        i
        for i in bootstrap.meeting_store().list_interactions(TENANT, "acc-acme")
        if i.meeting_key == TOWN_HALL
    ]
    seven = next(a for a in interaction.attendees if a.email == "guest0007@acme.com")
    assert (seven.user_id, str(seven.matched_by)) == ("u-seven", "email")
    assert interaction.member_ids == tuple(sorted(m for m, _ in all_members()))
    assert rematch_tenant(rematch, TENANT).changed == 0  # `calsync rematch`: nothing left to do


def huge_event() -> dict[str, Any]:
    """Too large even capped: 2,000 guests with 200-character names and long addresses."""
    event = town_hall(0)
    event.update(id="hugeevent1", iCalUID="huge-1@acme.com", summary="Too big")
    event["attendees"] = [event["attendees"][0]] + [
        {"email": f"g{n:04d}.{'x' * 180}@acme.com", "displayName": "N" * 300, "responseStatus": "accepted"}
        for n in range(2500)
    ]
    return event


def test_a_page_with_an_event_too_large_even_so_writes_the_rest_and_moves_the_cursor(
    deps: SyncDeps, standin: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.calendar("anna@northwind-cs.com").upsert_event(huge_event())
    summary = sync_member(deps, TENANT, "m-anna")

    assert summary.outcome == "synced"
    assert summary.too_large == 1
    anna = {k: v for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    stored = sandbox.stored_interactions()
    assert {k: stored[k] for k in anna} == anna
    assert not [k for k in stored if k[0] == "huge-1@acme.com"]
    state = bootstrap.member_store().get_member(TENANT, "m-anna").calendar
    assert state.sync_token
    assert state.page_token is None
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "too large" in line]
    assert [(r["severity"], r["meeting_key"], r["member_id"]) for r in logged] == [
        ("WARNING", "huge-1@acme.com", "m-anna")
    ]
    assert ".xxxx" not in json.dumps(logged)  # no attendee address
    # the next sync starts from the new cursor and lists nothing again
    assert sync_member(deps, TENANT, "m-anna").events_seen == 0


def test_a_document_firestore_refuses_anyway_is_dropped_and_the_sync_goes_on(
    deps: SyncDeps, standin: GoogleStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The store's own check switched off: the emulator refuses the document, and that refusal
    # must not fail the job (it would be retried until dead-lettered, the cursor never moving).
    monkeypatch.setattr("shared.adapters.firestore.meetings.DOCUMENT_BYTES_ALLOWED", 10**9)
    standin.calendar("anna@northwind-cs.com").upsert_event(huge_event())
    summary = sync_member(deps, TENANT, "m-anna")

    assert summary.outcome == "synced"
    assert summary.too_large == 1
    anna = {k: v for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    stored = sandbox.stored_interactions()
    assert {k: stored[k] for k in anna} == anna
    assert bootstrap.member_store().get_member(TENANT, "m-anna").calendar.sync_token
