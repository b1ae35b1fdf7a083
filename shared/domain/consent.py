"""What a Google consent must grant, and whose calendar it may attach (pure).

The callback keeps a grant only when (README.md#security):

- it holds the calendar scope we ask for and nothing broader than what we ask for
  (`openid email calendar.events.readonly`; Google reports `email` as `userinfo.email`, and
  with `include_granted_scopes` it adds whatever the account granted this client before);
- the consenting Google account, the id token's *verified* email, is the member's own: equal
  to the member's address, or on one of the tenant's internal domains (or a subdomain), unless
  the tenant's `allowAnyGoogleAccount` setting is true.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.domain import emails as email_rules
from shared.domain.models import Member, Tenant

OPENID_SCOPE = "openid"
EMAIL_SCOPE = "email"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events.readonly"
REQUESTED_SCOPES = (OPENID_SCOPE, EMAIL_SCOPE, CALENDAR_SCOPE)
# The requested scopes under every name Google grants them.
ACCEPTED_SCOPES = frozenset({*REQUESTED_SCOPES, "https://www.googleapis.com/auth/userinfo.email"})


def excess_scopes(granted: Iterable[str]) -> frozenset[str]:
    """The granted scopes beyond the requested ones (empty when the grant is not broader)."""
    return frozenset(granted) - ACCEPTED_SCOPES


def is_calendar_granted(granted: Iterable[str]) -> bool:
    return CALENDAR_SCOPE in frozenset(granted)


def is_allowed_account(google_email: str | None, member: Member, tenant: Tenant) -> bool:
    """Whether a calendar consented by `google_email` (verified, or None when the id token had
    no verified email) may be attached to `member` of `tenant`."""
    if tenant.settings.allow_any_google_account:
        return True
    if not google_email:
        return False
    account = email_rules.normalize_email(google_email)
    if account == email_rules.normalize_email(member.email):
        return True
    domain = email_rules.email_domain(account)
    return bool(domain) and email_rules.is_internal_domain(domain, tenant.internal_domains)
