"""Sample calendar files: events.list-shaped JSON (`timeZone`, `items`) with absolute times
around `SAMPLE_ANCHOR`, shifted by whole weeks so the meetings sit around any chosen `now`.

A shift keeps each event's weekday and *local* wall-clock time in its own time zone (so a
meeting at 09:00 Europe/Berlin stays at 09:00 across a daylight-saving change) and rewrites:
`start`/`end`/`originalStartTime` (`dateTime` or `date`), `created`, `updated`, and ids that
embed the original start (`<base>_20261124T170000Z`, `<base>_20261124`); `htmlLink` is rebuilt.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shared.sandbox.standin.web import parse_rfc3339, rfc3339

SAMPLE_ANCHOR = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the "now" the sample files were written for
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample"
_INSTANCE_SUFFIX = re.compile(r"_(\d{8}T\d{6}Z|\d{8})$")


def read_calendar_file(path: str | Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ValueError(f"{path}: expected an events.list response with an 'items' array")
    return data


def weeks_between(anchor: datetime, now: datetime) -> int:
    """Whole weeks to add to the anchor to land closest to `now`."""
    return round((now - anchor) / timedelta(weeks=1))


def shift_calendar(data: Mapping[str, Any], weeks: int, email: str | None = None) -> dict[str, Any]:
    """A copy of an events.list-shaped document with every event shifted by `weeks` weeks."""
    shifted = copy.deepcopy(dict(data))
    zone = str(shifted.get("timeZone") or "UTC")
    shifted["items"] = [shift_event(item, weeks, zone, email) for item in shifted.get("items", [])]
    return shifted


def shift_event(
    event: Mapping[str, Any], weeks: int, calendar_zone: str, email: str | None = None
) -> dict[str, Any]:
    out = copy.deepcopy(dict(event))
    if weeks:
        delta = timedelta(weeks=weeks)
        for name in ("start", "end", "originalStartTime"):
            if isinstance(out.get(name), dict):
                out[name] = _shift_point(out[name], delta, calendar_zone)
        for name in ("created", "updated"):
            if out.get(name):
                out[name] = rfc3339(parse_rfc3339(str(out[name])) + delta)
        if "id" in out:
            out["id"] = _shift_instance_id(str(out["id"]), out.get("originalStartTime"), calendar_zone)
    if email and "htmlLink" in out and "id" in out:
        eid = base64.urlsafe_b64encode(f"{out['id']} {email}".encode()).decode().rstrip("=")
        out["htmlLink"] = f"https://www.google.com/calendar/event?eid={eid}"
    return out


def _shift_point(point: Mapping[str, Any], delta: timedelta, calendar_zone: str) -> dict[str, Any]:
    out = dict(point)
    if "dateTime" in out:
        original = datetime.fromisoformat(str(out["dateTime"]).replace("Z", "+00:00"))
        zone = ZoneInfo(str(out.get("timeZone") or calendar_zone))
        local = original.astimezone(zone).replace(tzinfo=None) + delta  # same wall-clock time
        moved = local.replace(tzinfo=zone)
        if str(out["dateTime"]).endswith("Z"):
            out["dateTime"] = moved.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            written_zone = _zone_of_offset(original, (zone, ZoneInfo(calendar_zone)))
            out["dateTime"] = moved.astimezone(written_zone).isoformat()
    if "date" in out:
        out["date"] = (date.fromisoformat(str(out["date"])) + delta).isoformat()
    return out


def _zone_of_offset(original: datetime, zones: tuple[ZoneInfo, ...]) -> Any:
    """The zone a `dateTime` string was written in: the event's or the calendar's zone when its
    offset agrees (Google renders in the calendar's zone), else the string's fixed offset."""
    for zone in zones:
        if original.utcoffset() == original.astimezone(zone).utcoffset():
            return zone
    return original.tzinfo


def _shift_instance_id(event_id: str, original_start: Any, calendar_zone: str) -> str:
    match = _INSTANCE_SUFFIX.search(event_id)
    if not match or not isinstance(original_start, dict):
        return event_id
    base = event_id[: match.start()]
    if "dateTime" in original_start:
        moment = datetime.fromisoformat(str(original_start["dateTime"]).replace("Z", "+00:00"))
        return f"{base}_{moment.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    if "date" in original_start:
        return f"{base}_{str(original_start['date']).replace('-', '')}"
    return event_id
