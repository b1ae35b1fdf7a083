"""Attendees -> accounts (README.md#how-meetings-are-matched-to-accounts). Pure and fast: every decision is a
dict hit, and the work per email and per domain is cached on the `MatchingContext` (one context per sync job
or chunk).

Per attendee, in this order:
  0. internal (a member's own address, or on an internal domain or a subdomain of one) -> skipped;
     declined (when the tenant excludes declined attendees) -> skipped;
  1. direct match on the user's email: one account -> matched "email"; several -> ambiguous_user
     (no fall-through to the domain);
  2. domain match, most specific level first up to the registrable domain; the first level with
     any account decides: one -> matched "domain"; several -> ambiguous_domain. Free-mail domains
     never match by domain (unless the tenant allows them) -> free_mail;
  3. otherwise no_match.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.domain.emails import candidate_domains, email_domain, is_free_mail, is_internal_domain
from shared.domain.exclusions import NO_EXCLUSIONS, Exclusions, is_copy_excluded
from shared.domain.models import (
    AttendeeMatch,
    DirectorySnapshot,
    MatchedBy,
    MeetingMatch,
    MemberCopy,
    Tenant,
    UnmatchedAddress,
    UnmatchedReason,
    User,
)

DECLINED = "declined"
_BY_ACCOUNT_THEN_EMAIL = operator.attrgetter("account_id", "email")

# The verdict on an email: None = internal (not considered), else a match or an unmatched address.
Outcome = AttendeeMatch | UnmatchedAddress | None


class _Internal:
    """Marker: the domain is internal."""


_INTERNAL = _Internal()
# A cache-miss sentinel of the cached type (compared by identity only).
_MISSING = UnmatchedAddress(email="", reason=UnmatchedReason.NO_MATCH)
# The verdict on a domain: internal, one account id (domain match), or why it does not match.
_DomainVerdict = _Internal | str | UnmatchedReason


@dataclass(eq=False)
class MatchingContext:
    """Everything matching needs for one tenant, plus per-email/per-domain caches.

    `member_emails` are every member's normalised address (all internal); `directory` holds at
    least the users and accounts for the keys `lookup_keys` returned. Build a new context when
    the directory changes: the caches assume it does not.
    """

    tenant: Tenant
    member_emails: frozenset[str]
    directory: DirectorySnapshot
    # member id -> the member's own exclusions (README.md#exclusions); absent: none
    member_exclusions: Mapping[str, Exclusions] = field(default_factory=dict)
    _emails: dict[str, Outcome] = field(default_factory=dict, init=False, repr=False)
    _domains: dict[str, _DomainVerdict] = field(default_factory=dict, init=False, repr=False)
    _internal_domains: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._users_by_email = self.directory.users_by_email
        # hashable forms of the settings `_domain_levels` is cached by
        self._internal_key = tuple(self.tenant.internal_domains)
        self._free_mail_allowed_key = frozenset(self.tenant.settings.free_mail_domains_allowed)

    def is_excluded(self, copy: MemberCopy) -> bool:
        """Whether this copy is excluded, by the tenant's list or by its member's own: it
        produces nothing and is not stored (README.md#exclusions)."""
        own = self.member_exclusions.get(copy.member_id, NO_EXCLUSIONS)
        return is_copy_excluded(copy, self.tenant.settings.excluded_addresses, own)

    def classify(self, email: str) -> Outcome:
        """The verdict on one normalised email (response status aside). Cached."""
        outcome = self._emails.get(email, _MISSING)
        if outcome is _MISSING:
            outcome = self._classify(email)
            self._emails[email] = outcome
        return outcome

    def match(self, copy: MemberCopy) -> MeetingMatch:
        """`match_copy`: the hot loop, reading the per-email cache directly."""
        exclude_declined = self.tenant.settings.exclude_declined
        cache = self._emails
        matches: dict[str, AttendeeMatch] = {}
        unmatched: dict[str, UnmatchedAddress] = {}
        for attendee in copy.attendees:
            if exclude_declined and attendee.response_status == DECLINED:
                continue
            email = attendee.email
            outcome = cache.get(email, _MISSING)
            if outcome is _MISSING:
                outcome = cache[email] = self._classify(email)
            if outcome is None:
                continue
            if type(outcome) is AttendeeMatch:
                matches[email] = outcome
            else:
                unmatched[email] = outcome  # type: ignore[assignment]
        if len(matches) > 1:
            ordered = tuple(sorted(matches.values(), key=_BY_ACCOUNT_THEN_EMAIL))
        else:
            ordered = tuple(matches.values())
        return MeetingMatch(
            matches=ordered,
            unmatched=tuple(unmatched[e] for e in sorted(unmatched))
            if len(unmatched) > 1
            else tuple(unmatched.values()),
        )

    def is_internal(self, email: str) -> bool:
        """A member's address, or on an internal domain (or a subdomain of one)."""
        if email in self.member_emails:
            return True
        domain = email_domain(email)
        cached = self._internal_domains.get(domain)
        if cached is None:
            cached = is_internal_domain(domain, self.tenant.internal_domains)
            self._internal_domains[domain] = cached
        return cached

    def user(self, email: str, user_id: str | None) -> User | None:
        """The directory user `user_id` with this email, if any (for its name)."""
        if user_id is None:
            return None
        for user in self.directory.users_by_email.get(email, ()):
            if user.id == user_id:
                return user
        return None

    def _classify(self, email: str) -> Outcome:
        if email in self.member_emails:
            return None
        _, at, domain = email.rpartition("@")
        verdict = self._domains.get(domain) if at else UnmatchedReason.NO_MATCH
        if verdict is None:
            verdict = self._compute_domain_verdict(domain)
            self._domains[domain] = verdict
        if verdict is _INTERNAL:
            return None
        users = self._users_by_email.get(email)
        if users:
            if len(users) == 1:
                user = users[0]
            else:
                if len({u.account_id for u in users}) > 1:
                    return UnmatchedAddress(email=email, reason=UnmatchedReason.AMBIGUOUS_USER)
                user = min(users, key=lambda u: u.id)
            return AttendeeMatch(email, user.account_id, user.id, MatchedBy.EMAIL)
        if isinstance(verdict, UnmatchedReason):
            return UnmatchedAddress(email, verdict)
        assert isinstance(verdict, str)
        return AttendeeMatch(email, verdict, None, MatchedBy.DOMAIN)

    def _compute_domain_verdict(self, domain: str) -> _DomainVerdict:
        if not domain:
            return UnmatchedReason.NO_MATCH
        levels = _domain_levels(domain, self._internal_key, self._free_mail_allowed_key)
        if levels is None:
            return _INTERNAL
        if not levels:
            return UnmatchedReason.FREE_MAIL
        accounts_by_domain = self.directory.accounts_by_domain
        for level in levels:
            accounts = accounts_by_domain.get(level)
            if accounts:
                if len(accounts) == 1:
                    return accounts[0].id
                account_ids = {a.id for a in accounts}
                if len(account_ids) == 1:
                    return next(iter(account_ids))
                return UnmatchedReason.AMBIGUOUS_DOMAIN
        return UnmatchedReason.NO_MATCH


@functools.lru_cache(maxsize=65536)
def _domain_levels(
    domain: str, internal_domains: tuple[str, ...], free_mail_allowed: frozenset[str]
) -> tuple[str, ...] | None:
    """What the tenant's settings alone say about a domain (no directory involved): None when
    it is internal, () when it is free mail (never matched by domain), else the levels a domain
    match tries (`candidate_domains`). Cached for the process: ~1/3 of the matching work on a
    fresh context."""
    if is_internal_domain(domain, internal_domains):
        return None
    if is_free_mail(domain, free_mail_allowed):
        return ()
    return candidate_domains(domain)


def match_copy(copy: MemberCopy, ctx: MatchingContext) -> MeetingMatch:
    """What one member's copy of a meeting matched (README.md#how-meetings-are-matched-to-accounts): the
    attendees matched to accounts (sorted by account, then email) and the considered attendees that stayed
    unmatched or were ambiguous (sorted by email). Internal attendees, and declined ones when the tenant
    excludes them, appear in neither. Deterministic and independent of attendee order."""
    return ctx.match(copy)


def lookup_keys(
    copies: Iterable[MemberCopy], tenant: Tenant, member_emails: frozenset[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """The emails and domain levels a batched directory lookup must fetch to match `copies`:
    every considered attendee's email (internal ones and, when excluded, declined ones left out),
    and the domain levels of their domains (free-mail domains left out unless allowed)."""
    return _keys(copies, tenant, member_emails, skip_declined=tenant.settings.exclude_declined)


def _keys(
    copies: Iterable[MemberCopy], tenant: Tenant, member_emails: frozenset[str], *, skip_declined: bool
) -> tuple[frozenset[str], frozenset[str]]:
    emails: set[str] = set()
    domains: set[str] = set()
    levels_by_domain: dict[str, tuple[str, ...] | None] = {}
    internal = tenant.internal_domains
    allowed = tenant.settings.free_mail_domains_allowed
    for copy in copies:
        for attendee in copy.attendees:
            if skip_declined and attendee.response_status == DECLINED:
                continue
            email = attendee.email
            if email in member_emails or email in emails:
                continue
            domain = email_domain(email)
            if domain in levels_by_domain:
                levels = levels_by_domain[domain]
            else:
                if domain and is_internal_domain(domain, internal):
                    levels = None
                elif not domain or is_free_mail(domain, allowed):
                    levels = ()
                else:
                    levels = candidate_domains(domain)
                levels_by_domain[domain] = levels
            if levels is None:
                continue
            emails.add(email)
            domains.update(levels)
    return frozenset(emails), frozenset(domains)
