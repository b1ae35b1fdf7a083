"""The small HTML pages of the OAuth entry points (pure: no I/O).

Every page is escaped, carries no token, code, state or verifier and no stack trace, and is
served with headers that keep it out of caches, referrers and frames (the disconnect button
must not be clickjacked). `page_for_error` is the one place that maps our error kinds to a
status and a message the member can act on.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from shared.domain.links import LinkError, LinkErrorKind
from shared.errors import ConfigError, InvalidInput, NotFound, TransientError
from shared.services.connect import CallbackOutcome, CallbackResult, ConsentError

SECURITY_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;"
    "color:#222;line-height:1.5}h1{font-size:1.4rem}button{font-size:1rem;padding:.5rem 1.2rem}"
)


@dataclass(frozen=True)
class Page:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))
    content_type: str = "text/html; charset=utf-8"


def page(status: int, title: str, message: str, extra_html: str = "") -> Page:
    """A complete page; `title` and `message` are escaped, `extra_html` must be built escaped."""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<meta name=robots content=noindex><title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{extra_html}</body></html>"
    )
    return Page(status, body)


def redirect(location: str) -> Page:
    target = html.escape(location, quote=True)
    result = page(302, "Redirecting", "Continue to the next page.", f'<p><a href="{target}">Continue</a></p>')
    result.headers["Location"] = location
    return result


def method_not_allowed(allowed: str) -> Page:
    result = page(405, "Method not allowed", f"This page only answers {allowed}.")
    result.headers["Allow"] = allowed
    return result


def callback_page(outcome: CallbackOutcome, return_url: str | None) -> Page:
    if outcome.result is CallbackResult.CONNECTED:
        if return_url:
            return redirect(return_url)
        who = f" ({outcome.google_email})" if outcome.google_email else ""
        return page(
            200,
            "Calendar connected",
            f"Your Google Calendar{who} is connected. Your meetings will appear shortly. "
            "You can close this page.",
        )
    if outcome.result is CallbackResult.WRONG_ACCOUNT:
        return wrong_account(outcome.google_email, outcome.expected_email or "")
    if outcome.result is CallbackResult.SCOPE_TOO_BROAD:
        return page(
            403,
            "More access granted than asked for",
            "Google granted calsync more than read-only access to your calendar events (access this "
            "Google account had given calsync before). calsync does not keep such access: it was "
            "revoked and nothing was connected. Open your connect link again to connect with "
            "read-only access.",
        )
    if outcome.result is CallbackResult.SCOPE_MISSING:
        return page(
            403,
            "Calendar access not granted",
            "Google did not grant calsync access to your calendar events (the calendar box was unticked). "
            "Nothing was connected. Open your connect link again and allow calendar access.",
        )
    return page(
        403,
        "Calendar not connected",
        "The Google consent was not given, so nothing was connected. Open your connect link again to retry.",
    )


def wrong_account(used: str | None, expected: str) -> Page:
    """The consent came from a Google account that is not the member's own (escaped by `page`)."""
    who = f"as {used}" if used else "with an account whose address Google has not verified"
    return page(
        403,
        "Wrong Google account",
        f"You signed in to Google {who}, but this calendar must be connected with {expected} "
        "(or another account of your organisation). Nothing was connected, and calsync gave back "
        "the access you just granted. Open your connect link again and choose that account.",
    )


def disconnect_confirmation(query_string: str, member_name: str) -> Page:
    """The GET answer of a disconnect link: a button that POSTs the same query string back.
    Mail scanners that prefetch the link change nothing."""
    action = html.escape("?" + query_string, quote=True)
    form = (
        f'<form method="post" action="{action}">'
        '<button type="submit">Disconnect my calendar</button></form>'
        "<p>Interactions already recorded stay. You can connect again later.</p>"
    )
    who = f", {member_name}" if member_name else ""
    return page(
        200,
        "Disconnect your Google Calendar?",
        f"Hello{who}: calsync will stop reading your calendar and delete its access to it.",
        form,
    )


def disconnected() -> Page:
    return page(
        200,
        "Calendar disconnected",
        "Your Google Calendar is disconnected and calsync's access to it was revoked and deleted.",
    )


def page_for_error(error: Exception) -> Page:
    """The status and page for an error of the connect use cases (never its internals)."""
    if isinstance(error, LinkError):
        status = {
            LinkErrorKind.MALFORMED: 400,
            LinkErrorKind.BAD_SIGNATURE: 403,
            LinkErrorKind.EXPIRED: 410,
            LinkErrorKind.USED: 410,
        }
        return page(status[error.kind], "This link cannot be used", str(error))
    if isinstance(error, ConsentError):
        return page(400, "This sign-in cannot be completed", str(error))
    if isinstance(error, InvalidInput):
        return page(
            400,
            "This sign-in cannot be completed",
            "Google did not accept this sign-in. Nothing was changed: open your connect link again.",
        )
    if isinstance(error, NotFound):
        return page(404, "Not found", "This link names a team member that does not exist (any more).")
    if isinstance(error, TransientError):
        return page(
            503,
            "Temporarily unavailable",
            "A Google service did not answer, so your calendar was not connected or disconnected. "
            "Please try again in a minute (open your link again if this page comes back).",
        )
    if isinstance(error, ConfigError):
        return page(500, "Not configured", "calsync is not fully configured here: tell your administrator.")
    return page(500, "Something went wrong", "Please try again later, or tell your administrator.")
