"""The meeting document (`tenants/{t}/meetings/{id}`) <-> `MeetingRecord`.

The guest list is stored once per meeting (README.md#data-in-firestore): when N members hold
the same invitation, their copies carry the same guests, and only each member's own entry (its
`self` flag, perhaps its response) differs. So the document holds

- `guests[]`: the shared guest list, `{email, name, responseStatus, organizer}` in the
  invitation's order: the list that the most copies have (the same emails in the same order;
  ties go to the most recently updated copy, then the greatest member id), without `self` flags;
- per copy, how its list differs from `guests[]`: `guestDiffs[]`, its entries that differ from
  the shared one of the same email (with their `self` flag); `guestsAdded[]`, its entries that
  are not shared, each with its position `at`; `guestsMissing[]`, the shared emails it lacks
  (say a member's own entry, kept by the guest cap in its copy only). A copy whose guests are in
  another order, or differ in most entries, stores `attendees[]`, its whole list, instead.

Older documents hold `attendees[]` on every copy and no `guests[]`: they read the same way (the
reader is tolerant), and the next write of the meeting stores them in the new form. The domain
objects are unchanged: a record read back equals the record written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from shared.adapters.firestore.codecs import as_utc, int_or, required_utc, str_or
from shared.domain import directory_keys
from shared.domain.models import EventAttendee, MeetingRecord, MemberCopy, UnmatchedAddress, UnmatchedReason

GuestList = tuple[EventAttendee, ...]


def shared_guests(copies: Mapping[str, MemberCopy]) -> GuestList:
    """The guest list stored once for these copies (see the module docstring), `self` cleared;
    empty when that list repeats an email (differences are applied by email)."""
    if not copies:
        return ()
    emails_of = {member: tuple(a.email for a in c.attendees) for member, c in copies.items()}
    lists = Counter(emails_of.values())
    most = max(lists.values())
    member = max((m for m in copies if lists[emails_of[m]] == most), key=lambda m: (copies[m].updated, m))
    chosen = copies[member]
    if len(set(emails_of[member])) != len(chosen.attendees):
        return ()
    return tuple(
        a if not a.is_self else EventAttendee(a.email, a.display_name, a.response_status, a.is_organizer)
        for a in chosen.attendees
    )


def _attendee_to_document(attendee: EventAttendee, *, with_self: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "email": attendee.email,
        "name": attendee.display_name,
        "responseStatus": attendee.response_status,
        "organizer": attendee.is_organizer,
    }
    if with_self:
        fields["self"] = attendee.is_self
    return fields


def _attendee_from_document(data: Mapping[str, Any]) -> EventAttendee:
    return EventAttendee(
        email=str_or(data.get("email")),
        display_name=str_or(data.get("name")),
        response_status=str_or(data.get("responseStatus"), "needsAction"),
        is_organizer=bool(data.get("organizer", False)),
        is_self=bool(data.get("self", False)),
    )


def _attendees_from_document(raw: Any) -> GuestList:
    return tuple(
        _attendee_from_document(a) for a in (raw if isinstance(raw, list) else []) if isinstance(a, Mapping)
    )


def copy_to_document(copy: MemberCopy, guests: GuestList = ()) -> dict[str, Any]:
    """A member's copy, its guests stored as differences from the meeting's `guests` (see the
    module docstring), or whole when its list does not follow theirs."""
    document: dict[str, Any] = {
        "eventId": copy.event_id,
        "updated": copy.updated,
        "title": copy.title,
        "start": copy.start,
        "end": copy.end,
        "timeZone": copy.time_zone,
        "organizerEmail": copy.organizer_email,
        "generation": copy.generation,
    }
    differences = _differences(copy.attendees, guests)
    if differences is None:
        document["attendees"] = [_attendee_to_document(a) for a in copy.attendees]
    else:
        document.update(differences)
    return document


def _differences(attendees: GuestList, guests: GuestList) -> dict[str, Any] | None:
    """`guestDiffs` (entries of the same email that differ), `guestsAdded` (entries not among
    `guests`, with their position `at`) and `guestsMissing` (emails of `guests` not in the copy);
    None when the copy's guests are not in the same order as `guests`, or differ in most entries."""
    position = {g.email: n for n, g in enumerate(guests)}
    changed: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    present: set[str] = set()
    last = -1
    for at, attendee in enumerate(attendees):
        n = position.get(attendee.email)
        if n is None:
            added.append({"at": at, **_attendee_to_document(attendee)})
            continue
        if n <= last:
            return None
        last = n
        present.add(attendee.email)
        if attendee != guests[n]:
            changed.append(_attendee_to_document(attendee))
    missing = [g.email for g in guests if g.email not in present]
    if len(added) + len(missing) > len(attendees) // 2 + 1:
        return None
    differences: dict[str, Any] = {"guestDiffs": changed}
    if added:
        differences["guestsAdded"] = added
    if missing:
        differences["guestsMissing"] = missing
    return differences


