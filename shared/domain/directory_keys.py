"""The keys the directory is matched by, and which of them a directory change concerns. Pure.

Users are looked up by `emailKey` (the normalised `email`), accounts by `domainKeys` (the
normalised, valid, unique `domains`). `calsync import` writes both; the CS platform may write
users and accounts without them, so `directory_changed` fills them in from these functions.

A change to a user or an account document can only change the matching of attendees whose email
is the user's (old or new) address, or whose domain levels include one of the account's (old or
new) domains: `affected_keys` names them, and the stored meetings containing them are the ones to
re-match: `meeting_index_keys` says which keys a stored meeting is indexed by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from shared.domain import emails as email_rules
from shared.domain.models import MeetingRecord

Collection = Literal["users", "accounts"]
USERS: Final = "users"
ACCOUNTS: Final = "accounts"

EMAIL_KEY = "emailKey"
DOMAIN_KEYS = "domainKeys"

# Fields that matching reads from each kind of document (besides the derived keys): a change to
# anything else (a CRM id, a note) cannot change an interaction.
_SOURCE_FIELDS: dict[str, tuple[str, ...]] = {USERS: ("email", "name", "accountId"), ACCOUNTS: ("domains",)}
_DERIVED_FIELD = {USERS: EMAIL_KEY, ACCOUNTS: DOMAIN_KEYS}


def user_email_key(document: Mapping[str, Any]) -> str | None:
    """The `emailKey` a user document should carry: its `email` normalised (None without one)."""
    email = document.get("email")
    if not isinstance(email, str):
        return None
    return email_rules.normalize_email(email) or None


def account_domain_keys(document: Mapping[str, Any]) -> list[str]:
    """The `domainKeys` an account document should carry: its valid `domains`, normalised, in
    order, without duplicates (what `calsync import` stores)."""
    raw = document.get("domains")
    keys: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, str):
            continue
        domain = email_rules.normalize_domain(item)
        if email_rules.is_valid_domain(domain) and domain not in keys:
            keys.append(domain)
    return keys


def derived_fields(collection: Collection, document: Mapping[str, Any]) -> dict[str, Any]:
    """The derived field of a document as it should be (`{"emailKey": None}` means: remove it)."""
    if collection == USERS:
        return {EMAIL_KEY: user_email_key(document)}
    return {DOMAIN_KEYS: account_domain_keys(document)}


def needs_derived_update(collection: Collection, document: Mapping[str, Any]) -> dict[str, Any]:
    """The derived fields to write so the document is matched by what it says (empty: in order).
    A value of None means the field must be removed."""
    wanted = derived_fields(collection, document)
    return {name: value for name, value in wanted.items() if document.get(name) != value}


def document_keys(
    collection: Collection, document: Mapping[str, Any] | None
) -> tuple[frozenset[str], frozenset[str]]:
    """The (emails, domains) a document is, or would be, found by: the stored derived field and
    the one its source fields give (they differ when someone else wrote the document)."""
    if not document:
        return frozenset(), frozenset()
    if collection == USERS:
        found = {user_email_key(document)}
        stored = document.get(EMAIL_KEY)
        if isinstance(stored, str):
            found.add(stored)
        return frozenset(e for e in found if e), frozenset()
    domains = set(account_domain_keys(document))
    stored_domains = document.get(DOMAIN_KEYS)
    if isinstance(stored_domains, list):
        domains.update(d for d in stored_domains if isinstance(d, str) and d)
    return frozenset(), frozenset(domains)


def affected_keys(
    collection: Collection, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> tuple[frozenset[str], frozenset[str]]:
    """The emails and domains whose matching a change from `old` to `new` may have changed
    (None: the document did not exist / no longer exists): the keys of both versions."""
    old_emails, old_domains = document_keys(collection, old)
    new_emails, new_domains = document_keys(collection, new)
    return old_emails | new_emails, old_domains | new_domains


def is_derived_fields_echo(
    collection: Collection, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> bool:
    """Whether a change altered nothing matching reads except the derived field, and left it as
    its source fields say: the write `directory_changed` itself made after re-reading the
    document. The invocation that made it re-matched afterwards (or is retried until it has), so
    re-matching again would only re-read the same meetings. A document that stayed wrong, or a
    write of nothing at all to a document that is wrong, is not an echo."""
    if old is None or new is None:
        return False
    if any(old.get(name) != new.get(name) for name in _SOURCE_FIELDS[collection]):
        return False
    return not needs_derived_update(collection, new)


def is_matching_unchanged(collection: Collection, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two versions of a document match attendees the same way: same source fields
    (`email`, `name`, `accountId` / `domains`) and the same derived keys."""
    names = (*_SOURCE_FIELDS[collection], _DERIVED_FIELD[collection])
    return all(old.get(name) == new.get(name) for name in names)


def meeting_index_keys(record: MeetingRecord) -> tuple[list[str], list[str]]:
    """The keys a stored meeting is indexed by (its `emails` and `domains` fields), sorted: every
    attendee email of every copy and its organizer's (README.md#exclusions), and every domain
    level of their domains (what
    `affected_keys` of a user or an account can name). Internal, free-mail and declined
    addresses are included: the index does not depend on tenant settings, so a change of
    `internalDomains` or `freeMailDomainsAllowed` never leaves a meeting unfindable."""
    addresses = sorted(
        {a.email for c in record.copies.values() for a in c.attendees if a.email}
        | {c.organizer_email.lower() for c in record.copies.values() if c.organizer_email}
    )
    levels: set[str] = set()
    for domain in {email_rules.email_domain(e) for e in addresses}:
        if domain:
            levels.update(email_rules.candidate_domains(domain))
    return addresses, sorted(levels)
