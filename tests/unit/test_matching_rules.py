"""The matching rules (README.md#how-meetings-are-matched-to-accounts), one test per rule and per
exception."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from shared.domain.matching import MatchingContext, lookup_keys, match_copy
from shared.domain.models import (
    Account,
    AttendeeMatch,
    DirectorySnapshot,
    EventAttendee,
    MatchedBy,
    MeetingMatch,
    MemberCopy,
    Tenant,
    TenantSettings,
    UnmatchedAddress,
    UnmatchedReason,
    User,
)

MEMBERS = frozenset({"ana@cs.example", "ana.cs@gmail.com"})
TENANT = Tenant(id="t1", name="CS Org", internal_domains=("cs.example",))

LOGO = Account("acc-logo", "Logo", ("logo.co.uk",))
EU_LOGO = Account("acc-eu", "Logo Europe", ("eu.logo.co.uk",))
GLOBEX = Account("acc-globex", "Globex", ("globex.com",))
GLOBEX_TWIN = Account("acc-globex2", "Globex Holdings", ("globex.com",))
INITECH = Account("acc-initech", "Initech", ("initech.com",))


def copy_with(*attendees: EventAttendee | str, member_id: str = "m1") -> MemberCopy:
    people = tuple(a if isinstance(a, EventAttendee) else EventAttendee(a, "", "accepted") for a in attendees)
    start = datetime(2026, 11, 24, 17, tzinfo=UTC)
    return MemberCopy(
        member_id=member_id,
        event_id="e1",
        meeting_key="k1",
        updated=start,
        title="t",
        start=start,
        end=datetime(2026, 11, 24, 18, tzinfo=UTC),
        time_zone="UTC",
        organizer_email="ana@cs.example",
        attendees=people,
    )


def context(
    *,
    users: Iterable[User] = (),
    accounts: Iterable[Account] = (LOGO, GLOBEX, GLOBEX_TWIN, INITECH),
    settings: TenantSettings | None = None,
    tenant: Tenant = TENANT,
) -> MatchingContext:
    by_email: dict[str, tuple[User, ...]] = {}
    for user in users:
        by_email[user.email] = (*by_email.get(user.email, ()), user)
    by_domain: dict[str, tuple[Account, ...]] = {}
    for account in accounts:
        for domain in account.domains:
            by_domain[domain] = (*by_domain.get(domain, ()), account)
    if settings is not None:
        tenant = Tenant(tenant.id, tenant.name, tenant.internal_domains, settings)
    return MatchingContext(tenant, MEMBERS, DirectorySnapshot(by_email, by_domain))


def match(*attendees: EventAttendee | str, **kwargs: object) -> MeetingMatch:
    return match_copy(copy_with(*attendees), context(**kwargs))  # type: ignore[arg-type]


def by_domain(email: str, account: str) -> AttendeeMatch:
    return AttendeeMatch(email, account, None, MatchedBy.DOMAIN)


# --- internal addresses come first ------------------------------------------------------------


def test_attendee_on_internal_domain_is_not_considered() -> None:
    assert match("zoe@cs.example", accounts=[Account("a", "Self", ("cs.example",))]) == MeetingMatch((), ())


def test_attendee_on_subdomain_of_internal_domain_is_internal() -> None:
    assert match("zoe@eu.cs.example", accounts=[Account("a", "X", ("eu.cs.example",))]) == MeetingMatch(
        (), ()
    )


def test_domain_that_merely_ends_with_internal_domain_text_is_not_internal() -> None:
    result = match("bob@notcs.example", accounts=[Account("a", "Not CS", ("notcs.example",))])
    assert result.matches == (by_domain("bob@notcs.example", "a"),)


def test_member_address_is_internal_even_on_free_mail_domain() -> None:
    assert match("ana.cs@gmail.com") == MeetingMatch((), ())


def test_member_address_is_internal_even_when_a_customer_user_has_it() -> None:
    user = User("u1", "ana.cs@gmail.com", "Ana (as a customer)", "acc-logo")
    assert match("ana.cs@gmail.com", users=[user]) == MeetingMatch((), ())


def test_internal_user_entry_does_not_make_an_internal_domain_attendee_match() -> None:
    user = User("u1", "zoe@cs.example", "Zoe", "acc-logo")
    assert match("zoe@cs.example", users=[user]) == MeetingMatch((), ())


# --- declined attendees --------------------------------------------------------------------------


def test_declined_attendee_is_not_considered_when_exclude_declined_is_on() -> None:
    declined = EventAttendee("bob@globex.com", "Bob", "declined")
    assert match(declined, accounts=[GLOBEX]) == MeetingMatch((), ())


def test_declined_attendee_is_considered_when_exclude_declined_is_off() -> None:
    declined = EventAttendee("bob@globex.com", "Bob", "declined")
    result = match(declined, accounts=[GLOBEX], settings=TenantSettings(exclude_declined=False))
    assert result.matches == (by_domain("bob@globex.com", "acc-globex"),)


def test_tentative_and_needs_action_attendees_are_considered() -> None:
    people = [
        EventAttendee("a@initech.com", "", "tentative"),
        EventAttendee("b@initech.com", "", "needsAction"),
    ]
    assert len(match(*people).matches) == 2


# --- 1. direct match --------------------------------------------------------------------------


def test_direct_match_on_user_email_gives_account_and_user_id() -> None:
    user = User("u1", "bob@gmail.com", "Bob", "acc-initech")
    assert match("bob@gmail.com", users=[user]).matches == (
        AttendeeMatch("bob@gmail.com", "acc-initech", "u1", MatchedBy.EMAIL),
    )


def test_direct_match_wins_over_domain_match() -> None:
    user = User("u1", "carol@globex.com", "Carol", "acc-initech")
    result = match("carol@globex.com", users=[user], accounts=[GLOBEX])
    assert result.matches == (AttendeeMatch("carol@globex.com", "acc-initech", "u1", MatchedBy.EMAIL),)


def test_direct_match_with_several_users_in_one_account_matches_that_account() -> None:
    users = [User("u2", "bob@x.io", "Bob", "acc-initech"), User("u1", "bob@x.io", "Robert", "acc-initech")]
    assert match("bob@x.io", users=users).matches == (
        AttendeeMatch("bob@x.io", "acc-initech", "u1", MatchedBy.EMAIL),
    )


def test_direct_match_ambiguous_across_accounts_is_ambiguous_user() -> None:
    users = [User("u1", "bob@x.io", "Bob", "acc-initech"), User("u2", "bob@x.io", "Bob", "acc-logo")]
    assert match("bob@x.io", users=users) == MeetingMatch(
        (), (UnmatchedAddress("bob@x.io", UnmatchedReason.AMBIGUOUS_USER),)
    )


def test_ambiguous_user_does_not_fall_through_to_domain_match() -> None:
    users = [
        User("u1", "bob@globex.com", "Bob", "acc-initech"),
        User("u2", "bob@globex.com", "Bob", "acc-logo"),
    ]
    result = match("bob@globex.com", users=users, accounts=[GLOBEX])
    assert result.matches == ()
    assert result.unmatched == (UnmatchedAddress("bob@globex.com", UnmatchedReason.AMBIGUOUS_USER),)


def test_emails_are_compared_without_rewriting_plus_tags_or_dots() -> None:
    user = User("u1", "bob@gmail.com", "Bob", "acc-initech")
    result = match("bob+crm@gmail.com", "b.o.b@gmail.com", users=[user])
    assert result.matches == ()
    assert {u.reason for u in result.unmatched} == {UnmatchedReason.FREE_MAIL}


# --- 2. domain match ----------------------------------------------------------------------------


def test_domain_match_with_exactly_one_account() -> None:
    assert match("dave@initech.com").matches == (by_domain("dave@initech.com", "acc-initech"),)


def test_domain_match_with_several_accounts_is_ambiguous_domain() -> None:
    assert match("eve@globex.com") == MeetingMatch(
        (), (UnmatchedAddress("eve@globex.com", UnmatchedReason.AMBIGUOUS_DOMAIN),)
    )


def test_account_listing_a_domain_twice_is_still_one_account() -> None:
    twice = Account("acc-twice", "Twice", ("twice.com", "twice.com"))
    assert match("a@twice.com", accounts=[twice]).matches == (by_domain("a@twice.com", "acc-twice"),)


def test_domain_match_tries_parent_domain() -> None:
    assert match("fay@eu.logo.co.uk").matches == (by_domain("fay@eu.logo.co.uk", "acc-logo"),)


def test_domain_match_tries_parents_one_label_at_a_time() -> None:
    result = match("fay@a.b.initech.com")
    assert result.matches == (by_domain("fay@a.b.initech.com", "acc-initech"),)


def test_domain_match_never_goes_above_the_registrable_domain() -> None:
    suffix_account = Account("acc-couk", "Everyone in the UK", ("co.uk",))
    result = match("gus@other.co.uk", accounts=[suffix_account])
    assert result == MeetingMatch((), (UnmatchedAddress("gus@other.co.uk", UnmatchedReason.NO_MATCH),))


def test_most_specific_domain_level_with_accounts_decides() -> None:
    result = match("fay@eu.logo.co.uk", accounts=[LOGO, EU_LOGO])
    assert result.matches == (by_domain("fay@eu.logo.co.uk", "acc-eu"),)


def test_ambiguous_level_decides_even_when_a_parent_has_one_account() -> None:
    twin = Account("acc-eu2", "Logo EU twin", ("eu.logo.co.uk",))
    result = match("fay@eu.logo.co.uk", accounts=[LOGO, EU_LOGO, twin])
    assert result.unmatched == (UnmatchedAddress("fay@eu.logo.co.uk", UnmatchedReason.AMBIGUOUS_DOMAIN),)


def test_parent_domain_of_subdomain_account_does_not_match_child_account() -> None:
    result = match("hal@logo.co.uk", accounts=[EU_LOGO])
    assert result.unmatched == (UnmatchedAddress("hal@logo.co.uk", UnmatchedReason.NO_MATCH),)


def test_free_mail_domain_never_matches_by_domain() -> None:
    gmail = Account("acc-gmail", "Someone put gmail.com here", ("gmail.com",))
    assert match("ivy@gmail.com", accounts=[gmail]) == MeetingMatch(
        (), (UnmatchedAddress("ivy@gmail.com", UnmatchedReason.FREE_MAIL),)
    )


def test_free_mail_subdomain_never_matches_by_domain() -> None:
    outlook = Account("acc-o", "Outlook", ("outlook.com",))
    assert match("ivy@eu.outlook.com", accounts=[outlook]).matches == ()


def test_free_mail_domain_allowed_by_tenant_matches_by_domain() -> None:
    tiny = Account("acc-tiny", "Tiny Co (uses gmail)", ("gmail.com",))
    settings = TenantSettings(free_mail_domains_allowed=frozenset({"gmail.com"}))
    assert match("ivy@gmail.com", accounts=[tiny], settings=settings).matches == (
        by_domain("ivy@gmail.com", "acc-tiny"),
    )


def test_free_mail_address_still_matches_directly() -> None:
    user = User("u9", "ivy@yahoo.com", "Ivy", "acc-initech")
    assert match("ivy@yahoo.com", users=[user]).matches == (
        AttendeeMatch("ivy@yahoo.com", "acc-initech", "u9", MatchedBy.EMAIL),
    )


# --- 3. unmatched -------------------------------------------------------------------------------


def test_attendee_without_user_or_account_is_unmatched() -> None:
    assert match("joe@unknown-corp.io") == MeetingMatch(
        (), (UnmatchedAddress("joe@unknown-corp.io", UnmatchedReason.NO_MATCH),)
    )


def test_one_meeting_can_match_several_accounts() -> None:
    result = match("dave@initech.com", "fay@logo.co.uk", "ana@cs.example")
    assert result.account_ids == frozenset({"acc-initech", "acc-logo"})


def test_matches_and_unmatched_are_sorted_and_deduplicated() -> None:
    result = match(
        "z@initech.com", "a@initech.com", "z@initech.com", "q@unknown-corp.io", "b@unknown-corp.io"
    )
    assert [m.email for m in result.matches] == ["a@initech.com", "z@initech.com"]
    assert [u.email for u in result.unmatched] == ["b@unknown-corp.io", "q@unknown-corp.io"]


# --- lookup keys and the re-matching index ------------------------------------------------------


def test_lookup_keys_skip_internal_addresses_and_give_domain_levels() -> None:
    copy = copy_with(
        "ana@cs.example", "zoe@eu.cs.example", "ana.cs@gmail.com", "fay@eu.logo.co.uk", "x@gmail.com"
    )
    emails, domains = lookup_keys([copy], TENANT, MEMBERS)
    assert emails == {"fay@eu.logo.co.uk", "x@gmail.com"}
    assert domains == {"eu.logo.co.uk", "logo.co.uk"}


def test_lookup_keys_skip_declined_attendees_when_excluded() -> None:
    copy = copy_with(EventAttendee("bob@globex.com", "", "declined"))
    assert lookup_keys([copy], TENANT, MEMBERS) == (frozenset(), frozenset())


def test_lookup_keys_include_allowed_free_mail_domain() -> None:
    tenant = Tenant(
        "t1", "CS", ("cs.example",), TenantSettings(free_mail_domains_allowed=frozenset({"gmail.com"}))
    )
    assert lookup_keys([copy_with("x@gmail.com")], tenant, MEMBERS) == ({"x@gmail.com"}, {"gmail.com"})


def test_lookup_keys_cover_everything_match_copy_reads() -> None:
    copy = copy_with("fay@eu.logo.co.uk", "dave@initech.com", "bob@gmail.com")
    full = context(users=[User("u1", "bob@gmail.com", "Bob", "acc-logo")])
    emails, domains = lookup_keys([copy], TENANT, MEMBERS)
    partial = MatchingContext(
        TENANT,
        MEMBERS,
        DirectorySnapshot(
            {e: u for e, u in full.directory.users_by_email.items() if e in emails},
            {d: a for d, a in full.directory.accounts_by_domain.items() if d in domains},
        ),
    )
    assert match_copy(copy, partial) == match_copy(copy, full)
