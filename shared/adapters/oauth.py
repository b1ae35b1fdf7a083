"""Google's OAuth 2.0 web-server flow through google-auth-oauthlib's `Flow`: the consent URL
(PKCE S256, offline access), the code exchange, and token revocation.

Errors: 5xx, 429 and network failures -> TransientError; a code Google refuses (used, expired,
wrong PKCE verifier: `invalid_grant`) -> InvalidInput; any other refusal (bad client,
misconfiguration) -> PermanentError; an `http://` endpoint without the sandbox's
`OAUTHLIB_INSECURE_TRANSPORT=1` -> ConfigError. Messages never contain tokens, codes or verifiers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import requests

from shared.domain.consent import REQUESTED_SCOPES
from shared.errors import ConfigError, InvalidInput, PermanentError, TransientError
from shared.services.ports import OAuthGrant

SCOPES = REQUESTED_SCOPES
_TIMEOUT_S = 20.0
_TRANSIENT_STATUSES = frozenset({408, 429})


class GoogleOAuthClient:
    """`OAuthProvider` (shared.services.ports) for one OAuth web client (`CALSYNC_OAUTH_*`,
    README.md#configuration). The access token of an exchange is dropped on purpose: only the refresh token is
    kept."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        auth_uri: str,
        token_uri: str,
        revoke_uri: str,
        timeout_s: float = _TIMEOUT_S,
    ) -> None:
        self._client_config = {
            "web": {
                "client_id": client_id,
                "client_secret": client_secret,
                "auth_uri": auth_uri,
                "token_uri": token_uri,
                "redirect_uris": [redirect_uri],
            }
        }
        self._redirect_uri = redirect_uri
        self._revoke_uri = revoke_uri
        self._timeout_s = timeout_s
        _quiet_oauth_debug_logs()

    def authorization_url(self, state: str, code_verifier: str, login_hint: str) -> str:
        """Google's consent URL for our scopes, offline access, forced consent (so a refresh
        token is always issued), incremental scopes, and PKCE S256 over `code_verifier`."""
        flow = self._flow(code_verifier)
        url, _ = flow.authorization_url(
            state=state,
            access_type="offline",
            prompt="consent",
            include_granted_scopes="true",
            login_hint=login_hint,
        )
        return str(url)

    def exchange_code(self, code: str, code_verifier: str) -> OAuthGrant:
        """Exchange an authorization code (with its PKCE verifier) for a refresh token.
        Raises InvalidInput (code refused), TransientError, PermanentError, ConfigError."""
        from oauthlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidGrantError, OAuth2Error

        flow = self._flow(code_verifier)
        flow.oauth2session.register_compliance_hook("access_token_response", _raise_on_server_error)
        try:
            token: Mapping[str, Any] = flow.fetch_token(code=code, timeout=self._timeout_s)
        except Warning as changed:
            # oauthlib raises when the granted scopes differ from the requested ones (users can
            # untick scopes; Google adds previously granted ones) unless OAUTHLIB_RELAX_TOKEN_SCOPE
            # is set. The token is complete; the granted scopes are checked by the caller.
            token = getattr(changed, "token", None) or {}
            if not token:
                raise PermanentError("the token endpoint answered without a token") from None
        except InsecureTransportError:
            raise ConfigError(
                "the OAuth token endpoint must be https (OAUTHLIB_INSECURE_TRANSPORT is for the sandbox)"
            ) from None
        except InvalidGrantError:
            raise InvalidInput("Google refused the authorization code (used, expired or not ours)") from None
        except OAuth2Error as error:
            raise PermanentError(f"the token endpoint refused the exchange: {_short(error.error)}") from None
        except requests.RequestException as error:
            raise TransientError(f"the token endpoint could not be reached: {type(error).__name__}") from None
        refresh_token = token.get("refresh_token")
        if not refresh_token:
            raise PermanentError("Google returned no refresh token (access_type=offline missing?)")
        scope = token.get("scope") or ()
        granted = frozenset(scope.split() if isinstance(scope, str) else scope)
        return OAuthGrant(str(refresh_token), granted, _email_from_id_token(token.get("id_token")))

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token (and with it the member's grant to this client) at Google.
        A token Google no longer knows (already revoked or expired) is success.
        Raises TransientError, PermanentError, ConfigError."""
        from oauthlib.oauth2.rfc6749.utils import is_secure_transport

        if not is_secure_transport(self._revoke_uri):
            raise ConfigError(
                "the OAuth revoke endpoint must be https (OAUTHLIB_INSECURE_TRANSPORT is for the sandbox)"
            )
        try:
            response = requests.post(
                self._revoke_uri,
                data={"token": refresh_token},
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=self._timeout_s,
            )
        except requests.RequestException as error:
            raise TransientError(
                f"the revoke endpoint could not be reached: {type(error).__name__}"
            ) from None
        if response.status_code == 200:
            return
        if response.status_code >= 500 or response.status_code in _TRANSIENT_STATUSES:
            raise TransientError(f"the revoke endpoint answered {response.status_code}")
        if response.status_code == 400 and _error_code(response) in ("invalid_token", "invalid_grant"):
            return  # already revoked or expired: nothing left to revoke
        raise PermanentError(f"the revoke endpoint answered {response.status_code} {_error_code(response)}")

    def _flow(self, code_verifier: str) -> Any:
        from google_auth_oauthlib.flow import Flow

        return Flow.from_client_config(
            self._client_config,
            scopes=list(SCOPES),
            redirect_uri=self._redirect_uri,
            code_verifier=code_verifier,
            autogenerate_code_verifier=False,
        )


def _raise_on_server_error(response: requests.Response) -> requests.Response:
    """Sort the token endpoint's 5xx/429 out before oauthlib parses the body."""
    if response.status_code >= 500 or response.status_code in _TRANSIENT_STATUSES:
        raise TransientError(f"the token endpoint answered {response.status_code}")
    return response


def _email_from_id_token(id_token: object) -> str | None:
    """The id token's `email` (normalised) when `email_verified` is true, else None."""
    if not isinstance(id_token, str) or not id_token:
        return None
    from google.auth import jwt

    # Not verifying the signature is acceptable here: this id_token came straight from Google's
    # token endpoint over TLS in answer to our own authenticated request (OpenID Connect Core
    # §3.1.3.7: TLS server validation may stand in for the signature check).
    try:
        claims = jwt.decode(id_token, verify=False)
    except ValueError:
        return None
    email = claims.get("email")
    # Only an address Google verified identifies the account (older tokens say "true").
    verified = claims.get("email_verified") in (True, "true")
    return email.strip().lower() if verified and isinstance(email, str) and email.strip() else None


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return _short(body.get("error")) if isinstance(body, dict) else ""


def _short(value: object) -> str:
    """An OAuth error code, sanitised for logs and pages (never a description or token)."""
    text = str(value or "")
    return "".join(c for c in text if c.isalnum() or c in "_-.")[:60]


def _quiet_oauth_debug_logs() -> None:
    # requests-oauthlib logs the whole token response at DEBUG ("Obtained token ..."): make sure
    # a process-wide DEBUG level can never print a refresh token.
    # Pinning the loggers' own level holds even if the root level is lowered later.
    for name in ("requests_oauthlib", "oauthlib"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.INFO))
