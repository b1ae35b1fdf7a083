"""The Firestore meeting store's size policy: which plans fit in one atomic commit (the emulator
enforces none of Firestore's limits, so this is checked on plans). The sync and the re-match split
their work until each plan fits (shared.services.recompute)."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.adapters.firestore import FirestoreMeetingStore
from shared.adapters.firestore.base import MAX_WRITES_PER_COMMIT
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
    assert FirestoreMeetingStore.fits_in_one_commit(plan)


def test_a_plan_over_500_writes_does_not_fit_one_commit() -> None:
    plan = Plan(
        interaction_upserts=tuple(_interaction(n) for n in range(400)),
        interaction_deletes=tuple(f"d{n}" for n in range(101)),
    )
    assert not FirestoreMeetingStore.fits_in_one_commit(plan)


def test_a_plan_of_huge_meetings_does_not_fit_one_commit_by_size() -> None:
    attendees = tuple(EventAttendee(f"a{n}@x.com", "A", "accepted") for n in range(3000))
    copy = MemberCopy("m", "e", "k", T0, "t", T0, T0, "UTC", "", attendees)
    # ~210 KB each as Firestore counts it (the guest list once, the email index): 60 exceed 8 MiB
    writes = tuple(MeetingWrite(f"k{n}", MeetingRecord(f"k{n}", {"m": copy}), None) for n in range(60))
    assert not FirestoreMeetingStore.fits_in_one_commit(Plan(meeting_writes=writes))
    assert FirestoreMeetingStore.fits_in_one_commit(Plan(meeting_writes=writes[:30]))
