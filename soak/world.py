"""The soak's synthetic world, all drawn from one seeded `random.Random`: tenants with their
directories (accounts with domains, users), members and their Google calendars (meetings shared
by several members of a tenant and across tenants: the same event id and iCalUID on each
holder's calendar), and the random changes of a round (calendar edits and directory edits).

The world keeps the truth in memory: the calendars live in the stand-in, the directory in
Firestore (written as the CS platform would, then re-matched as the `directory_changed` trigger
would), and `import_file()` gives each tenant's directory as it is now for the reference run.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.directory_keys import Collection

_FIRST = ("anna", "ben", "chloe", "dev", "emma", "farid", "grace", "hugo", "ines", "jonas", "kira", "liam")
_LAST = ("smith", "jones", "meyer", "rossi", "dubois", "kim", "sato", "silva", "novak", "berg", "khan")
_WORDS = ("acme", "globex", "initech", "umbrella", "hooli", "soylent", "stark", "wayne", "tyrell", "vandelay")
_TOPICS = ("QBR", "Onboarding", "Renewal", "Roadmap", "Escalation", "Training", "Check-in", "Kickoff")
ZONES = ("Europe/Stockholm", "America/New_York", "Europe/London", "UTC", "Asia/Tokyo", "Asia/Kathmandu")
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com")
COMPANIES = 40  # customer companies; each tenant has some of them as accounts
CONTACTS = 6  # people per company who attend meetings; the first 3 are directory users at first


@dataclass
class Tenant:
    id: str
    internal_domain: str
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {name, domains}
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {email, name, accountId}
    members: list[str] = field(default_factory=list)


@dataclass
class Meeting:
    """One Google event held by several members (each holder's calendar has a copy)."""

    payload: dict[str, Any]
    holders: list[str]  # member emails whose calendars hold it
    cancelled: bool = False


@dataclass(frozen=True)
class DirectoryEdit:
    """A directory document written (None: created / deleted), for the re-match."""

    tenant_id: str
    collection: Collection
    document_id: str
    old: dict[str, Any] | None
    new: dict[str, Any] | None
    kind: str


def company_domain(k: int) -> str:
    return f"{_WORDS[k % len(_WORDS)]}{k}.com"


def contact_email(k: int, slot: int) -> str:
    return (
        f"{_FIRST[(k + slot) % len(_FIRST)]}.{_LAST[(k * 3 + slot) % len(_LAST)]}{slot}@{company_domain(k)}"
    )


def _name(email: str) -> str:
    return email.split("@")[0].replace(".", " ").title()


class World:
    """Tenants, members and meetings; every draw from `rng`."""

    def __init__(self, seed: int, tenants: int, members: int, events: int, anchor: datetime) -> None:
        self.rng = random.Random(seed)
        self.anchor = anchor.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        self.events_per_member = events
        self.tenants = [self._tenant(i) for i in range(tenants)]
        self.member_tenant: dict[str, str] = {}
        for index in range(members):
            tenant = self.tenants[index % tenants]
            member_id = f"m{index:03d}"
            tenant.members.append(member_id)
            self.member_tenant[member_id] = tenant.id
        self.meetings: dict[str, Meeting] = {}
        self._serial = 0

    # --- the directory -------------------------------------------------------------------------

    def _tenant(self, index: int) -> Tenant:
        tenant = Tenant(f"t{index}", f"t{index}-cs.com")
        for k in sorted(self.rng.sample(range(COMPANIES), COMPANIES * 2 // 3)):
            account_id = f"acc-{k:02d}"
            tenant.accounts[account_id] = {
                "name": f"{_WORDS[k % len(_WORDS)].title()} {k}",
                "domains": [company_domain(k)],
            }
            for slot in range(3):
                email = contact_email(k, slot)
                tenant.users[f"u-{k:02d}-{slot}"] = {
                    "email": email,
                    "name": _name(email),
                    "accountId": account_id,
                }
        return tenant

    def member_email(self, member_id: str) -> str:
        tenant = self.tenant_of(member_id)
        return f"{member_id}@{tenant.internal_domain}"

    def tenant_of(self, member_id: str) -> Tenant:
        return next(t for t in self.tenants if t.id == self.member_tenant[member_id])

    def all_members(self) -> list[tuple[str, str]]:
        return [(t.id, m) for t in self.tenants for m in t.members]

    def import_file(self, tenant: Tenant) -> dict[str, Any]:
        """The tenant's directory as it is now, in the `calsync import` file format."""
        return {
            "tenant": {
                "id": tenant.id,
                "name": f"Soak CS {tenant.id}",
                "internalDomains": [tenant.internal_domain],
                "settings": {
                    "backfillDays": 365,
                    "excludeDeclined": True,
                    "defaultTimeZone": "Europe/London",
                },
            },
            "accounts": [{"id": a, **copy.deepcopy(doc)} for a, doc in sorted(tenant.accounts.items())],
            "users": [{"id": u, **copy.deepcopy(doc)} for u, doc in sorted(tenant.users.items())],
            "members": [{"id": m, "email": self.member_email(m), "name": m} for m in tenant.members],
        }

    # --- meetings ------------------------------------------------------------------------------

    def initial_meetings(self, big_every: int = 20) -> None:
        """~events_per_member meetings per member: a fifth shared with other members (some with
        members of other tenants); every `big_every`-th member has a calendar four times bigger."""
        members = [m for t in self.tenants for m in t.members]
        for index, member_id in enumerate(members):
            count = self.events_per_member * (4 if index % big_every == big_every - 1 else 1)
            held = sum(1 for mt in self.meetings.values() if self.member_email(member_id) in mt.holders)
            for _ in range(max(0, count - held)):
                self.new_meeting(member_id)

    def new_meeting(self, member_id: str) -> Meeting:
        rng = self.rng
        tenant = self.tenant_of(member_id)
        holders = [member_id]
        if rng.random() < 0.2:
            others = [m for m in tenant.members if m != member_id]
            holders += rng.sample(others, min(len(others), rng.randint(1, 3)))
        if len(self.tenants) > 1 and rng.random() < 0.05:
            other = rng.choice([t for t in self.tenants if t.id != tenant.id])
            holders.append(rng.choice(other.members))
        self._serial += 1
        event_id = f"soak{self._serial:05d}{''.join(rng.choice('abcdefghijklmnopqrstuv') for _ in range(8))}"
        emails = [self.member_email(m) for m in holders]
        payload = self._payload(event_id, emails)
        meeting = Meeting(payload, emails)
        self.meetings[event_id] = meeting
        return meeting

    def _payload(self, event_id: str, holder_emails: list[str]) -> dict[str, Any]:
        rng = self.rng
        zone = rng.choice(ZONES)
        start = self.anchor - timedelta(
            days=rng.randint(-20, 250), hours=rng.randint(0, 10), minutes=rng.choice((0, 30))
        )
        end = start + timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
        organizer = rng.choice(holder_emails)
        attendees = [
            {"email": e, "responseStatus": "accepted", **({"organizer": True} if e == organizer else {})}
            for e in holder_emails
        ]
        companies = rng.sample(range(COMPANIES), rng.choice((1, 1, 2)))
        for _ in range(rng.randint(1, 5)):
            attendees.append(self._guest(rng.choice(companies)))
        k = companies[0]
        return {
            "id": event_id,
            "iCalUID": f"{event_id}@google.com",
            "status": "confirmed",
            "summary": f"{_WORDS[k % len(_WORDS)].title()} {k} {rng.choice(_TOPICS)}",
            "organizer": {"email": organizer},
            "creator": {"email": organizer},
            "start": {"dateTime": start.isoformat(), "timeZone": zone},
            "end": {"dateTime": end.isoformat(), "timeZone": zone},
            "attendees": _dedupe(attendees),
            "eventType": "default",
        }

    def _guest(self, company: int) -> dict[str, Any]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.8:
            email = contact_email(company, rng.randrange(CONTACTS))
        elif roll < 0.9:
            email = f"{rng.choice(_FIRST)}{rng.randint(1, 99)}@{rng.choice(FREE_MAIL)}"
        else:
            email = f"{rng.choice(_FIRST)}@prospect{rng.randint(1, 12)}.io"
        guest: dict[str, Any] = {
            "email": email,
            "responseStatus": rng.choice(("accepted", "tentative", "needsAction")),
        }
        if rng.random() < 0.5:
            guest["displayName"] = _name(email)
        return guest

    def copy_for(self, meeting: Meeting, holder: str) -> dict[str, Any]:
        """The holder's copy of a meeting (Google marks the calendar owner `self`)."""
        payload = copy.deepcopy(meeting.payload)
        for attendee in payload["attendees"]:
            if attendee["email"] == holder:
                attendee["self"] = True
        if payload["organizer"]["email"] == holder:
            payload["organizer"]["self"] = True
        return payload

    def live_meetings(self) -> list[Meeting]:
        return [m for m in self.meetings.values() if not m.cancelled and m.holders]


def _dedupe(attendees: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    kept = []
    for attendee in attendees:
        if attendee["email"] not in seen:
            seen.add(attendee["email"])
            kept.append(attendee)
    return kept
