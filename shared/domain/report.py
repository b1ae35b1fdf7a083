"""The operator report (README.md#operator-report), pure: members' sync health, interactions per
week, the accounts met most, and what calsync fails to match.

The service gathers bounded inputs (the members, 12 per-week counts, the meetings of the last 90
days and after, a directory lookup of the ambiguous keys); the functions here rank and group
them. No I/O, no clock: `now` is an argument.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.emails import candidate_domains, email_domain, is_free_mail, is_internal_domain
from shared.domain.models import (
    CalendarState,
    ConnectionStatus,
    DirectorySnapshot,
    Member,
    PushStatus,
    Tenant,
    UnmatchedAddress,
    UnmatchedReason,
)

WEEKS = 12  # interactions per week: this week and the 11 before
RECENT_DAYS = 90  # top accounts, unmatched and ambiguous addresses: meetings from now - 90 days on
TOP_ACCOUNTS = 10
WEEK = timedelta(days=7)
# A member without an active push channel is polled at every scheduler run.
PUSH_POLLING = "polling"
_MUST_RECONNECT = frozenset({ConnectionStatus.NEEDS_REAUTH, ConnectionStatus.ERROR})


@dataclass(frozen=True, slots=True)
class MemberHealth:
    member_id: str
    name: str
    email: str
    status: ConnectionStatus
    google_email: str | None
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    push_state: str = PUSH_POLLING
    push_expires_at: datetime | None = None

    @property
    def must_reconnect(self) -> bool:
        return self.status in _MUST_RECONNECT


@dataclass(frozen=True, slots=True)
class WeekCount:
    start: datetime  # Monday 00:00 UTC
    interactions: int


@dataclass(frozen=True, slots=True)
class AccountCount:
    account_id: str
    name: str
    meetings: int


@dataclass(frozen=True, slots=True)
class UnmatchedDomain:
    """A company domain no account owns: an account's missing domain, or a missing account."""

    domain: str  # the registrable domain (`eu.unknown.io` counts under `unknown.io`)
    meetings: int
    addresses: int  # distinct attendee addresses on it


@dataclass(frozen=True, slots=True)
class AmbiguousKey:
    """A domain several accounts own, or an address that is a user of several accounts."""

    key: str
    kind: str  # "domain" or "address"
    accounts: tuple[str, ...]  # the claiming account ids, as the directory has them now
    meetings: int


