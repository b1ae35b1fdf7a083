"""Calendar API v3, the part calsync uses: `events.list` (and `events.get`, `calendars.get`) of
the `primary` calendar of the Google account that owns the access token. `events.watch` and
`channels.stop` live in `push.py`: every change made here calls `Calendar.on_change`.

Listing semantics follow Google's:
- a full listing is paged with `maxResults` (default 250, at most 2500); `nextSyncToken` comes
  only with the last page, `nextPageToken` on every other page (exactly one of the two);
- `syncToken` returns every event changed since the token was issued, in its current state;
  cancelled and deleted events as minimal items (`kind`, `etag`, `id`, `status`, and for
  instances `recurringEventId`, `originalStartTime`); it may not be combined with `timeMin`,
  `timeMax`, `updatedMin`, `q`, `orderBy`, `iCalUID` or `showDeleted=false` (400 `invalid`);
- `Calendar.expire_sync_tokens()` invalidates every sync *and* page token issued before it:
  using one answers 410 `fullSyncRequired`;
- `timeMin` is an exclusive lower bound on an event's end, `timeMax` an exclusive upper bound
  on its start; a full listing with `showDeleted=true` includes cancelled events (minimal).
Pages use keyset pagination (by event id; by change sequence for incremental listings), so a
change made while a client pages never makes it lose an event: anything changed after the
listing began comes again with the next incremental listing. `singleEvents` is accepted and
ignored: a calendar holds what was loaded, and sample files hold expanded instances.
`orderBy=startTime` (with `singleEvents=true`) and `orderBy=updated` are honoured; without
`orderBy` events come in id order.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.sandbox.standin.web import Request, Response, json_response, parse_rfc3339, rfc3339

DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
_SYNC_INCOMPATIBLE = ("timeMin", "timeMax", "updatedMin", "q", "orderBy", "iCalUID")
CALENDAR_SCOPES = frozenset(
    {
        "https://www.googleapis.com/auth/calendar",
        "https://www.googleapis.com/auth/calendar.readonly",
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/calendar.events.readonly",
        "https://www.googleapis.com/auth/calendar.events.owned",
        "https://www.googleapis.com/auth/calendar.events.owned.readonly",
    }
)

_ERRORS: dict[int, tuple[str, str, str]] = {  # status -> (domain, reason, message)
    400: ("global", "badRequest", "Bad Request"),
    401: ("global", "authError", "Invalid Credentials"),
    403: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    404: ("global", "notFound", "Not Found"),
    410: ("global", "fullSyncRequired", "Sync token is no longer valid, a full sync is required."),
    429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("global", "backendError", "Backend Error"),
    503: ("global", "backendError", "The service is currently unavailable."),
}
_REASON_MESSAGES = {
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "rateLimitExceeded": "Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "forbidden": "Forbidden",
    "insufficientPermissions": "Insufficient Permission",
    "fullSyncRequired": _ERRORS[410][2],
    "updatedMinTooLongAgo": "The requested minimum modification time lies too far in the past.",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def calendar_error(status: int, reason: str | None = None, message: str | None = None) -> Response:
    """Google's Calendar error body (the shape `googleapiclient` reads reasons from)."""
    domain, default_reason, default_message = _ERRORS.get(status, ("global", "unknown", "Error"))
    reason = reason or default_reason
    if reason in ("quotaExceeded", "userRateLimitExceeded", "rateLimitExceeded"):
        domain = "usageLimits"
    text = message or _REASON_MESSAGES.get(reason, default_message)
    item: dict[str, str] = {"domain": domain, "reason": reason, "message": text}
    error: dict[str, Any] = {"errors": [item], "code": status, "message": text}
    headers: list[tuple[str, str]] = []
    if status == 401:
        item.update(locationType="header", location="Authorization")
        error["message"] = (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
            "cookie or other valid authentication credential."
        )
        error["status"] = "UNAUTHENTICATED"
        headers.append(
            ("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/", error="invalid_token"')
        )
    elif status in _STATUS_NAMES and status != 410:
        error["status"] = _STATUS_NAMES[status]
    return json_response(status, {"error": error}, headers)


@dataclass
class _Stored:
    payload: dict[str, Any]
    seq: int
    deleted: bool = False


class _Refusal(Exception):
    """A listing refused with a Google error answer (400 or 410)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _event_etag(updated: str, seq: int) -> str:
    return '"' + str(int(hashlib.sha1(f"{updated}/{seq}".encode()).hexdigest()[:12], 16)) + '"'  # noqa: S324


class Calendar:
    """One Google account's primary calendar. Thread-safe; every change gets a new sequence
    number that sync tokens are compared against."""

    def __init__(self, email: str, clock: Callable[[], datetime], time_zone: str = "UTC") -> None:
        self.email = email
        self.time_zone = time_zone
        self.summary = email
        self._clock = clock
        self._lock = threading.RLock()
        self._events: dict[str, _Stored] = {}
        self._seq = 0
        self._epoch = 0  # bumped by expire_sync_tokens(): older tokens answer 410
        self._last_stamp: datetime | None = None
        self.on_change: Callable[[Calendar], None] | None = None  # after each change, lock released

    # --- the Python API -------------------------------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        """Current state of every event not deleted (copies), including cancelled ones."""
        with self._lock:
            return [copy.deepcopy(s.payload) for s in self._events.values() if not s.deleted]

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._events.get(event_id)
            return copy.deepcopy(stored.payload) if stored and not stored.deleted else None

    def load_events(self, payloads: Iterable[Mapping[str, Any]]) -> None:
        """Store payloads as they are (their `updated`, `etag`, `sequence` kept; missing ones
        filled in), as if they had been created before any sync."""
        with self._lock:
            for raw in payloads:
                payload = copy.deepcopy(dict(raw))
                payload.setdefault("id", secrets.token_hex(13))
                payload.setdefault("status", "confirmed")
                stamp = rfc3339(self._stamp())
                payload.setdefault("created", payload.get("updated", stamp))
                payload.setdefault("updated", stamp)
                payload.setdefault("sequence", 0)
                self._put(payload)
        self._changed()

    def upsert_event(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an event as an edit in Google Calendar would: `updated` and `etag`
        are new, `sequence` is bumped on an existing event, `created` is kept."""
        with self._lock:
            event = copy.deepcopy(dict(payload))
            event.setdefault("id", secrets.token_hex(13))
            existing = self._events.get(event["id"])
            stamp = rfc3339(self._stamp())
            event.setdefault("status", "confirmed")
            if existing is not None and not existing.deleted:
                event["created"] = existing.payload.get("created", stamp)
                event["sequence"] = max(
                    int(event.get("sequence", 0)), int(existing.payload.get("sequence", 0)) + 1
                )
            else:
                event.setdefault("created", stamp)
                event.setdefault("sequence", 0)
            event["updated"] = stamp
            event.pop("etag", None)
            stored = copy.deepcopy(self._put(event))
        self._changed()
        return stored

    def cancel_event(self, event_id: str) -> None:
        """`status: cancelled` (what deleting an event or an instance does in Google Calendar)."""
        self._cancel(event_id, deleted=False)

    def delete_event(self, event_id: str) -> None:
        """Gone for good: incremental listings report it cancelled once, full listings never."""
        self._cancel(event_id, deleted=True)

    def _cancel(self, event_id: str, *, deleted: bool) -> None:
        with self._lock:
            payload = copy.deepcopy(self._existing(event_id).payload)
            payload["status"] = "cancelled"
            payload["updated"] = rfc3339(self._stamp())
            payload.pop("etag", None)
            self._put(payload, deleted=deleted)
        self._changed()

    def expire_sync_tokens(self) -> None:
        """Every sync token and page token issued so far answers 410 fullSyncRequired."""
        with self._lock:
            self._epoch += 1

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._epoch += 1
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    # --- internals ------------------------------------------------------------------------------

    def _existing(self, event_id: str) -> _Stored:
        stored = self._events.get(event_id)
        if stored is None or stored.deleted:
            raise KeyError(f"no event {event_id!r} in the calendar of {self.email}")
        return stored

    def _stamp(self) -> datetime:
        """Now, strictly after the previous stamp (millisecond resolution, like Google's)."""
        now = self._clock().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    def _put(self, payload: dict[str, Any], deleted: bool = False) -> dict[str, Any]:
        self._seq += 1
        payload["kind"] = "calendar#event"
        payload["etag"] = payload.get("etag") or _event_etag(str(payload.get("updated")), self._seq)
        self._events[payload["id"]] = _Stored(payload, self._seq, deleted)
        return payload

    # --- HTTP -----------------------------------------------------------------------------------

    def calendar_resource(self) -> dict[str, Any]:
        return {
            "kind": "calendar#calendar",
            "etag": _event_etag(self.email, self._epoch),
            "id": self.email,
            "summary": self.summary,
            "timeZone": self.time_zone,
            "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
        }

    def list_events(self, request: Request, token_key: str) -> Response:
        try:
            with self._lock:
                return json_response(200, self._list(request, token_key))
        except _Refusal as bad:
            return bad.response

    def _list(self, request: Request, token_key: str) -> dict[str, Any]:
        arg = request.arg
        max_results = _int_arg(arg("maxResults"), "maxResults", DEFAULT_MAX_RESULTS)
        if max_results < 1:
            raise _Refusal(calendar_error(400, "invalid", "Invalid value for maxResults"))
        max_results = min(max_results, MAX_MAX_RESULTS)
        show_deleted = (arg("showDeleted") or "false").lower() == "true"
        sync_token, page_token = arg("syncToken"), arg("pageToken")
        if sync_token is not None:
            conflicting = [name for name in _SYNC_INCOMPATIBLE if arg(name) is not None]
            if arg("showDeleted") is not None and not show_deleted:
                conflicting.append("showDeleted=false")
            if conflicting:
                raise _Refusal(
                    calendar_error(
                        400,
                        "invalid",
                        f"Sync token cannot be used together with: {', '.join(conflicting)}.",
                    )
                )
        if page_token is not None:
            cursor = self._decode(page_token, "p", token_key)
        elif sync_token is not None:
            start = self._decode(sync_token, "s", token_key)
            cursor = {"snap": self._seq, "from": start["seq"], "after": None}
        else:
            cursor = {"snap": self._seq, "from": None, "after": None}

        incremental = cursor["from"] is not None
        rows: list[tuple[Any, _Stored]]  # (keyset position, event)
        if incremental:
            rows = [
                (s.seq, s)
                for s in self._events.values()
                if s.seq > cursor["from"] and (cursor["after"] is None or s.seq > cursor["after"])
            ]
            rows.sort(key=lambda r: r[0])
        else:
            filters = _Filters.from_request(request, self.time_zone)
            sort_key = self._sort_key(arg("orderBy"), (arg("singleEvents") or "").lower() == "true")
            keyed = [
                (sort_key(s.payload), s)
                for s in self._events.values()
                if not s.deleted
                and (show_deleted or s.payload.get("status") != "cancelled")
                and filters.accepts(s.payload)
            ]
            rows = sorted(
                (r for r in keyed if cursor["after"] is None or r[0] > cursor["after"]), key=lambda r: r[0]
            )
        page, rest = rows[:max_results], rows[max_results:]
        items = [
            _minimal(s.payload)
            if (s.deleted or s.payload.get("status") == "cancelled")
            else copy.deepcopy(s.payload)
            for _, s in page
        ]
        latest = max((str(s.payload.get("updated", "")) for s in self._events.values()), default="")
        response: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": _event_etag(latest, self._seq),
            "summary": self.summary,
            "description": "",
            "updated": latest or rfc3339(self._clock()),
            "timeZone": self.time_zone,
            "accessRole": "owner",
            "defaultReminders": [],
            "items": items,
        }
        if rest:
            after = page[-1][0]
            response["nextPageToken"] = self._encode(
                {"k": "p", "snap": cursor["snap"], "from": cursor["from"], "after": after}, token_key
            )
        else:
            response["nextSyncToken"] = self._encode({"k": "s", "seq": cursor["snap"]}, token_key)
        return response

    def _sort_key(
        self, order_by: str | None, single_events: bool
    ) -> Callable[[Mapping[str, Any]], list[str]]:
        """Full listings page in a stable order: by id, or by `orderBy` then id."""
        if order_by is None:
            return lambda event: [str(event["id"])]
        if order_by == "startTime" and single_events:

            def by_start(event: Mapping[str, Any]) -> list[str]:
                start = event_bound(event.get("start"), self.time_zone)
                return [rfc3339(start) if start else "", str(event["id"])]

            return by_start
        if order_by == "updated":

            def by_updated(event: Mapping[str, Any]) -> list[str]:
                try:
                    updated = rfc3339(parse_rfc3339(str(event.get("updated"))))
                except ValueError:
                    updated = ""
                return [updated, str(event["id"])]

            return by_updated
        raise _Refusal(
            calendar_error(
                400, "invalid", "The requested ordering is not available for the particular query."
            )
        )

    def _encode(self, content: dict[str, Any], token_key: str) -> str:
        content = {**content, "o": self.email, "e": self._epoch, "i": token_key}
        raw = json.dumps(content, separators=(",", ":")).encode()
        return "C" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def _decode(self, token: str, kind: str, token_key: str) -> dict[str, Any]:
        what = "sync" if kind == "s" else "page"
        try:
            if not token.startswith("C"):
                raise ValueError(token)
            body = token[1:]
            content = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            if not isinstance(content, dict) or content.get("k") != kind:
                raise ValueError(token)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise _Refusal(calendar_error(400, "invalid", f"Invalid {what} token value.")) from exc
        if content.get("o") != self.email or content.get("i") != token_key or content.get("e") != self._epoch:
            raise _Refusal(calendar_error(410, "fullSyncRequired"))
        return content


