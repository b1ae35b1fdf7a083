"""Writing one member's listed events into the stored meetings.

    per page: parse every event (pure) -> chunks, a few at once -> per chunk: read the meetings
    it touches -> look up the directory -> plan (pure) -> apply atomically (shared.services.recompute)

and, at the end of a full listing, removing the member from the meetings the listing did not
return again. Everything a page holds is written before the listing saves a cursor past it; an
event whose meeting would be too large to store is dropped (`too_large`), so it never holds the
cursor back (docs/reference.md#size-limits).
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.domain import events as event_rules
from shared.domain import planning
from shared.domain.exclusions import is_copy_excluded
from shared.domain.models import (
    DropReason,
    EventChange,
    EventDropped,
    EventHeld,
    EventOutsideWindow,
    MemberCopy,
    Plan,
    StoredMeeting,
    Tenant,
    UnmatchedReason,
)
from shared.logs import get_logger
from shared.services.recompute import (
    Decide,
    DirectoryCache,
    DropTooLarge,
    KeysOf,
    copies_in_meetings,
    read_plan_apply,
)
from shared.services.sync_run import LeasedCalendar, SyncDeps, SyncSettings, SyncSummary

# The mark of a directory no re-match has ever changed (`Tenant.directory_changed_at` unset).
NO_MARK = datetime.fromtimestamp(0, UTC)

T = TypeVar("T")

# The changes of a chunk that are not outside the backfill window, in listing order.
Relevant = Sequence[EventHeld | EventDropped]


class PageWriter:
    """Writes the pages of one sync of one member and counts what it wrote in the summary.

    Chunks of a page are written from several threads: the summary is only changed under a lock."""

    def __init__(
        self, deps: SyncDeps, settings: SyncSettings, calendar: LeasedCalendar, summary: SyncSummary
    ) -> None:
        self._deps = deps
        self._settings = settings
        self._calendar = calendar
        self._summary = summary
        self._summary_lock = threading.Lock()
        member = calendar.member
        self._directory = DirectoryCache(
            deps.directory,
            calendar.tenant_id,
            extra_member_emails=(member.email,),
            extra_member_exclusions={member.id: member.excluded_addresses},
        )
        self._window_start: datetime | None = None
        # Set when this sync starts the member's first full listing: event id -> meeting key of
        # every copy written since, the only meetings the member can hold.
        self._first_listing_meeting_keys: dict[str, str] | None = None
        self._too_large_seen: set[tuple[str, str]] = set()  # (meeting key, event id) counted
        self._meetings_written: set[str] = set()  # meeting keys of the plans this job applied
        # The directory mark an earlier job of this listing saw (README.md#reliability).
        self._resumed_mark = calendar.state.listing_directory_mark

    def _tenant(self) -> Tenant:
        """Raises NotFound for an unknown tenant, TransientError."""
        return self._directory.tenant()

    def window_start(self) -> datetime:
        """Events starting before this are outside the backfill window (read once per sync)."""
        if self._window_start is None:
            days = self._tenant().settings.backfill_days
            self._window_start = self._deps.clock.now() - timedelta(days=days)
        return self._window_start

    def full_listing_started(self) -> None:
        """Called once the calendar state says a full listing began. On the member's first full
        listing, every meeting the member holds is one this sync stores, so bare cancelled stubs
        are mapped from memory instead of by a query."""
        self._first_listing_meeting_keys = {} if self._is_first_listing() else None
        self._resumed_mark = None

    def _is_first_listing(self) -> bool:
        """The member's first full listing (generation 1): it held no meeting before it."""
        state = self._calendar.state
        return state.listing_full and state.generation == 1

    # --- one page --------------------------------------------------------------------------

    def write_page(self, items: Sequence[Any], calendar_time_zone: str | None) -> None:
        """Write every event of a page. Raises NotFound (tenant), TransientError."""
        if not items:
            return
        changes = [self._parse(item, calendar_time_zone) for item in items]
        size = self._settings.chunk_size
        chunks = [changes[start : start + size] for start in range(0, len(changes), size)]
        workers = min(self._settings.chunk_concurrency, len(chunks))
        if workers <= 1:
            for chunk in chunks:
                self._write_chunk(chunk)
            return
        self._directory.tenant()  # read once here, before the chunks share the cache
        self._directory.member_emails()
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="calsync-chunk") as pool:
            futures = [pool.submit(self._write_chunk, chunk) for chunk in chunks]
            try:
                for future in futures:  # every chunk of the page is written before the cursor moves
                    future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def _parse(self, item: Any, calendar_time_zone: str | None) -> EventChange:
        member = self._calendar.member
        change = event_rules.event_from_google(
            item,
            member_id=member.id,
            member_email=member.email,
            calendar_time_zone=calendar_time_zone,
            settings=self._tenant().settings,
            window_start=self.window_start(),
            generation=self._calendar.state.generation,
        )
        if isinstance(change, EventHeld) and self._is_excluded(change.copy):
            change = EventDropped(change.copy.event_id, change.copy.meeting_key, DropReason.EXCLUDED)
        self._count(change)
        return change

    def _is_excluded(self, copy: MemberCopy) -> bool:
        """Excluded by the tenant's list or the member's own: dropped, not stored (README.md#exclusions)."""
        own = self._calendar.member.excluded_addresses
        return is_copy_excluded(copy, self._tenant().settings.excluded_addresses, own)

    def _count(self, change: EventChange) -> None:
        self._summary.events_seen += 1
        if isinstance(change, EventHeld):
            self._summary.held += 1
        elif isinstance(change, EventOutsideWindow):
            self._summary.outside_window += 1
        elif isinstance(change, EventDropped):
            self._summary.dropped += 1
            if change.reason == DropReason.MALFORMED:
                self._summary.malformed += 1
            elif change.reason == DropReason.EXCLUDED:
                self._summary.excluded += 1

    def _write_chunk(self, changes: Sequence[EventChange]) -> None:
        relevant = [c for c in changes if not isinstance(c, EventOutsideWindow)]
        if not relevant:
            return
        first_listing = self._first_listing_meeting_keys
        if first_listing is not None:
            first_listing.update(
                (c.copy.event_id, c.copy.meeting_key) for c in relevant if isinstance(c, EventHeld)
            )
        stub_meeting_keys = self._meeting_keys_of_stubs(relevant)
        window_start = self.window_start()
        member_id = self._calendar.member.id

        def decide(part: Relevant, stored: dict[str, StoredMeeting]) -> Plan:
            copies = [c.copy for c in part if isinstance(c, EventHeld)] + copies_in_meetings(stored.values())
            return planning.plan_member_changes(
                member_id=member_id,
                changes=part,
                stored=stored,
                event_keys=stub_meeting_keys,
                context=self._directory.context(copies),
                now=self._deps.clock.now(),
                window_start=window_start,
            )

        self._recompute(
            relevant,
            lambda part: _meeting_keys_touched(part, stub_meeting_keys),
            decide,
            "under this sync (write conflicts); retry later",
            self._drop_too_large,
        )

    def _drop_too_large(self, part: Relevant, meeting_keys: frozenset[str]) -> Relevant:
        """The changes with this member's copies of these meetings dropped as too large: the
        member no longer holds them, as if the event could not be read."""
        kept: list[EventHeld | EventDropped] = []
        for change in part:
            if isinstance(change, EventHeld) and change.copy.meeting_key in meeting_keys:
                copy = change.copy
                self._count_too_large(copy.meeting_key, copy.event_id, held=True)
                kept.append(EventDropped(copy.event_id, copy.meeting_key, DropReason.TOO_LARGE))
            else:
                kept.append(change)
        return kept

    def _count_too_large(self, meeting_key: str, event_id: str, *, held: bool) -> None:
        """Count and log an event left out as too large, once per sync (never its attendees)."""
        with self._summary_lock:
            if (meeting_key, event_id) in self._too_large_seen:
                return
            self._too_large_seen.add((meeting_key, event_id))
            self._summary.too_large += 1
            if held:
                self._summary.held -= 1
                self._summary.dropped += 1
        get_logger(component="sync").warning(
            "event too large to store: dropped",
            tenant_id=self._calendar.tenant_id,
            member_id=self._calendar.member.id,
            meeting_key=meeting_key,
            event_id=event_id,
        )

    def _meeting_keys_of_stubs(self, relevant: Relevant) -> Mapping[str, str]:
        """Event id -> meeting key of the bare cancelled stubs (which name no meeting) among
        these changes, for the ones this member holds a copy of."""
        stub_ids = [c.event_id for c in relevant if isinstance(c, EventDropped) and c.meeting_key is None]
        if not stub_ids:
            return {}
        first_listing = self._first_listing_meeting_keys
        if first_listing is not None:  # the member held nothing but what this sync stored
            return {e: first_listing[e] for e in stub_ids if e in first_listing}
        member_id = self._calendar.member.id
        return self._deps.meetings.meeting_keys_for_events(self._calendar.tenant_id, member_id, stub_ids)

    # --- after a full listing --------------------------------------------------------------

    def reconcile_after_full_listing(self) -> None:
        """Remove this member from meetings the full listing did not return (older generation).

        A member's first full listing has no copies of an older generation to remove: it is
        skipped (on a first sync this re-read every meeting just written). Only the meetings
        holding a stale copy are matched again. Raises NotFound (tenant), TransientError."""
        if self._is_first_listing():
            return
        generation = self._calendar.state.generation
        member_id = self._calendar.member.id
        keys = self._deps.meetings.meeting_keys_held_by(self._calendar.tenant_id, member_id)

        def decide(_: Sequence[str], stored: dict[str, StoredMeeting]) -> Plan:
            stale = {
                key: meeting
                for key, meeting in stored.items()
                if (held := meeting.record.copies.get(member_id)) is not None and held.generation < generation
            }
            if not stale:
                return Plan()
            context = self._directory.context(copies_in_meetings(stale.values()))
            return planning.plan_member_reconcile(
                member_id, stale, generation, context, self._deps.clock.now()
            )

        def too_large(part: Sequence[str], meeting_keys: frozenset[str]) -> Sequence[str]:
            for key in sorted(meeting_keys):  # left as stored
                self._count_too_large(key, "", held=False)
            return [k for k in part if k not in meeting_keys]

        for chunk_start in range(0, len(keys), self._settings.chunk_size):
            chunk = keys[chunk_start : chunk_start + self._settings.chunk_size]
            self._recompute(chunk, lambda part: part, decide, "during the full-listing clean-up", too_large)

    # --- read, plan, apply -----------------------------------------------------------------

    def _recompute(
        self,
        work: Sequence[T],
        keys_of: KeysOf[T],
        decide: Decide[T],
        when: str,
        too_large: DropTooLarge[T],
    ) -> None:
        read_plan_apply(
            self._deps.meetings,
            self._calendar.tenant_id,
            work,
            keys_of=keys_of,
            decide=decide,
            apply=lambda _, plan: self._apply_plan(plan),
            too_large=too_large,
            retries=self._settings.max_conflict_retries,
            on_conflict=self._count_conflict,
            gave_up=f"meetings kept changing {when}",
        )

    # --- the directory moved while this listing ran (README.md#reliability) ------------------

    def directory_mark(self) -> datetime | None:
        """The directory-change mark this listing first saw (saved with its cursor, so a job
        resuming the listing knows it), or None when it has looked nothing up yet."""
        saved = self._resumed_mark
        tenant = self._directory.tenant_if_read()
        if saved is not None or tenant is None:
            return saved
        return tenant.directory_changed_at or NO_MARK

    def replan_if_directory_moved(self) -> None:
        """If a re-match after a directory change began since this listing looked the directory
        up, it may have read meetings before this listing wrote them with what it had looked up:
        re-plan them with the directory as it is now (in a resumed listing, every meeting the
        member holds: earlier jobs' writes are not known here). Raises TransientError."""
        for _ in range(3):  # a directory that keeps moving: the next re-match covers the rest
            seen, resumed = self.directory_mark(), self._resumed_mark is not None
            if seen is None:
                return
            now = self._deps.directory.get_tenant(self._calendar.tenant_id).directory_changed_at or NO_MARK
            if now == seen:
                return
            keys = set(self._meetings_written)
            if resumed:
                keys.update(
                    self._deps.meetings.meeting_keys_held_by(
                        self._calendar.tenant_id, self._calendar.member.id
                    )
                )
            self._directory = DirectoryCache(self._deps.directory, self._calendar.tenant_id)
            self._resumed_mark = None  # from here on, what the fresh cache sees counts
            self._replan(sorted(keys))

    def _replan(self, keys: Sequence[str]) -> None:
        def decide(_: Sequence[str], stored: dict[str, StoredMeeting]) -> Plan:
            context = self._directory.context(copies_in_meetings(stored.values()))
            return planning.plan_rematch(stored, context, self._deps.clock.now())

        with self._summary_lock:
            self._summary.replanned += len(keys)
        for start in range(0, len(keys), self._settings.chunk_size):
            chunk = keys[start : start + self._settings.chunk_size]
            self._recompute(chunk, lambda part: part, decide, "re-planned after a directory change", _keep)

    def _apply_plan(self, plan: Plan) -> None:
        if plan.is_empty:
            return
        self._calendar.ensure_held(self._deps.clock.now(), self._settings.lease_fence_s)
        self._deps.meetings.apply(self._calendar.tenant_id, plan)
        with self._summary_lock:
            self._meetings_written.update(write.meeting_key for write in plan.meeting_writes)
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
            self._summary.meetings_written += len(plan.meeting_writes)
            self._summary.interactions_written += len(plan.interaction_upserts)
            self._summary.interactions_deleted += len(plan.interaction_deletes)
            self._summary.unmatched += unmatched
            self._summary.ambiguous += ambiguous

    def _count_conflict(self) -> None:
        with self._summary_lock:
            self._summary.conflicts += 1


def _keep(keys: Sequence[str], too_large: frozenset[str]) -> Sequence[str]:
    """Re-planning leaves a meeting too large to store as it was (as the re-match does)."""
    return [key for key in keys if key not in too_large]


def _meeting_keys_touched(changes: Relevant, stub_meeting_keys: Mapping[str, str]) -> Collection[str]:
    """The meetings these changes concern: those of held copies, of drops naming their meeting,
    and of the stubs among them whose meeting is known."""
    keys: set[str] = set()
    for change in changes:
        if isinstance(change, EventHeld):
            keys.add(change.copy.meeting_key)
        elif change.meeting_key:
            keys.add(change.meeting_key)
        elif change.event_id in stub_meeting_keys:
            keys.add(stub_meeting_keys[change.event_id])
    return keys
