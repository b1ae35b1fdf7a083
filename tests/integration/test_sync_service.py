"""The sync service (README.md#sync-semantics) against the real Firestore emulator, the Secret Manager adapter
and the production Calendar client talking to the Google stand-in."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest

from shared import bootstrap
from shared.adapters.firestore.base import MAX_WRITES_PER_COMMIT
from shared.domain.calendar_state import CalendarUpdate, failure_backoff
from shared.domain.models import ConnectionStatus
from shared.errors import NotFound, TransientError
from shared.sandbox.google_standin import GoogleStandIn
from shared.services.ports import SyncJob
from shared.services.sync import SyncDeps, SyncSettings, sync_member
from tests.support import sandbox
from tests.support.sandbox import TENANT, FixedClock

pytestmark = pytest.mark.usefixtures("firestore_project")


class RecordingPublisher:
    def __init__(self) -> None:
        self.jobs: list[SyncJob] = []

    def publish(self, jobs: Any) -> int:
        batch = list(jobs)
        self.jobs.extend(batch)
        return len(batch)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def deps(
    standin: GoogleStandIn, clock: FixedClock, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> SyncDeps:
    sandbox.point_env_at(monkeypatch, standin)
    sandbox.import_sample_directory()
    sandbox.load_sample_calendars(standin)
    for member in sandbox.sample_members():
        sandbox.connect(standin, member["id"], member["email"])
    base = bootstrap.sync_deps()
    return replace(base, clock=clock, publisher=publisher)


def sync_all(deps: SyncDeps, **kwargs: Any) -> dict[str, Any]:
    return {m["id"]: sync_member(deps, TENANT, m["id"], **kwargs) for m in sandbox.sample_members()}


def calendar_of(standin: GoogleStandIn, member_id: str) -> Any:
    email = next(m["email"] for m in sandbox.sample_members() if m["id"] == member_id)
    return standin.calendar(email)


def test_full_sync_of_the_sample_tenant_gives_the_expected_interactions(deps: SyncDeps) -> None:
    summaries = sync_all(deps)
    assert {s.outcome for s in summaries.values()} == {"synced"}
    assert all(s.full for s in summaries.values())
    assert sandbox.stored_interactions() == sandbox.expected_interactions()


def test_member_state_after_a_successful_sync(deps: SyncDeps, clock: FixedClock) -> None:
    sync_member(deps, TENANT, "m-anna")
    state = bootstrap.member_store().get_member(TENANT, "m-anna").calendar
    assert state.status == ConnectionStatus.CONNECTED
    assert state.last_success_at == clock.now()
    assert state.sync_token
    assert state.page_token is None
    assert state.lease_owner is None
    assert state.consecutive_failures == 0


def test_a_second_sync_without_changes_lists_once_and_writes_nothing(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    sync_all(deps)
    before = sandbox.stored_interactions()
    standin.requests.clear()
    summary = sync_member(deps, TENANT, "m-anna")
    assert standin.requests.count("calendar") == 1
    assert summary.full is False
    assert (summary.events_seen, summary.meetings_written, summary.interactions_written) == (0, 0, 0)
    assert sandbox.stored_interactions() == before


def test_incremental_sync_applies_a_cancellation_a_move_and_an_added_attendee(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    sync_all(deps)
    calendar = calendar_of(standin, "m-anna")
    # S01 cancelled; S02 moved a day later; S04 gets an Acme attendee.
    calendar.cancel_event("66jk4345mnfgb8po35gg07i4mp")
    moved = calendar.get_event("3cv4rgtt85jbtkmbfcjq9nk209")
    moved["start"] = {**moved["start"], "dateTime": "2026-11-26T14:00:00+01:00"}
    moved["end"] = {**moved["end"], "dateTime": "2026-11-26T15:00:00+01:00"}
    calendar.upsert_event(moved)
    grown = calendar.get_event("u50rsukj55flqvustjihlfaa9s")
    grown["attendees"] = [
        *grown["attendees"],
        {"email": "Wile.Coyote@acme.com", "responseStatus": "accepted"},
    ]
    calendar.upsert_event(grown)

    summary = sync_member(deps, TENANT, "m-anna")

    assert summary.full is False
    assert summary.events_seen == 3
    views = sandbox.stored_interactions()
    assert ("66jk4345mnfgb8po35gg07i4mp@google.com", "acc-acme") not in views
    globex = views[("3cv4rgtt85jbtkmbfcjq9nk209@google.com", "acc-globex")]
    assert (globex.date, globex.start) == ("2026-11-26", "2026-11-26T13:00:00Z")
    acme = views[("u50rsukj55flqvustjihlfaa9s@google.com", "acc-acme")]
    assert acme.attendees == (("wile.coyote@acme.com", "u-wile", "email"),)
    assert ("u50rsukj55flqvustjihlfaa9s@google.com", "acc-initech") in views


def test_a_meeting_on_two_calendars_is_one_interaction_until_the_last_member_leaves(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    sync_all(deps)
    shared_keys = [k for k, v in sandbox.stored_interactions().items() if len(v.member_ids) > 1]
    assert shared_keys, "the sample has a meeting held by two members"
    key = shared_keys[0]
    holders = sandbox.stored_interactions()[key].member_ids
    event_ids = {}
    for member_id in holders:
        for event in calendar_of(standin, member_id).events:
            if event.get("iCalUID") == key[0] or event.get("id") == key[0]:
                event_ids[member_id] = event["id"]
    first, second = holders[0], holders[1]
    calendar_of(standin, first).cancel_event(event_ids[first])
    sync_member(deps, TENANT, first)
    assert sandbox.stored_interactions()[key].member_ids == (second,)
    calendar_of(standin, second).cancel_event(event_ids[second])
    sync_member(deps, TENANT, second)
    assert key not in sandbox.stored_interactions()


def test_expired_sync_token_triggers_a_full_resync_that_removes_what_vanished(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    sync_all(deps)
    calendar = calendar_of(standin, "m-anna")
    # The event disappears without a cancellation the member could see, and the cursor expires.
    kept = [e for e in calendar.events if e["id"] != "66jk4345mnfgb8po35gg07i4mp"]
    calendar.clear()
    calendar.load_events(kept)
    calendar.expire_sync_tokens()

    summary = sync_member(deps, TENANT, "m-anna")

    assert summary.resynced_after_expiry
    assert summary.full
    assert summary.outcome == "synced"
    views = sandbox.stored_interactions()
    assert ("66jk4345mnfgb8po35gg07i4mp@google.com", "acc-acme") not in views
    expected = sandbox.expected_interactions()
    del expected[("66jk4345mnfgb8po35gg07i4mp@google.com", "acc-acme")]
    assert views == expected


def test_rate_limits_and_server_errors_are_retried_within_the_job(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    standin.faults.inject("calendar", status=429, count=1)
    standin.faults.inject("calendar", status=403, count=1, reason="rateLimitExceeded")
    standin.faults.inject("calendar", status=503, count=1)
    summary = sync_member(deps, TENANT, "m-anna")
    assert summary.outcome == "synced"
    anna = {k: v for k, v in sandbox.expected_interactions().items() if "m-anna" in v.member_ids}
    stored = sandbox.stored_interactions()
    assert set(anna) <= set(stored)


def test_persistent_failure_records_it_backs_off_and_raises_for_redelivery(
    deps: SyncDeps, standin: GoogleStandIn, clock: FixedClock
) -> None:
    standin.faults.inject("calendar", status=500, count=100)
    with pytest.raises(TransientError):
        sync_member(deps, TENANT, "m-ben", settings=SyncSettings())
    state = bootstrap.member_store().get_member(TENANT, "m-ben").calendar
    assert state.consecutive_failures == 1
    assert state.last_error
    assert "500" in state.last_error
    assert state.next_sync_at == clock.now() + failure_backoff(1)
    assert state.lease_owner is None
    assert state.status == ConnectionStatus.CONNECTED
    standin.faults.clear()
    assert sync_member(deps, TENANT, "m-ben").outcome == "synced"
    assert bootstrap.member_store().get_member(TENANT, "m-ben").calendar.consecutive_failures == 0


def test_revoked_consent_marks_the_member_needs_reauth_and_acknowledges(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    token = bootstrap.token_vault().read(TENANT, "m-chloe")
    standin.revoke_refresh_token(token)
    summary = sync_member(deps, TENANT, "m-chloe")
    assert summary.outcome == "needs_reauth"
    state = bootstrap.member_store().get_member(TENANT, "m-chloe").calendar
    assert state.status == ConnectionStatus.NEEDS_REAUTH
    assert state.consecutive_failures == 1  # invalid_grant counts as a failure
    assert state.last_error
    assert token not in state.last_error
    due = {d.member_id for d in bootstrap.member_store().due_members(sandbox.ANCHOR.replace(year=2030), 100)}
    assert "m-chloe" not in due


def test_a_member_without_a_stored_refresh_token_needs_reauth_and_acknowledges(deps: SyncDeps) -> None:
    bootstrap.token_vault().destroy(TENANT, "m-ben")
    summary = sync_member(deps, TENANT, "m-ben")
    assert summary.outcome == "needs_reauth"
    assert summary.error == "no stored refresh token: reconnect the calendar"
    state = bootstrap.member_store().get_member(TENANT, "m-ben").calendar
    assert state.status == ConnectionStatus.NEEDS_REAUTH
    assert state.last_error == "no stored refresh token: reconnect the calendar"
    assert state.lease_owner is None


def test_a_tenant_deleted_mid_sync_is_not_found_even_when_its_id_mentions_a_token(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    # The member's document and secret exist, its tenant's document does not: the sync must
    # report the unknown tenant (acknowledged as unknown), not mark the member needs_reauth.
    tenant, member_id, email = "token-co", "m-token", "tokyo@token-co.example"
    members = bootstrap.firestore_client().collection("tenants").document(tenant).collection("members")
    members.document(member_id).set({"email": email, "name": "Tokyo"})
    sandbox.connect(standin, member_id, email, tenant=tenant)
    with pytest.raises(NotFound, match="unknown tenant 'token-co'"):
        sync_member(deps, tenant, member_id)
    state = bootstrap.member_store().get_member(tenant, member_id).calendar
    assert state.status == ConnectionStatus.CONNECTED
    assert state.last_error is None
    assert state.lease_owner is None


def test_a_lease_held_by_a_live_worker_makes_a_duplicate_delivery_back_off(
    deps: SyncDeps, clock: FixedClock
) -> None:
    taken = bootstrap.member_store().acquire_lease(TENANT, "m-anna", "other-worker", clock.now(), 300)
    assert taken is not None
    assert sync_member(deps, TENANT, "m-anna").outcome == "busy"
    clock.advance(seconds=301)  # the other worker died: its lease expired
    assert sync_member(deps, TENANT, "m-anna").outcome == "synced"


def test_concurrent_deliveries_for_one_member_give_the_result_of_one(deps: SyncDeps) -> None:
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcomes.append(sync_member(deps, TENANT, "m-anna").outcome)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors or all(isinstance(e, TransientError) for e in errors)
    assert "synced" in outcomes
    sync_member(deps, TENANT, "m-anna")  # whatever raced, one more delivery settles it
    anna = {k for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    assert anna <= set(sandbox.stored_interactions())


def test_a_calendar_larger_than_the_budget_completes_through_continuation_jobs(
    deps: SyncDeps, standin: GoogleStandIn, publisher: RecordingPublisher
) -> None:
    calendar = calendar_of(standin, "m-anna")
    deps = replace(deps, calendar=_small_pages(deps.calendar, 4))
    settings = SyncSettings(budget_s=0.0)  # spend the budget after every page
    jobs = 0
    summary = sync_member(deps, TENANT, "m-anna", settings=settings)
    while summary.outcome == "continued":
        jobs += 1
        assert publisher.jobs[-1] == SyncJob(TENANT, "m-anna", reason="continuation")
        summary = sync_member(deps, TENANT, "m-anna", settings=settings)
    assert summary.outcome == "synced"
    assert jobs >= len(calendar.events) // 4 - 1
    anna = {k: v for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    stored = sandbox.stored_interactions()
    assert {k: stored[k] for k in anna} == anna


def test_a_worker_killed_between_a_page_write_and_the_cursor_save_is_finished_by_the_next(
    deps: SyncDeps,
) -> None:
    class DiesOnCursorSave:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def update_calendar(self, tenant_id: str, member_id: str, changes: Any, **kw: Any) -> None:
            if changes.changed_fields().get("page_token"):
                raise SystemExit("worker killed")  # not an Exception: nothing may catch it
            self.inner.update_calendar(tenant_id, member_id, changes, **kw)

    small = replace(deps, calendar=_small_pages(deps.calendar, 5))
    with pytest.raises(SystemExit):
        sync_member(replace(small, members=DiesOnCursorSave(deps.members)), TENANT, "m-anna")
    # The dead worker's lease blocks until it expires; then the next delivery finishes the job.
    state = bootstrap.member_store().get_member(TENANT, "m-anna").calendar
    assert state.lease_owner is not None
    deps.clock.advance(seconds=SyncSettings().lease_ttl_s + 1)  # type: ignore[attr-defined]
    assert sync_member(small, TENANT, "m-anna").outcome == "synced"
    anna = {k: v for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    stored = sandbox.stored_interactions()
    assert {k: stored[k] for k in anna} == anna


def _small_pages(source: Any, page_size: int) -> Any:
    from shared.adapters.calendar import GoogleCalendarSource

    return GoogleCalendarSource(
        endpoint=source._endpoint,
        token_uri=source._token_uri,
        client_id=source._client_id,
        client_secret=source._client_secret,
        page_size=page_size,
    )


def test_the_first_sync_fills_in_the_google_email_a_set_token_left_empty(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    bootstrap.member_store().update_calendar(TENANT, "m-ben", CalendarUpdate(google_email=None))
    sync_member(deps, TENANT, "m-ben")
    assert (
        bootstrap.member_store().get_member(TENANT, "m-ben").calendar.google_email == "ben@northwind-cs.com"
    )


def test_a_chunk_whose_plan_exceeds_firestore_commit_limits_is_split(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    calendar = calendar_of(standin, "m-anna")
    calendar.clear()
    calendar.load_events(
        {
            "id": f"bulk{n:04d}",
            "iCalUID": f"bulk{n:04d}@google.com",
            "status": "confirmed",
            "summary": f"Acme call {n}",
            "updated": "2026-11-20T10:00:00.000Z",
            "start": {"dateTime": "2026-11-23T10:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-11-23T10:30:00Z", "timeZone": "UTC"},
            "organizer": {"email": "anna@northwind-cs.com", "self": True},
            "attendees": [
                {"email": "anna@northwind-cs.com", "self": True, "responseStatus": "accepted"},
                {"email": "wile.coyote@acme.com", "responseStatus": "accepted"},
            ],
        }
        for n in range(300)
    )
    commits: list[int] = []

    class CountingStore:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def apply(self, tenant_id: str, plan: Any) -> None:
            commits.append(
                len(plan.meeting_writes) + len(plan.interaction_upserts) + len(plan.interaction_deletes)
            )
            self.inner.apply(tenant_id, plan)

    counted = replace(deps, meetings=CountingStore(deps.meetings))
    summary = sync_member(counted, TENANT, "m-anna", settings=SyncSettings(chunk_size=300))

    assert summary.interactions_written == 300
    assert len(commits) > 1
    assert max(commits) <= MAX_WRITES_PER_COMMIT
    assert sum(commits) == 600


def test_a_410_in_the_middle_of_a_full_listing_restarts_it_and_ends_correct(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    calendar = calendar_of(standin, "m-anna")
    paged = replace(deps, calendar=_small_pages(deps.calendar, 4))

    class ExpiresAfterFirstPage:
        """The page token handed out with page 1 is no longer valid when page 2 is asked for."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.pages = 0

        def list_page(self, refresh_token: str, **kwargs: Any) -> Any:
            self.pages += 1
            if self.pages == 2:
                calendar.expire_sync_tokens()
            return self.inner.list_page(refresh_token, **kwargs)

    summary = sync_member(replace(paged, calendar=ExpiresAfterFirstPage(paged.calendar)), TENANT, "m-anna")

    assert summary.outcome == "synced"
    assert summary.resynced_after_expiry
    anna = {k: v for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    stored = sandbox.stored_interactions()
    assert {k: stored[k] for k in anna} == anna


def test_slow_calendar_pages_still_complete(deps: SyncDeps, standin: GoogleStandIn) -> None:
    standin.faults.inject("calendar", count=2, delay_s=1.0)  # slow answers, no error
    summary = sync_member(replace(deps, calendar=_small_pages(deps.calendar, 8)), TENANT, "m-anna")
    assert summary.outcome == "synced"
    assert summary.duration_ms >= 2000
    anna = {k for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    assert anna <= set(sandbox.stored_interactions())


def test_a_worker_paused_past_its_lease_stops_before_writing_meetings(
    deps: SyncDeps, clock: FixedClock
) -> None:
    """The lease fences the meeting commits too: a worker that was paused (GC, a frozen host)
    until its lease expired writes nothing more, while another worker takes over."""

    class PausesBeforeSecondPage:
        def __init__(self, inner: Any) -> None:
            self.inner, self.pages = inner, 0

        def list_page(self, *args: Any, **kwargs: Any) -> Any:
            self.pages += 1
            if self.pages == 2:
                clock.advance(seconds=SyncSettings().lease_ttl_s + 1)
            return self.inner.list_page(*args, **kwargs)

    small = replace(deps, calendar=PausesBeforeSecondPage(_small_pages(deps.calendar, 5)))
    with pytest.raises(TransientError, match="lease"):
        sync_member(small, TENANT, "m-anna")
    meetings = bootstrap.firestore_client().collection("tenants").document(TENANT).collection("meetings")
    written = [m for m in meetings.stream() if "m-anna" in (m.to_dict() or {}).get("holders", [])]
    assert 0 < len(written) <= 5  # only the first page: nothing after the lease ran out
    # the next delivery takes the lease over and finishes the job
    assert (
        sync_member(replace(deps, calendar=_small_pages(deps.calendar, 5)), TENANT, "m-anna").outcome
        == "synced"
    )
    anna = {k: v for k, v in sandbox.expected_interactions().items() if v.member_ids == ("m-anna",)}
    stored = sandbox.stored_interactions()
    assert {k: stored[k] for k in anna} == anna
