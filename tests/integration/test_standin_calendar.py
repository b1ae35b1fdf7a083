"""The stand-in's Calendar v3 `events.list`, driven through googleapiclient with google-auth
credentials that refresh against the stand-in's token endpoint."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from google.auth.exceptions import RefreshError
from googleapiclient.errors import HttpError

from shared.sandbox.emulators import free_port
from shared.sandbox.google_standin import GoogleStandIn
from tests.support.google_clients import calendar_service

EMAIL = "anna@northwind-cs.com"


@pytest.fixture
def service(standin: GoogleStandIn) -> Any:
    return calendar_service(standin, standin.issue_refresh_token(EMAIL))


def event(event_id: str, day: int, hour: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "status": "confirmed",
        "summary": f"Meeting {event_id}",
        "iCalUID": f"{event_id}@google.com",
        "start": {"dateTime": f"2026-11-{day:02d}T{hour:02d}:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": f"2026-11-{day:02d}T{hour:02d}:30:00Z", "timeZone": "UTC"},
        "attendees": [{"email": EMAIL, "self": True, "responseStatus": "accepted"}],
        "updated": "2026-11-01T00:00:00.000Z",
        **extra,
    }


def list_all(service: Any, **params: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page of a listing: (items, raw pages)."""
    pages: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = service.events().list(calendarId="primary", pageToken=token, **params).execute()
        pages.append(page)
        token = page.get("nextPageToken")
        if not token:
            return [item for p in pages for item in p["items"]], pages


def error_reason(error: HttpError) -> str:
    return str(json.loads(error.content)["error"]["errors"][0]["reason"])


def test_full_listing_pages_and_sync_token_only_on_last_page(standin: GoogleStandIn, service: Any) -> None:
    calendar = standin.calendar(EMAIL)
    calendar.time_zone = "Europe/Berlin"
    calendar.load_events([event(f"ev{i:02d}", 1 + i % 28) for i in range(12)])

    items, pages = list_all(service, singleEvents=True, showDeleted=True, maxResults=5)
    assert len(pages) == 3
    assert sorted(i["id"] for i in items) == [f"ev{i:02d}" for i in range(12)]
    for page in pages[:-1]:
        assert "nextPageToken" in page
        assert "nextSyncToken" not in page
    assert "nextSyncToken" in pages[-1]
    assert "nextPageToken" not in pages[-1]
    first = pages[0]
    assert first["kind"] == "calendar#events"
    assert first["timeZone"] == "Europe/Berlin"
    assert first["accessRole"] == "owner"
    assert items[0]["kind"] == "calendar#event"
    assert items[0]["etag"].startswith('"')


def test_incremental_sync_returns_changes_with_minimal_cancelled_items(
    standin: GoogleStandIn, service: Any
) -> None:
    calendar = standin.calendar(EMAIL)
    calendar.load_events([event("keep", 2), event("edit", 3), event("gone", 4), event("deleted", 5)])
    calendar.load_events(
        [
            event(
                "series_20261106T100000Z",
                6,
                recurringEventId="series",
                originalStartTime={"dateTime": "2026-11-06T10:00:00Z", "timeZone": "UTC"},
            )
        ]
    )
    _, pages = list_all(service, singleEvents=True, showDeleted=True)
    sync_token = pages[-1]["nextSyncToken"]

    edited = calendar.upsert_event({**event("edit", 3), "summary": "Renamed"})
    assert edited["sequence"] == 1
    assert edited["updated"] > "2026-11-01"
    calendar.cancel_event("gone")
    calendar.delete_event("deleted")
    calendar.cancel_event("series_20261106T100000Z")
    calendar.upsert_event(event("new", 7))

    items, pages = list_all(service, syncToken=sync_token, singleEvents=True, showDeleted=True)
    by_id = {i["id"]: i for i in items}
    assert set(by_id) == {"edit", "gone", "deleted", "series_20261106T100000Z", "new"}
    assert by_id["edit"]["summary"] == "Renamed"
    assert set(by_id["gone"]) == {"kind", "etag", "id", "status"}
    assert by_id["gone"]["status"] == "cancelled"
    assert by_id["deleted"]["status"] == "cancelled"
    instance = by_id["series_20261106T100000Z"]
    assert set(instance) == {"kind", "etag", "id", "status", "recurringEventId", "originalStartTime"}

    # Nothing changed since: an empty page with a fresh sync token.
    again = service.events().list(calendarId="primary", syncToken=pages[-1]["nextSyncToken"]).execute()
    assert again["items"] == []
    assert "nextSyncToken" in again

    # A full listing with showDeleted shows cancelled (not deleted) events, minimal.
    full, _ = list_all(service, singleEvents=True, showDeleted=True)
    assert {i["id"] for i in full} == {"keep", "edit", "gone", "series_20261106T100000Z", "new"}
    hidden, _ = list_all(service, singleEvents=True)
    assert {i["id"] for i in hidden} == {"keep", "edit", "new"}


