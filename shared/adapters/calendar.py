"""Google Calendar v3 `events.list`, `events.watch` and `channels.stop` through the production
client (google-api-python-client).

Translates the client's errors into calsync's kinds:
- 410 (`fullSyncRequired`)                            -> CursorExpired
- `invalid_grant` when refreshing the access token    -> ReauthRequired
- 429, 403 rate limits, 5xx, 401, network errors      -> TransientError, after bounded retries
- any other 4xx                                        -> PermanentError (a bug or a gone calendar)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import google.auth.exceptions
import google_auth_httplib2
import httplib2
import stamina
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from shared.errors import CursorExpired, PermanentError, ReauthRequired, TransientError
from shared.services.ports import EventPage, WatchedChannel

SCOPES = ("https://www.googleapis.com/auth/calendar.events.readonly",)
MAX_PAGE_SIZE = 2500  # Google's cap for maxResults
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_HTTP_TIMEOUT_S = 60


class GoogleCalendarSource:
    """`CalendarSource` over the real Calendar API (or the sandbox stand-in at `endpoint`).

    One instance per function instance; thread-safe: each thread gets its own httplib2.Http
    (it is not thread-safe) and each member's access token is refreshed at most once per hour.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        token_uri: str,
        client_id: str,
        client_secret: str,
        page_size: int = MAX_PAGE_SIZE,
        attempts: int = 5,
        retry_timeout_s: float = 90.0,
    ) -> None:
        self._endpoint = endpoint
        self._token_uri = token_uri
        self._client_id = client_id
        self._client_secret = client_secret
        self._page_size = min(page_size, MAX_PAGE_SIZE)
        self._attempts = attempts
        self._retry_timeout_s = retry_timeout_s
        self._local = threading.local()
        self._credentials: dict[str, Credentials] = {}
        self._lock = threading.Lock()

    def list_page(
        self,
        refresh_token: str,
        *,
        sync_token: str | None,
        page_token: str | None,
        time_min: datetime | None,
    ) -> EventPage:
        """One page of the primary calendar. Raises CursorExpired, ReauthRequired,
        TransientError (after retries), PermanentError."""
        params: dict[str, Any] = {
            "calendarId": "primary",
            "singleEvents": True,
            "showDeleted": True,
            "maxResults": self._page_size,
        }
        if sync_token:
            params["syncToken"] = sync_token
        elif time_min is not None:
            params["timeMin"] = time_min.astimezone(UTC).isoformat().replace("+00:00", "Z")
        if page_token:
            params["pageToken"] = page_token
        body = self._retried(refresh_token, lambda service: service.events().list(**params))
        return EventPage(
            items=list(body.get("items") or []),
            calendar_time_zone=body.get("timeZone") or None,
            next_page_token=body.get("nextPageToken") or None,
            next_sync_token=body.get("nextSyncToken") or None,
            owner_email=_owner_email(body.get("summary")),
        )

    def watch(
        self, refresh_token: str, channel_id: str, address: str, token: str, ttl_s: int
    ) -> WatchedChannel:
        """`events.watch` of the primary calendar (README.md#push-notifications). Raises
        PermanentError when Google refuses (its reason in the message), ReauthRequired,
        TransientError after retries."""
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(ttl_s)},
        }
        answer = self._retried(
            refresh_token, lambda service: service.events().watch(calendarId="primary", body=body)
        )
        resource_id, expiration = answer.get("resourceId"), str(answer.get("expiration") or "")
        if not isinstance(resource_id, str) or not resource_id or not expiration.isdigit():
            raise TransientError("Calendar answered a watch without resourceId or expiration")
        return WatchedChannel(resource_id, datetime.fromtimestamp(int(expiration) / 1000, UTC))

    def stop(self, refresh_token: str, channel_id: str, resource_id: str) -> None:
        """`channels.stop`; a channel Google no longer knows (404) is stopped already."""
        body = {"id": channel_id, "resourceId": resource_id}
        try:
            self._retried(refresh_token, lambda service: service.channels().stop(body=body))
        except _ChannelGone:
            return

    def _retried(self, refresh_token: str, request: Callable[[Any], Any]) -> dict[str, Any]:
        for attempt in stamina.retry_context(
            on=TransientError,
            attempts=self._attempts,
            timeout=self._retry_timeout_s,
            wait_initial=0.5,
            wait_max=10.0,
        ):
            with attempt:
                return self._execute(refresh_token, request)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    def _execute(self, refresh_token: str, request: Callable[[Any], Any]) -> dict[str, Any]:
        http = google_auth_httplib2.AuthorizedHttp(
            self._credentials_for(refresh_token), http=self._thread_http()
        )
        try:
            result = request(self._service()).execute(http=http, num_retries=0)
        except HttpError as error:
            raise _translate_http_error(error) from None
        except google.auth.exceptions.RefreshError as error:
            raise _translate_refresh_error(error) from None
        except (TimeoutError, httplib2.HttpLib2Error, OSError) as error:
            raise TransientError(f"Calendar request failed: {type(error).__name__}") from None
        return dict(result or {})  # channels.stop answers 204 without a body

    def _credentials_for(self, refresh_token: str) -> Credentials:
        with self._lock:
            credentials = self._credentials.get(refresh_token)
            if credentials is None:
                if len(self._credentials) > 1000:  # bounded: one entry per recently synced member
                    self._credentials.clear()
                credentials = Credentials(
                    token=None,
                    refresh_token=refresh_token,
                    token_uri=self._token_uri,
                    client_id=self._client_id,
                    client_secret=self._client_secret,
                    scopes=list(SCOPES),
                )
                self._credentials[refresh_token] = credentials
            return credentials

    def _thread_http(self) -> httplib2.Http:
        http = getattr(self._local, "http", None)
        if http is None:
            http = httplib2.Http(timeout=_HTTP_TIMEOUT_S)
            self._local.http = http
        return http

    def _service(self) -> Any:
        service = getattr(self._local, "service", None)
        if service is None:
            service = build(
                "calendar",
                "v3",
                static_discovery=True,
                cache_discovery=False,
                http=self._thread_http(),
                client_options={"api_endpoint": self._endpoint},
            )
            self._local.service = service
        return service