def _minimal(payload: Mapping[str, Any]) -> dict[str, Any]:
    item = {"kind": "calendar#event", "etag": payload.get("etag"), "id": payload["id"], "status": "cancelled"}
    for name in ("recurringEventId", "originalStartTime"):
        if name in payload:
            item[name] = copy.deepcopy(payload[name])
    return item


def _int_arg(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise _Refusal(calendar_error(400, "invalid", f"Invalid value for {name}: {raw}")) from exc


def _time_arg(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError as exc:
        raise _Refusal(calendar_error(400, "invalid", f"Invalid value for {name}: {raw}")) from exc


def event_bound(point: Mapping[str, Any] | None, calendar_zone: str) -> datetime | None:
    """The instant of an event's `start`/`end` (`dateTime`, or midnight of `date` in the
    event's or the calendar's zone); None when unusable."""
    if not point:
        return None
    try:
        if point.get("dateTime"):
            value = datetime.fromisoformat(str(point["dateTime"]).replace("Z", "+00:00"))
            if value.tzinfo is None:
                value = value.replace(tzinfo=ZoneInfo(str(point.get("timeZone") or calendar_zone)))
            return value.astimezone(UTC)
        if point.get("date"):
            day = datetime.fromisoformat(str(point["date"]))
            return day.replace(tzinfo=ZoneInfo(str(point.get("timeZone") or calendar_zone))).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError):
        return None
    return None


@dataclass(frozen=True)
class _Filters:
    time_zone: str
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    ical_uid: str | None
    q: str | None

    @classmethod
    def from_request(cls, request: Request, time_zone: str) -> _Filters:
        return cls(
            time_zone=time_zone,
            time_min=_time_arg(request.arg("timeMin"), "timeMin"),
            time_max=_time_arg(request.arg("timeMax"), "timeMax"),
            updated_min=_time_arg(request.arg("updatedMin"), "updatedMin"),
            ical_uid=request.arg("iCalUID"),
            q=(request.arg("q") or "").lower() or None,
        )

    def accepts(self, event: Mapping[str, Any]) -> bool:
        if self.time_min is not None:
            end = event_bound(event.get("end"), self.time_zone)
            if end is not None and end <= self.time_min:
                return False
        if self.time_max is not None:
            start = event_bound(event.get("start"), self.time_zone)
            if start is not None and start >= self.time_max:
                return False
        if self.updated_min is not None:
            updated = event.get("updated")
            if updated and parse_rfc3339(str(updated)) < self.updated_min:
                return False
        if self.ical_uid is not None and event.get("iCalUID") != self.ical_uid:
            return False
        if self.q is not None:
            text = " ".join(
                [str(event.get(k, "")) for k in ("summary", "description", "location")]
                + [str(a.get("email", "")) for a in event.get("attendees", [])]
            ).lower()
            if self.q not in text:
                return False
        return True
