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
from shared.domain import directory_keys
from shared.domain import emails as email_rules
from shared.domain.calendar_state import CalendarUpdate
from shared.domain.models import (
    Account,
    CalendarState,
    ConnectionStatus,
    EventAttendee,
    Interaction,
    InteractionAttendee,
    MatchedBy,
    MeetingRecord,
    Member,
    MemberCopy,
    Participant,
    Tenant,
    UnmatchedAddress,
    UnmatchedReason,
    User,
)
from shared.domain.settings import settings_from_document


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# CalendarState field (snake_case) -> `members/{m}.calendar` field (camelCase), derived from the
# dataclass so a field added to CalendarState is stored without touching this module.
CALENDAR_FIELDS: dict[str, str] = {f.name: _camel(f.name) for f in dataclasses.fields(CalendarState)}
_CALENDAR_TYPES: dict[str, Any] = typing.get_type_hints(CalendarState)


# --- tolerant readers -----------------------------------------------------------------------------


def _as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _required_utc(value: Any) -> datetime:
    return _as_utc(value) or datetime.fromtimestamp(0, UTC)


def _str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _firestore_value(value: Any) -> Any:
    """Plain values the SDK encodes without surprises (StrEnum -> str)."""
    if isinstance(value, ConnectionStatus | MatchedBy | UnmatchedReason):
        return str(value.value)
    return value


# --- members ------------------------------------------------------------------------------------


def _calendar_value(kind: Any, value: Any, default: Any) -> Any:
    if kind is ConnectionStatus:
        try:
            return ConnectionStatus(value) if value is not None else default
        except ValueError:
            return ConnectionStatus.ERROR
    if kind == datetime | None:
        return _as_utc(value)
    if kind == str | None:
        return _opt_str(value)
    if kind is bool:
        return value if isinstance(value, bool) else default
    if kind is int:
        return _int(value, default)
    return value if value is not None else default


def calendar_from_document(raw: Any) -> CalendarState:
    """`members/{m}.calendar` -> CalendarState; absent or malformed fields take their defaults."""
    data = raw if isinstance(raw, Mapping) else {}
    values = {}
    for f in dataclasses.fields(CalendarState):
        values[f.name] = _calendar_value(
            _CALENDAR_TYPES[f.name], data.get(CALENDAR_FIELDS[f.name]), f.default
        )
    return CalendarState(**values)