@dataclass(frozen=True, slots=True)
class RecentMeeting:
    """What the report reads of one stored meeting (a projection of `meetings/{id}`)."""

    start: datetime | None
    account_ids: tuple[str, ...]  # the accounts it has an interaction with
    unmatched: tuple[UnmatchedAddress, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    tenant_id: str
    generated_at: datetime
    members: tuple[MemberHealth, ...]
    weekly: tuple[WeekCount, ...]
    top_accounts: tuple[AccountCount, ...]
    unmatched_domains: tuple[UnmatchedDomain, ...]
    ambiguous: tuple[AmbiguousKey, ...]
    meetings_read: int = 0
    complete: bool = True  # False when the meeting scan stopped at its cap

    @property
    def must_reconnect(self) -> tuple[MemberHealth, ...]:
        return tuple(m for m in self.members if m.must_reconnect)


def week_starts(now: datetime, weeks: int = WEEKS) -> tuple[datetime, ...]:
    """Monday 00:00 UTC of this week and of the `weeks - 1` before it, oldest first."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    this_week = today - timedelta(days=today.weekday())
    return tuple(this_week - WEEK * back for back in range(weeks - 1, -1, -1))


def weekly_ranges(starts: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """The [start, start + 7 days) range of each week."""
    return [(start, start + WEEK) for start in starts]


def _push_state(calendar: CalendarState) -> str:
    """`active` (a channel notifies us), `failed` (Google refused one: polled), else `polling`."""
    if calendar.push_status is PushStatus.OFF:
        return PUSH_POLLING
    return str(calendar.push_status.value)


def member_health(members: Iterable[Member]) -> tuple[MemberHealth, ...]:
    """One row per member: those who must reconnect (needs_reauth, error) first, then by id."""
    rows = [
        MemberHealth(
            member_id=m.id,
            name=m.name,
            email=m.email,
            status=m.calendar.status,
            google_email=m.calendar.google_email,
            last_success_at=m.calendar.last_success_at,
            consecutive_failures=m.calendar.consecutive_failures,
            last_error=m.calendar.last_error,
            push_state=_push_state(m.calendar),
            push_expires_at=m.calendar.push_expires_at
            if m.calendar.push_status is PushStatus.ACTIVE
            else None,
        )
        for m in members
    ]
    return tuple(sorted(rows, key=lambda r: (not r.must_reconnect, r.member_id)))


def top_accounts(
    meetings: Iterable[RecentMeeting], since: datetime, until: datetime, limit: int = TOP_ACCOUNTS
) -> tuple[AccountCount, ...]:
    """The accounts with the most meetings starting in [since, until), most first, then by id
    (names left empty: see `with_names`)."""
    counts: Counter[str] = Counter()
    for meeting in meetings:
        if meeting.start is not None and since <= meeting.start < until:
            counts.update(set(meeting.account_ids))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return tuple(AccountCount(a, "", n) for a, n in ranked)


def with_names(accounts: Iterable[AccountCount], names: Mapping[str, str]) -> tuple[AccountCount, ...]:
    """The same counts with each account's name from the directory ("" when it has none)."""
    return tuple(AccountCount(a.account_id, names.get(a.account_id, ""), a.meetings) for a in accounts)


def report_domain(domain: str) -> str:
    """The domain an operator would add to an account: the registrable one."""
    return candidate_domains(domain)[-1]


def unmatched_domains(meetings: Iterable[RecentMeeting], tenant: Tenant) -> tuple[UnmatchedDomain, ...]:
    """Company domains of `no_match` addresses, by meetings then distinct addresses (most first),
    then by name. Free-mail and internal domains are left out (they never match by domain)."""
    allowed = tenant.settings.free_mail_domains_allowed
    meetings_of: defaultdict[str, int] = defaultdict(int)
    addresses_of: defaultdict[str, set[str]] = defaultdict(set)
    for meeting in meetings:
        seen: set[str] = set()
        for address in meeting.unmatched:
            domain = email_domain(address.email)
            if address.reason != UnmatchedReason.NO_MATCH or not domain:
                continue
            if is_internal_domain(domain, tenant.internal_domains) or is_free_mail(domain, allowed):
                continue
            key = report_domain(domain)
            addresses_of[key].add(address.email)
            if key not in seen:
                seen.add(key)
                meetings_of[key] += 1
    ranked = sorted(meetings_of, key=lambda d: (-meetings_of[d], -len(addresses_of[d]), d))
    return tuple(UnmatchedDomain(d, meetings_of[d], len(addresses_of[d])) for d in ranked)


def ambiguous_lookup_keys(meetings: Iterable[RecentMeeting]) -> tuple[set[str], set[str]]:
    """The (emails, domain levels) to look up in the directory to name the claiming accounts."""
    emails: set[str] = set()
    domains: set[str] = set()
    for meeting in meetings:
        for address in meeting.unmatched:
            if address.reason == UnmatchedReason.AMBIGUOUS_USER:
                emails.add(address.email)
            elif address.reason == UnmatchedReason.AMBIGUOUS_DOMAIN and email_domain(address.email):
                domains.update(candidate_domains(email_domain(address.email)))
    return emails, domains


def _claimed_domain(domain: str, directory: DirectorySnapshot) -> tuple[str, tuple[str, ...]]:
    """The most specific level of `domain` that accounts own, and those accounts (as matching
    tries the levels); the domain itself with no accounts when none owns any level now."""
    for level in candidate_domains(domain):
        accounts = tuple(sorted({a.id for a in directory.accounts_by_domain.get(level, ())}))
        if accounts:
            return level, accounts
    return domain, ()


def _ambiguous_key(address: UnmatchedAddress, directory: DirectorySnapshot) -> AmbiguousKey | None:
    if address.reason == UnmatchedReason.AMBIGUOUS_USER:
        users = directory.users_by_email.get(address.email, ())
        return AmbiguousKey(address.email, "address", tuple(sorted({u.account_id for u in users})), 0)
    domain = email_domain(address.email)
    if address.reason == UnmatchedReason.AMBIGUOUS_DOMAIN and domain:
        key, claimed = _claimed_domain(domain, directory)
        return AmbiguousKey(key, "domain", claimed, 0)
    return None


def ambiguous_keys(
    meetings: Iterable[RecentMeeting], directory: DirectorySnapshot
) -> tuple[AmbiguousKey, ...]:
    """Ambiguous domains and addresses with the accounts that claim them, by meetings (most
    first) then key. The store keeps only the reason; `directory` names the accounts."""
    found: dict[str, AmbiguousKey] = {}
    meetings_of: Counter[str] = Counter()
    for meeting in meetings:
        keys = set()
        for address in meeting.unmatched:
            entry = _ambiguous_key(address, directory)
            if entry is not None:
                found.setdefault(entry.key, entry)
                keys.add(entry.key)
        meetings_of.update(keys)
    ranked = sorted(found, key=lambda k: (-meetings_of[k], k))
    return tuple(AmbiguousKey(k, found[k].kind, found[k].accounts, meetings_of[k]) for k in ranked)


# --- JSON (the keys are a contract: README.md#operator-report) -----------------------------------


def _utc(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _member_json(m: MemberHealth) -> dict[str, Any]:
    return {
        "memberId": m.member_id,
        "name": m.name,
        "email": m.email,
        "status": m.status.value,
        "mustReconnect": m.must_reconnect,
        "googleEmail": m.google_email,
        "lastSuccessAt": _utc(m.last_success_at),
        "consecutiveFailures": m.consecutive_failures,
        "lastError": m.last_error,
        "push": {"state": m.push_state, "expiresAt": _utc(m.push_expires_at)},
    }


def report_to_json(report: Report) -> dict[str, Any]:
    """The report as one JSON object (README.md#operator-report); times as RFC 3339 UTC."""
    return {
        "tenant": report.tenant_id,
        "generatedAt": _utc(report.generated_at),
        "members": [_member_json(m) for m in report.members],
        "weekly": [
            {"weekStart": w.start.date().isoformat(), "interactions": w.interactions} for w in report.weekly
        ],
        "topAccounts": [
            {"accountId": a.account_id, "name": a.name, "meetings": a.meetings} for a in report.top_accounts
        ],
        "unmatchedDomains": [
            {"domain": d.domain, "meetings": d.meetings, "addresses": d.addresses}
            for d in report.unmatched_domains
        ],
        "ambiguous": [
            {"key": a.key, "kind": a.kind, "accounts": list(a.accounts), "meetings": a.meetings}
            for a in report.ambiguous
        ],
        "meetingsRead": report.meetings_read,
        "complete": report.complete,
    }
