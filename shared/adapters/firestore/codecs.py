"""Document codecs: Firestore documents <-> domain objects, one pair of functions per noun.

Every codec has the same shape: `<noun>_from_document(id, data)` reads a document's fields
(tolerantly: an absent or malformed field takes its default, so documents written by others or by
older versions never break a read) and `<noun>_to_document(obj)` returns the fields to write.
Stores unwrap snapshots and hand plain mappings here. Field names are camelCase; the layout is
described in the README ("Data in Firestore").
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.adapters.firestore.base import unique
from shared.domain import emails as email_rules
from shared.domain.calendar_state import CalendarUpdate
from shared.domain.exclusions import exclusions_from_document
from shared.domain.models import (
    Account,
    CalendarState,
    ConnectionStatus,
    Interaction,
    InteractionAttendee,
    MatchedBy,
    Member,
    Participant,
    PushStatus,
    Tenant,
    UnmatchedReason,
    User,
)
from shared.domain.settings import settings_from_document


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _calendar_path(name: str) -> str:
    """`push_expires_at` -> `push.expiresAt` (the push channel is a map of its own), other
    fields -> camelCase."""
    if name.startswith("push_"):
        return "push." + _camel(name.removeprefix("push_"))
    return _camel(name)


# CalendarState field (snake_case) -> field path in `members/{m}.calendar` (camelCase), derived
# from the dataclass so a field added to CalendarState is stored without touching this module.
CALENDAR_FIELDS: dict[str, str] = {f.name: _calendar_path(f.name) for f in dataclasses.fields(CalendarState)}
_CALENDAR_TYPES: dict[str, Any] = typing.get_type_hints(CalendarState)


# --- tolerant readers (also used by meeting_codec.py) ---------------------------------------


def as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def required_utc(value: Any) -> datetime:
    return as_utc(value) or datetime.fromtimestamp(0, UTC)


def str_or(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def int_or(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _firestore_value(value: Any) -> Any:
    """Plain values the SDK encodes without surprises (StrEnum -> str)."""
    if isinstance(value, ConnectionStatus | PushStatus | MatchedBy | UnmatchedReason):
        return str(value.value)
    return value


# --- members ------------------------------------------------------------------------------------


def _calendar_value(kind: Any, value: Any, default: Any) -> Any:
    if kind is ConnectionStatus:
        try:
            return ConnectionStatus(value) if value is not None else default
        except ValueError:
            return ConnectionStatus.ERROR
    if kind is PushStatus:
        try:
            return PushStatus(value) if value is not None else default
        except ValueError:
            return default
    if kind == datetime | None:
        return as_utc(value)
    if kind == str | None:
        return opt_str(value)
    if kind is bool:
        return value if isinstance(value, bool) else default
    if kind is int:
        return int_or(value, default)
    return value if value is not None else default


def calendar_from_document(raw: Any) -> CalendarState:
    """`members/{m}.calendar` -> CalendarState; absent or malformed fields take their defaults."""
    data = raw if isinstance(raw, Mapping) else {}
    values = {}
    for f in dataclasses.fields(CalendarState):
        values[f.name] = _calendar_value(
            _CALENDAR_TYPES[f.name], _at_path(data, CALENDAR_FIELDS[f.name]), f.default
        )
    return CalendarState(**values)


def _at_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted field path of a map, None when any step is missing."""
    value: Any = data
    for step in path.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


def member_from_document(member_id: str, data: Mapping[str, Any]) -> Member:
    return Member(
        id=member_id,
        email=email_rules.normalize_email(str_or(data.get("email"))),
        name=str_or(data.get("name")),
        calendar=calendar_from_document(data.get("calendar")),
        excluded_addresses=exclusions_from_document(data.get("excludedAddresses")),
    )


def calendar_updates(changes: CalendarUpdate) -> dict[str, Any]:
    """The fields a CalendarUpdate sets, as `calendar.<field>` update paths of the member document."""
    return {
        f"calendar.{CALENDAR_FIELDS[k]}": _firestore_value(v) for k, v in changes.changed_fields().items()
    }


