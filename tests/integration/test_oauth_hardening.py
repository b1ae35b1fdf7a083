"""Hardening of the OAuth flow (README.md#security), through the browser's real HTTP flow: only the
member's own Google account and only the scopes asked for are kept; a disconnect is not stopped
by a token Google will not revoke; disconnect links are short-lived and used up; the connect and
disconnect functions run without the OAuth client secret."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from shared import bootstrap
from shared.domain.links import LinkPurpose
from shared.services.ports import SyncJob
from tests.support.oauth_browser import ANNA, CALLBACK_URL, DISCONNECT_URL, Sandbox, open_sandbox, query

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag is deprecated:DeprecationWarning")

FULL_CALENDAR = "https://www.googleapis.com/auth/calendar"
MALLORY = "mallory@gmail.com"


@pytest.fixture
def sandbox(
    firestore_project: str, firestore_client: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    with open_sandbox(firestore_project, firestore_client, monkeypatch) as opened:
        yield opened


def _tenant(sandbox: Sandbox, **fields: Any) -> None:
    sandbox.db.collection("tenants").document(ANNA[0]).update(fields)


def _live_grants(sandbox: Sandbox, email: str) -> list[str]:
    """The refresh tokens Google still honours for an account."""
    return [g.token for g in sandbox.standin.oauth.refresh_grants() if g.email == email and not g.revoked]


def _assert_refused_without_change(
    sandbox: Sandbox, reply: Any, before: dict[str, Any], account: str
) -> None:
    after = sandbox.snapshot()
    assert reply.status == 403, reply.body
    assert after["members"] == before["members"]
    assert after["secrets"] == before["secrets"]
    assert sandbox.jobs() == []
    assert _live_grants(sandbox, account) == []  # the grant was revoked at Google


# --- the consenting Google account ---------------------------------------------------------------


def test_a_consent_by_another_google_account_is_revoked_and_changes_nothing(sandbox: Sandbox) -> None:
    members = sandbox.db.collection("tenants").document("acme").collection("members")
    members.document("m-anna").update({"email": "anna+<b>@northwind-cs.com"})
    sandbox.standin.consent.account = MALLORY  # a forwarded link opened by someone else
    callback = sandbox.consent_redirect(ANNA)
    before = sandbox.snapshot()

    reply = sandbox.get(callback)

    _assert_refused_without_change(sandbox, reply, before, MALLORY)
    assert "Wrong Google account" in reply.body
    assert "anna+&lt;b&gt;@northwind-cs.com" in reply.body  # the account expected, escaped
    assert "<b>" not in reply.body
    assert sandbox.member(ANNA)["calendar"]["status"] == "not_connected"
    # The state is spent (its code is used up anyway); a fresh link with the right account works.
    assert sandbox.get(callback).status == 400
    sandbox.standin.consent.account = None
    assert sandbox.connect(ANNA).status == 200
    assert sandbox.member(ANNA)["calendar"]["googleEmail"] == "anna+<b>@northwind-cs.com"


def test_another_account_cannot_replace_a_connected_members_calendar(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    token = sandbox.stored_token(ANNA)
    sandbox.jobs()
    sandbox.standin.consent.account = MALLORY
    callback = sandbox.consent_redirect(ANNA)
    before = sandbox.snapshot()

    _assert_refused_without_change(sandbox, sandbox.get(callback), before, MALLORY)
    assert sandbox.stored_token(ANNA) == token
    assert sandbox.member(ANNA)["calendar"]["googleEmail"] == ANNA[2]


def test_accounts_on_the_internal_domains_and_their_subdomains_are_the_members_own(sandbox: Sandbox) -> None:
    _tenant(sandbox, internalDomains=["northwind-cs.com"])
    sandbox.standin.consent.account = "anna.calendar@eu.northwind-cs.com"
    assert sandbox.connect(ANNA).status == 200
    assert sandbox.member(ANNA)["calendar"]["googleEmail"] == "anna.calendar@eu.northwind-cs.com"

    sandbox.standin.consent.account = "anna@northwind-cs.com.evil.example"
    assert sandbox.connect(ANNA).status == 403
    assert sandbox.member(ANNA)["calendar"]["googleEmail"] == "anna.calendar@eu.northwind-cs.com"


def test_an_email_google_has_not_verified_is_nobodys_account(sandbox: Sandbox) -> None:
    sandbox.standin.consent.email_verified = False  # the id token claims Anna's address, unverified
    callback = sandbox.consent_redirect(ANNA)
    before = sandbox.snapshot()
    reply = sandbox.get(callback)
    _assert_refused_without_change(sandbox, reply, before, ANNA[2])
    assert ANNA[2] in reply.body


@pytest.mark.parametrize(("setting", "status"), [(True, 200), ("true", 403)], ids=["true", "malformed"])
def test_allow_any_google_account_lets_a_member_connect_another_account(
    sandbox: Sandbox, setting: object, status: int
) -> None:
    _tenant(sandbox, settings={"allowAnyGoogleAccount": setting})
    sandbox.standin.consent.account = MALLORY
    assert sandbox.connect(ANNA).status == status
    if status == 200:
        assert sandbox.member(ANNA)["calendar"]["googleEmail"] == MALLORY
        assert sandbox.jobs() == [SyncJob("acme", "m-anna", "connected")]


# --- scopes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("relax_scope", [False, True], ids=["strict-oauthlib", "relaxed-oauthlib"])
def test_a_grant_broader_than_requested_is_revoked_and_changes_nothing(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, relax_scope: bool
) -> None:
    if relax_scope:
        monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    # Anna once gave this client full calendar access: include_granted_scopes brings it back.
    sandbox.standin.oauth.record_earlier_grant(ANNA[2], [FULL_CALENDAR])
    callback = sandbox.consent_redirect(ANNA)
    assert FULL_CALENDAR in query(callback)["scope"].split()
    before = sandbox.snapshot()

    reply = sandbox.get(callback)

    _assert_refused_without_change(sandbox, reply, before, ANNA[2])
    assert "More access granted than asked for" in reply.body
    assert sandbox.member(ANNA)["calendar"]["status"] == "not_connected"
    # Revoking ended the earlier grant too, so the next consent asks for read-only access only.
    assert sandbox.connect(ANNA).status == 200
    assert sandbox.secret_states(ANNA) == {1: "ENABLED"}


# --- disconnect: revoke errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "invalid_token"), (400, "invalid_grant"), (400, "invalid_request"), (401, None), (403, None)],
)
def test_a_token_google_will_not_revoke_does_not_stop_the_disconnect(
    sandbox: Sandbox, status: int, reason: str | None
) -> None:
    assert sandbox.connect(ANNA).status == 200
    link = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
    sandbox.standin.faults.inject("revoke", status=status, reason=reason)

    done = sandbox.request("POST", link)

    assert done.status == 200, done.body
    assert sandbox.secret_states(ANNA) == {}
    assert sandbox.member(ANNA)["calendar"]["status"] == "disconnected"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_transient_failure_at_google_stops_the_disconnect_until_a_retry(
    sandbox: Sandbox, status: int
) -> None:
    assert sandbox.connect(ANNA).status == 200
    token = sandbox.stored_token(ANNA)
    link = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
    before = sandbox.snapshot()
    sandbox.standin.faults.inject("revoke", status=status)

    assert sandbox.request("POST", link).status == 503

    assert sandbox.snapshot() == before
    assert sandbox.refresh_status(token)[0] == 200
    assert sandbox.request("POST", link).status == 200  # the same link finishes the job
    assert sandbox.refresh_status(token) == (400, "invalid_grant")


# --- disconnect links: short-lived, used up -----------------------------------------------------


def test_a_disconnect_link_is_used_up_by_its_disconnect_and_by_a_reconnect(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    link = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
    assert sandbox.request("POST", link).status == 200
    before = sandbox.snapshot()

    for method in ("GET", "POST"):  # replayed, e.g. from a request log
        replay = sandbox.request(method, link)
        assert replay.status == 410
        assert "already used" in replay.body
    assert sandbox.snapshot() == before

    assert sandbox.connect(ANNA).status == 200
    assert sandbox.request("POST", link).status == 410  # the new connection is not the old link's
    assert sandbox.member(ANNA)["calendar"]["status"] == "connected"
    assert sandbox.request("POST", sandbox.link(LinkPurpose.DISCONNECT, ANNA)).status == 200


def test_cli_disconnect_links_last_one_hour(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.cli import main

    assert sandbox.connect(ANNA).status == 200
    capsys.readouterr()  # the functions' own log lines
    try:
        main(["disconnect-link", "--tenant", "acme", "--member", "m-anna"])
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    assert not code
    url = capsys.readouterr().out.strip()
    assert url.startswith(DISCONNECT_URL + "?")
    expires = datetime.fromtimestamp(int(query(url)["exp"]), UTC)
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert sandbox.request("POST", url).status == 200


# --- least privilege: no client secret where it is not used -------------------------------------


def test_connect_and_disconnect_work_without_the_oauth_client_secret(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = sandbox.standin.client_secret

    def client_secret(present: bool) -> None:
        if present:
            monkeypatch.setenv("CALSYNC_OAUTH_CLIENT_SECRET", secret)
        else:
            monkeypatch.delenv("CALSYNC_OAUTH_CLIENT_SECRET")
        bootstrap.reset()  # each function is its own instance in Google Cloud

    client_secret(False)
    consent = sandbox.get(sandbox.link(LinkPurpose.CONNECT, ANNA))
    assert consent.status == 302, consent.body
    google = sandbox.get(consent.location)
    assert google.location.startswith(CALLBACK_URL)
    assert sandbox.get(google.location).status == 500  # the callback does need it ...
    client_secret(True)
    assert sandbox.connect(ANNA).status == 200  # ... and has it
    token = sandbox.stored_token(ANNA)

    client_secret(False)
    link = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
    assert sandbox.get(link).status == 200
    assert sandbox.request("POST", link).status == 200
    assert sandbox.refresh_status(token) == (400, "invalid_grant")
    assert sandbox.member(ANNA)["calendar"]["status"] == "disconnected"
