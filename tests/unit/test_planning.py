"""The interaction document (docs/reference.md#the-interaction-document) and the sync rules
(README.md#sync-semantics) as the pure planner sees them: copies in, interactions and writes out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.domain import ids
from shared.domain.matching import MatchingContext
from shared.domain.models import (
    Account,
    DirectorySnapshot,
    DropReason,
    EventAttendee,
    EventChange,
    EventDropped,
    EventHeld,
    EventOutsideWindow,
    Interaction,
    InteractionAttendee,
    MatchedBy,
    MeetingRecord,
    MemberCopy,
    Participant,
    Plan,
    StoredMeeting,
    Tenant,
    UnmatchedAddress,
    UnmatchedReason,
    User,
)
from shared.domain.planning import (
    build_interaction,
    duration_minutes,
    local_date,
    plan_member_changes,
    plan_member_reconcile,
    plan_rematch,
)

NOW = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
WINDOW_START = NOW - timedelta(days=365)
START = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
KEY = "mtg1@google.com"

MEMBERS = frozenset({"ana@cs.example", "ben@cs.example"})
TENANT = Tenant("t1", "CS Org", ("cs.example",))
INITECH = Account("acc-initech", "Initech", ("initech.com",))
LOGO = Account("acc-logo", "Logo", ("logo.co.uk",))
PETER = User("u-peter", "peter@initech.com", "Peter Gibbons", "acc-initech")


def ctx(
    accounts: Iterable[Account] = (INITECH, LOGO), users: Iterable[User] = (PETER,), tenant: Tenant = TENANT
) -> MatchingContext:
    by_domain: dict[str, tuple[Account, ...]] = {}
    for account in accounts:
        for domain in account.domains:
            by_domain[domain] = (*by_domain.get(domain, ()), account)
    by_email: dict[str, tuple[User, ...]] = {}
    for user in users:
        by_email[user.email] = (*by_email.get(user.email, ()), user)
    return MatchingContext(tenant, MEMBERS, DirectorySnapshot(by_email, by_domain))


def attendee(
    email: str, name: str = "", status: str = "accepted", *, organizer: bool = False
) -> EventAttendee:
    return EventAttendee(email, name, status, is_organizer=organizer)


def copy(
    member: str = "m1",
    *attendees: EventAttendee,
    event_id: str = "e1",
    key: str = KEY,
    updated: datetime = NOW - timedelta(days=1),
    title: str = "Kick-off",
    start: datetime = START,
    minutes: float = 60,
    generation: int = 0,
) -> MemberCopy:
    people = attendees or (
        attendee("ana@cs.example", "Ana", organizer=True),
        attendee("peter@initech.com"),
        attendee("fay@logo.co.uk", "Fay"),
        attendee("joe@unknown-corp.io", "Joe"),
    )
    return MemberCopy(
        member_id=member,
        event_id=event_id,
        meeting_key=key,
        updated=updated,
        title=title,
        start=start,
        end=start + timedelta(minutes=minutes),
        time_zone="America/Los_Angeles",
        organizer_email="ana@cs.example",
        attendees=people,
        generation=generation,
    )


def empty(key: str = KEY) -> StoredMeeting:
    return StoredMeeting(MeetingRecord(meeting_key=key, copies={}), None)


def plan(
    changes: Sequence[EventChange],
    stored: Mapping[str, StoredMeeting] | None = None,
    *,
    member: str = "m1",
    context: MatchingContext | None = None,
    now: datetime = NOW,
    event_keys: Mapping[str, str] | None = None,
) -> Plan:
    return plan_member_changes(
        member_id=member,
        changes=changes,
        stored=stored if stored is not None else {KEY: empty()},
        event_keys=event_keys or {},
        context=context or ctx(),
        now=now,
        window_start=WINDOW_START,
    )


class Store:
    """An in-memory meeting store that applies plans like the real one (with versions)."""

    def __init__(self) -> None:
        self.meetings: dict[str, StoredMeeting] = {}
        self.interactions: dict[str, Interaction] = {}
        self._version = 0

    def read(self, *keys: str) -> dict[str, StoredMeeting]:
        return {k: self.meetings.get(k) or empty(k) for k in keys}

    def apply(self, plan: Plan) -> None:
        for write in plan.meeting_writes:
            current = self.meetings.get(write.meeting_key)
            assert (current.version if current else None) == write.expected, "write conflict"
            if write.record is None:
                del self.meetings[write.meeting_key]
            else:
                self._version += 1
                self.meetings[write.meeting_key] = StoredMeeting(write.record, self._version)
        for interaction in plan.interaction_upserts:
            self.interactions[interaction.id] = interaction
        for interaction_id in plan.interaction_deletes:
            self.interactions.pop(interaction_id, None)

    def sync(
        self, member: str, changes: Sequence[EventChange], *, now: datetime = NOW, **kwargs: object
    ) -> Plan:
        keys = {c.copy.meeting_key for c in changes if isinstance(c, EventHeld)}
        keys |= {c.meeting_key for c in changes if isinstance(c, EventDropped) and c.meeting_key}
        result = plan(changes, self.read(*keys), member=member, now=now, **kwargs)  # type: ignore[arg-type]
        self.apply(result)
        return result


def the_interaction(store: Store, account: str, key: str = KEY) -> Interaction:
    return store.interactions[ids.interaction_id(key, account)]


# --- one member, one meeting ------------------------------------------------------------------


def test_new_meeting_creates_one_interaction_per_matched_account() -> None:
    result = plan([EventHeld(copy())])
    assert sorted(i.account_id for i in result.interaction_upserts) == ["acc-initech", "acc-logo"]
    assert result.interaction_deletes == ()


def test_new_meeting_record_must_not_exist_yet() -> None:
    (write,) = plan([EventHeld(copy())]).meeting_writes
    assert write.expected is None
    assert write.record is not None
    assert set(write.record.copies) == {"m1"}


def test_meeting_write_expects_the_version_read() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    version = store.meetings[KEY].version
    (write,) = plan([EventHeld(copy("m2", event_id="e2"))], store.read(KEY), member="m2").meeting_writes
    assert write.expected == version


def test_interaction_fields_follow_spec_section_3() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    initech = the_interaction(store, "acc-initech")
    assert initech == Interaction(
        id=ids.interaction_id(KEY, "acc-initech"),
        account_id="acc-initech",
        meeting_key=KEY,
        title="Kick-off",
        date="2026-11-24",
        start_time=START,
        end_time=START + timedelta(minutes=60),
        time_zone="America/Los_Angeles",
        duration_minutes=60,
        participants=(
            Participant("ana@cs.example", "Ana", "accepted", internal=True, organizer=True),
            Participant("fay@logo.co.uk", "Fay", "accepted", internal=False, organizer=False),
            Participant("joe@unknown-corp.io", "Joe", "accepted", internal=False, organizer=False),
            Participant("peter@initech.com", "Peter Gibbons", "accepted", internal=False, organizer=False),
        ),
        attendees=(
            InteractionAttendee("peter@initech.com", "Peter Gibbons", "u-peter", MatchedBy.EMAIL, 60),
        ),
        member_ids=("m1",),
        organizer_email="ana@cs.example",
        created_at=NOW,
        updated_at=NOW,
    )
    assert initech.type == "Google calendar"


def test_attendees_lists_only_those_matched_to_this_account() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    logo = the_interaction(store, "acc-logo")
    assert logo.attendees == (InteractionAttendee("fay@logo.co.uk", "Fay", None, MatchedBy.DOMAIN, 60),)


def test_meeting_with_no_matched_account_produces_no_interaction_but_keeps_unmatched() -> None:
    only = copy("m1", attendee("ana@cs.example"), attendee("joe@unknown-corp.io"), attendee("g@gmail.com"))
    result = plan([EventHeld(only)])
    assert result.interaction_upserts == ()
    (write,) = result.meeting_writes
    assert write.record is not None
    assert write.record.unmatched == (
        UnmatchedAddress("g@gmail.com", UnmatchedReason.FREE_MAIL),
        UnmatchedAddress("joe@unknown-corp.io", UnmatchedReason.NO_MATCH),
    )


def test_ambiguous_addresses_are_kept_on_the_record() -> None:
    twin = Account("acc-twin", "Initech twin", ("initech.com",))
    only = copy("m1", attendee("bob@initech.com"))
    (write,) = plan([EventHeld(only)], context=ctx(accounts=[INITECH, twin], users=())).meeting_writes
    assert write.record is not None
    assert write.record.unmatched == (UnmatchedAddress("bob@initech.com", UnmatchedReason.AMBIGUOUS_DOMAIN),)


def test_declined_attendee_is_a_participant_but_not_a_matched_attendee() -> None:
    held = copy(
        "m1",
        attendee("ana@cs.example"),
        attendee("peter@initech.com"),
        attendee("x@logo.co.uk", "X", "declined"),
    )
    store = Store()
    store.sync("m1", [EventHeld(held)])
    assert {i.account_id for i in store.interactions.values()} == {"acc-initech"}
    participant_emails = [p.email for p in the_interaction(store, "acc-initech").participants]
    assert "x@logo.co.uk" in participant_emails


def test_outside_window_change_plans_nothing() -> None:
    assert plan([EventOutsideWindow("e1")]).is_empty


# --- idempotence and change detection -----------------------------------------------------------


def test_planning_the_same_changes_again_yields_an_empty_plan() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    assert store.sync("m1", [EventHeld(copy())], now=LATER).is_empty


def test_unchanged_interactions_are_not_re_upserted() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    edited = copy("m1", updated=NOW, generation=7)  # a new listing saw it again: nothing visible changed
    result = store.sync("m1", [EventHeld(edited)], now=LATER)
    assert [i.account_id for i in result.interaction_upserts] == []
    assert len(result.meeting_writes) == 1


def test_changed_interaction_keeps_created_at_and_gets_new_updated_at() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    result = store.sync("m1", [EventHeld(copy(title="Kick-off (moved)", updated=NOW))], now=LATER)
    assert {i.account_id for i in result.interaction_upserts} == {"acc-initech", "acc-logo"}
    for interaction in result.interaction_upserts:
        assert (interaction.created_at, interaction.updated_at) == (NOW, LATER)


def test_account_no_longer_matched_loses_its_interaction() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    without_fay = copy("m1", attendee("ana@cs.example"), attendee("peter@initech.com"), updated=NOW)
    result = store.sync("m1", [EventHeld(without_fay)], now=LATER)
    assert result.interaction_deletes == (ids.interaction_id(KEY, "acc-logo"),)
    assert set(store.interactions) == {ids.interaction_id(KEY, "acc-initech")}


# --- drops -------------------------------------------------------------------------------------


def test_cancelled_event_removes_the_member_and_last_one_leaving_deletes_everything() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    version = store.meetings[KEY].version
    result = store.sync("m1", [EventDropped("e1", KEY, DropReason.CANCELLED)], now=LATER)
    assert set(result.interaction_deletes) == {
        ids.interaction_id(KEY, a) for a in ("acc-initech", "acc-logo")
    }
    assert [(w.record, w.expected) for w in result.meeting_writes] == [(None, version)]
    assert store.meetings == {}
    assert store.interactions == {}


def test_bare_cancelled_stub_is_mapped_by_event_id() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    stub = EventDropped("e1", None, DropReason.CANCELLED)
    result = plan([stub], store.read(KEY), event_keys={"e1": KEY})
    store.apply(result)
    assert store.meetings == {}


def test_bare_cancelled_stub_of_unknown_event_plans_nothing() -> None:
    assert plan([EventDropped("e404", None, DropReason.CANCELLED)], {}).is_empty


def test_drop_of_a_never_stored_meeting_plans_nothing() -> None:
    assert plan([EventDropped("e1", KEY, DropReason.DECLINED)]).is_empty


def test_member_who_declines_is_removed_from_member_ids() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    store.sync("m2", [EventHeld(copy("m2", event_id="e2"))])
    assert the_interaction(store, "acc-initech").member_ids == ("m1", "m2")
    store.sync("m2", [EventDropped("e2", KEY, DropReason.DECLINED)], now=LATER)
    assert the_interaction(store, "acc-initech").member_ids == ("m1",)


def test_drop_of_another_event_with_the_same_key_leaves_the_copy() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    assert store.sync("m1", [EventDropped("other-event", KEY, DropReason.CANCELLED)]).is_empty


def test_copy_stored_before_the_window_is_left_alone() -> None:
    store = Store()
    old_start = WINDOW_START - timedelta(days=1)
    store.sync("m1", [EventHeld(copy(start=old_start))])
    assert store.sync("m1", [EventDropped("e1", KEY, DropReason.CANCELLED)]).is_empty
    assert store.sync("m1", [EventDropped("e1", None, DropReason.CANCELLED)], event_keys={"e1": KEY}).is_empty


def test_later_change_in_the_same_batch_wins() -> None:
    result = plan([EventHeld(copy()), EventDropped("e1", KEY, DropReason.CANCELLED)])
    assert result.is_empty


def test_meeting_missing_from_stored_is_planned_as_new() -> None:
    (write,) = plan([EventHeld(copy())], {}).meeting_writes
    assert write.expected is None


# --- several members' copies ------------------------------------------------------------------


def test_one_interaction_per_account_for_a_meeting_on_several_calendars() -> None:
    store = Store()
    store.sync("m2", [EventHeld(copy("m2", event_id="e2"))])
    store.sync("m1", [EventHeld(copy("m1"))])
    assert len(store.interactions) == 2
    assert the_interaction(store, "acc-logo").member_ids == ("m1", "m2")


def test_details_come_from_the_most_recently_updated_copy() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy("m1", title="New title", updated=NOW))])
    store.sync(
        "m2", [EventHeld(copy("m2", event_id="e2", title="Old title", updated=NOW - timedelta(days=3)))]
    )
    assert the_interaction(store, "acc-initech").title == "New title"


def test_details_ties_on_updated_go_to_the_greatest_member_id() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy("m1", title="from m1"))])
    store.sync("m2", [EventHeld(copy("m2", event_id="e2", title="from m2"))])
    assert the_interaction(store, "acc-initech").title == "from m2"


def test_details_come_only_from_copies_that_produce_the_account() -> None:
    store = Store()
    newer_without_logo = copy("m2", attendee("peter@initech.com"), event_id="e2", title="newer", updated=NOW)
    store.sync("m1", [EventHeld(copy("m1", title="older"))])
    store.sync("m2", [EventHeld(newer_without_logo)])
    assert the_interaction(store, "acc-logo").title == "older"
    assert the_interaction(store, "acc-logo").member_ids == ("m1",)
    assert the_interaction(store, "acc-initech").title == "newer"
    assert the_interaction(store, "acc-initech").member_ids == ("m1", "m2")


def test_when_the_last_member_leaves_the_interactions_are_deleted() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy("m1"))])
    store.sync("m2", [EventHeld(copy("m2", event_id="e2"))])
    store.sync("m1", [EventDropped("e1", KEY, DropReason.CANCELLED)])
    assert len(store.interactions) == 2
    store.sync("m2", [EventDropped("e2", KEY, DropReason.CANCELLED)])
    assert store.interactions == {}
    assert store.meetings == {}


# --- re-matching ------------------------------------------------------------------------------


def test_rematch_adds_interaction_for_newly_matched_account() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    unknown = Account("acc-unknown", "Unknown Corp", ("unknown-corp.io",))
    result = plan_rematch(store.read(KEY), ctx(accounts=[INITECH, LOGO, unknown]), LATER)
    assert [i.account_id for i in result.interaction_upserts] == ["acc-unknown"]
    store.apply(result)
    record = store.meetings[KEY].record
    assert record.unmatched == ()
    assert set(record.interaction_hashes) == {"acc-initech", "acc-logo", "acc-unknown"}


def test_rematch_removes_interaction_of_account_no_longer_matching() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    result = plan_rematch(store.read(KEY), ctx(accounts=[INITECH]), LATER)
    assert result.interaction_deletes == (ids.interaction_id(KEY, "acc-logo"),)


def test_rematch_with_unchanged_directory_is_empty() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    assert plan_rematch(store.read(KEY), ctx(), LATER).is_empty


def test_rematch_new_user_turns_domain_match_into_direct_match() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy())])
    fay = User("u-fay", "fay@logo.co.uk", "Fay Wray", "acc-logo")
    store.apply(plan_rematch(store.read(KEY), ctx(users=[PETER, fay]), LATER))
    (matched,) = the_interaction(store, "acc-logo").attendees
    assert (matched.user_id, matched.matched_by, matched.name) == ("u-fay", MatchedBy.EMAIL, "Fay")


# --- reconcile after a full listing -------------------------------------------------------------


def test_reconcile_removes_copies_the_full_listing_did_not_see_again() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy(generation=1))])
    store.sync("m2", [EventHeld(copy("m2", event_id="e2", generation=1))])
    result = plan_member_reconcile("m1", store.read(KEY), 2, ctx(), LATER)
    store.apply(result)
    assert set(store.meetings[KEY].record.copies) == {"m2"}
    assert the_interaction(store, "acc-initech").member_ids == ("m2",)


def test_reconcile_keeps_copies_seen_in_this_generation() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy(generation=2))])
    assert plan_member_reconcile("m1", store.read(KEY), 2, ctx(), LATER).is_empty


def test_reconcile_leaves_copies_before_the_window_alone() -> None:
    store = Store()
    store.sync("m1", [EventHeld(copy(generation=1, start=NOW - timedelta(days=400)))])
    assert plan_member_reconcile("m1", store.read(KEY), 2, ctx(), NOW).is_empty
    explicit = plan_member_reconcile(
        "m1", store.read(KEY), 2, ctx(), NOW, window_start=NOW - timedelta(days=500)
    )
    assert not explicit.is_empty


def test_reconcile_ignores_other_members_copies() -> None:
    store = Store()
    store.sync("m2", [EventHeld(copy("m2", event_id="e2", generation=0))])
    assert plan_member_reconcile("m1", store.read(KEY), 5, ctx(), LATER).is_empty


# --- the interaction document details ---------------------------------------------------------


def build(
    held: MemberCopy, account: str = "acc-initech", context: MatchingContext | None = None
) -> Interaction:
    from shared.domain.matching import match_copy

    context = context or ctx()
    matches = match_copy(held, context).matches
    return build_interaction(
        held,
        account_id=account,
        matches=matches,
        member_ids=["m2", "m1", "m2"],
        context=context,
        created_at=NOW,
        updated_at=NOW,
    )


def test_member_ids_are_sorted_and_unique() -> None:
    assert build(copy()).member_ids == ("m1", "m2")


def test_date_is_the_local_date_of_the_start_in_the_time_zone() -> None:
    late_utc = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 18:30 on the 24th in Los Angeles
    assert build(copy(start=late_utc)).date == "2026-11-24"
    assert local_date(datetime(2026, 11, 24, 23, 30, tzinfo=UTC), "Asia/Tokyo") == "2026-11-25"
    assert local_date(datetime(2026, 11, 24, 23, 30, tzinfo=UTC), "Pacific/Chatham") == "2026-11-25"


def test_duration_is_rounded_to_the_nearest_minute_half_up() -> None:
    assert duration_minutes(START, START + timedelta(seconds=89)) == 1
    assert duration_minutes(START, START + timedelta(seconds=90)) == 2
    assert duration_minutes(START, START + timedelta(seconds=29, microseconds=999_999)) == 0
    assert duration_minutes(START, START + timedelta(seconds=30)) == 1
    assert duration_minutes(START, START + timedelta(days=2)) == 2880


def test_minutes_in_meeting_is_the_duration() -> None:
    interaction = build(copy(minutes=45.5))
    assert interaction.duration_minutes == 46
    assert [a.minutes_in_meeting for a in interaction.attendees] == [46]


def test_name_is_display_name_else_matched_user_name_else_empty() -> None:
    held = copy(
        "m1", attendee("peter@initech.com", "Pete"), attendee("bill@initech.com"), attendee("ana@cs.example")
    )
    interaction = build(held)
    assert {p.email: p.name for p in interaction.participants} == {
        "peter@initech.com": "Pete",
        "bill@initech.com": "",
        "ana@cs.example": "",
    }
    assert {a.email: a.name for a in interaction.attendees} == {
        "peter@initech.com": "Pete",
        "bill@initech.com": "",
    }
    unnamed = build(copy("m1", attendee("peter@initech.com")))
    assert unnamed.attendees[0].name == "Peter Gibbons"
    assert unnamed.participants[0].name == "Peter Gibbons"


def test_participants_include_internal_and_free_mail_with_flags() -> None:
    held = copy("m1", attendee("ben@cs.example", status="tentative", organizer=True), attendee("p@gmail.com"))
    interaction = build(replace(held, attendees=(*held.attendees, attendee("peter@initech.com"))))
    assert [(p.email, p.internal, p.organizer, p.response_status) for p in interaction.participants] == [
        ("ben@cs.example", True, True, "tentative"),
        ("p@gmail.com", False, False, "accepted"),
        ("peter@initech.com", False, False, "accepted"),
    ]


def test_organizer_email_is_lower_case() -> None:
    assert build(replace(copy(), organizer_email="Ana@CS.Example")).organizer_email == "ana@cs.example"


def test_interaction_id_is_deterministic_per_meeting_and_account() -> None:
    assert build(copy()).id == ids.interaction_id(KEY, "acc-initech")
    assert build(copy(), "acc-logo").id != build(copy()).id
