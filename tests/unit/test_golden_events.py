"""Golden cases: real-shaped Google Calendar payloads -> the exact interaction documents
(docs/reference.md#the-interaction-document).

Each `golden/*.json` (except directory.json) holds one event as `events.list` returns it, the
member whose calendar it is on, and what must come out: the EventChange kind and, for held
events, every interaction field (times as RFC 3339 UTC strings, as `calsync interactions --json`
prints them). The expected values were written by hand from the spec, not recorded from the code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.domain import ids
from shared.domain.emails import normalize_domain, normalize_email
from shared.domain.events import event_from_google
from shared.domain.matching import MatchingContext, lookup_keys
from shared.domain.models import (
    Account,
    DirectorySnapshot,
    EventDropped,
    EventHeld,
    EventOutsideWindow,
    Interaction,
    MeetingRecord,
    StoredMeeting,
    Tenant,
    TenantSettings,
    User,
)
from shared.domain.planning import plan_member_changes

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*.json") if p.name != "directory.json")


def rfc3339(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def to_document(interaction: Interaction) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "type": interaction.type,
        "accountId": interaction.account_id,
        "meetingKey": interaction.meeting_key,
        "title": interaction.title,
        "date": interaction.date,
        "startTime": rfc3339(interaction.start_time),
        "endTime": rfc3339(interaction.end_time),
        "timeZone": interaction.time_zone,
        "durationMinutes": interaction.duration_minutes,
        "participants": [
            {
                "email": p.email,
                "name": p.name,
                "responseStatus": p.response_status,
                "internal": p.internal,
                "organizer": p.organizer,
            }
            for p in interaction.participants
        ],
        "attendees": [
            {
                "email": a.email,
                "name": a.name,
                "userId": a.user_id,
                "matchedBy": str(a.matched_by),
                "minutesInMeeting": a.minutes_in_meeting,
            }
            for a in interaction.attendees
        ],
        "memberIds": list(interaction.member_ids),
        "organizerEmail": interaction.organizer_email,
        "createdAt": rfc3339(interaction.created_at),
        "updatedAt": rfc3339(interaction.updated_at),
    }


def load_directory() -> tuple[Tenant, dict[str, str], list[Account], list[User]]:
    raw = json.loads((GOLDEN / "directory.json").read_text(encoding="utf-8"))
    settings = raw["tenant"].get("settings", {})
    tenant = Tenant(
        id=raw["tenant"]["id"],
        name=raw["tenant"]["name"],
        internal_domains=tuple(normalize_domain(d) for d in raw["tenant"]["internalDomains"]),
        settings=TenantSettings(default_time_zone=settings.get("defaultTimeZone", "UTC")),
    )
    members = {m["id"]: normalize_email(m["email"]) for m in raw["members"]}
    accounts = [
        Account(a["id"], a["name"], tuple(normalize_domain(d) for d in a["domains"])) for a in raw["accounts"]
    ]
    users = [User(u["id"], normalize_email(u["email"]), u["name"], u["accountId"]) for u in raw["users"]]
    return tenant, members, accounts, users


def batched_snapshot(
    accounts: list[Account], users: list[User], emails: frozenset[str], domains: frozenset[str]
) -> DirectorySnapshot:
    """What the directory store returns for a batched lookup of exactly these keys."""
    by_email = {e: tuple(u for u in users if u.email == e) for e in emails}
    by_domain = {d: tuple(a for a in accounts if d in a.domains) for d in domains}
    return DirectorySnapshot(by_email, by_domain)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_event(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    tenant, members, accounts, users = load_directory()
    now, window_start = parse_time(case["now"]), parse_time(case["windowStart"])
    member_id = case["memberId"]
    expected = case["expected"]

    change = event_from_google(
        case["event"],
        member_id=member_id,
        member_email=members[member_id],
        calendar_time_zone=case["calendarTimeZone"],
        settings=tenant.settings,
        window_start=window_start,
        generation=1,
    )

    if expected["result"] == "outside_window":
        assert isinstance(change, EventOutsideWindow)
        return
    if expected["result"] == "dropped":
        assert isinstance(change, EventDropped)
        assert (str(change.reason), change.meeting_key) == (expected["reason"], expected["meetingKey"])
        return
    assert isinstance(change, EventHeld)
    assert change.copy.meeting_key == expected["meetingKey"]

    member_emails = frozenset(members.values())
    emails, domains = lookup_keys([change.copy], tenant, member_emails)
    context = MatchingContext(tenant, member_emails, batched_snapshot(accounts, users, emails, domains))
    key = change.copy.meeting_key
    plan = plan_member_changes(
        member_id=member_id,
        changes=[change],
        stored={key: StoredMeeting(MeetingRecord(key, {}), None)},
        event_keys={},
        context=context,
        now=now,
        window_start=window_start,
    )

    documents = [to_document(i) for i in plan.interaction_upserts]
    for want in expected["interactions"]:
        if want["id"] is None:
            want["id"] = ids.interaction_id(want["meetingKey"], want["accountId"])
    assert documents == expected["interactions"]

    (write,) = plan.meeting_writes
    assert write.record is not None
    if "unmatched" in expected:
        assert [{"email": u.email, "reason": str(u.reason)} for u in write.record.unmatched] == expected[
            "unmatched"
        ]
    if "unmatchedCount" in expected:
        assert len(write.record.unmatched) == expected["unmatchedCount"]
