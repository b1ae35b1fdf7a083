"""Tenant settings (`tenants/{t}.settings`): validated at import, read with defaults. Pure.

`settings_problems` checks what `calsync import` is given (one message per bad setting) and
returns the document to store; `settings_from_document` reads a stored document, treating a
malformed value as absent, since the tenant document may be written by others than the import.
The settings and their defaults are listed in the README (README.md#data-in-firestore).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeGuard

from shared.domain import emails as email_rules
from shared.domain.events import time_zone
from shared.domain.exclusions import exclusions_from_document, parse_exclusion_list
from shared.domain.models import TenantSettings

MIN_BACKFILL_DAYS = 1
MAX_BACKFILL_DAYS = 3650  # ten years: a window start any date arithmetic can represent

_BOOLEAN_FIELDS = ("includePrivateEvents", "excludeDeclined", "allowAnyGoogleAccount")
SETTINGS_FIELDS = frozenset(
    {"backfillDays", "freeMailDomainsAllowed", "defaultTimeZone", "excludedAddresses", *_BOOLEAN_FIELDS}
)


def is_time_zone(name: object) -> TypeGuard[str]:
    """Whether `name` is an IANA time zone name known to the bundled tz database."""
    return isinstance(name, str) and name == name.strip() and time_zone(name) is not None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_backfill_days(value: object) -> TypeGuard[int]:
    return _is_int(value) and MIN_BACKFILL_DAYS <= value <= MAX_BACKFILL_DAYS


def settings_problems(raw: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Problems of a settings object, and its normalised document (camelCase)."""
    problems: list[str] = []
    document: dict[str, Any] = {}
    for name in sorted(set(raw) - SETTINGS_FIELDS):
        problems.append(f"unknown setting {json.dumps(name)}")
    if "backfillDays" in raw:
        value = raw["backfillDays"]
        if _is_backfill_days(value):
            document["backfillDays"] = value
        else:
            problems.append(
                f"settings.backfillDays must be an integer from {MIN_BACKFILL_DAYS} to {MAX_BACKFILL_DAYS}, "
                f"got {json.dumps(value)}"
            )
    for name in _BOOLEAN_FIELDS:
        if name in raw:
            if isinstance(raw[name], bool):
                document[name] = raw[name]
            else:
                problems.append(f"settings.{name} must be true or false, got {json.dumps(raw[name])}")
    if "freeMailDomainsAllowed" in raw:
        value = raw["freeMailDomainsAllowed"]
        domains, bad = parse_domain_list(value)
        if bad is not None:
            problems.append(f"settings.freeMailDomainsAllowed {bad}")
        else:
            document["freeMailDomainsAllowed"] = list(domains)
    if "excludedAddresses" in raw:
        exclusions, wrong = parse_exclusion_list(raw["excludedAddresses"])
        problems.extend(f"settings.excludedAddresses {text}" for text in wrong)
        if not wrong:
            document["excludedAddresses"] = exclusions.entries()
    if "defaultTimeZone" in raw:
        value = raw["defaultTimeZone"]
        if is_time_zone(value):
            document["defaultTimeZone"] = value
        else:
            problems.append(
                f"settings.defaultTimeZone must be an IANA time zone name, got {json.dumps(value)}"
            )
    return problems, document


def settings_from_document(raw: Any) -> TenantSettings:
    """`tenants/{t}.settings` with the defaults of README.md#data-in-firestore; a malformed value counts as
    absent (the tenant document may be written by others than `calsync import`)."""
    if not isinstance(raw, Mapping):
        return TenantSettings()
    defaults = TenantSettings()
    backfill = raw.get("backfillDays")
    allowed = raw.get("freeMailDomainsAllowed")
    zone = raw.get("defaultTimeZone")
    include_private = raw.get("includePrivateEvents")
    exclude_declined = raw.get("excludeDeclined")
    allow_any_account = raw.get("allowAnyGoogleAccount")
    return TenantSettings(
        backfill_days=backfill if _is_backfill_days(backfill) else defaults.backfill_days,
        include_private_events=(
            include_private if isinstance(include_private, bool) else defaults.include_private_events
        ),
        exclude_declined=exclude_declined
        if isinstance(exclude_declined, bool)
        else defaults.exclude_declined,
        free_mail_domains_allowed=frozenset(
            email_rules.normalize_domain(d)
            for d in (allowed if isinstance(allowed, list) else [])
            if isinstance(d, str)
        ),
        default_time_zone=zone if is_time_zone(zone) else defaults.default_time_zone,
        allow_any_google_account=(
            allow_any_account if isinstance(allow_any_account, bool) else defaults.allow_any_google_account
        ),
        excluded_addresses=exclusions_from_document(raw.get("excludedAddresses")),
    )


def parse_domain_list(value: object) -> tuple[tuple[str, ...], str | None]:
    """Normalised unique domains of a list, or why the list is bad."""
    if not isinstance(value, list):
        return (), f"must be a list of domains, got {json.dumps(value)}"
    found: list[str] = []
    bad: list[str] = []
    for item in value:
        normalised = email_rules.normalize_domain(item) if isinstance(item, str) else ""
        if not isinstance(item, str) or not email_rules.is_valid_domain(normalised):
            bad.append(json.dumps(item))
        elif normalised not in found:
            found.append(normalised)
    if bad:
        return (), f"has malformed domain{'s' if len(bad) > 1 else ''} {', '.join(bad)}"
    return tuple(found), None
