"""Deterministic synthetic data for the benchmarks: a tenant directory (accounts, users, members)
in the `calsync import` file format, and calendars of real-shaped Google `events.list` items.

Everything is derived from a seed with `random.Random`, so two runs with the same sizes produce
the same bytes (times are relative to an `anchor` the caller passes: the start of the current
UTC day, so the events sit inside the backfill window of a sync run now).

The mix is meant to look like a customer-success calendar: most meetings have 2-8 external
attendees from one or two customer accounts (directory users, unknown colleagues of theirs,
people on a subdomain), some free-mail and unknown-company guests, internal colleagues, rooms;
and a tail of everything the rules drop (cancelled, all-day, declined, private, focus time).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TENANT = "bench"
INTERNAL_DOMAIN = "benchcs.com"
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com")
ZONES = ("Europe/Stockholm", "America/New_York", "Europe/London", "UTC", "Asia/Tokyo", "Europe/Berlin")
_FIRST = ("anna", "ben", "chloe", "dev", "emma", "farid", "grace", "hugo", "ines", "jonas", "kira", "liam")
_LAST = ("smith", "jones", "meyer", "rossi", "dubois", "kim", "sato", "silva", "novak", "berg", "khan")
_WORDS = ("acme", "globex", "initech", "umbrella", "hooli", "soylent", "stark", "wayne", "tyrell", "vandelay")
_TOPICS = ("QBR", "Onboarding", "Renewal", "Roadmap review", "Escalation", "Training", "Check-in", "Kickoff")


@dataclass(frozen=True)
class DirectoryShape:
    accounts: int
    users_per_account: int
    colleagues: int  # internal CS members who do not sync (they still make attendees internal)


def account_domain(index: int) -> str:
    word = _WORDS[index % len(_WORDS)]
    if index % 10 == 3:
        return f"{word}{index}.co.uk"
    return f"{word}{index}.com"


def user_email(account: int, slot: int) -> str:
    first = _FIRST[(account + slot) % len(_FIRST)]
    last = _LAST[(account * 7 + slot) % len(_LAST)]
    return f"{first}.{last}{slot}@{account_domain(account)}"


def colleague_email(index: int) -> str:
    return f"cs{index}@{INTERNAL_DOMAIN}"


def member_email(member_id: str) -> str:
    return f"{member_id}@{INTERNAL_DOMAIN}"


def directory_file(shape: DirectoryShape, member_ids: list[str]) -> dict[str, Any]:
    """The `calsync import` file of the benchmark tenant.

    Every 50th account shares its domain with the next one (ambiguous by domain); every 10th has a
    `.co.uk` domain; some domains are written as URLs (normalised on import)."""
    accounts = []
    for a in range(shape.accounts):
        domains = [account_domain(a)]
        if a % 50 == 1 and a > 0:
            domains.append(account_domain(a - 1))  # ambiguous with the previous account
        if a % 13 == 0:
            domains[0] = f"https://www.{domains[0]}/"
        accounts.append(
            {"id": f"acc-{a:05d}", "name": f"{_WORDS[a % len(_WORDS)].title()} {a}", "domains": domains}
        )
    users = [
        {
            "id": f"u-{a:05d}-{s}",
            "email": user_email(a, s),
            "name": user_email(a, s).split("@")[0].replace(".", " ").title(),
            "accountId": f"acc-{a:05d}",
        }
        for a in range(shape.accounts)
        for s in range(shape.users_per_account)
    ]
    members = [{"id": m, "email": member_email(m), "name": m} for m in member_ids]
    members += [
        {"id": f"cs-{c}", "email": colleague_email(c), "name": f"Colleague {c}"}
        for c in range(shape.colleagues)
    ]
    return {
        "tenant": {
            "id": TENANT,
            "name": "Benchmark CS",
            "internalDomains": [INTERNAL_DOMAIN],
            "settings": {"backfillDays": 365, "excludeDeclined": True, "defaultTimeZone": "Europe/London"},
        },
        "accounts": accounts,
        "users": users,
        "members": members,
    }


def _event_id(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuv0123456789"
    return "".join(rng.choice(alphabet) for _ in range(26))


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class CalendarGenerator:
    """Events of one member's calendar; `event(k)` is deterministic in (seed, member, k)."""

    def __init__(self, member_id: str, shape: DirectoryShape, anchor: datetime, seed: int = 7) -> None:
        self.member_id = member_id
        self.email = member_email(member_id)
        self.shape = shape
        self.anchor = anchor
        self.seed = seed
        self._contact_cache: dict[int, list[str]] = {}
        self._outsider_cache: list[str] = []

    def _contacts(self, account: int) -> list[str]:
        """The people of one account this member meets (a member meets the same customer contacts
        again and again): directory users, colleagues of theirs who are not in the directory, people
        on a subdomain. Deterministic per (seed, member, account)."""
        cached = self._contact_cache.get(account)
        if cached is None:
            rng = random.Random(f"{self.seed}/{self.member_id}/contacts/{account}")
            cached = [user_email(account, s) for s in range(self.shape.users_per_account)]
            domain = account_domain(account)
            cached += [f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}@{domain}" for _ in range(2)]
            cached.append(f"{rng.choice(_FIRST)}@eu.{domain}")
            self._contact_cache[account] = cached
        return cached

    def _outsiders(self) -> list[str]:
        """Guests from no customer account: free-mail addresses and prospects (a bounded pool)."""
        if not self._outsider_cache:
            rng = random.Random(f"{self.seed}/{self.member_id}/outsiders")
            self._outsider_cache = [
                f"{rng.choice(_FIRST)}{rng.randint(1, 999)}@{rng.choice(FREE_MAIL)}" for _ in range(150)
            ] + [f"{rng.choice(_FIRST)}@prospect{rng.randint(1, 5000)}.io" for _ in range(150)]
        return self._outsider_cache

    def events(self, count: int) -> list[dict[str, Any]]:
        return [self.event(k) for k in range(count)]

    def event(self, k: int) -> dict[str, Any]:
        rng = random.Random(hashlib.sha256(f"{self.seed}/{self.member_id}/{k}".encode()).digest())
        event_id = _event_id(rng)
        zone_name = rng.choice(ZONES)
        zone = ZoneInfo(zone_name)
        day = self.anchor - timedelta(days=rng.randint(0, 355))
        local = datetime(day.year, day.month, day.day, rng.randint(8, 17), rng.choice((0, 30)), tzinfo=zone)
        start = local
        end = start + timedelta(minutes=rng.choice((15, 30, 45, 60, 60, 90)))
        updated = start - timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 1000))
        created = updated - timedelta(days=rng.randint(0, 30))
        roll = rng.random()
        accounts = [rng.randrange(self.shape.accounts) for _ in range(1 if rng.random() < 0.7 else 2)]
        topic = rng.choice(_TOPICS)
        title = f"{_WORDS[accounts[0] % len(_WORDS)].title()} {accounts[0]} {topic}"
        organizer_is_self = rng.random() < 0.6
        organizer = (
            {"email": self.email, "self": True}
            if organizer_is_self
            else {"email": colleague_email(rng.randrange(max(1, self.shape.colleagues)))}
        )
        attendees: list[dict[str, Any]] = [
            {
                "email": self.email,
                "organizer": organizer_is_self or None,
                "self": True,
                "responseStatus": "declined" if 0.90 <= roll < 0.92 else "accepted",
            }
        ]
        if not organizer_is_self:
            attendees.append({"email": organizer["email"], "organizer": True, "responseStatus": "accepted"})
        for _ in range(rng.randint(0, 2)):
            attendees.append(
                {
                    "email": colleague_email(rng.randrange(max(1, self.shape.colleagues))),
                    "responseStatus": "accepted",
                }
            )
        for _ in range(rng.randint(2, 8)):
            account = rng.choice(accounts)
            email = (
                rng.choice(self._contacts(account)) if rng.random() < 0.88 else rng.choice(self._outsiders())
            )
            status = rng.choice(("accepted", "accepted", "tentative", "needsAction", "declined"))
            entry: dict[str, Any] = {
                "email": email.title() if rng.random() < 0.05 else email,
                "responseStatus": status,
            }
            if rng.random() < 0.6:
                entry["displayName"] = email.split("@")[0].replace(".", " ").title()
            attendees.append(entry)
        if rng.random() < 0.15:
            attendees.append(
                {
                    "email": f"c_{_event_id(rng)}@resource.calendar.google.com",
                    "displayName": "Room 4.01",
                    "resource": True,
                    "responseStatus": "accepted",
                }
            )
        for entry in attendees:
            if entry.get("organizer") is None:
                entry.pop("organizer", None)
        payload: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
            "created": _rfc3339(created),
            "updated": _rfc3339(updated),
            "summary": title,
            "description": f"Agenda for {title}: adoption, renewal timeline, open tickets, roadmap.",
            "creator": organizer,
            "organizer": organizer,
            "start": {"dateTime": start.isoformat(), "timeZone": zone_name},
            "end": {"dateTime": end.isoformat(), "timeZone": zone_name},
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "attendees": attendees,
            "hangoutLink": f"https://meet.google.com/{event_id[:3]}-{event_id[3:7]}-{event_id[7:10]}",
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        if rng.random() < 0.12:  # an instance of a recurring series
            base = event_id
            payload["id"] = f"{base}_{_stamp(start)}"
            payload["recurringEventId"] = base
            payload["originalStartTime"] = dict(payload["start"])
        if roll < 0.03:
            payload["status"] = "cancelled"
        elif roll < 0.05:
            payload["start"] = {"date": start.date().isoformat()}
            payload["end"] = {"date": (start.date() + timedelta(days=1)).isoformat()}
        elif roll < 0.06:
            payload["visibility"] = "private"
        elif roll < 0.07:
            payload["eventType"] = "focusTime"
            payload["attendees"] = attendees[:1]
        return payload

    def changed(self, k: int, version: int) -> dict[str, Any]:
        """Event `k` as edited in Google Calendar (`version` > 0): a new title, moved by a day,
        and one attendee more (what the 1%-changed incremental sync applies)."""
        payload = self.event(k)
        payload["summary"] = f"{payload.get('summary', '')} (v{version})"
        for bound in ("start", "end"):
            raw = payload.get(bound, {}).get("dateTime")
            if isinstance(raw, str):
                moved = datetime.fromisoformat(raw) + timedelta(days=1)
                payload[bound] = {**payload[bound], "dateTime": moved.isoformat()}
        attendees = list(payload.get("attendees") or [])
        attendees.append({"email": user_email(k % self.shape.accounts, 0), "responseStatus": "accepted"})
        payload["attendees"] = attendees
        return payload