def test_incremental_paging_keeps_every_change(standin: GoogleStandIn, service: Any) -> None:
    calendar = standin.calendar(EMAIL)
    calendar.load_events([event(f"e{i}", 1 + i) for i in range(6)])
    _, pages = list_all(service)
    token = pages[-1]["nextSyncToken"]
    for i in range(6):
        calendar.upsert_event({**event(f"e{i}", 1 + i), "summary": "changed"})
    items, pages = list_all(service, syncToken=token, maxResults=2)
    assert len(pages) == 3
    assert sorted(i["id"] for i in items) == [f"e{i}" for i in range(6)]
    assert all(i["summary"] == "changed" for i in items)


def test_time_min_is_an_exclusive_bound_on_the_end(standin: GoogleStandIn, service: Any) -> None:
    calendar = standin.calendar(EMAIL)
    calendar.load_events([event("early", 2, 9), event("ends-at-bound", 2, 10), event("late", 2, 11)])
    items, _ = list_all(service, timeMin="2026-11-02T10:30:00Z", singleEvents=True)
    assert {i["id"] for i in items} == {"late"}
    items, _ = list_all(service, timeMin="2026-11-02T10:29:00Z", singleEvents=True)
    assert {i["id"] for i in items} == {"ends-at-bound", "late"}


def test_sync_token_with_time_min_is_bad_request(standin: GoogleStandIn, service: Any) -> None:
    standin.calendar(EMAIL).load_events([event("a", 2)])
    token = list_all(service)[1][-1]["nextSyncToken"]
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token, timeMin="2026-01-01T00:00:00Z").execute()
    assert caught.value.resp.status == 400
    assert error_reason(caught.value) == "invalid"


