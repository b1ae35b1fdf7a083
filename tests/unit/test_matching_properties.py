"""Properties of matching and planning over generated directories and meetings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.emails import email_domain, is_free_mail
from shared.domain.matching import MatchingContext, lookup_keys, match_copy
from shared.domain.models import (
    Account,
    DirectorySnapshot,
    DropReason,
    EventAttendee,
    EventChange,
    EventDropped,
    EventHeld,
    Interaction,
    MatchedBy,
    MeetingRecord,
    MemberCopy,
    Plan,
    StoredMeeting,
    Tenant,
    TenantSettings,
    User,
)
from shared.domain.planning import plan_member_changes

FAST = settings(max_examples=60, deadline=None)
NOW = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
WINDOW_START = NOW - timedelta(days=365)
MEMBER_EMAILS = frozenset({"ana@cs.example", "ana.home@gmail.com", "ben@cs.example"})
INTERNAL = ("cs.example",)
DOMAINS = (
    "cs.example",
    "eu.cs.example",
    "gmail.com",
    "yahoo.com",
    "initech.com",
    "eu.initech.com",
    "logo.co.uk",
    "eu.logo.co.uk",
    "globex.com",
    "unknown-corp.io",
)
ACCOUNT_IDS = ("a1", "a2", "a3", "a4")
KEYS = ("k1", "k2", "k3")

emails = st.one_of(
    st.sampled_from(sorted(MEMBER_EMAILS)),
    st.builds(
        lambda local, domain: f"{local}@{domain}",
        st.sampled_from(["bob", "eve", "fay"]),
        st.sampled_from(DOMAINS),
    ),
)
attendees = st.builds(
    EventAttendee,
    email=emails,
    display_name=st.sampled_from(["", "Bob", "Zoë"]),
    response_status=st.sampled_from(["accepted", "declined", "tentative", "needsAction"]),
    is_organizer=st.booleans(),
)


@st.composite
def directories(draw: st.DrawFn) -> DirectorySnapshot:
    accounts: dict[str, tuple[Account, ...]] = {}
    for account_id in ACCOUNT_IDS:
        for domain in draw(st.lists(st.sampled_from(DOMAINS), max_size=2, unique=True)):
            accounts[domain] = (*accounts.get(domain, ()), Account(account_id, account_id.upper(), (domain,)))
    users: dict[str, tuple[User, ...]] = {}
    for index, (email, account_id) in enumerate(
        draw(st.lists(st.tuples(emails, st.sampled_from(ACCOUNT_IDS)), max_size=5))
    ):
        users[email] = (*users.get(email, ()), User(f"u{index}", email, f"User {index}", account_id))
    return DirectorySnapshot(users, accounts)


tenants = st.builds(
    lambda exclude, allowed: Tenant(
        "t1", "CS", INTERNAL, TenantSettings(exclude_declined=exclude, free_mail_domains_allowed=allowed)
    ),
    st.booleans(),
    st.sampled_from([frozenset(), frozenset({"gmail.com"})]),
)


def make_copy(
    member: str, key: str, people: Sequence[EventAttendee], minutes: int, updated_days: int
) -> MemberCopy:
    start = datetime(2026, 11, 24, 17, tzinfo=UTC)
    return MemberCopy(
        member_id=member,
        event_id=f"{member}-{key}",
        meeting_key=key,
        updated=NOW - timedelta(days=updated_days),
        title=f"{key} by {member}",
        start=start,
        end=start + timedelta(minutes=minutes),
        time_zone="Europe/Berlin",
        organizer_email="ana@cs.example",
        attendees=tuple({a.email: a for a in people}.values()),
    )


copies = st.builds(
    make_copy,
    member=st.sampled_from(["m1", "m2", "m3"]),
    key=st.sampled_from(KEYS),
    people=st.lists(attendees, min_size=1, max_size=6),
    minutes=st.integers(1, 180),
    updated_days=st.integers(0, 3),
)


# --- matching -----------------------------------------------------------------------------------


@FAST
@given(tenant=tenants, directory=directories(), copy=copies, data=st.data())
def test_matching_is_deterministic_and_attendee_order_independent(
    tenant: Tenant, directory: DirectorySnapshot, copy: MemberCopy, data: st.DataObject
) -> None:
    shuffled = replace(copy, attendees=tuple(data.draw(st.permutations(copy.attendees))))
    first = match_copy(copy, MatchingContext(tenant, MEMBER_EMAILS, directory))
    warm = MatchingContext(tenant, MEMBER_EMAILS, directory)
    match_copy(shuffled, warm)
    assert match_copy(shuffled, warm) == first
    assert match_copy(copy, MatchingContext(tenant, MEMBER_EMAILS, directory)) == first


@FAST
@given(tenant=tenants, directory=directories(), copy=copies)
def test_internal_and_free_mail_addresses_never_match_by_domain(
    tenant: Tenant, directory: DirectorySnapshot, copy: MemberCopy
) -> None:
    result = match_copy(copy, MatchingContext(tenant, MEMBER_EMAILS, directory))
    for matched in result.matches:
        assert matched.email not in MEMBER_EMAILS
        assert not email_domain(matched.email).endswith("cs.example")
        if matched.matched_by is MatchedBy.DOMAIN:
            assert not is_free_mail(email_domain(matched.email), tenant.settings.free_mail_domains_allowed)
            assert not directory.users_by_email.get(matched.email)


@FAST
@given(tenant=tenants, directory=directories(), copy=copies)
def test_lookup_keys_are_enough_to_match(
    tenant: Tenant, directory: DirectorySnapshot, copy: MemberCopy
) -> None:
    wanted_emails, wanted_domains = lookup_keys([copy], tenant, MEMBER_EMAILS)
    partial = DirectorySnapshot(
        {e: u for e, u in directory.users_by_email.items() if e in wanted_emails},
        {d: a for d, a in directory.accounts_by_domain.items() if d in wanted_domains},
    )
    full_ctx = MatchingContext(tenant, MEMBER_EMAILS, directory)
    assert match_copy(copy, MatchingContext(tenant, MEMBER_EMAILS, partial)) == match_copy(copy, full_ctx)


# --- planning ---------------------------------------------------------------------------------


class Store:
    def __init__(self) -> None:
        self.meetings: dict[str, StoredMeeting] = {}
        self.interactions: dict[str, Interaction] = {}
        self.version = 0

    def read(self) -> dict[str, StoredMeeting]:
        return {k: self.meetings.get(k) or StoredMeeting(MeetingRecord(k, {}), None) for k in KEYS}

    def apply(self, plan: Plan) -> None:
        for write in plan.meeting_writes:
            current = self.meetings.get(write.meeting_key)
            assert (current.version if current else None) == write.expected
            if write.record is None:
                del self.meetings[write.meeting_key]
            else:
                self.version += 1
                self.meetings[write.meeting_key] = StoredMeeting(write.record, self.version)
        for interaction in plan.interaction_upserts:
            self.interactions[interaction.id] = interaction
        for interaction_id in plan.interaction_deletes:
            del self.interactions[interaction_id]  # deleting what exists: the planner knows what it wrote

    def sync(self, member: str, changes: Sequence[EventChange], ctx: MatchingContext) -> Plan:
        plan = plan_member_changes(
            member_id=member,
            changes=changes,
            stored=self.read(),
            event_keys={},
            context=ctx,
            now=NOW,
            window_start=WINDOW_START,
        )
        self.apply(plan)
        return plan


def as_changes(member: str, picked: Sequence[MemberCopy | str]) -> list[EventChange]:
    """A member's batch: a copy is held; a bare key is dropped (cancelled)."""
    changes: list[EventChange] = []
    for item in picked:
        if isinstance(item, str):
            changes.append(EventDropped(f"{member}-{item}", item, DropReason.CANCELLED))
        else:
            changes.append(
                EventHeld(replace(item, member_id=member, event_id=f"{member}-{item.meeting_key}"))
            )
    return changes


