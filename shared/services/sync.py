"""Sync one member's calendar (SPEC §4): the use case behind `sync_worker` and `calsync sync`.

    lease -> token -> pages of events.list -> per chunk: parse, read meetings, look up the
    directory, plan (pure), apply atomically -> cursor saved after what it covers is written.

What raises what (the retry contract):
- returns a `SyncSummary` for every outcome that must be acknowledged: synced, continued in a
  follow-up job, busy (another worker holds the lease), needs_reauth, not connected;
- raises `NotFound` for an unknown tenant or member (acknowledge with an error log);
- raises `TransientError` after recording the failure on the member (Pub/Sub redelivers;
  the scheduler backs the member off).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.domain import events as event_rules
from shared.domain import planning
from shared.domain.models import (
    CalendarState,
    ConnectionStatus,
    DropReason,
    EventChange,
    EventDropped,
    EventHeld,
    EventOutsideWindow,
    Member,
    Plan,
    StoredMeeting,
    Tenant,
    UnmatchedReason,
)
from shared.errors import (
    CursorExpired,
    NotFound,
    PermanentError,
    ReauthRequired,
    TransientError,
)
from shared.services.ports import (
    CalendarSource,
    Clock,
    DirectoryStore,
    JobPublisher,
    JobReason,
    MeetingStore,
    MemberStore,
    SyncJob,
    TokenVault,
)
from shared.services.recompute import DirectoryCache, copies_of, read_plan_apply

MAX_FAILURE_BACKOFF = timedelta(hours=6)
BASE_FAILURE_BACKOFF = timedelta(minutes=2)


@dataclass(frozen=True)
class SyncSettings:
    budget_s: float = 420.0  # stop listing after this, save the position, continue in a new job
    lease_ttl_s: float = 540.0  # longer than the budget plus one page; expires if a worker dies
    chunk_size: int = 200  # events planned and written atomically together
    max_conflict_retries: int = 8  # re-read and re-plan a chunk another member's worker changed
    max_listing_restarts: int = 2  # full listings restarted after a 410 in the middle of one
    # Chunks of one page read, planned and written at once: one chunk's Firestore round trips
    # (directory queries, reads, the commit) overlap another's planning. Chunks touching the same
    # meeting cannot both win: the loser's precondition fails and it re-reads and re-plans.
    chunk_concurrency: int = 2


@dataclass(frozen=True)
class SyncDeps:
    directory: DirectoryStore
    members: MemberStore
    meetings: MeetingStore
    vault: TokenVault
    calendar: CalendarSource
    clock: Clock
    publisher: JobPublisher | None = None  # continuation jobs; None = keep going in-process


@dataclass
class SyncSummary:
    tenant_id: str
    member_id: str
    outcome: str = "synced"  # synced | continued | busy | needs_reauth | not_connected | failed
    full: bool = False
    resynced_after_expiry: bool = False
    pages: int = 0
    events_seen: int = 0
    held: int = 0
    dropped: int = 0
    outside_window: int = 0
    malformed: int = 0
    meetings_written: int = 0
    interactions_written: int = 0
    interactions_deleted: int = 0
    unmatched: int = 0
    ambiguous: int = 0
    conflicts: int = 0
    duration_ms: int = 0
    error: str | None = None

    def as_log_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def failure_backoff(consecutive_failures: int) -> timedelta:
    """How long a member waits before its next scheduled sync after failures (doubling, capped)."""
    if consecutive_failures <= 0:
        return timedelta(0)
    backoff: timedelta = BASE_FAILURE_BACKOFF * 2 ** min(consecutive_failures - 1, 20)
    return min(backoff, MAX_FAILURE_BACKOFF)


MAX_WRITES_PER_COMMIT = 500  # Firestore's documented limit (the emulator does not enforce it)
MAX_COMMIT_BYTES = 8 * 1024 * 1024  # under the 10 MiB request limit, with room for encoding
_BYTES_PER_PERSON = 200  # generous estimate of one attendee entry (email, name, flags) on the wire


def is_too_large_for_one_commit(plan: Plan) -> bool:
    """Whether a plan may exceed Firestore's limits for one atomic commit (writes or bytes)."""
    writes = len(plan.meeting_writes) + len(plan.interaction_upserts) + len(plan.interaction_deletes)
    if writes > MAX_WRITES_PER_COMMIT:
        return True
    people = sum(len(i.participants) + len(i.attendees) for i in plan.interaction_upserts)
    for write in plan.meeting_writes:
        if write.record is not None:
            people += sum(len(c.attendees) for c in write.record.copies.values())
    return people * _BYTES_PER_PERSON > MAX_COMMIT_BYTES


def new_lease_owner() -> str:
    return uuid.uuid4().hex


