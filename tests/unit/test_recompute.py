"""The read -> plan -> apply step the sync and the re-match share (shared.services.recompute):
re-planning after write conflicts, splitting work whose plan does not fit in one commit, and
leaving out work that would make a document too large.
Against a small in-memory meeting store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from shared.domain.models import MeetingRecord, MeetingWrite, Plan, StoredMeeting
from shared.errors import DocumentTooLarge, TransientError, WriteConflict
from shared.services.recompute import read_plan_apply


class MeetingStoreFake:
    """Fits at most `max_writes` meeting writes per commit; the first `conflicts` applies fail."""

    def __init__(
        self, max_writes: int, conflicts: int = 0, oversized: Iterable[str] = (), refused: Iterable[str] = ()
    ) -> None:
        self.max_writes = max_writes
        self.conflicts = conflicts
        self.oversized = frozenset(oversized)  # meetings its size check calls too large
        self.refused = frozenset(refused)  # meetings its database refuses although the check passed
        self.reads: list[list[str]] = []
        self.commits: list[list[str]] = []

    def read_meetings(self, tenant_id: str, meeting_keys: Iterable[str]) -> dict[str, StoredMeeting]:
        keys = sorted(meeting_keys)
        self.reads.append(keys)
        return {k: StoredMeeting(MeetingRecord(k, {}), None) for k in keys}

    def meeting_keys_for_events(
        self, tenant_id: str, member_id: str, event_ids: Iterable[str]
    ) -> dict[str, str]:
        return {}

    def meeting_keys_held_by(self, tenant_id: str, member_id: str) -> list[str]:
        return []

    def apply(self, tenant_id: str, plan: Plan) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise WriteConflict("a meeting changed")
        if any(w.meeting_key in self.refused for w in plan.meeting_writes):
            raise DocumentTooLarge("a document is too large")
        self.commits.append([w.meeting_key for w in plan.meeting_writes])

    def fits_in_one_commit(self, plan: Plan) -> bool:
        return len(plan.meeting_writes) <= self.max_writes

    def oversized_meetings(self, plan: Plan) -> frozenset[str]:
        return frozenset(w.meeting_key for w in plan.meeting_writes) & self.oversized


def _run(
    store: MeetingStoreFake, work: Sequence[str], retries: int = 2, dropped: list[str] | None = None
) -> int:
    """Write one meeting per key of `work`; returns how many conflicts were reported. Work
    left out as too large is added to `dropped`."""
    conflicts = 0

    def too_large(part: Sequence[str], keys: frozenset[str]) -> Sequence[str]:
        if dropped is not None:
            dropped.extend(sorted(keys))
        return [k for k in part if k not in keys]

    def decide(part: Sequence[str], stored: dict[str, StoredMeeting]) -> Plan:
        assert set(part) <= set(stored)
        return Plan(meeting_writes=tuple(MeetingWrite(k, MeetingRecord(k, {}), None) for k in part))

    def count_conflict() -> None:
        nonlocal conflicts
        conflicts += 1

    read_plan_apply(
        store,
        "t1",
        work,
        keys_of=lambda part: part,
        decide=decide,
        apply=lambda _, plan: store.apply("t1", plan),
        too_large=too_large,
        retries=retries,
        on_conflict=count_conflict,
        gave_up="meetings kept changing",
    )
    return conflicts


def test_work_whose_plan_fits_is_read_and_applied_once() -> None:
    store = MeetingStoreFake(max_writes=4)
    _run(store, ["a", "b", "c"])
    assert store.reads == [["a", "b", "c"]]
    assert store.commits == [["a", "b", "c"]]


def test_work_whose_plan_does_not_fit_is_split_in_halves_until_each_fits() -> None:
    store = MeetingStoreFake(max_writes=2)
    _run(store, ["a", "b", "c", "d", "e"])
    assert store.commits == [["a", "b"], ["c"], ["d", "e"]]
    assert all(len(commit) <= store.max_writes for commit in store.commits)
    assert store.reads == [["a", "b", "c", "d", "e"], ["a", "b"], ["c", "d", "e"], ["c"], ["d", "e"]]


def test_a_single_item_is_applied_even_when_its_plan_does_not_fit() -> None:
    store = MeetingStoreFake(max_writes=0)
    _run(store, ["a"])  # nothing left to split: the store's commit says whether it can be written
    assert store.commits == [["a"]]


def test_work_that_concerns_no_meeting_reads_nothing() -> None:
    store = MeetingStoreFake(max_writes=2)
    _run(store, [])
    assert (store.reads, store.commits) == ([], [])


def test_a_write_conflict_reads_and_plans_again() -> None:
    store = MeetingStoreFake(max_writes=4, conflicts=2)
    assert _run(store, ["a", "b"], retries=2) == 2
    assert store.reads == [["a", "b"]] * 3
    assert store.commits == [["a", "b"]]


def test_meetings_that_keep_changing_give_up_with_a_transient_error() -> None:
    store = MeetingStoreFake(max_writes=4, conflicts=10)
    with pytest.raises(TransientError, match="meetings kept changing"):
        _run(store, ["a", "b"], retries=2)
    assert len(store.reads) == 3
    assert store.commits == []


def test_work_that_would_make_a_document_too_large_is_left_out_and_the_rest_written() -> None:
    store = MeetingStoreFake(max_writes=4, oversized={"b"})
    dropped: list[str] = []
    _run(store, ["a", "b", "c"], dropped=dropped)
    assert dropped == ["b"]
    assert store.commits == [["a", "c"]]


def test_a_document_the_database_refuses_is_found_by_splitting_and_left_out() -> None:
    store = MeetingStoreFake(max_writes=4, refused={"c"})
    dropped: list[str] = []
    _run(store, ["a", "b", "c", "d"], dropped=dropped)
    assert dropped == ["c"]
    assert store.commits == [["a", "b"], ["d"]]