def member_from_document(member_id: str, data: Mapping[str, Any]) -> Member:
    return Member(
        id=member_id,
        email=email_rules.normalize_email(_str(data.get("email"))),
        name=_str(data.get("name")),
        calendar=calendar_from_document(data.get("calendar")),
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
    return Account(id=account_id, name=_str(data.get("name")), domains=tuple(unique(keys)))


def user_from_document(user_id: str, data: Mapping[str, Any]) -> User:
    key = data.get("emailKey")
    email = key if isinstance(key, str) else email_rules.normalize_email(_str(data.get("email")))
    return User(id=user_id, email=email, name=_str(data.get("name")), account_id=_str(data.get("accountId")))


def tenant_from_document(tenant_id: str, data: Mapping[str, Any]) -> Tenant:
    raw_domains = data.get("internalDomains")
    domains = (
        unique(email_rules.normalize_domain(d) for d in raw_domains if isinstance(d, str))
        if isinstance(raw_domains, list)
        else []
    )
    return Tenant(
        id=tenant_id,
        name=_str(data.get("name")),
        internal_domains=tuple(domains),
        settings=settings_from_document(data.get("settings")),
    )


# --- meetings and interactions ------------------------------------------------------------------


def copy_to_document(copy: MemberCopy) -> dict[str, Any]:
    return {
        "eventId": copy.event_id,
        "updated": copy.updated,
        "title": copy.title,
        "start": copy.start,
        "end": copy.end,
        "timeZone": copy.time_zone,
        "organizerEmail": copy.organizer_email,
        "generation": copy.generation,
        "attendees": [
            {
                "email": a.email,
                "name": a.display_name,
                "responseStatus": a.response_status,
                "organizer": a.is_organizer,
                "self": a.is_self,
            }
            for a in copy.attendees
        ],
    }


def copy_from_document(member_id: str, meeting_key: str, data: Mapping[str, Any]) -> MemberCopy:
    attendees = data.get("attendees")
    return MemberCopy(
        member_id=member_id,
        event_id=_str(data.get("eventId")),
        meeting_key=meeting_key,
        updated=_required_utc(data.get("updated")),
        title=_str(data.get("title")),
        start=_required_utc(data.get("start")),
        end=_required_utc(data.get("end")),
        time_zone=_str(data.get("timeZone"), "UTC"),
        organizer_email=_str(data.get("organizerEmail")),
        generation=_int(data.get("generation")),
        attendees=tuple(
            EventAttendee(
                email=_str(a.get("email")),
                display_name=_str(a.get("name")),
                response_status=_str(a.get("responseStatus"), "needsAction"),
                is_organizer=bool(a.get("organizer", False)),
                is_self=bool(a.get("self", False)),
            )
            for a in (attendees if isinstance(attendees, list) else [])
            if isinstance(a, Mapping)
        ),
    )


def meeting_to_document(record: MeetingRecord) -> dict[str, Any]:
    """The `meetings/{id}` document: the record, plus index fields for queries."""
    copies = record.copies
    emails, domains = directory_keys.meeting_index_keys(record)
    starts = [c.start for c in copies.values()]
    return {
        "meetingKey": record.meeting_key,
        "copies": {member_id: copy_to_document(c) for member_id, c in copies.items()},
        "interactions": {
            account_id: {"hash": digest, "createdAt": record.interaction_created_at.get(account_id)}
            for account_id, digest in record.interaction_hashes.items()
        },
        "unmatched": [{"email": u.email, "reason": str(u.reason.value)} for u in record.unmatched],
        "eventRefs": sorted(f"{member_id}/{c.event_id}" for member_id, c in copies.items()),
        "holders": sorted(copies),
        "emails": emails,
        "domains": domains,
        "start": min(starts) if starts else None,
    }


def meeting_key_from_document(data: Mapping[str, Any]) -> str:
    """The `meetingKey` of a meeting document read with a field mask."""
    return _str(data.get("meetingKey"))


def meeting_from_document(meeting_key: str, data: Mapping[str, Any]) -> MeetingRecord:
    key = _str(data.get("meetingKey"), meeting_key)
    raw_copies = data.get("copies")
    copies = {
        member_id: copy_from_document(member_id, key, copy)
        for member_id, copy in (raw_copies.items() if isinstance(raw_copies, Mapping) else [])
        if isinstance(copy, Mapping)
    }
    raw_interactions = data.get("interactions")
    interactions = raw_interactions if isinstance(raw_interactions, Mapping) else {}
    hashes = {a: _str(v.get("hash")) for a, v in interactions.items() if isinstance(v, Mapping)}
    created = {
        a: created_at
        for a, v in interactions.items()
        if isinstance(v, Mapping) and (created_at := _as_utc(v.get("createdAt"))) is not None
    }
    unmatched: list[UnmatchedAddress] = []
    raw_unmatched = data.get("unmatched")
    for item in raw_unmatched if isinstance(raw_unmatched, list) else []:
        if isinstance(item, Mapping):
            try:
                reason = UnmatchedReason(_str(item.get("reason")))
            except ValueError:
                reason = UnmatchedReason.NO_MATCH
            unmatched.append(UnmatchedAddress(email=_str(item.get("email")), reason=reason))
    return MeetingRecord(
        meeting_key=key,
        copies=copies,
        interaction_hashes=hashes,
        interaction_created_at=created,
        unmatched=tuple(unmatched),
    )


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
            matched_by = MatchedBy(_str(a.get("matchedBy")))
        except ValueError:
            matched_by = MatchedBy.DOMAIN
        attendees.append(
            InteractionAttendee(
                email=_str(a.get("email")),
                name=_str(a.get("name")),
                user_id=_opt_str(a.get("userId")),
                matched_by=matched_by,
                minutes_in_meeting=_int(a.get("minutesInMeeting")),
            )
        )
    member_ids = data.get("memberIds")
    return Interaction(
        id=interaction_id,
        account_id=_str(data.get("accountId")),
        meeting_key=_str(data.get("meetingKey")),
        title=_str(data.get("title")),
        date=_str(data.get("date")),
        start_time=_required_utc(data.get("startTime")),
        end_time=_required_utc(data.get("endTime")),
        time_zone=_str(data.get("timeZone"), "UTC"),
        duration_minutes=_int(data.get("durationMinutes")),
        participants=tuple(
            Participant(
                email=_str(p.get("email")),
                name=_str(p.get("name")),
                response_status=_str(p.get("responseStatus"), "needsAction"),
                internal=bool(p.get("internal", False)),
                organizer=bool(p.get("organizer", False)),
            )
            for p in items("participants")
        ),
        attendees=tuple(attendees),
        member_ids=tuple(m for m in member_ids if isinstance(m, str)) if isinstance(member_ids, list) else (),
        organizer_email=_str(data.get("organizerEmail")),
        created_at=_required_utc(data.get("createdAt")),
        updated_at=_required_utc(data.get("updatedAt")),
        type=_str(data.get("type"), "Google calendar"),
    )


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def interaction_to_json(interaction: Interaction) -> dict[str, Any]:
    """The §3 document plus its `id`, times as RFC 3339 UTC strings (`calsync interactions --json`)."""
    document = interaction_to_document(interaction)
    for name in ("startTime", "endTime", "createdAt", "updatedAt"):
        document[name] = _rfc3339(document[name])
    return {"id": interaction.id, **document}