batches = st.lists(st.one_of(copies, st.sampled_from(KEYS)), min_size=1, max_size=5)


@FAST
@given(tenant=tenants, directory=directories(), first=batches, second=batches)
def test_planning_is_idempotent(
    tenant: Tenant,
    directory: DirectorySnapshot,
    first: list[MemberCopy | str],
    second: list[MemberCopy | str],
) -> None:
    ctx = MatchingContext(tenant, MEMBER_EMAILS, directory)
    store = Store()
    store.sync("m1", as_changes("m1", first), ctx)
    store.sync("m1", as_changes("m1", second), ctx)
    assert store.sync("m1", as_changes("m1", second), ctx).is_empty


@FAST
@given(tenant=tenants, directory=directories(), batch=batches)
def test_no_interaction_for_an_account_without_a_matched_attendee(
    tenant: Tenant, directory: DirectorySnapshot, batch: list[MemberCopy | str]
) -> None:
    ctx = MatchingContext(tenant, MEMBER_EMAILS, directory)
    store = Store()
    store.sync("m1", as_changes("m1", batch), ctx)
    for interaction in store.interactions.values():
        assert interaction.attendees
        record = store.meetings[interaction.meeting_key].record
        for member in interaction.member_ids:
            assert interaction.account_id in match_copy(record.copies[member], ctx).account_ids


@FAST
@given(
    tenant=tenants,
    directory=directories(),
    per_member=st.tuples(batches, batches, batches),
    order=st.permutations([0, 1, 2]),
)
def test_copies_from_several_members_commute(
    tenant: Tenant,
    directory: DirectorySnapshot,
    per_member: tuple[list[MemberCopy | str], ...],
    order: list[int],
) -> None:
    members = ("m1", "m2", "m3")

    def final(sequence: Sequence[int]) -> tuple[dict[str, Interaction], dict[str, MeetingRecord]]:
        ctx = MatchingContext(tenant, MEMBER_EMAILS, directory)
        store = Store()
        for index in sequence:
            store.sync(members[index], as_changes(members[index], per_member[index]), ctx)
        return store.interactions, {k: m.record for k, m in store.meetings.items()}

    assert final(order) == final([0, 1, 2])