# --- directory ----------------------------------------------------------------------------------


def account_from_document(account_id: str, data: Mapping[str, Any]) -> Account:
    keys = data.get("domainKeys")
    if not isinstance(keys, list):  # written by someone else than `calsync import`
        raw = data.get("domains")
        keys = (
            [email_rules.normalize_domain(d) for d in raw if isinstance(d, str)]
            if isinstance(raw, list)
            else []
        )
    return Account(id=account_id, name=str_or(data.get("name")), domains=tuple(unique(keys)))


def user_from_document(user_id: str, data: Mapping[str, Any]) -> User:
    key = data.get("emailKey")
    email = key if isinstance(key, str) else email_rules.normalize_email(str_or(data.get("email")))
    return User(
        id=user_id, email=email, name=str_or(data.get("name")), account_id=str_or(data.get("accountId"))
    )


def tenant_from_document(tenant_id: str, data: Mapping[str, Any]) -> Tenant:
    raw_domains = data.get("internalDomains")
    domains = (
        unique(email_rules.normalize_domain(d) for d in raw_domains if isinstance(d, str))
        if isinstance(raw_domains, list)
        else []
    )
    return Tenant(
        id=tenant_id,
        name=str_or(data.get("name")),
        internal_domains=tuple(domains),
        settings=settings_from_document(data.get("settings")),
        directory_changed_at=as_utc(data.get("directoryChangedAt")),
    )


# --- interactions (meetings: meeting_codec.py) --------------------------------------------------


def interaction_to_document(interaction: Interaction) -> dict[str, Any]:
    """The interaction document (docs/reference.md#the-interaction-document; camelCase; times as timestamps;
    no `id`)."""
    return interaction.contract_fields()


def interaction_from_document(interaction_id: str, data: Mapping[str, Any]) -> Interaction:
    def items(name: str) -> list[Mapping[str, Any]]:
        raw = data.get(name)
        return [i for i in raw if isinstance(i, Mapping)] if isinstance(raw, list) else []

    attendees = []
    for a in items("attendees"):
        try:
            matched_by = MatchedBy(str_or(a.get("matchedBy")))
        except ValueError:
            matched_by = MatchedBy.DOMAIN
        attendees.append(
            InteractionAttendee(
                email=str_or(a.get("email")),
                name=str_or(a.get("name")),
                user_id=opt_str(a.get("userId")),
                matched_by=matched_by,
                minutes_in_meeting=int_or(a.get("minutesInMeeting")),
            )
        )
    member_ids = data.get("memberIds")
    return Interaction(
        id=interaction_id,
        account_id=str_or(data.get("accountId")),
        meeting_key=str_or(data.get("meetingKey")),
        title=str_or(data.get("title")),
        date=str_or(data.get("date")),
        start_time=required_utc(data.get("startTime")),
        end_time=required_utc(data.get("endTime")),
        time_zone=str_or(data.get("timeZone"), "UTC"),
        duration_minutes=int_or(data.get("durationMinutes")),
        participants=tuple(
            Participant(
                email=str_or(p.get("email")),
                name=str_or(p.get("name")),
                response_status=str_or(p.get("responseStatus"), "needsAction"),
                internal=bool(p.get("internal", False)),
                organizer=bool(p.get("organizer", False)),
            )
            for p in items("participants")
        ),
        attendees=tuple(attendees),
        member_ids=tuple(m for m in member_ids if isinstance(m, str)) if isinstance(member_ids, list) else (),
        organizer_email=str_or(data.get("organizerEmail")),
        created_at=required_utc(data.get("createdAt")),
        updated_at=required_utc(data.get("updatedAt")),
        type=str_or(data.get("type"), "Google calendar"),
    )


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def interaction_to_json(interaction: Interaction) -> dict[str, Any]:
    """The §3 document plus its `id`, times as RFC 3339 UTC strings (`calsync interactions --json`)."""
    document = interaction_to_document(interaction)
    for name in ("startTime", "endTime", "createdAt", "updatedAt"):
        document[name] = _rfc3339(document[name])
    return {"id": interaction.id, **document}
