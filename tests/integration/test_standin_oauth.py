"""The stand-in's OAuth endpoints, driven only through the production libraries
(google-auth-oauthlib's Flow, google-auth's Credentials). Following the 302 with a plain GET is
the browser's part."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import google.auth.transport.requests
import pytest
import requests
from google.auth import jwt
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError

from shared.sandbox.google_standin import GoogleStandIn

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events.readonly"
SCOPES = ["openid", "email", CALENDAR_SCOPE]
REDIRECT_URI = "http://127.0.0.1:8080/oauth_callback"


@pytest.fixture
def oauth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")


def make_flow(standin: GoogleStandIn, client_secret: str | None = None) -> Flow:
    config = {
        "web": {
            "client_id": standin.client_id,
            "client_secret": client_secret or standin.client_secret,
            "auth_uri": standin.auth_uri,
            "token_uri": standin.token_uri,
            "redirect_uris": [REDIRECT_URI],
        }
    }
    return Flow.from_client_config(
        config, scopes=SCOPES, redirect_uri=REDIRECT_URI, autogenerate_code_verifier=True
    )


def consent(url: str) -> dict[str, str]:
    """The browser: open the consent URL, read where Google sends it back."""
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def credentials_for(standin: GoogleStandIn, refresh_token: str) -> Credentials:
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=standin.token_uri,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
    )


@pytest.mark.usefixtures("oauth_env")
def test_code_flow_with_pkce_yields_refresh_token_and_id_token(standin: GoogleStandIn) -> None:
    flow = make_flow(standin)
    url, state = flow.authorization_url(
        access_type="offline",
        prompt="consent",
        include_granted_scopes="true",
        login_hint="anna@northwind-cs.com",
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]

    answer = consent(url)
    assert answer["state"] == state
    assert CALENDAR_SCOPE in answer["scope"].split()

    token = flow.fetch_token(code=answer["code"])
    assert token["token_type"] == "Bearer"
    assert token["refresh_token"]
    assert CALENDAR_SCOPE in token["scope"]
    claims = jwt.decode(token["id_token"], verify=False)
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["aud"] == standin.client_id
    assert claims["email"] == "anna@northwind-cs.com"
    assert claims["email_verified"] is True
    assert claims["sub"].isdigit()

    creds = flow.credentials
    assert creds.refresh_token == token["refresh_token"]


@pytest.mark.usefixtures("oauth_env")
def test_default_account_is_used_without_login_hint(standin: GoogleStandIn) -> None:
    standin.consent.default_email = "bob@northwind-cs.com"
    flow = make_flow(standin)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    token = flow.fetch_token(code=consent(url)["code"])
    assert jwt.decode(token["id_token"], verify=False)["email"] == "bob@northwind-cs.com"


@pytest.mark.usefixtures("oauth_env")
def test_code_is_single_use(standin: GoogleStandIn) -> None:
    flow = make_flow(standin)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    code = consent(url)["code"]
    flow.fetch_token(code=code)
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=code)


@pytest.mark.usefixtures("oauth_env")
def test_wrong_code_verifier_is_invalid_grant(standin: GoogleStandIn) -> None:
    flow = make_flow(standin)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    code = consent(url)["code"]
    flow.code_verifier = "x" * 64  # not the verifier the challenge was made from
    with pytest.raises(InvalidGrantError):
        flow.fetch_token(code=code)


@pytest.mark.usefixtures("oauth_env")
def test_wrong_client_secret_is_invalid_client(standin: GoogleStandIn) -> None:
    flow = make_flow(standin, client_secret="not-the-secret")
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    with pytest.raises(InvalidClientError):
        flow.fetch_token(code=consent(url)["code"])


@pytest.mark.usefixtures("oauth_env")
def test_user_denies_consent(standin: GoogleStandIn) -> None:
    standin.consent.mode = "deny"
    url, state = make_flow(standin).authorization_url(access_type="offline", prompt="consent")
    answer = consent(url)
    assert answer == {"error": "access_denied", "state": state}


@pytest.mark.usefixtures("oauth_env")
def test_user_unticks_the_calendar_scope(standin: GoogleStandIn) -> None:
    standin.consent.mode = "grant_without_calendar"
    flow = make_flow(standin)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent")
    answer = consent(url)
    assert set(answer["scope"].split()) == {
        "openid",
        "email",
        "https://www.googleapis.com/auth/userinfo.email",
    }
    token = flow.fetch_token(code=answer["code"])
    assert CALENDAR_SCOPE not in token["scope"]
    assert "https://www.googleapis.com/auth/userinfo.email" in token["scope"]


def test_unknown_client_and_unregistered_redirect_get_an_error_page() -> None:
    with GoogleStandIn(redirect_uris=[REDIRECT_URI]) as standin:
        base = {"response_type": "code", "scope": "openid", "state": "s"}
        unknown = requests.get(
            standin.auth_uri,
            params={**base, "client_id": "nope", "redirect_uri": REDIRECT_URI},
            allow_redirects=False,
            timeout=10,
        )
        assert unknown.status_code == 400
        assert "invalid_client" in unknown.text
        mismatch = requests.get(
            standin.auth_uri,
            params={**base, "client_id": standin.client_id, "redirect_uri": "http://127.0.0.1:9/other"},
            allow_redirects=False,
            timeout=10,
        )
        assert mismatch.status_code == 400
        assert "redirect_uri_mismatch" in mismatch.text


def test_refresh_then_revoke_gives_invalid_grant(standin: GoogleStandIn) -> None:
    refresh_token = standin.issue_refresh_token("anna@northwind-cs.com")
    creds = credentials_for(standin, refresh_token)
    http = google.auth.transport.requests.Request()
    creds.refresh(http)
    assert creds.token
    assert creds.valid
    assert creds.refresh_token == refresh_token  # Google sends no new refresh token

    standin.revoke_refresh_token(refresh_token)
    with pytest.raises(RefreshError, match="invalid_grant") as caught:
        credentials_for(standin, refresh_token).refresh(http)
    assert not caught.value.retryable


def test_revoke_endpoint_revokes_refresh_token(standin: GoogleStandIn) -> None:
    refresh_token = standin.issue_refresh_token("anna@northwind-cs.com")
    http = google.auth.transport.requests.Request()
    # google-auth's own revocation helper is not public; the adapters POST the form as Google documents.
    response = http(
        url=standin.revoke_uri,
        method="POST",
        body=f"token={refresh_token}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    again = http(
        url=standin.revoke_uri,
        method="POST",
        body=f"token={refresh_token}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert again.status == 400
    assert b"invalid_token" in again.data
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials_for(standin, refresh_token).refresh(http)


def test_token_endpoint_faults(standin: GoogleStandIn) -> None:
    refresh_token = standin.issue_refresh_token("anna@northwind-cs.com")
    http = google.auth.transport.requests.Request()
    standin.faults.inject("token", status=400, reason="invalid_grant")
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials_for(standin, refresh_token).refresh(http)
    # google-auth retries 5xx on the token endpoint by itself.
    standin.faults.inject("token", status=503, count=1)
    creds = credentials_for(standin, refresh_token)
    creds.refresh(http)
    assert creds.valid
    assert standin.requests.count("token") == 3


def test_refresh_may_narrow_scopes_but_not_widen_them(standin: GoogleStandIn) -> None:
    refresh_token = standin.issue_refresh_token("anna@northwind-cs.com")
    http = google.auth.transport.requests.Request()
    narrow = Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=standin.token_uri,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        scopes=[CALENDAR_SCOPE],
    )
    narrow.refresh(http)
    assert narrow.granted_scopes == [CALENDAR_SCOPE]

    identity_only = standin.issue_refresh_token("anna@northwind-cs.com", scopes=["openid", "email"])
    wide = Credentials(
        token=None,
        refresh_token=identity_only,
        token_uri=standin.token_uri,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
        scopes=[CALENDAR_SCOPE],
    )
    with pytest.raises(RefreshError, match="invalid_scope"):
        wide.refresh(http)


def test_oldest_refresh_token_is_dropped_beyond_100(standin: GoogleStandIn) -> None:
    tokens = [standin.issue_refresh_token("anna@northwind-cs.com") for _ in range(101)]
    http = google.auth.transport.requests.Request()
    with pytest.raises(RefreshError, match="invalid_grant"):
        credentials_for(standin, tokens[0]).refresh(http)
    credentials_for(standin, tokens[1]).refresh(http)