def sync_member(
    deps: SyncDeps,
    tenant_id: str,
    member_id: str,
    *,
    settings: SyncSettings | None = None,
    full: bool = False,
    owner: str | None = None,
    on_page: Callable[[SyncSummary], None] | None = None,
) -> SyncSummary:
    """Sync one member now. See the module docstring for what it returns and raises."""
    settings = settings or SyncSettings()
    owner = owner or new_lease_owner()
    started = time.monotonic()
    summary = SyncSummary(tenant_id, member_id)
    member = deps.members.acquire_lease(tenant_id, member_id, owner, deps.clock.now(), settings.lease_ttl_s)
    if member is None:
        summary.outcome = "busy"
        return _finish(summary, started)
    run = _MemberSync(deps, settings, tenant_id, member, owner, summary, started, on_page)
    try:
        if member.calendar.status != ConnectionStatus.CONNECTED:
            summary.outcome = "not_connected"
            run.release()
            return _finish(summary, started)
        run.execute(force_full=full)
    except ReauthRequired as error:
        summary.outcome = "needs_reauth"
        summary.error = str(error)
        run.record_reauth(str(error))
    except NotFound as error:
        if "secret" in str(error).lower() or "token" in str(error).lower():
            summary.outcome = "needs_reauth"
            summary.error = "no stored refresh token: reconnect the calendar"
            run.record_reauth(summary.error)
        else:
            run.release_quietly()
            raise
    except (TransientError, PermanentError, Exception) as error:
        summary.outcome = "failed"
        summary.error = _short(error)
        run.record_failure(summary.error)
        if isinstance(error, PermanentError):
            return _finish(summary, started)
        if isinstance(error, TransientError):
            raise
        raise TransientError(f"sync failed: {summary.error}") from error
    return _finish(summary, started)


def _finish(summary: SyncSummary, started: float) -> SyncSummary:
    summary.duration_ms = int((time.monotonic() - started) * 1000)
    return summary


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:300]


