"""Listing one member's calendar: the pages of Calendar `events.list`, each written (by the
`PageWriter`) before the cursor is saved past it.

- A full listing (from the start of the backfill window) when the member has no cursor or one
  is forced; otherwise the changes since the sync token, or the rest of a listing a previous
  job left unfinished (its page token).
- Calendar answering 410 (the cursor expired, also in the middle of a full listing) starts a full
  listing right away, a bounded number of times per sync.
- Past the time budget, with a publisher: the position is saved, the lease released and a
  follow-up job continues the listing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.domain.calendar_state import (
    full_listing_started,
    google_email_learned,
    lease_released,
    listing_completed,
    page_saved,
)
from shared.domain.push import next_sync_time
from shared.errors import CursorExpired, TransientError
from shared.services.page_writer import PageWriter
from shared.services.ports import EventPage, JobReason, SyncJob
from shared.services.sync_run import LeasedCalendar, SyncDeps, SyncOutcome, SyncSettings, SyncSummary


class Listing:
    """The listing of one sync: which pages to ask for, and what to save after each."""

    def __init__(
        self,
        deps: SyncDeps,
        settings: SyncSettings,
        calendar: LeasedCalendar,
        summary: SyncSummary,
        *,
        started: float,
        on_page: Callable[[SyncSummary], None] | None = None,
    ) -> None:
        self._deps = deps
        self._settings = settings
        self._calendar = calendar
        self._summary = summary
        self._started = started
        self._on_page = on_page
        self._writer = PageWriter(deps, settings, calendar, summary)

    def run(self, refresh_token: str, *, force_full: bool) -> SyncOutcome:
        """List until the last page (SYNCED) or past the budget (CONTINUED in a new job).
        Raises TransientError (also when Calendar keeps answering 410), ReauthRequired,
        NotFound (tenant), and what the ports raise."""
        state = self._calendar.state
        if force_full or (not state.sync_token and not state.page_token):
            self._start_full_listing()
        elif state.page_token and state.listing_full:
            self._summary.full = True
        restarts = 0
        while True:
            try:
                page = self._next_page(refresh_token)
            except CursorExpired:
                restarts += 1
                if restarts > self._settings.max_listing_restarts:
                    raise TransientError("Calendar kept answering 410 during a full listing") from None
                self._summary.resynced_after_expiry = True
                self._start_full_listing()
                continue
            outcome = self._take(page)
            if outcome is not None:
                return outcome

    def _next_page(self, refresh_token: str) -> EventPage:
        state = self._calendar.state
        return self._deps.calendar.list_page(
            refresh_token,
            sync_token=None if state.listing_full else state.sync_token,
            page_token=state.page_token,
            time_min=state.listing_time_min if state.listing_full else None,
        )

    def _take(self, page: EventPage) -> SyncOutcome | None:
        """Write a page and save where the listing stands; the outcome once it ends."""
        self._summary.pages += 1
        if page.owner_email and not self._calendar.state.google_email:
            self._calendar.save(google_email_learned(page.owner_email))  # after `calsync set-token`
        self._writer.write_page(page.items, page.calendar_time_zone)
        if self._on_page:
            self._on_page(self._summary)
        if page.next_page_token:
            saved = page_saved(
                page.next_page_token,
                lease_expires_at=self._lease_expiry(),
                directory_mark=self._writer.directory_mark(),
            )
            self._calendar.save(saved)
            if self._is_over_budget() and self._deps.publisher is not None:
                return self._continue_in_new_job()
            return None
        if self._calendar.state.listing_full:
            self._writer.reconcile_after_full_listing()
        self._writer.replan_if_directory_moved()
        now = self._deps.clock.now()
        due = next_sync_time(self._calendar.state, now, self._settings.backstop)
        token = page.next_sync_token
        self._calendar.save(
            lambda stored: listing_completed(
                token, now=now, next_sync_at=due, resync_requested=stored.push_resync_requested
            )
        )
        return SyncOutcome.SYNCED

    def _start_full_listing(self) -> None:
        self._summary.full = True
        update = full_listing_started(
            self._calendar.state,
            window_start=self._writer.window_start(),
            lease_expires_at=self._lease_expiry(),
        )
        self._calendar.save(update)
        self._writer.full_listing_started()

    def _lease_expiry(self) -> datetime:
        return self._deps.clock.now() + timedelta(seconds=self._settings.lease_ttl_s)

    def _is_over_budget(self) -> bool:
        return time.monotonic() - self._started > self._settings.budget_s

    def _continue_in_new_job(self) -> SyncOutcome:
        assert self._deps.publisher is not None
        self._calendar.save(lease_released())
        member = self._calendar.member
        self._deps.publisher.publish(
            [SyncJob(self._calendar.tenant_id, member.id, reason=JobReason.CONTINUATION)]
        )
        return SyncOutcome.CONTINUED
