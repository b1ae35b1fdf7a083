"""Exclusions (README.md#exclusions) as pure rules: which entries are valid, which addresses
they cover, and what a plan does with an excluded copy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import exclusions as rules
from shared.domain.directory_file import parse_directory
from shared.domain.directory_keys import meeting_index_keys
from shared.domain.exclusions import Exclusions, exclusions_from, is_copy_excluded, normalize_exclusion
from shared.domain.matching import MatchingContext
from shared.domain.models import (
    Account,
    DirectorySnapshot,
    EventAttendee,
    MeetingRecord,
    MemberCopy,
    StoredMeeting,
    Tenant,
    TenantSettings,
)
from shared.domain.planning import plan_rematch
from shared.domain.settings import settings_from_document, settings_problems

NOW = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
START = NOW - timedelta(days=2)
KEY = "mtg1@google.com"
INITECH = Account("acc-initech", "Initech", ("initech.com",))


def copy(member: str, *emails: str, organizer: str = "") -> MemberCopy:
    return MemberCopy(
        member_id=member,
        event_id="e1",
        meeting_key=KEY,
        updated=NOW - timedelta(days=1),
        title="Sync",
        start=START,
        end=START + timedelta(hours=1),
        time_zone="UTC",
        organizer_email=organizer,
        attendees=tuple(EventAttendee(e, "", "accepted") for e in emails),
    )


def context(
    tenant_list: Exclusions = rules.NO_EXCLUSIONS, members: dict[str, Exclusions] | None = None
) -> MatchingContext:
    tenant = Tenant("t1", "CS", ("cs.example",), TenantSettings(excluded_addresses=tenant_list))
    snapshot = DirectorySnapshot({}, {"initech.com": (INITECH,)})
    return MatchingContext(tenant, frozenset({"ana@cs.example", "ben@cs.example"}), snapshot, members or {})


# --- entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("lawyer@firm.com", "lawyer@firm.com"),
        ("  Lawyer@FIRM.com ", "lawyer@firm.com"),
        ("@firm.com", "@firm.com"),
        ("firm.com", "@firm.com"),
        (" @Firm.COM  ", "@firm.com"),
        ("eu.firm.com", "@eu.firm.com"),
    ],
)
def test_an_entry_is_an_email_or_a_domain_trimmed_and_lower_cased(raw: str, stored: str) -> None:
    assert normalize_exclusion(raw) == stored


@pytest.mark.parametrize("raw", ["", "  ", "@", "not an address", "a@", "@@firm.com", "x@y@z", 42, None])
def test_an_entry_that_is_neither_is_refused(raw: object) -> None:
    assert normalize_exclusion(raw) is None


def test_a_list_names_every_bad_entry_on_its_own_line() -> None:
    parsed, problems = rules.parse_exclusion_list(["ok@firm.com", "bad one", "@", "@firm.com"])
    assert parsed == rules.NO_EXCLUSIONS
    assert problems == [
        'entry "bad one" is neither an email nor a domain (like @firm.com)',
        'entry "@" is neither an email nor a domain (like @firm.com)',
    ]
    assert rules.parse_exclusion_list("x@y.com")[1] == ['must be a list of emails and domains, got "x@y.com"']


def test_stored_form_is_sorted_and_deduplicated() -> None:
    exclusions = exclusions_from(["@Firm.com", "b@x.com", "firm.com", "a@x.com", "A@X.com", 7, "??"])
    assert exclusions.entries() == ["a@x.com", "b@x.com", "@firm.com"]


# --- what an entry covers --------------------------------------------------------------------


def test_an_email_entry_covers_exactly_that_address() -> None:
    exclusions = exclusions_from(["lawyer@firm.com"])
    assert exclusions.covers("lawyer@firm.com")
    assert not exclusions.covers("lawyer2@firm.com")
    assert not exclusions.covers("lawyer@eu.firm.com")
    assert not exclusions.covers("lawyer+x@firm.com")  # nothing else is rewritten


def test_a_domain_entry_covers_the_domain_and_its_subdomains_only() -> None:
    exclusions = exclusions_from(["@firm.com"])
    assert exclusions.covers("ann@firm.com")
    assert exclusions.covers("ann@eu.firm.com")
    assert exclusions.covers("ann@a.b.firm.com")
    assert not exclusions.covers("ann@notfirm.com")
    assert not exclusions.covers("ann@firm.com.evil.io")
    assert not exclusions.covers("")


def test_a_subdomain_entry_does_not_cover_the_parent() -> None:
    exclusions = exclusions_from(["eu.firm.com"])
    assert exclusions.covers("ann@eu.firm.com")
    assert not exclusions.covers("ann@firm.com")


def test_a_copy_is_excluded_by_any_attendee_or_by_the_organizer_alone() -> None:
    exclusions = exclusions_from(["@firm.com"])
    assert is_copy_excluded(copy("m1", "peter@initech.com", "ann@firm.com"), exclusions)
    assert is_copy_excluded(copy("m1", "peter@initech.com", organizer="Boss@FIRM.com"), exclusions)
    assert not is_copy_excluded(copy("m1", "peter@initech.com", organizer="ana@cs.example"), exclusions)
    assert not is_copy_excluded(copy("m1", "ann@firm.com"), rules.NO_EXCLUSIONS)


# --- settings and the import file ------------------------------------------------------------


def test_settings_validate_and_store_the_tenant_list() -> None:
    problems, document = settings_problems({"excludedAddresses": [" Lawyer@Firm.com", "bank.com"]})
    assert problems == []
    assert document == {"excludedAddresses": ["lawyer@firm.com", "@bank.com"]}
    settings = settings_from_document(document)
    assert settings.excluded_addresses == Exclusions(frozenset({"lawyer@firm.com"}), frozenset({"bank.com"}))
    problems, _ = settings_problems({"excludedAddresses": ["x y", "ok.com", "@"]})
    assert len(problems) == 2
    assert all(p.startswith("settings.excludedAddresses entry ") for p in problems)


def test_a_malformed_stored_list_counts_as_absent() -> None:
    assert settings_from_document({"excludedAddresses": "firm.com"}).excluded_addresses.is_empty


NEITHER = "is neither an email nor a domain (like @firm.com)"


def test_import_names_the_member_row_of_every_bad_entry() -> None:
    text = (
        '{"tenant": {"id": "t1", "name": "T"}, "members": ['
        '{"id": "m1", "email": "ana@cs.example", "name": "Ana", "excludedAddresses": ["@bank.com"]},'
        '{"id": "m2", "email": "ben@cs.example", "name": "Ben", "excludedAddresses": ["bad", "worse one"]}]}'
    )
    directory = parse_directory(text)
    # one line per bad row (the import's convention), naming each bad entry
    assert [p for p in directory.problems if "excludedAddresses" in p] == [
        f'members[1] (id "m2"): excludedAddresses entry "bad" {NEITHER}; '
        f'excludedAddresses entry "worse one" {NEITHER}'
    ]
    ok = parse_directory(text.replace('["bad", "worse one"]', "[]"))
    assert ok.problems == ()
    assert ok.members[0].excluded_addresses == exclusions_from(["@bank.com"])
    assert ok.members[1].excluded_addresses == rules.NO_EXCLUSIONS
    member = '{"id": "m1", "email": "a@b.co", "name": "A"}'
    without = parse_directory('{"tenant": {"id": "t1", "name": "T"}, "members": [' + member + "]}")
    assert without.members[0].excluded_addresses is None  # not in the file: left as stored


# --- planning ---------------------------------------------------------------------------------


def stored(*copies: MemberCopy) -> dict[str, StoredMeeting]:
    return {KEY: StoredMeeting(MeetingRecord(KEY, {c.member_id: c for c in copies}), version="v1")}


def test_a_member_exclusion_hides_only_that_members_copy_of_a_shared_meeting() -> None:
    ana, ben = (
        copy("m-ana", "peter@initech.com", "ann@firm.com"),
        copy("m-ben", "peter@initech.com", "ann@firm.com"),
    )
    plan = plan_rematch(stored(ana, ben), context(members={"m-ana": exclusions_from(["@firm.com"])}), NOW)
    (write,) = plan.meeting_writes
    assert write.record is not None
    assert list(write.record.copies) == ["m-ben"]
    (interaction,) = plan.interaction_upserts
    assert interaction.member_ids == ("m-ben",)


def test_a_tenant_exclusion_hides_the_meeting_for_everyone() -> None:
    ana, ben = (
        copy("m-ana", "peter@initech.com"),
        copy("m-ben", "peter@initech.com", organizer="boss@firm.com"),
    )
    plan = plan_rematch(
        stored(ana, replace(ben, attendees=ana.attendees)),
        context(exclusions_from(["peter@initech.com"])),
        NOW,
    )
    (write,) = plan.meeting_writes
    assert write.record is None  # no copy left: the meeting document goes
    assert plan.interaction_upserts == ()


def test_an_exclusion_of_another_member_does_not_apply() -> None:
    ana = copy("m-ana", "peter@initech.com", "ann@firm.com")
    plan = plan_rematch(stored(ana), context(members={"m-ben": exclusions_from(["@firm.com"])}), NOW)
    assert [i.member_ids for i in plan.interaction_upserts] == [("m-ana",)]


def test_the_meeting_index_holds_the_organizer_so_an_organizer_exclusion_finds_it() -> None:
    record = MeetingRecord(KEY, {"m1": copy("m1", "peter@initech.com", organizer="Boss@eu.Firm.com")})
    emails, domains = meeting_index_keys(record)
    assert "boss@eu.firm.com" in emails
    assert {"eu.firm.com", "firm.com"} <= set(domains)
    assert rules.index_keys(exclusions_from(["@firm.com", "x@y.com"])) == (["x@y.com"], ["firm.com"])
