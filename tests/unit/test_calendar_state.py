"""The transitions of a member's calendar state (shared.domain.calendar_state). Pure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import calendar_state
from shared.domain.calendar_state import UNSET, CalendarUpdate, failure_backoff
from shared.domain.models import CalendarState, ConnectionStatus, PushStatus

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW_START = NOW - timedelta(days=365)
LEASE_UNTIL = NOW + timedelta(minutes=9)

# A member in the middle of an incremental sync that failed twice before.
SYNCING = CalendarState(
    status=ConnectionStatus.CONNECTED,
    google_email="anna@gmail.com",
    connected_at=NOW - timedelta(days=30),
    last_sync_at=NOW - timedelta(hours=1),
    last_success_at=NOW - timedelta(days=1),
    last_error="Calendar answered 503",
    consecutive_failures=2,
    next_sync_at=NOW,
    sync_token="sync-7",
    page_token="page-3",
    listing_full=False,
    generation=4,
    lease_owner="worker-a",
    lease_expires_at=NOW + timedelta(minutes=5),
)


def test_an_update_has_one_field_per_calendar_state_field() -> None:
    update_fields = [f.name for f in dataclasses.fields(CalendarUpdate)]
    assert update_fields == [f.name for f in dataclasses.fields(CalendarState)]


def test_an_update_refuses_a_name_that_is_not_a_calendar_state_field() -> None:
    with pytest.raises(TypeError, match="nextSyncAt"):
        CalendarUpdate(**{"nextSyncAt": NOW})  # type: ignore[arg-type]


def test_an_empty_update_changes_nothing() -> None:
    assert CalendarUpdate().changed_fields() == {}
    assert CalendarUpdate().apply_to(SYNCING) == SYNCING


def test_an_update_lists_only_the_fields_it_sets_including_those_set_to_none() -> None:
    update = CalendarUpdate(last_error=None, consecutive_failures=0)
    assert update.changed_fields() == {"last_error": None, "consecutive_failures": 0}
    assert update.status is UNSET


def test_applying_an_update_sets_its_fields_and_keeps_the_others() -> None:
    state = CalendarUpdate(sync_token=None, generation=9).apply_to(SYNCING)
    assert state == dataclasses.replace(SYNCING, sync_token=None, generation=9)


def test_applying_an_update_of_any_one_field_sets_exactly_that_field() -> None:
    other = CalendarState(
        status=ConnectionStatus.ERROR,
        google_email="other@gmail.com",
        connected_at=NOW,
        last_sync_at=NOW,
        last_success_at=NOW,
        last_error=None,
        consecutive_failures=0,
        next_sync_at=None,
        sync_token=None,
        page_token=None,
        listing_full=True,
        listing_time_min=WINDOW_START,
        generation=1,
        listing_directory_mark=NOW,
        lease_owner=None,
        lease_expires_at=None,
        push_status=PushStatus.ACTIVE,
        push_expires_at=NOW,
        push_last_notification_at=NOW,
        push_last_error="refused",
        push_channel_id="calsync-1",
        push_resource_id="r-1",
        push_started_at=NOW,
        push_renew_at=NOW,
        push_retry_at=NOW,
        push_queued_at=NOW,
        push_resync_requested=True,
    )
    for f in dataclasses.fields(CalendarState):
        value = getattr(other, f.name)
        assert value != getattr(SYNCING, f.name), f.name
        state = CalendarUpdate(**{f.name: value}).apply_to(SYNCING)
        assert state == dataclasses.replace(SYNCING, **{f.name: value}), f.name


def test_a_full_listing_drops_the_cursor_moves_the_generation_on_and_renews_the_lease() -> None:
    update = calendar_state.full_listing_started(
        SYNCING, window_start=WINDOW_START, lease_expires_at=LEASE_UNTIL
    )
    assert update.changed_fields() == {
        "sync_token": None,
        "page_token": None,
        "listing_full": True,
        "listing_time_min": WINDOW_START,
        "generation": 5,
        "listing_directory_mark": None,
        "lease_expires_at": LEASE_UNTIL,
    }
    assert update.apply_to(SYNCING).lease_owner == "worker-a"


def test_a_saved_page_moves_the_page_token_renews_the_lease_and_keeps_the_directory_mark() -> None:
    update = calendar_state.page_saved("page-4", lease_expires_at=LEASE_UNTIL, directory_mark=NOW)
    assert update.changed_fields() == {
        "page_token": "page-4",
        "lease_expires_at": LEASE_UNTIL,
        "listing_directory_mark": NOW,
    }


def test_a_completed_listing_saves_the_sync_token_clears_the_failures_and_releases_the_lease() -> None:
    listing = dataclasses.replace(SYNCING, listing_full=True, listing_time_min=WINDOW_START)
    state = calendar_state.listing_completed("sync-8", now=NOW).apply_to(listing)
    assert state == dataclasses.replace(
        SYNCING,
        sync_token="sync-8",
        page_token=None,
        listing_full=False,
        listing_time_min=None,
        last_sync_at=NOW,
        last_success_at=NOW,
        last_error=None,
        consecutive_failures=0,
        next_sync_at=NOW,
        lease_owner=None,
        lease_expires_at=None,
    )


def test_a_failed_sync_counts_the_failure_backs_off_keeps_the_cursor_and_releases_the_lease() -> None:
    state = calendar_state.sync_failed(SYNCING, "Calendar answered 500", now=NOW).apply_to(SYNCING)
    assert state == dataclasses.replace(
        SYNCING,
        last_error="Calendar answered 500",
        last_sync_at=NOW,
        consecutive_failures=3,
        next_sync_at=NOW + timedelta(minutes=8),
        lease_owner=None,
        lease_expires_at=None,
    )


def test_a_failure_message_is_kept_to_300_characters() -> None:
    update = calendar_state.sync_failed(SYNCING, "x" * 1000, now=NOW)
    assert update.last_error == "x" * 300


def test_the_failure_backoff_doubles_from_two_minutes_up_to_six_hours() -> None:
    assert failure_backoff(0) == timedelta(0)
    assert [failure_backoff(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (2, 4, 8)]
    assert failure_backoff(8) == timedelta(hours=4, minutes=16)
    assert failure_backoff(9) == timedelta(hours=6)
    assert failure_backoff(10_000) == timedelta(hours=6)


def test_needing_reauth_stops_the_scheduled_syncs_counts_a_failure_and_releases_the_lease() -> None:
    state = calendar_state.reauth_needed(SYNCING, "invalid_grant: " + "y" * 400, now=NOW).apply_to(SYNCING)
    assert state == dataclasses.replace(
        SYNCING,
        status=ConnectionStatus.NEEDS_REAUTH,
        last_error=("invalid_grant: " + "y" * 400)[:300],
        last_sync_at=NOW,
        consecutive_failures=3,
        lease_owner=None,
        lease_expires_at=None,
    )


def test_releasing_the_lease_changes_nothing_else() -> None:
    state = calendar_state.lease_released().apply_to(SYNCING)
    assert state == dataclasses.replace(SYNCING, lease_owner=None, lease_expires_at=None)


def test_a_learned_google_email_is_the_only_change() -> None:
    update = calendar_state.google_email_learned("anna@northwind-cs.com")
    assert update.changed_fields() == {"google_email": "anna@northwind-cs.com"}


def test_connecting_the_same_google_account_again_keeps_the_cursor() -> None:
    state = calendar_state.connected(SYNCING, "anna@gmail.com", now=NOW).apply_to(SYNCING)
    assert state == dataclasses.replace(
        SYNCING,
        status=ConnectionStatus.CONNECTED,
        connected_at=NOW,
        last_error=None,
        consecutive_failures=0,
        next_sync_at=NOW,
    )


def test_connecting_another_google_account_resets_the_cursor() -> None:
    listing = dataclasses.replace(SYNCING, listing_full=True, listing_time_min=WINDOW_START)
    state = calendar_state.connected(listing, "anna.b@gmail.com", now=NOW).apply_to(listing)
    assert (state.google_email, state.sync_token, state.page_token) == ("anna.b@gmail.com", None, None)
    assert (state.listing_full, state.listing_time_min) == (False, None)
    assert (state.status, state.connected_at, state.consecutive_failures) == (
        ConnectionStatus.CONNECTED,
        NOW,
        0,
    )
    assert state.generation == 4  # copies of the old account's listing become stale at the next one


def test_connecting_an_unknown_google_account_resets_the_cursor_and_the_push_channel() -> None:
    update = calendar_state.connected(SYNCING, None, now=NOW)
    assert update.changed_fields() == {
        "status": ConnectionStatus.CONNECTED,
        "google_email": None,
        "connected_at": NOW,
        "last_error": None,
        "consecutive_failures": 0,
        "next_sync_at": NOW,
        "sync_token": None,
        "page_token": None,
        "listing_full": False,
        "listing_time_min": None,
        "listing_directory_mark": None,
        "lease_owner": None,
        "lease_expires_at": None,
        **calendar_state.channel_retired().changed_fields(),
    }


def test_a_consent_not_given_records_only_the_reason() -> None:
    update = calendar_state.consent_not_given("Google consent was declined")
    assert update.changed_fields() == {"last_error": "Google consent was declined"}


def test_disconnecting_stops_the_syncs_and_forgets_the_failures() -> None:
    state = calendar_state.disconnected().apply_to(SYNCING)
    assert state == dataclasses.replace(
        SYNCING,
        status=ConnectionStatus.DISCONNECTED,
        last_error=None,
        consecutive_failures=0,
        next_sync_at=None,
    )


@pytest.mark.parametrize(("skew_a_s", "skew_b_s"), [(-120, 120), (120, -120), (0, 120), (-120, 0), (0, 0)])
def test_the_default_fence_stops_a_worker_before_another_can_take_its_lease(
    skew_a_s: int, skew_b_s: int
) -> None:
    """Worker A takes the lease at real time 0 with its clock `skew_a_s` off; worker B, its clock
    `skew_b_s` off, may take it over once it has expired by B's clock. A must have stopped writing
    by then (by A's clock), for clocks each up to 2 minutes off."""
    from shared.services.sync_run import SyncSettings

    settings = SyncSettings()
    start = NOW
    lease_until = start + timedelta(seconds=skew_a_s + settings.lease_ttl_s)  # A's clock
    fence = timedelta(seconds=settings.lease_fence_s)
    takeover = lease_until - timedelta(seconds=skew_b_s)  # real time at which B's clock passes it
    for real_s in range(0, int(settings.lease_ttl_s) + 300, 5):
        real = start + timedelta(seconds=real_s)
        if real > takeover:  # B may write now: A must not
            assert not calendar_state.is_lease_held(
                dataclasses.replace(SYNCING, lease_expires_at=lease_until),
                real + timedelta(seconds=skew_a_s),
                margin=fence,
            ), real_s