def _apply_differences(data: Mapping[str, Any], guests: GuestList) -> GuestList:
    missing = data.get("guestsMissing")
    absent = {e for e in missing if isinstance(e, str)} if isinstance(missing, list) else set()
    changed = {a.email: a for a in _attendees_from_document(data.get("guestDiffs"))}
    attendees = [changed.get(g.email, g) for g in guests if g.email not in absent]
    added = data.get("guestsAdded")
    entries = [a for a in added if isinstance(a, Mapping)] if isinstance(added, list) else []
    for entry in sorted(entries, key=lambda a: int_or(a.get("at"))):
        attendees.insert(int_or(entry.get("at")), _attendee_from_document(entry))
    return tuple(attendees)


def copy_from_document(
    member_id: str, meeting_key: str, data: Mapping[str, Any], guests: GuestList = ()
) -> MemberCopy:
    """A member's copy: whole `attendees[]` (also every copy of older documents), or the
    meeting's `guests` with this copy's differences applied."""
    if isinstance(data.get("attendees"), list) or not isinstance(data.get("guestDiffs"), list):
        attendees = _attendees_from_document(data.get("attendees"))
    else:
        attendees = _apply_differences(data, guests)
    return MemberCopy(
        member_id=member_id,
        event_id=str_or(data.get("eventId")),
        meeting_key=meeting_key,
        updated=required_utc(data.get("updated")),
        title=str_or(data.get("title")),
        start=required_utc(data.get("start")),
        end=required_utc(data.get("end")),
        time_zone=str_or(data.get("timeZone"), "UTC"),
        organizer_email=str_or(data.get("organizerEmail")),
        generation=int_or(data.get("generation")),
        attendees=attendees,
    )


def meeting_to_document(record: MeetingRecord) -> dict[str, Any]:
    """The `meetings/{id}` document: the record, plus index fields for queries."""
    copies = record.copies
    guests = shared_guests(copies)
    emails, domains = directory_keys.meeting_index_keys(record)
    starts = [c.start for c in copies.values()]
    return {
        "meetingKey": record.meeting_key,
        "guests": [_attendee_to_document(g, with_self=False) for g in guests],
        "copies": {member_id: copy_to_document(c, guests) for member_id, c in copies.items()},
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
    return str_or(data.get("meetingKey"))


def meeting_from_document(meeting_key: str, data: Mapping[str, Any]) -> MeetingRecord:
    key = str_or(data.get("meetingKey"), meeting_key)
    guests = _attendees_from_document(data.get("guests"))
    raw_copies = data.get("copies")
    copies = {
        member_id: copy_from_document(member_id, key, copy, guests)
        for member_id, copy in (raw_copies.items() if isinstance(raw_copies, Mapping) else [])
        if isinstance(copy, Mapping)
    }
    raw_interactions = data.get("interactions")
    interactions = raw_interactions if isinstance(raw_interactions, Mapping) else {}
    hashes = {a: str_or(v.get("hash")) for a, v in interactions.items() if isinstance(v, Mapping)}
    created = {
        a: created_at
        for a, v in interactions.items()
        if isinstance(v, Mapping) and (created_at := as_utc(v.get("createdAt"))) is not None
    }
    return MeetingRecord(
        meeting_key=key,
        copies=copies,
        interaction_hashes=hashes,
        interaction_created_at=created,
        unmatched=_unmatched_from_document(data.get("unmatched")),
    )


def _unmatched_from_document(raw: Any) -> tuple[UnmatchedAddress, ...]:
    unmatched: list[UnmatchedAddress] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, Mapping):
            try:
                reason = UnmatchedReason(str_or(item.get("reason")))
            except ValueError:
                reason = UnmatchedReason.NO_MATCH
            unmatched.append(UnmatchedAddress(email=str_or(item.get("email")), reason=reason))
    return tuple(unmatched)
