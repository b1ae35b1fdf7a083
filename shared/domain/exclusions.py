"""Exclusions: addresses whose meetings a tenant or a member never captures (README.md#exclusions). Pure.

An entry is an email (`lawyer@firm.com`, exact) or a domain (`@firm.com` or `firm.com`, which
also covers its subdomains); entries are trimmed and compared case-insensitively. A member's copy
of a meeting whose organizer or any attendee is covered — by the tenant's list or by that
member's own — produces nothing and is not stored.

Entries are stored normalised: an email as `name@host`, a domain as `@host`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain import emails as email_rules

if TYPE_CHECKING:
    from shared.domain.models import MemberCopy


@dataclass(frozen=True, slots=True)
class Exclusions:
    """A list of exclusions: normalised emails and domains (without the `@`)."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    def __or__(self, other: Exclusions) -> Exclusions:
        return Exclusions(self.emails | other.emails, self.domains | other.domains)

    def __sub__(self, other: Exclusions) -> Exclusions:
        return Exclusions(self.emails - other.emails, self.domains - other.domains)

    @property
    def is_empty(self) -> bool:
        return not (self.emails or self.domains)

    def entries(self) -> list[str]:
        """The stored form, sorted: emails, then domains as `@host`."""
        return sorted(self.emails) + sorted(f"@{d}" for d in self.domains)

    def covers(self, email: str) -> bool:
        """Whether a normalised email is excluded: listed, or on a listed domain or a subdomain of one."""
        if not email or self.is_empty:
            return False
        if email in self.emails:
            return True
        domain = email_rules.email_domain(email)
        while domain:
            if domain in self.domains:
                return True
            _, _, domain = domain.partition(".")
        return False


NO_EXCLUSIONS = Exclusions()


def normalize_exclusion(raw: object) -> str | None:
    """The stored form of one entry (`name@host` or `@host`), or None when it is neither a
    usable email nor a usable domain."""
    if not isinstance(raw, str):
        return None
    text = raw.strip().lower()
    if text.startswith("@"):
        text = text[1:]
    elif "@" in text:
        return text if email_rules.is_valid_email(text) else None
    return f"@{text}" if email_rules.is_valid_domain(text) else None


def parse_exclusion_list(value: object) -> tuple[Exclusions, list[str]]:
    """The exclusions of a list of entries, and what is wrong with it: one message per bad entry."""
    if not isinstance(value, list):
        return NO_EXCLUSIONS, [f"must be a list of emails and domains, got {json.dumps(value)}"]
    problems = [
        f"entry {json.dumps(item)} is neither an email nor a domain (like @firm.com)"
        for item in value
        if normalize_exclusion(item) is None
    ]
    return (NO_EXCLUSIONS if problems else exclusions_from(value)), problems


def exclusions_from(entries: Iterable[object]) -> Exclusions:
    """The exclusions of stored entries; an unusable entry is left out (the document may have
    been written by others than calsync)."""
    emails: set[str] = set()
    domains: set[str] = set()
    for entry in entries:
        normalised = normalize_exclusion(entry)
        if normalised is None:
            continue
        if normalised.startswith("@"):
            domains.add(normalised[1:])
        else:
            emails.add(normalised)
    return Exclusions(frozenset(emails), frozenset(domains))


def exclusions_from_document(raw: object) -> Exclusions:
    """A stored `excludedAddresses` field (absent or malformed: none)."""
    return exclusions_from(raw) if isinstance(raw, list) else NO_EXCLUSIONS


def is_copy_excluded(copy: MemberCopy, *lists: Exclusions) -> bool:
    """Whether the copy's organizer or any of its attendees is covered by one of the lists."""
    active = [exclusions for exclusions in lists if not exclusions.is_empty]
    if not active:
        return False
    addresses = [copy.organizer_email.lower(), *(a.email for a in copy.attendees)]
    return any(exclusions.covers(address) for exclusions in active for address in addresses)


def index_keys(exclusions: Exclusions) -> tuple[list[str], list[str]]:
    """The meeting index keys (`emails[]`, `domains[]`) that find every stored meeting these
    exclusions may cover: the emails, and the domains (the index holds every domain level of
    every address, so a domain finds the meetings of its subdomains too)."""
    return sorted(exclusions.emails), sorted(exclusions.domains)
