"""The sync service keeps every atomic commit within Firestore's limits (the emulator enforces
none of them, so this is checked on plans)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.models import (
    EventAttendee,
    Interaction,
    InteractionAttendee,
    MatchedBy,
    MeetingRecord,
    MeetingWrite,
    MemberCopy,
    Participant,
    Plan,
)
from shared.services.sync import MAX_WRITES_PER_COMMIT, is_too_large_for_one_commit

T0 = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _interaction(n: int, people: int = 1) -> Interaction:
    person = Participant(f"p{n}@x.com", "", "accepted", internal=False, organizer=False)
    attendee = InteractionAttendee(f"p{n}@x.com", "", None, MatchedBy.DOMAIN, 30)
    return Interaction(
        id=f"i{n}",
        account_id=f"a{n}",
        meeting_key=f"k{n}",
        title="t",
        date="2026-11-24",
        start_time=T0,
        end_time=T0,
        time_zone="UTC",
        duration_minutes=30,
        participants=(person,) * people,
        attendees=(attendee,),
        member_ids=("m",),
        organizer_email="",
        created_at=T0,
        updated_at=T0,
    )


def test_a_plan_within_the_write_limit_fits_one_commit() -> None:
    plan = Plan(interaction_upserts=tuple(_interaction(n) for n in range(MAX_WRITES_PER_COMMIT)))
    assert not is_too_large_for_one_commit(plan)


def test_a_plan_over_500_writes_does_not_fit_one_commit() -> None:
    plan = Plan(
        interaction_upserts=tuple(_interaction(n) for n in range(400)),
        interaction_deletes=tuple(f"d{n}" for n in range(101)),
    )
    assert is_too_large_for_one_commit(plan)


def test_a_plan_of_huge_meetings_does_not_fit_one_commit_by_size() -> None:
    attendees = tuple(EventAttendee(f"a{n}@x.com", "A", "accepted") for n in range(3000))
    copy = MemberCopy("m", "e", "k", T0, "t", T0, T0, "UTC", "", attendees)
    writes = tuple(MeetingWrite(f"k{n}", MeetingRecord(f"k{n}", {"m": copy}), None) for n in range(20))
    assert is_too_large_for_one_commit(Plan(meeting_writes=writes))
