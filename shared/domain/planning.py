"""Deciding what to write (gather -> decide -> apply; this module only decides). Pure.

A meeting's interactions are a pure function of the stored copies of the meeting (one per member
who holds it) and the directory: every plan sets or removes copies, then recomputes the meeting
from all its copies (docs/reference.md#the-interaction-document):

- one interaction per matched account;
- its details come from the most recently updated copy (latest event `updated`; ties go to the
  greatest member id) among the copies that produce that account;
- `memberIds` = every member whose copy produces it, sorted;
- interactions no longer produced are deleted; a meeting with no copy left is deleted;
- an excluded copy (README.md#exclusions) is never kept: planning removes it from the record.

Each interaction's content hash is kept on the meeting record, so an unchanged interaction is not
re-upserted and an unchanged record is not rewritten: planning the same changes twice yields an
empty plan the second time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.domain.events import time_zone
from shared.domain.ids import interaction_id
from shared.domain.limits import capped_name
from shared.domain.matching import MatchingContext, match_copy
from shared.domain.models import (
    AttendeeMatch,
    EventChange,
    EventDropped,
    EventHeld,
    EventOutsideWindow,
    Interaction,
    InteractionAttendee,
    MeetingMatch,
    MeetingRecord,
    MeetingWrite,
    MemberCopy,
    Participant,
    Plan,
    StoredMeeting,
    UnmatchedAddress,
)


def plan_member_changes(
    *,
    member_id: str,
    changes: Sequence[EventChange],
    stored: Mapping[str, StoredMeeting],
    event_keys: Mapping[str, str],
    context: MatchingContext,
    now: datetime,
    window_start: datetime,
) -> Plan:
    """Apply one member's event changes (in order) to the stored meetings and recompute them.

    `stored` should hold every meeting key the changes concern, as read (a key never stored: an
    empty record with version None; a key missing from `stored` is taken as never stored, so the
    write requires it to be absent and a concurrent creation surfaces as a WriteConflict).
    `event_keys` maps event ids to meeting keys for bare cancelled stubs. A drop removes the
    member's copy only when it is the same event; a copy stored with a start before
    `window_start` is left alone (ignored altogether, README.md#how-meetings-are-matched-to-accounts).
    """
    meetings: dict[str, StoredMeeting] = {}
    copies_by_key: dict[str, dict[str, MemberCopy]] = {}

    def copies_of(key: str) -> dict[str, MemberCopy]:
        if key not in copies_by_key:
            meeting = stored.get(key) or StoredMeeting(MeetingRecord(meeting_key=key, copies={}), None)
            meetings[key] = meeting
            copies_by_key[key] = dict(meeting.record.copies)
        return copies_by_key[key]

    for change in changes:
        if isinstance(change, EventOutsideWindow):
            continue
        if isinstance(change, EventHeld):
            copy = change.copy
            if copy.member_id != member_id:
                continue
            copies_of(copy.meeting_key)[member_id] = copy
        elif isinstance(change, EventDropped):
            key = change.meeting_key or event_keys.get(change.event_id)
            if not key:
                continue
            copies = copies_of(key)
            held = copies.get(member_id)
            if held is not None and held.event_id == change.event_id and held.start >= window_start:
                del copies[member_id]

    return _plan_meetings(
        ((meetings[key], copies) for key, copies in copies_by_key.items()), context=context, now=now
    )


def plan_rematch(stored: Mapping[str, StoredMeeting], context: MatchingContext, now: datetime) -> Plan:
    """Recompute the interactions of stored meetings with the current directory (copies unchanged):
    used when the directory changed."""
    return _plan_meetings(
        ((meeting, dict(meeting.record.copies)) for meeting in stored.values()), context=context, now=now
    )


def plan_member_reconcile(
    member_id: str,
    stored: Mapping[str, StoredMeeting],
    generation: int,
    context: MatchingContext,
    now: datetime,
    *,
    window_start: datetime | None = None,
) -> Plan:
    """After a full listing of generation `generation`: remove this member's copies that the
    listing did not see again (copy generation < `generation`), then recompute those meetings.

    Copies that start before the backfill window are left alone (the listing does not return them;
    they are ignored altogether). `window_start` defaults to now - backfillDays.
    """
    if window_start is None:
        window_start = now - timedelta(days=context.tenant.settings.backfill_days)
    affected: list[tuple[StoredMeeting, dict[str, MemberCopy]]] = []
    for meeting in stored.values():
        held = meeting.record.copies.get(member_id)
        if held is None or held.generation >= generation or held.start < window_start:
            continue
        copies = dict(meeting.record.copies)
        del copies[member_id]
        affected.append((meeting, copies))
    return _plan_meetings(affected, context=context, now=now)


def plan_without_meetings(
    plan: Plan, meeting_keys: Iterable[str], stored: Mapping[str, StoredMeeting]
) -> Plan:
    """The plan with nothing written for these meetings: no meeting write, no upsert and no
    delete of their interactions (those they had as `stored`, or the plan writes). They stay as
    stored (used for a meeting that cannot be written, docs/reference.md#size-limits)."""
    skipped = frozenset(meeting_keys)
    if not skipped:
        return plan
    untouched = {
        interaction_id(i.meeting_key, i.account_id)
        for i in plan.interaction_upserts
        if i.meeting_key in skipped
    }
    for key in skipped:
        meeting = stored.get(key)
        if meeting is not None:
            untouched.update(interaction_id(key, account) for account in meeting.record.interaction_hashes)
    return Plan(
        meeting_writes=tuple(w for w in plan.meeting_writes if w.meeting_key not in skipped),
        interaction_upserts=tuple(i for i in plan.interaction_upserts if i.meeting_key not in skipped),
        interaction_deletes=tuple(i for i in plan.interaction_deletes if i not in untouched),
    )


# --- recomputing one meeting ------------------------------------------------------------------


@dataclass
class _PlanBuilder:
    meeting_writes: list[MeetingWrite] = field(default_factory=list)
    upserts: list[Interaction] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def plan(self) -> Plan:
        return Plan(
            meeting_writes=tuple(self.meeting_writes),
            interaction_upserts=tuple(self.upserts),
            interaction_deletes=tuple(self.deletes),
        )


def _plan_meetings(
    meetings: Iterable[tuple[StoredMeeting, dict[str, MemberCopy]]],
    *,
    context: MatchingContext,
    now: datetime,
) -> Plan:
    builder = _PlanBuilder()
    for meeting, copies in meetings:
        _plan_meeting(meeting, copies, context, now, builder)
    return builder.plan()


def _plan_meeting(
    meeting: StoredMeeting,
    copies: dict[str, MemberCopy],
    context: MatchingContext,
    now: datetime,
    builder: _PlanBuilder,
) -> None:
    old = meeting.record
    key = old.meeting_key
    copies = {member: copy for member, copy in copies.items() if not context.is_excluded(copy)}
    if not copies:
        builder.deletes.extend(interaction_id(key, account) for account in sorted(old.interaction_hashes))
        if meeting.version is not None:
            builder.meeting_writes.append(
                MeetingWrite(meeting_key=key, record=None, expected=meeting.version)
            )
        return

    interactions, unmatched = compute_interactions(key, copies, context, now=now, previous=old)
    hashes: dict[str, str] = {}
    created: dict[str, datetime] = {}
    for interaction in interactions:
        digest = interaction_hash(interaction)
        hashes[interaction.account_id] = digest
        created[interaction.account_id] = interaction.created_at
        if old.interaction_hashes.get(interaction.account_id) != digest:
            builder.upserts.append(interaction)
    builder.deletes.extend(
        interaction_id(key, account) for account in sorted(old.interaction_hashes) if account not in hashes
    )
    record = MeetingRecord(
        meeting_key=key,
        copies={member: copies[member] for member in sorted(copies)},
        interaction_hashes=hashes,
        interaction_created_at=created,
        unmatched=unmatched,
    )
    if meeting.version is None or record != old:
        builder.meeting_writes.append(MeetingWrite(meeting_key=key, record=record, expected=meeting.version))


def compute_interactions(
    meeting_key: str,
    copies: Mapping[str, MemberCopy],
    context: MatchingContext,
    *,
    now: datetime,
    previous: MeetingRecord | None = None,
) -> tuple[tuple[Interaction, ...], tuple[UnmatchedAddress, ...]]:
    """The interactions a meeting produces from all its copies (sorted by account id), and the
    unmatched/ambiguous addresses across its copies (sorted by email).

    `createdAt` is kept from `previous` for interactions that existed; new ones get `now`, as does
    every `updatedAt` (the planner only writes interactions whose content changed)."""
    matches: dict[str, MeetingMatch] = {member: match_copy(copy, context) for member, copy in copies.items()}
    producers: dict[str, list[str]] = {}
    unmatched: dict[str, UnmatchedAddress] = {}
    for member in sorted(copies):
        match = matches[member]
        for account in match.account_ids:
            producers.setdefault(account, []).append(member)
        for address in match.unmatched:
            unmatched.setdefault(address.email, address)

    interactions: list[Interaction] = []
    for account in sorted(producers):
        members = producers[account]
        source = max(members, key=lambda m: (copies[m].updated, m))
        created_at = now
        if previous is not None and account in previous.interaction_hashes:
            created_at = previous.interaction_created_at.get(account, now)
        interactions.append(
            build_interaction(
                copies[source],
                account_id=account,
                matches=[m for m in matches[source].matches if m.account_id == account],
                member_ids=members,
                context=context,
                created_at=created_at,
                updated_at=now,
            )
        )
    return tuple(interactions), tuple(unmatched[e] for e in sorted(unmatched))


# --- the interaction document (docs/reference.md#the-interaction-document) ---------------------


def build_interaction(
    copy: MemberCopy,
    *,
    account_id: str,
    matches: Iterable[AttendeeMatch],
    member_ids: Iterable[str],
    context: MatchingContext,
    created_at: datetime,
    updated_at: datetime,
) -> Interaction:
    """The interaction of `copy`'s meeting with one account: `matches` are the attendees of the
    copy matched to that account."""
    duration = duration_minutes(copy.start, copy.end)
    names = {a.email: a.display_name for a in copy.attendees}
    participants = tuple(
        Participant(
            email=attendee.email,
            name=attendee.display_name or _user_name(attendee.email, context),
            response_status=attendee.response_status,
            internal=context.is_internal(attendee.email),
            organizer=attendee.is_organizer,
        )
        for attendee in sorted(copy.attendees, key=lambda a: a.email)
    )
    attendees = tuple(
        InteractionAttendee(
            email=match.email,
            name=names.get(match.email) or _matched_user_name(match, context),
            user_id=match.user_id,
            matched_by=match.matched_by,
            minutes_in_meeting=duration,
        )
        for match in sorted(matches, key=lambda m: m.email)
        if match.account_id == account_id
    )
    return Interaction(
        id=interaction_id(copy.meeting_key, account_id),
        account_id=account_id,
        meeting_key=copy.meeting_key,
        title=copy.title,
        date=local_date(copy.start, copy.time_zone),
        start_time=copy.start,
        end_time=copy.end,
        time_zone=copy.time_zone,
        duration_minutes=duration,
        participants=participants,
        attendees=attendees,
        member_ids=tuple(sorted(set(member_ids))),
        organizer_email=copy.organizer_email.lower(),
        created_at=created_at,
        updated_at=updated_at,
    )


def duration_minutes(start: datetime, end: datetime) -> int:
    """Whole minutes from start to end, rounded to the nearest minute, half up."""
    delta = end - start
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (micros + 30_000_000) // 60_000_000


def local_date(instant: datetime, zone_name: str) -> str:
    """`YYYY-MM-DD`: the date of `instant` in the zone (UTC when the zone is unknown)."""
    zone = time_zone(zone_name)
    local = instant.astimezone(zone) if zone is not None else instant
    return local.date().isoformat()


def interaction_hash(interaction: Interaction) -> str:
    """A content hash of everything in the interaction except `createdAt`/`updatedAt`."""
    fields = interaction.contract_fields()
    del fields["createdAt"], fields["updatedAt"]
    fields["id"] = interaction.id
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=datetime.isoformat)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _user_name(email: str, context: MatchingContext) -> str:
    outcome = context.classify(email)
    if isinstance(outcome, AttendeeMatch):
        return _matched_user_name(outcome, context)
    return ""


def _matched_user_name(match: AttendeeMatch, context: MatchingContext) -> str:
    user = context.user(match.email, match.user_id)
    return capped_name(user.name) if user is not None else ""