def _owner_email(summary: object) -> str | None:
    """The primary calendar is named after its Google account's address."""
    if isinstance(summary, str) and "@" in summary:
        return summary.strip().lower()
    return None


def _error_reasons(error: HttpError) -> set[str]:
    try:
        payload = json.loads(error.content.decode("utf-8", "replace"))
        details = payload.get("error", {}).get("errors", [])
        return {str(d.get("reason")) for d in details if isinstance(d, dict)}
    except (ValueError, AttributeError):
        return set()


class _ChannelGone(PermanentError):
    """Calendar answered 404 to a channel call: the channel is stopped or expired already."""


def _translate_http_error(error: HttpError) -> Exception:
    status = int(error.resp.status)
    reasons = _error_reasons(error)
    if status == 404 and "/channels/" in str(getattr(error, "uri", "")):
        return _ChannelGone("Calendar does not know the channel (stopped or expired)")
    if status == 410:
        return CursorExpired("Calendar sync token expired (410 fullSyncRequired)")
    if status == 429 or status >= 500 or (status == 403 and reasons & _RATE_LIMIT_REASONS):
        return TransientError(f"Calendar answered {status} {','.join(sorted(reasons))}".rstrip())
    if status == 401:
        return TransientError("Calendar answered 401 after a token refresh")
    if status == 403 and "quotaExceeded" in reasons:
        return TransientError("Calendar daily quota exceeded")
    return PermanentError(f"Calendar answered {status} {','.join(sorted(reasons))}".rstrip())


def _translate_refresh_error(error: google.auth.exceptions.RefreshError) -> Exception:
    text = str(error)
    if "invalid_grant" in text:
        return ReauthRequired("Google refused the refresh token (invalid_grant): consent revoked or expired")
    if getattr(error, "retryable", False) or any(code in text for code in ("500", "502", "503", "504")):
        return TransientError("token endpoint temporarily unavailable")
    if "invalid_client" in text or "unauthorized_client" in text:
        return PermanentError("the OAuth client was refused by the token endpoint (check client id/secret)")
    return TransientError("access token refresh failed")