def test_expired_sync_token_is_410_full_sync_required(standin: GoogleStandIn, service: Any) -> None:
    calendar = standin.calendar(EMAIL)
    calendar.load_events([event(f"e{i}", 1 + i) for i in range(4)])
    first = service.events().list(calendarId="primary", maxResults=2).execute()
    token = list_all(service)[1][-1]["nextSyncToken"]
    calendar.expire_sync_tokens()
    for params in ({"syncToken": token}, {"pageToken": first["nextPageToken"]}):
        with pytest.raises(HttpError) as caught:
            service.events().list(calendarId="primary", **params).execute(num_retries=3)
        assert caught.value.resp.status == 410
        assert error_reason(caught.value) == "fullSyncRequired"
    # A full listing afterwards works and yields a valid token.
    _, pages = list_all(service)
    fresh = pages[-1]["nextSyncToken"]
    assert service.events().list(calendarId="primary", syncToken=fresh).execute()["items"] == []


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, None), (403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (500, None), (503, None)],
)
def test_transient_faults_recover_with_num_retries(
    standin: GoogleStandIn, service: Any, status: int, reason: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("googleapiclient.http.time.sleep", lambda _s: None)  # skip the backoff waits
    standin.calendar(EMAIL).load_events([event("a", 2)])
    service.events().list(calendarId="primary").execute()  # token refreshed
    standin.faults.inject("calendar", status=status, reason=reason, count=2)
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary").execute()
    assert caught.value.resp.status == status
    if reason:
        assert error_reason(caught.value) == reason
    standin.requests.clear()
    result = service.events().list(calendarId="primary").execute(num_retries=3)
    assert [i["id"] for i in result["items"]] == ["a"]
    assert standin.requests.count("calendar") == 2  # one more fault, then success


def test_quota_exceeded_is_not_retried(standin: GoogleStandIn, service: Any) -> None:
    standin.faults.inject("calendar", status=403, reason="quotaExceeded", count=5)
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary").execute(num_retries=3)
    assert error_reason(caught.value) == "quotaExceeded"
    assert standin.faults.pending("calendar") == 4  # a single attempt, no retry


def test_slow_answers_are_delayed(standin: GoogleStandIn, service: Any) -> None:
    service.events().list(calendarId="primary").execute()
    standin.faults.inject("calendar", delay_s=0.3)
    started = time.monotonic()
    service.events().list(calendarId="primary").execute()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    service.events().list(calendarId="primary").execute()
    assert time.monotonic() - started < 0.3


def test_expired_access_token_is_refreshed(standin: GoogleStandIn, service: Any) -> None:
    service.events().list(calendarId="primary").execute()
    standin.expire_access_tokens()
    standin.requests.clear()
    service.events().list(calendarId="primary").execute()
    services = [s for s, _, _ in standin.requests]
    assert services == ["calendar", "token", "calendar"]  # 401, refresh, retry


def test_revoked_consent_is_refresh_error(standin: GoogleStandIn) -> None:
    refresh_token = standin.issue_refresh_token(EMAIL)
    service = calendar_service(standin, refresh_token)
    service.events().list(calendarId="primary").execute()
    standin.revoke_refresh_token(refresh_token)  # also revokes its access tokens
    with pytest.raises(RefreshError, match="invalid_grant"):
        service.events().list(calendarId="primary").execute()


def test_calendar_belongs_to_the_token_owner(standin: GoogleStandIn) -> None:
    standin.calendar("anna@northwind-cs.com").load_events([event("annas", 2)])
    standin.calendar("bob@northwind-cs.com").load_events([event("bobs", 2)])
    bob = calendar_service(standin, standin.issue_refresh_token("bob@northwind-cs.com"))
    listed = bob.events().list(calendarId="primary").execute()
    assert [i["id"] for i in listed["items"]] == ["bobs"]
    assert listed["summary"] == "bob@northwind-cs.com"


def test_without_calendar_scope_is_403(standin: GoogleStandIn) -> None:
    narrow = standin.issue_refresh_token(EMAIL, scopes=["openid", "email"])
    with pytest.raises(HttpError) as caught:
        calendar_service(standin, narrow).events().list(calendarId="primary").execute()
    assert caught.value.resp.status == 403
    assert error_reason(caught.value) == "insufficientPermissions"


def test_order_by_start_time_pages_in_start_order(standin: GoogleStandIn, service: Any) -> None:
    standin.calendar(EMAIL).load_events([event("zz", 1), event("aa", 9), event("mm", 5), event("bb", 3)])
    items, pages = list_all(service, singleEvents=True, orderBy="startTime", maxResults=3)
    assert len(pages) == 2
    assert [i["id"] for i in items] == ["zz", "bb", "mm", "aa"]
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", orderBy="startTime").execute()  # needs singleEvents
    assert caught.value.resp.status == 400


def test_stop_drops_keep_alive_connections() -> None:
    standin_ = GoogleStandIn()
    with standin_:
        svc = calendar_service(standin_, standin_.issue_refresh_token(EMAIL))
        svc.events().list(calendarId="primary").execute()  # opens a keep-alive connection
    with pytest.raises(ConnectionError):  # refused/reset: the kept-alive socket is closed too
        svc.events().list(calendarId="primary").execute()


def test_reset_forgets_everything_but_keeps_serving(standin: GoogleStandIn, service: Any) -> None:
    standin.calendar(EMAIL).load_events([event("a", 2)])
    standin.consent.mode = "deny"
    standin.faults.inject("calendar", status=500, count=3)
    port = standin.port
    standin.reset()
    assert standin.port == port
    assert standin.consent.mode == "grant"
    assert standin.faults.pending() == 0
    assert len(standin.requests) == 0
    with pytest.raises(RefreshError, match="invalid_grant"):  # its refresh token is forgotten
        service.events().list(calendarId="primary").execute()
    fresh = calendar_service(standin, standin.issue_refresh_token(EMAIL))
    assert fresh.events().list(calendarId="primary").execute()["items"] == []


def test_calendar_id_may_be_the_owner_address_and_events_get_works(
    standin: GoogleStandIn, service: Any
) -> None:
    standin.calendar(EMAIL).load_events([event("a", 2)])
    listed = service.events().list(calendarId=EMAIL).execute()
    assert [i["id"] for i in listed["items"]] == ["a"]
    assert service.events().get(calendarId="primary", eventId="a").execute()["summary"] == "Meeting a"
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="someone.else@northwind-cs.com").execute()
    assert caught.value.resp.status == 404


def test_restart_on_the_same_port_keeps_sync_tokens_valid() -> None:
    standin_ = GoogleStandIn(port=free_port())
    with standin_:
        standin_.calendar(EMAIL).load_events([event("a", 2)])
        refresh_token = standin_.issue_refresh_token(EMAIL)
        token = (
            calendar_service(standin_, refresh_token)
            .events()
            .list(calendarId="primary")
            .execute()["nextSyncToken"]
        )
    with standin_:  # a restarted sandbox, same port, same state
        again = (
            calendar_service(standin_, refresh_token)
            .events()
            .list(calendarId="primary", syncToken=token)
            .execute()
        )
        assert again["items"] == []
