"""One Google Calendar event payload -> what it means for the member's copy
(README.md#how-meetings-are-matched-to-accounts).

`event_from_google` never raises on odd payloads: anything it cannot use becomes
`EventDropped(reason=MALFORMED, detail=...)` (the detail names the problem, never an email).
Pure: the window start and the calendar's time zone are passed in.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.emails import normalize_email
from shared.domain.limits import capped_guests, capped_name, capped_title
from shared.domain.models import (
    DropReason,
    EventAttendee,
    EventChange,
    EventDropped,
    EventHeld,
    EventOutsideWindow,
    MemberCopy,
    TenantSettings,
)

_KEPT_EVENT_TYPES = frozenset({"default", "fromGmail"})
_HIDDEN_VISIBILITIES = frozenset({"private", "confidential"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Malformed(Exception):
    """Internal: the payload cannot be used; the message is the (email-free) detail."""


@functools.lru_cache(maxsize=1024)
def time_zone(name: str) -> ZoneInfo | None:
    """The IANA zone for `name`, or None when it is not a known zone name."""
    if not name or not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def utc_stamp(instant: datetime) -> str:
    """A UTC instant in the meeting-key form `20261124T170000Z`."""
    return instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_from_google(
    payload: Mapping[str, Any],
    *,
    member_id: str,
    member_email: str,
    calendar_time_zone: str | None,
    settings: TenantSettings,
    window_start: datetime,
    generation: int,
) -> EventChange:
    """What one item of `events.list` means for this member's copy of the meeting.

    EventHeld: the member holds the meeting (the copy passed every event rule).
    EventDropped: the copy produces nothing (cancelled, all-day, declined, ...; MALFORMED when
    unusable). EventOutsideWindow: the event starts before `window_start`.
    Never raises.
    """
    if not isinstance(payload, Mapping):
        return EventDropped(
            event_id="", meeting_key=None, reason=DropReason.MALFORMED, detail="not an object"
        )
    raw_id = payload.get("id")
    event_id = raw_id if isinstance(raw_id, str) else ""
    try:
        return _classify(
            payload,
            event_id=event_id,
            member_id=member_id,
            member_email=normalize_email(member_email) if isinstance(member_email, str) else "",
            calendar_time_zone=calendar_time_zone,
            settings=settings,
            window_start=window_start,
            generation=generation,
        )
    except _Malformed as exc:
        key = _meeting_key_or_none(payload, event_id)
        return EventDropped(event_id=event_id, meeting_key=key, reason=DropReason.MALFORMED, detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - a payload must never break a sync
        key = _meeting_key_or_none(payload, event_id)
        detail = f"unreadable payload ({type(exc).__name__})"
        return EventDropped(event_id=event_id, meeting_key=key, reason=DropReason.MALFORMED, detail=detail)


def _classify(
    payload: Mapping[str, Any],
    *,
    event_id: str,
    member_id: str,
    member_email: str,
    calendar_time_zone: str | None,
    settings: TenantSettings,
    window_start: datetime,
    generation: int,
) -> EventChange:
    if not event_id:
        raise _Malformed("missing id")
    status = payload.get("status")
    if status == "cancelled":
        return _cancelled(payload, event_id, calendar_time_zone, settings, window_start)

    meeting_key = meeting_key_of(payload)
    if meeting_key is None:
        raise _Malformed("no usable meeting key")

    start_obj = payload.get("start")
    end_obj = payload.get("end")
    if not isinstance(start_obj, Mapping):
        raise _Malformed("missing start")
    if not isinstance(end_obj, Mapping):
        raise _Malformed("missing end")

    if start_obj.get("dateTime") is None and start_obj.get("date") is not None:
        # All-day: produces nothing; before the window it is ignored altogether.
        day = _parse_date(start_obj.get("date"), "start.date")
        if day < window_start.date():
            return EventOutsideWindow(event_id=event_id)
        return EventDropped(event_id=event_id, meeting_key=meeting_key, reason=DropReason.ALL_DAY)

    zone_name = _zone_name(start_obj, calendar_time_zone, settings)
    zone = time_zone(zone_name)
    if zone is None:
        raise _Malformed("unknown time zone")
    start = _parse_instant(start_obj.get("dateTime"), zone, "start.dateTime")
    if start < window_start:
        return EventOutsideWindow(event_id=event_id)
    end_zone = zone
    end_zone_name = end_obj.get("timeZone")
    if isinstance(end_zone_name, str) and end_zone_name:
        end_zone = time_zone(end_zone_name) or zone
    if end_obj.get("dateTime") is None:
        raise _Malformed("missing end.dateTime")
    end = _parse_instant(end_obj.get("dateTime"), end_zone, "end.dateTime")

    def dropped(reason: DropReason) -> EventDropped:
        return EventDropped(event_id=event_id, meeting_key=meeting_key, reason=reason)

    if end <= start:
        return dropped(DropReason.NOT_AFTER_START)
    event_type = payload.get("eventType", "default")
    if event_type is None:
        event_type = "default"
    if event_type not in _KEPT_EVENT_TYPES:
        return dropped(DropReason.EVENT_TYPE)
    if payload.get("visibility") in _HIDDEN_VISIBILITIES and not settings.include_private_events:
        return dropped(DropReason.PRIVATE)

    attendees, member_declined = _attendees(payload.get("attendees"), member_email)
    if member_declined:
        return dropped(DropReason.DECLINED)
    if not attendees:
        return dropped(DropReason.NO_ATTENDEES)

    organizer = payload.get("organizer")
    organizer_email = ""
    if isinstance(organizer, Mapping) and isinstance(organizer.get("email"), str):
        organizer_email = normalize_email(organizer["email"])
    if not organizer_email:
        # Google marks the organizer's attendee entry; use it when the organizer field is thin.
        organizer_email = next((a.email for a in attendees if a.is_organizer), "")
    summary = payload.get("summary")
    updated = _parse_updated(payload.get("updated"))

    copy = MemberCopy(
        member_id=member_id,
        event_id=event_id,
        meeting_key=meeting_key,
        updated=updated,
        title=capped_title(summary) if isinstance(summary, str) else "",
        start=start,
        end=end,
        time_zone=zone_name,
        organizer_email=organizer_email,
        attendees=attendees,
        generation=generation,
    )
    return EventHeld(copy=copy)


def _cancelled(
    payload: Mapping[str, Any],
    event_id: str,
    calendar_time_zone: str | None,
    settings: TenantSettings,
    window_start: datetime,
) -> EventChange:
    """A cancelled event (possibly a bare `{id, status}` stub: its meeting key is None and the
    caller maps it by event id). One whose start is known and before the window is ignored."""
    start_obj = payload.get("start")
    if isinstance(start_obj, Mapping) and isinstance(start_obj.get("dateTime"), str):
        zone = time_zone(_zone_name(start_obj, calendar_time_zone, settings))
        try:
            start = _parse_instant(start_obj["dateTime"], zone or ZoneInfo("UTC"), "start.dateTime")
        except _Malformed:
            start = None
        if start is not None and start < window_start:
            return EventOutsideWindow(event_id=event_id)
    key = meeting_key_of(payload) if isinstance(payload.get("iCalUID"), str) else None
    return EventDropped(event_id=event_id, meeting_key=key, reason=DropReason.CANCELLED)


def meeting_key_of(payload: Mapping[str, Any]) -> str | None:
    """`meetingKey` (docs/reference.md#the-interaction-document): the iCalUID (else the event id); for an
    instance of a recurring event, iCalUID + "@" + the instance's originalStartTime as a UTC instant
    (`20261124T170000Z`). None when the payload has neither an iCalUID nor an id, or an unusable
    originalStartTime."""
    uid = payload.get("iCalUID")
    if not isinstance(uid, str) or not uid:
        uid = payload.get("id")
        if not isinstance(uid, str) or not uid:
            return None
    if not payload.get("recurringEventId"):
        return uid
    original = payload.get("originalStartTime")
    if not isinstance(original, Mapping):
        return None
    raw = original.get("dateTime")
    if isinstance(raw, str):
        zone = time_zone(original.get("timeZone") or "UTC") or ZoneInfo("UTC")
        try:
            return f"{uid}@{utc_stamp(_parse_instant(raw, zone, 'originalStartTime'))}"
        except _Malformed:
            return None
    raw_date = original.get("date")
    if isinstance(raw_date, str):
        try:
            return f"{uid}@{_parse_date(raw_date, 'originalStartTime').strftime('%Y%m%d')}"
        except _Malformed:
            return None
    return None


def _meeting_key_or_none(payload: Mapping[str, Any], event_id: str) -> str | None:
    try:
        return meeting_key_of(payload) if isinstance(payload, Mapping) and event_id else None
    except Exception:  # noqa: BLE001 - best effort for a payload already known to be bad
        return None


def _zone_name(start_obj: Mapping[str, Any], calendar_time_zone: str | None, settings: TenantSettings) -> str:
    """start.timeZone, else the calendar's time zone, else the tenant's default."""
    for candidate in (start_obj.get("timeZone"), calendar_time_zone, settings.default_time_zone):
        if isinstance(candidate, str) and candidate:
            return candidate
    return "UTC"


def _parse_instant(raw: object, zone: ZoneInfo, what: str) -> datetime:
    """An RFC 3339 date-time as a UTC instant; a value without an offset is read in `zone`."""
    if not isinstance(raw, str) or not raw:
        raise _Malformed(f"missing {what}")
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Malformed(f"unparseable {what}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _Malformed(f"out-of-range {what}") from None


def _parse_date(raw: object, what: str) -> date:
    if not isinstance(raw, str):
        raise _Malformed(f"missing {what}")
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise _Malformed(f"unparseable {what}") from None


def _parse_updated(raw: object) -> datetime:
    """The event's `updated`; the epoch when absent or unreadable (it then loses every tie)."""
    try:
        return _parse_instant(raw, ZoneInfo("UTC"), "updated")
    except _Malformed:
        return _EPOCH


def _attendees(raw: object, member_email: str) -> tuple[tuple[EventAttendee, ...], bool]:
    """The attendees worth keeping (non-resource, with an email containing "@"; duplicates of an
    email keep the first entry; names and their number capped, shared.domain.limits), and
    whether the member declined (their `self` entry, wherever it is in the list)."""
    if raw is None:
        return (), False
    if not isinstance(raw, list):
        raise _Malformed("attendees is not a list")
    kept: list[EventAttendee] = []
    seen: set[str] = set()
    member_declined = False
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        raw_email = entry.get("email")
        email = normalize_email(raw_email) if isinstance(raw_email, str) else ""
        is_self = entry.get("self") is True or (bool(member_email) and email == member_email)
        status = entry.get("responseStatus")
        response = status if isinstance(status, str) and status else "needsAction"
        if is_self and response == "declined":
            member_declined = True
        if entry.get("resource") is True or "@" not in email or email in seen:
            continue
        seen.add(email)
        name = entry.get("displayName")
        kept.append(
            EventAttendee(
                email=email,
                display_name=capped_name(name) if isinstance(name, str) and name.strip() else "",
                response_status=response,
                is_organizer=entry.get("organizer") is True,
                is_self=is_self,
            )
        )
    return capped_guests(kept), member_declined
