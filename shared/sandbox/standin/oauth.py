"""Google's OAuth 2.0 endpoints for a web client, with an auto-consenting user (who can be
made to pick another account, or to have granted the client more scopes earlier: `Consent`).

- `GET /o/oauth2/v2/auth` answers a 302 to the client's redirect URI, as Google does after the
  user clicked "Allow" (`code`, `scope`, `state`, `authuser`, `prompt`), or `error=access_denied`.
- `POST /token` exchanges codes (client authentication by form fields or HTTP Basic, single-use
  codes, redirect URI and PKCE checks) and refresh tokens, with Google's JSON error bodies.
- `POST /revoke` revokes a refresh token (and its access tokens) or an access token (and its
  refresh token).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.sandbox.standin.oauth_wire import (
    EMAIL,
    EXPIRED_OR_REVOKED,
    OPENID,
    PROFILE,
    USERINFO_EMAIL,
    USERINFO_PROFILE,
    b64url,
    basic_credentials,
    expand_scopes,
    google_subject,
    is_loopback_uri,
    oauth_fault_response,
    pkce_s256,
    token_error,
    token_scope_string,
    with_query,
)
from shared.sandbox.standin.web import Request, Response, html_response, json_response, redirect

__all__ = ["Consent", "OAuthService", "expand_scopes", "oauth_fault_response", "pkce_s256"]

IDENTITY_SCOPES = frozenset({OPENID, EMAIL, PROFILE, USERINFO_EMAIL, USERINFO_PROFILE})
CALENDAR_SCOPE_PREFIX = "https://www.googleapis.com/auth/calendar"
ISSUER = "https://accounts.google.com"
CODE_TTL = timedelta(minutes=10)
MAX_REFRESH_TOKENS_PER_ACCOUNT = 100  # Google silently drops the oldest beyond this

CONSENT_MODES = ("grant", "deny", "grant_without_calendar")


@dataclass
class Consent:
    """What the simulated user does on Google's consent screen.

    Like Google, a request with `include_granted_scopes=true` also gets the scopes the user
    granted the app before (until a revocation), whatever the mode (see
    `OAuthService.record_earlier_grant`).
    """

    mode: str = "grant"  # "grant" | "deny" | "grant_without_calendar"
    default_email: str = "member@northwind-cs.com"  # account used when there is no login_hint
    # The account the user picks in Google's account chooser, whatever the `login_hint` says
    # (a forwarded link opened by someone else); None: the hinted account.
    account: str | None = None
    email_verified: bool = True  # the id token's `email_verified` for the consenting account


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    email: str
    scopes: tuple[str, ...]
    challenge: str | None
    challenge_method: str
    offline: bool
    expires_at: datetime
    email_verified: bool = True


@dataclass
class RefreshGrant:
    token: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    issued_at: datetime
    revoked: bool = False
    access_tokens: set[str] = field(default_factory=set)


@dataclass
class AccessGrant:
    token: str
    client_id: str
    email: str
    scopes: tuple[str, ...]
    expires_at: datetime
    refresh_token: str | None
    revoked: bool = False


class OAuthService:
    """State and handlers of the OAuth endpoints. Thread-safe."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: Iterable[str] | None,
        clock: Callable[[], datetime],
        access_token_ttl_s: int = 3599,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = tuple(redirect_uris) if redirect_uris is not None else None
        self.consent = Consent()
        self.access_token_ttl_s = access_token_ttl_s
        self._clock = clock
        self._lock = threading.RLock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._access: dict[str, AccessGrant] = {}
        self._granted: dict[str, tuple[str, ...]] = {}  # email -> scopes granted so far

    # --- test and tool helpers ------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every code, token and grant; the consent screen back to its defaults."""
        with self._lock:
            self._codes.clear()
            self._refresh.clear()
            self._access.clear()
            self._granted.clear()
            self.consent.mode = Consent.mode
            self.consent.default_email = Consent.default_email
            self.consent.account = Consent.account
            self.consent.email_verified = Consent.email_verified

    def issue_refresh_token(self, email: str, scopes: Iterable[str] | None = None) -> str:
        wanted = expand_scopes(scopes or (OPENID, EMAIL, f"{CALENDAR_SCOPE_PREFIX}.events.readonly"))
        with self._lock:
            return self._new_refresh_token(self.client_id, email.strip().lower(), wanted)

    def record_earlier_grant(self, email: str, scopes: Iterable[str]) -> None:
        """The account granted this client `scopes` before (e.g. full `calendar` through another
        consent): an `include_granted_scopes=true` consent adds them, until a revocation."""
        account = email.strip().lower()
        with self._lock:
            self._granted[account] = expand_scopes([*self._granted.get(account, ()), *scopes])

    def revoke_refresh_token(self, token: str) -> bool:
        with self._lock:
            grant = self._refresh.get(token)
            if grant is None or grant.revoked:
                return False
            self._revoke_grant(grant)
            return True

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired now (the next call answers 401)."""
        with self._lock:
            past = self._clock() - timedelta(seconds=1)
            for grant in self._access.values():
                grant.expires_at = past

    def access_grant(self, authorization: str | None) -> AccessGrant | None:
        """The live grant of a `Bearer` header, or None (missing, unknown, revoked, expired)."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        with self._lock:
            grant = self._access.get(token.strip())
            if grant is None or grant.revoked or grant.expires_at <= self._clock():
                return None
            return grant

    def refresh_grants(self) -> list[RefreshGrant]:
        with self._lock:
            return list(self._refresh.values())

    # --- GET /o/oauth2/v2/auth ------------------------------------------------------------------

    def authorize(self, request: Request) -> Response:
        arg = request.arg
        client_id = arg("client_id") or ""
        if client_id != self.client_id:
            return html_response(
                400,
                "Access blocked: Authorization Error",
                f"The OAuth client was not found. Error 401: invalid_client (client_id={client_id!r})",
            )
        redirect_uri = arg("redirect_uri") or ""
        allowed = (
            redirect_uri in self.redirect_uris
            if self.redirect_uris is not None
            else is_loopback_uri(redirect_uri)
        )
        if not allowed:
            return html_response(
                400,
                "Access blocked: This app's request is invalid",
                f"Error 400: redirect_uri_mismatch ({redirect_uri!r} is not registered for this client)",
            )
        if arg("response_type") != "code":
            return html_response(400, "Error 400: invalid_request", "response_type must be 'code'")
        requested = [s for s in (arg("scope") or "").split() if s]
        if not requested:
            return html_response(400, "Error 400: invalid_request", "Missing required parameter: scope")
        challenge = arg("code_challenge")
        method = arg("code_challenge_method") or "plain"
        if challenge is not None and method not in ("S256", "plain"):
            return html_response(400, "Error 400: invalid_request", "Invalid code_challenge_method")
        state = arg("state")
        mode = self.consent.mode
        if mode not in CONSENT_MODES:
            return html_response(500, "Stand-in misconfigured", f"unknown consent mode {mode!r}")
        if mode == "deny":
            return redirect(with_query(redirect_uri, [("error", "access_denied"), ("state", state)]))
        hint = (arg("login_hint") or "").strip().lower()
        email = hint if "@" in hint else self.consent.default_email.strip().lower()
        if self.consent.account:
            email = self.consent.account.strip().lower()
        scopes = expand_scopes(requested)
        if mode == "grant_without_calendar":
            scopes = tuple(s for s in scopes if s in IDENTITY_SCOPES)
        with self._lock:
            if (arg("include_granted_scopes") or "").lower() == "true":
                scopes = expand_scopes([*scopes, *self._granted.get(email, ())])
            self._granted[email] = expand_scopes([*self._granted.get(email, ()), *scopes])
            code = "4/0" + secrets.token_urlsafe(40)
            self._codes[code] = _Code(
                client_id=client_id,
                redirect_uri=redirect_uri,
                email=email,
                scopes=scopes,
                challenge=challenge,
                challenge_method=method,
                offline=(arg("access_type") or "online") == "offline",
                expires_at=self._clock() + CODE_TTL,
                email_verified=self.consent.email_verified,
            )
        params = [
            ("state", state),
            ("code", code),
            ("scope", " ".join(scopes)),
            ("authuser", "0"),
            ("prompt", "consent"),
        ]
        return redirect(with_query(redirect_uri, params))

    # --- POST /token ----------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        if request.method != "POST":
            return token_error(405, "invalid_request", "Method not allowed: use POST")
        form = request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = basic_credentials(request.headers.get("authorization"))
        if basic is not None:
            client_id, client_secret = basic
        if client_id != self.client_id:
            return token_error(401, "invalid_client", "The OAuth client was not found.")
        if client_secret != self.client_secret:
            return token_error(401, "invalid_client", "Unauthorized")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(form)
        if grant_type == "refresh_token":
            return self._refresh_access(form)
        return token_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")

    def _exchange_code(self, form: dict[str, str]) -> Response:
        with self._lock:
            code = self._codes.pop(form.get("code") or "", None)  # single use, even on failure
            if code is None or code.expires_at <= self._clock():
                return token_error(400, "invalid_grant", EXPIRED_OR_REVOKED)
            if code.client_id != self.client_id:
                return token_error(400, "invalid_grant", "Bad Request")
            if form.get("redirect_uri") != code.redirect_uri:
                return token_error(400, "redirect_uri_mismatch", "Bad Request")
            if code.challenge is not None:
                verifier = form.get("code_verifier")
                if not verifier:
                    return token_error(400, "invalid_grant", "Missing code verifier.")
                expected = pkce_s256(verifier) if code.challenge_method == "S256" else verifier
                if not secrets.compare_digest(expected, code.challenge):
                    return token_error(400, "invalid_grant", "Invalid code verifier.")
            refresh = (
                self._new_refresh_token(code.client_id, code.email, code.scopes) if code.offline else None
            )
            payload = self._token_payload(
                code.email, code.scopes, refresh, with_refresh=True, email_verified=code.email_verified
            )
            return json_response(200, payload)

    def _refresh_access(self, form: dict[str, str]) -> Response:
        with self._lock:
            grant = self._refresh.get(form.get("refresh_token") or "")
            if grant is None or grant.revoked:
                return token_error(400, "invalid_grant", EXPIRED_OR_REVOKED)
            if grant.client_id != self.client_id:
                return token_error(400, "unauthorized_client", "Unauthorized")
            scopes = grant.scopes
            if form.get("scope"):  # down-scoping: only scopes of the original grant
                wanted = expand_scopes(form["scope"].split())
                if not set(wanted) <= set(grant.scopes):
                    return token_error(400, "invalid_scope", "Some requested scopes were not granted.")
                scopes = wanted
            return json_response(200, self._token_payload(grant.email, scopes, grant.token))

    def _token_payload(
        self,
        email: str,
        scopes: tuple[str, ...],
        refresh_token: str | None,
        with_refresh: bool = False,
        email_verified: bool = True,
    ) -> dict[str, object]:
        now = self._clock()
        access = "ya29.a0" + secrets.token_urlsafe(48)
        self._access[access] = AccessGrant(
            token=access,
            client_id=self.client_id,
            email=email,
            scopes=scopes,
            expires_at=now + timedelta(seconds=self.access_token_ttl_s),
            refresh_token=refresh_token,
        )
        if refresh_token is not None:
            self._refresh[refresh_token].access_tokens.add(access)
        payload: dict[str, object] = {
            "access_token": access,
            "expires_in": self.access_token_ttl_s,
            "scope": token_scope_string(scopes),
            "token_type": "Bearer",
        }
        if with_refresh and refresh_token is not None:
            payload["refresh_token"] = refresh_token
        if OPENID in scopes:
            payload["id_token"] = self._id_token(email, scopes, access, now, email_verified)
        return payload

    def _id_token(
        self, email: str, scopes: tuple[str, ...], access: str, now: datetime, email_verified: bool = True
    ) -> str:
        header = {"alg": "RS256", "kid": "calsync-standin", "typ": "JWT"}
        issued = int(now.timestamp())
        claims: dict[str, object] = {
            "iss": ISSUER,
            "azp": self.client_id,
            "aud": self.client_id,
            "sub": google_subject(email),
            "at_hash": b64url(hashlib.sha256(access.encode()).digest()[:16]),
            "iat": issued,
            "exp": issued + 3600,
        }
        if EMAIL in scopes or USERINFO_EMAIL in scopes:
            claims["email"] = email
            claims["email_verified"] = email_verified
        segments = [
            b64url(json.dumps(header, separators=(",", ":")).encode()),
            b64url(json.dumps(claims, separators=(",", ":")).encode()),
            b64url(b"calsync-standin-unsigned-" + secrets.token_bytes(16)),
        ]
        return ".".join(segments)

    def _new_refresh_token(self, client_id: str, email: str, scopes: tuple[str, ...]) -> str:
        token = "1//0" + secrets.token_urlsafe(64)
        self._refresh[token] = RefreshGrant(token, client_id, email, scopes, self._clock())
        live = [g for g in self._refresh.values() if not g.revoked and g.email == email]
        live.sort(key=lambda g: g.issued_at)
        for oldest in live[: max(0, len(live) - MAX_REFRESH_TOKENS_PER_ACCOUNT)]:
            self._revoke_grant(oldest, ends_consent=False)
        return token

    def _revoke_grant(self, grant: RefreshGrant, ends_consent: bool = True) -> None:
        """Revoking ends the user's grant to the app: `include_granted_scopes` starts afresh."""
        grant.revoked = True
        if ends_consent:
            self._granted.pop(grant.email, None)
        for access in grant.access_tokens:
            if access in self._access:
                self._access[access].revoked = True

    # --- POST /revoke ---------------------------------------------------------------------------

    def revoke(self, request: Request) -> Response:
        token = request.form().get("token") or request.arg("token") or ""
        with self._lock:
            refresh = self._refresh.get(token)
            if refresh is not None and not refresh.revoked:
                self._revoke_grant(refresh)
                return json_response(200, {})
            access = self._access.get(token)
            if access is not None and not access.revoked:
                access.revoked = True
                if access.refresh_token and access.refresh_token in self._refresh:
                    self._revoke_grant(self._refresh[access.refresh_token])
                return json_response(200, {})
        return token_error(400, "invalid_token", "Token expired or revoked")
