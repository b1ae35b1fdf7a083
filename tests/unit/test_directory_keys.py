"""Which keys a directory change concerns, the derived keys, and how a re-match plan is described
(shared.domain.directory_keys, shared.services.rematch.interaction_changes). Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain import directory_keys as dk
from shared.domain.models import EventAttendee, MeetingRecord, MeetingWrite, MemberCopy, Plan, StoredMeeting
from shared.services.rematch import interaction_changes


def test_user_keys_are_the_normalised_email_and_any_stored_key() -> None:
    assert dk.user_email_key({"email": "  Bob+x@Example.COM "}) == "bob+x@example.com"
    assert dk.user_email_key({"email": 3}) is None
    assert dk.user_email_key({}) is None
    stale = {"email": "new@x.example", "emailKey": "old@x.example"}
    assert dk.document_keys("users", stale) == (frozenset({"new@x.example", "old@x.example"}), frozenset())


def test_account_keys_are_valid_normalised_unique_domains() -> None:
    document = {"domains": ["https://www.Logo.co.uk/", "logo.co.uk", "not a domain", 7, "eu.logo.co.uk"]}
    assert dk.account_domain_keys(document) == ["logo.co.uk", "eu.logo.co.uk"]
    assert dk.account_domain_keys({"domains": "logo.co.uk"}) == []


def test_affected_keys_take_both_versions() -> None:
    old = {"email": "a@x.example", "emailKey": "a@x.example"}
    new = {"email": "B@x.example"}
    assert dk.affected_keys("users", old, new) == (frozenset({"a@x.example", "b@x.example"}), frozenset())
    assert dk.affected_keys("users", None, None) == (frozenset(), frozenset())
    emails, domains = dk.affected_keys("accounts", {"domains": ["a.example"]}, {"domains": ["b.example"]})
    assert (emails, domains) == (frozenset(), frozenset({"a.example", "b.example"}))


def test_needs_derived_update_writes_only_what_differs() -> None:
    assert dk.needs_derived_update("users", {"email": "A@x.example"}) == {"emailKey": "a@x.example"}
    assert dk.needs_derived_update("users", {"email": "a@x.example", "emailKey": "a@x.example"}) == {}
    assert dk.needs_derived_update("users", {"name": "no email", "emailKey": "a@x.example"}) == {
        "emailKey": None
    }
    assert dk.needs_derived_update("accounts", {"domains": ["X.example"]}) == {"domainKeys": ["x.example"]}


def test_the_event_of_our_own_key_fix_is_an_echo_and_nothing_else_is() -> None:
    written = {"email": "A@x.example", "name": "A", "accountId": "acc"}
    fixed = {**written, "emailKey": "a@x.example"}
    assert dk.is_derived_fields_echo("users", written, fixed)
    assert dk.is_derived_fields_echo("users", fixed, fixed)  # a write of nothing new
    assert not dk.is_derived_fields_echo("users", None, fixed)  # a creation
    assert not dk.is_derived_fields_echo("users", fixed, {**fixed, "accountId": "other"})
    assert not dk.is_derived_fields_echo("users", written, {**written, "emailKey": "wrong@x.example"})
    assert not dk.is_derived_fields_echo("users", written, written)  # still missing its key
    account = {"domains": ["x.example"]}
    assert dk.is_derived_fields_echo("accounts", account, {**account, "domainKeys": ["x.example"]})
    assert not dk.is_derived_fields_echo(
        "accounts", account, {"domains": ["y.example"], "domainKeys": ["y.example"]}
    )


def test_matching_unchanged_ignores_fields_matching_never_reads() -> None:
    user = {"email": "a@x.example", "emailKey": "a@x.example", "name": "A", "accountId": "acc"}
    assert dk.is_matching_unchanged("users", user, {**user, "crmId": "123"})
    assert not dk.is_matching_unchanged("users", user, {**user, "name": "B"})


def _stored(key: str, accounts: list[str]) -> StoredMeeting:
    return StoredMeeting(MeetingRecord(key, {}, dict.fromkeys(accounts, "h")), object())


def _write(key: str, accounts: list[str]) -> MeetingWrite:
    return MeetingWrite(key, MeetingRecord(key, {}, dict.fromkeys(accounts, "h2")), object())


def test_interaction_changes_pair_lost_and_gained_accounts_as_moves() -> None:
    stored = {"m1": _stored("m1", ["a"]), "m2": _stored("m2", ["b", "c"]), "m3": _stored("m3", [])}
    plan = Plan(meeting_writes=(_write("m1", ["z"]), _write("m2", ["b"]), _write("m3", ["d", "e"])))
    changes = [
        (c.kind, c.meeting_key, c.account_before, c.account_after) for c in interaction_changes(stored, plan)
    ]
    assert changes == [
        ("moved", "m1", "a", "z"),
        ("removed", "m2", "c", None),
        ("added", "m3", None, "d"),
        ("added", "m3", None, "e"),
    ]


def test_a_deleted_meeting_removes_its_interactions() -> None:
    stored = {"m1": _stored("m1", ["a"])}
    gone = Plan(meeting_writes=(MeetingWrite("m1", None, object()),))
    assert [c.kind for c in interaction_changes(stored, gone)] == ["removed"]


def _copy(member_id: str, *people: tuple[str, str]) -> MemberCopy:
    start = datetime(2026, 11, 24, 17, tzinfo=UTC)
    return MemberCopy(
        member_id=member_id,
        event_id="e1",
        meeting_key="k1",
        updated=start,
        title="t",
        start=start,
        end=start + timedelta(hours=1),
        time_zone="UTC",
        organizer_email="ana@cs.example",
        attendees=tuple(EventAttendee(email, "", status) for email, status in people),
    )


def test_a_meeting_is_indexed_by_every_attendee_email_and_domain_level_of_every_copy() -> None:
    record = MeetingRecord(
        meeting_key="k1",
        copies={
            "m1": _copy(
                "m1",
                ("ana@cs.example", "accepted"),
                ("x@gmail.com", "accepted"),
                ("bob@globex.com", "declined"),
            ),
            "m2": _copy("m2", ("fay@eu.logo.co.uk", "accepted"), ("", "accepted")),
        },
    )
    emails, domains = dk.meeting_index_keys(record)
    # internal, free-mail and declined addresses too: the index does not depend on tenant settings
    assert emails == ["ana@cs.example", "bob@globex.com", "fay@eu.logo.co.uk", "x@gmail.com"]
    assert domains == ["cs.example", "eu.logo.co.uk", "globex.com", "gmail.com", "logo.co.uk"]
    assert dk.meeting_index_keys(MeetingRecord(meeting_key="k2", copies={})) == ([], [])
