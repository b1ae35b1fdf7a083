"""Wire helpers of the OAuth stand-in (shared.sandbox.standin.oauth): Google's scope names,
PKCE, account ids, query strings, client credentials and error bodies."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from shared.sandbox.standin.web import Response, html_response, json_response

OPENID = "openid"
EMAIL = "email"
PROFILE = "profile"
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
USERINFO_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
EXPIRED_OR_REVOKED = "Token has been expired or revoked."


def expand_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Google's granted form: `email` and `profile` also grant their userinfo scopes."""
    out: list[str] = []
    for scope in scopes:
        if scope and scope not in out:
            out.append(scope)
        if scope == EMAIL and USERINFO_EMAIL not in out:
            out.append(USERINFO_EMAIL)
        if scope == PROFILE and USERINFO_PROFILE not in out:
            out.append(USERINFO_PROFILE)
    return tuple(out)


def token_scope_string(scopes: Iterable[str]) -> str:
    """The `scope` of a token response: Google lists the URL forms, not `email`/`profile`."""
    return " ".join(s for s in scopes if s not in (EMAIL, PROFILE))


def google_subject(email: str) -> str:
    """A stable, Google-shaped numeric account id (`sub`) for an address."""
    digest = int(hashlib.sha256(email.lower().encode()).hexdigest()[:16], 16)
    return "1" + f"{digest:020d}"[:20]


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def pkce_s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def is_loopback_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def token_error(status: int, error: str, description: str) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return unquote_plus(user), unquote_plus(password)


def with_query(uri: str, params: list[tuple[str, str | None]]) -> str:
    parts = urlsplit(uri)
    extra = urlencode([(k, v) for k, v in params if v is not None])
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def oauth_fault_response(service: str, status: int, reason: str | None) -> Response:
    """Google's answer for an injected fault on an OAuth endpoint."""
    if service == "auth":
        return html_response(status, f"Error {status}", reason or "The server encountered an error.")
    defaults = {
        400: ("invalid_grant", EXPIRED_OR_REVOKED),
        401: ("invalid_client", "Unauthorized"),
        429: ("rate_limit_exceeded", "Rate limit exceeded."),
        500: ("internal_failure", "Backend Error"),
        503: ("temporarily_unavailable", "The service is currently unavailable."),
    }
    error, description = defaults.get(status, ("server_error", "Error"))
    if service == "revoke" and status == 400:
        error, description = "invalid_token", "Token expired or revoked"
    return token_error(status, reason or error, description)