class _MemberSync:
    """One run of `sync_member` (state of a single job)."""

    def __init__(
        self,
        deps: SyncDeps,
        settings: SyncSettings,
        tenant_id: str,
        member: Member,
        owner: str,
        summary: SyncSummary,
        started: float,
        on_page: Callable[[SyncSummary], None] | None,
    ) -> None:
        self.deps = deps
        self.settings = settings
        self.tenant_id = tenant_id
        self.member = member
        self.state: CalendarState = member.calendar
        self.owner = owner
        self.summary = summary
        self.started = started
        self.on_page = on_page
        self._window_start: datetime | None = None
        self._directory = DirectoryCache(deps.directory, tenant_id, extra_member_emails=(member.email,))
        self._first_listing_keys: dict[str, str] | None = None  # event id -> meeting key
        self._summary_lock = threading.Lock()

    # --- the listing -----------------------------------------------------------------------

    def execute(self, *, force_full: bool) -> None:
        refresh_token = self.deps.vault.read(self.tenant_id, self.member.id)
        if force_full or (not self.state.sync_token and not self.state.page_token):
            self._start_full_listing()
        elif self.state.page_token and self.state.listing_full:
            self.summary.full = True
        restarts = 0
        while True:
            try:
                page = self.deps.calendar.list_page(
                    refresh_token,
                    sync_token=None if self.state.listing_full else self.state.sync_token,
                    page_token=self.state.page_token,
                    time_min=self.state.listing_time_min if self.state.listing_full else None,
                )
            except CursorExpired:
                restarts += 1
                if restarts > self.settings.max_listing_restarts:
                    raise TransientError("Calendar kept answering 410 during a full listing") from None
                self.summary.resynced_after_expiry = True
                self._start_full_listing()
                continue
            self.summary.pages += 1
            if page.owner_email and not self.state.google_email:
                self._save({"google_email": page.owner_email})  # after `calsync set-token`
            self._apply_items(page.items, page.calendar_time_zone)
            if self.on_page:
                self.on_page(self.summary)
            if page.next_page_token:
                self._save({"page_token": page.next_page_token, **self._lease_renewal()})
                if self._over_budget() and self.deps.publisher is not None:
                    self._continue_in_new_job()
                    return
                continue
            if self.state.listing_full:
                self._reconcile_after_full_listing()
            self._complete(page.next_sync_token)
            return

    def window_start(self) -> datetime:
        """Events starting before this are outside the backfill window (SPEC §2)."""
        if self._window_start is None:
            days = self.tenant().settings.backfill_days
            self._window_start = self.deps.clock.now() - timedelta(days=days)
        return self._window_start

    def _lease_renewal(self) -> dict[str, Any]:
        return {"lease_expires_at": self.deps.clock.now() + timedelta(seconds=self.settings.lease_ttl_s)}

    def _start_full_listing(self) -> None:
        self.summary.full = True
        self._save(
            {
                "sync_token": None,
                "page_token": None,
                "listing_full": True,
                "listing_time_min": self.window_start(),
                "generation": self.state.generation + 1,
                **self._lease_renewal(),
            }
        )
        # A first listing started by this job: every meeting the member holds is one this job
        # stored, so bare cancelled stubs are mapped from memory instead of by a query.
        self._first_listing_keys = {} if self._is_first_listing() else None

    def _over_budget(self) -> bool:
        return time.monotonic() - self.started > self.settings.budget_s

    def _continue_in_new_job(self) -> None:
        assert self.deps.publisher is not None
        self.release()
        self.deps.publisher.publish([SyncJob(self.tenant_id, self.member.id, reason=JobReason.CONTINUATION)])
        self.summary.outcome = "continued"

    def _complete(self, next_sync_token: str | None) -> None:
        now = self.deps.clock.now()
        self._save(
            {
                "sync_token": next_sync_token,
                "page_token": None,
                "listing_full": False,
                "listing_time_min": None,
                "last_sync_at": now,
                "last_success_at": now,
                "last_error": None,
                "consecutive_failures": 0,
                "next_sync_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
            }
        )

    # --- failures --------------------------------------------------------------------------

    def record_reauth(self, message: str) -> None:
        self._save_final(
            {
                "status": ConnectionStatus.NEEDS_REAUTH,
                "last_error": message[:300],
                "last_sync_at": self.deps.clock.now(),
                "lease_owner": None,
                "lease_expires_at": None,
            }
        )

    def record_failure(self, message: str) -> None:
        now = self.deps.clock.now()
        failures = self.state.consecutive_failures + 1
        self._save_final(
            {
                "last_error": message[:300],
                "last_sync_at": now,
                "consecutive_failures": failures,
                "next_sync_at": now + failure_backoff(failures),
                "lease_owner": None,
                "lease_expires_at": None,
            }
        )

    def release(self) -> None:
        self._save({"lease_owner": None, "lease_expires_at": None})

    def release_quietly(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - the original error matters more; the lease expires anyway
            return

    def _save_final(self, changes: dict[str, Any]) -> None:
        try:
            self._save(changes)
        except Exception:  # noqa: BLE001 - never hide the sync's own error; the lease expires anyway
            return

    def _save(self, changes: dict[str, Any]) -> None:
        self.deps.members.update_calendar(self.tenant_id, self.member.id, changes, lease_owner=self.owner)
        self.state = replace(self.state, **changes)

    # --- one page ---------------------------------------------------------------------------

    def tenant(self) -> Tenant:
        return self._directory.tenant()

    def _apply_items(self, items: Sequence[Any], calendar_time_zone: str | None) -> None:
        if not items:
            return
        tenant = self.tenant()
        window_start = self.window_start()
        changes: list[EventChange] = []
        for item in items:
            change = event_rules.event_from_google(
                item,
                member_id=self.member.id,
                member_email=self.member.email,
                calendar_time_zone=calendar_time_zone,
                settings=tenant.settings,
                window_start=window_start,
                generation=self.state.generation,
            )
            self._count(change)
            changes.append(change)
        size = self.settings.chunk_size
        chunks = [changes[start : start + size] for start in range(0, len(changes), size)]
        workers = min(self.settings.chunk_concurrency, len(chunks))
        if workers <= 1:
            for chunk in chunks:
                self._apply_chunk(chunk, window_start)
            return
        self._directory.tenant()  # read once here, before the chunks share the cache
        self._directory.member_emails()
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="calsync-chunk") as pool:
            futures = [pool.submit(self._apply_chunk, chunk, window_start) for chunk in chunks]
            try:
                for future in futures:  # every chunk of the page is written before the cursor moves
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _count(self, change: EventChange) -> None:
        self.summary.events_seen += 1
        if isinstance(change, EventHeld):
            self.summary.held += 1
        elif isinstance(change, EventOutsideWindow):
            self.summary.outside_window += 1
        elif isinstance(change, EventDropped):
            self.summary.dropped += 1
            if change.reason == DropReason.MALFORMED:
                self.summary.malformed += 1

    def _apply_chunk(self, changes: Sequence[EventChange], window_start: datetime) -> None:
        relevant = [c for c in changes if not isinstance(c, EventOutsideWindow)]
        if not relevant:
            return
        stub_ids = [c.event_id for c in relevant if isinstance(c, EventDropped) and c.meeting_key is None]
        first_listing = self._first_listing_keys
        if first_listing is not None:
            first_listing.update(
                (c.copy.event_id, c.copy.meeting_key) for c in relevant if isinstance(c, EventHeld)
            )
        if not stub_ids:
            event_keys: Mapping[str, str] = {}
        elif first_listing is not None:  # the member held nothing but what this job stored
            event_keys = {e: first_listing[e] for e in stub_ids if e in first_listing}
        else:
            event_keys = self.deps.meetings.meeting_keys_for_events(self.tenant_id, self.member.id, stub_ids)
        keys: set[str] = set(event_keys.values())
        for change in relevant:
            if isinstance(change, EventHeld):
                keys.add(change.copy.meeting_key)
            elif isinstance(change, EventDropped) and change.meeting_key:
                keys.add(change.meeting_key)
        if not keys:
            return

        def decide(stored: dict[str, StoredMeeting]) -> Plan | None:
            copies = [c.copy for c in relevant if isinstance(c, EventHeld)] + copies_of(stored.values())
            plan = planning.plan_member_changes(
                member_id=self.member.id,
                changes=relevant,
                stored=stored,
                event_keys=event_keys,
                context=self._directory.context(copies),
                now=self.deps.clock.now(),
                window_start=window_start,
            )
            return None if is_too_large_for_one_commit(plan) and len(relevant) > 1 else plan

        if not self._read_plan_apply(keys, decide, "under this sync (write conflicts); retry later"):
            middle = len(relevant) // 2  # Firestore commit limits: split and plan each half
            self._apply_chunk(relevant[:middle], window_start)
            self._apply_chunk(relevant[middle:], window_start)

    def _is_first_listing(self) -> bool:
        """The member's first full listing (generation 1): it held no meeting before it."""
        return self.state.listing_full and self.state.generation == 1

    def _read_plan_apply(
        self, keys: Collection[str], decide: Callable[[dict[str, StoredMeeting]], Plan | None], when: str
    ) -> bool:
        def count_conflict() -> None:
            with self._summary_lock:
                self.summary.conflicts += 1

        return read_plan_apply(
            self.deps.meetings,
            self.tenant_id,
            keys,
            decide,
            lambda _, plan: self._apply_plan(plan),
            retries=self.settings.max_conflict_retries,
            on_conflict=count_conflict,
            gave_up=f"meetings kept changing {when}",
        )

    def _apply_plan(self, plan: Plan) -> None:
        if plan.is_empty:
            return
        self.deps.meetings.apply(self.tenant_id, plan)
        unmatched = ambiguous = 0
        for write in plan.meeting_writes:
            if write.record is None or write.record.interaction_hashes:
                continue
            for address in write.record.unmatched:
                if address.reason == UnmatchedReason.NO_MATCH:
                    unmatched += 1
                elif address.reason in (UnmatchedReason.AMBIGUOUS_DOMAIN, UnmatchedReason.AMBIGUOUS_USER):
                    ambiguous += 1
        with self._summary_lock:  # chunks of a page are applied from several threads
            self.summary.meetings_written += len(plan.meeting_writes)
            self.summary.interactions_written += len(plan.interaction_upserts)
            self.summary.interactions_deleted += len(plan.interaction_deletes)
            self.summary.unmatched += unmatched
            self.summary.ambiguous += ambiguous

    # --- after a full listing --------------------------------------------------------------

    def _reconcile_after_full_listing(self) -> None:
        """Remove this member from meetings the full listing did not return (older generation).

        A member's first full listing has no copies of an older generation to remove: it is
        skipped (on a first sync this re-read every meeting just written). Only the meetings
        holding a stale copy are matched again."""
        generation = self.state.generation
        if self._is_first_listing():
            return
        keys = self.deps.meetings.meeting_keys_held_by(self.tenant_id, self.member.id)

        def decide(stored: dict[str, StoredMeeting]) -> Plan:
            stale = {
                key: meeting
                for key, meeting in stored.items()
                if (held := meeting.record.copies.get(self.member.id)) is not None
                and held.generation < generation
            }
            if not stale:
                return Plan()
            return planning.plan_member_reconcile(
                self.member.id,
                stale,
                generation,
                self._directory.context(copies_of(stale.values())),
                self.deps.clock.now(),
            )

        for chunk_start in range(0, len(keys), self.settings.chunk_size):
            chunk = keys[chunk_start : chunk_start + self.settings.chunk_size]
            self._read_plan_apply(chunk, decide, "during the full-listing clean-up")


@dataclass
class SyncRunTotals:
    """What `calsync sync` prints at the end."""

    members: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    events_seen: int = 0
    interactions_written: int = 0
    interactions_deleted: int = 0
    unmatched: int = 0
    ambiguous: int = 0

    def add(self, summary: SyncSummary) -> None:
        self.members += 1
        self.outcomes[summary.outcome] = self.outcomes.get(summary.outcome, 0) + 1
        self.events_seen += summary.events_seen
        self.interactions_written += summary.interactions_written
        self.interactions_deleted += summary.interactions_deleted
        self.unmatched += summary.unmatched
        self.ambiguous += summary.ambiguous
