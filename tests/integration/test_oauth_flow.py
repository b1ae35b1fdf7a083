"""Connecting calendars end to end (docs/reference.md#connecting-a-calendar): the browser's whole OAuth flow
over HTTP through functions-framework (`oauth_connect`, `oauth_callback`, `oauth_disconnect`) against the real
Firestore and Pub/Sub emulators and the Google stand-in (OAuth, token, revoke, Secret Manager), with the
production adapters; plus the attacks and failures that must change nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from google.cloud import firestore

from shared import bootstrap
from shared.domain.links import LinkPurpose
from shared.sandbox.standin.oauth import pkce_s256
from shared.services.connect import SCOPE_MISSING_MESSAGE, pkce_verifier, state_key
from shared.services.ports import SyncJob
from tests.support.oauth_browser import (
    ANNA,
    BOB,
    CALENDAR_SCOPE,
    CALLBACK_URL,
    CARL,
    CONNECT_URL,
    DISCONNECT_URL,
    LINK_KEY,
    Reply,
    Sandbox,
    open_sandbox,
)
from tests.support.oauth_browser import query as _query

# The emulator honours `return_immediately`, which keeps empty pulls from waiting out a timeout.
pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag is deprecated:DeprecationWarning")


@pytest.fixture
def sandbox(
    firestore_project: str, firestore_client: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    with open_sandbox(firestore_project, firestore_client, monkeypatch) as opened:
        yield opened


# --- the happy path -----------------------------------------------------------------------------


@pytest.mark.parametrize("relax_scope", [False, True], ids=["strict-oauthlib", "relaxed-oauthlib"])
def test_connect_link_to_connected_member_with_one_secret_and_a_first_sync(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, relax_scope: bool
) -> None:
    if relax_scope:
        monkeypatch.setenv("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    before = datetime.now(UTC)

    consent = sandbox.get(sandbox.link(LinkPurpose.CONNECT, ANNA))
    assert consent.status == 302
    assert consent.location.startswith(sandbox.standin.auth_uri)
    asked = _query(consent.location)
    assert set(asked["scope"].split()) == {"openid", "email", CALENDAR_SCOPE}
    assert asked["access_type"] == "offline"
    assert asked["prompt"] == "consent"
    assert asked["include_granted_scopes"] == "true"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43
    assert asked["login_hint"] == ANNA[2]
    assert asked["redirect_uri"] == CALLBACK_URL
    assert asked["response_type"] == "code"
    assert len(asked["state"]) >= 43
    # The state lives server-side under its hash only, bound to tenant and member; the PKCE
    # verifier is derived from it with the signing key and stored nowhere.
    stored = sandbox.db.collection("oauthStates").document(state_key(asked["state"])).get().to_dict()
    assert stored is not None
    assert (stored["tenantId"], stored["memberId"]) == ("acme", "m-anna")
    verifier = pkce_verifier(LINK_KEY, asked["state"])
    assert asked["code_challenge"] == pkce_s256(verifier)
    assert verifier not in json.dumps(stored, default=str)
    assert timedelta(minutes=9) < stored["expiresAt"] - before <= timedelta(minutes=10, seconds=5)
    assert asked["state"] not in json.dumps(stored, default=str)

    google = sandbox.get(consent.location)
    assert google.status == 302
    done = sandbox.get(google.location)

    assert done.status == 200, done.body
    assert "Calendar connected" in done.body
    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["status"] == "connected"
    assert calendar["googleEmail"] == ANNA[2]
    assert calendar["connectedAt"] >= before
    assert calendar["nextSyncAt"] >= before
    assert calendar["lastError"] is None
    assert calendar["consecutiveFailures"] == 0
    assert sandbox.secret_states(ANNA) == {1: "ENABLED"}
    assert sandbox.refresh_status(sandbox.stored_token(ANNA))[0] == 200
    assert sandbox.jobs() == [SyncJob("acme", "m-anna", "connected")]
    # The state is used up.
    consumed = sandbox.db.collection("oauthStates").document(state_key(asked["state"])).get().to_dict()
    assert consumed is not None
    assert consumed["consumedAt"] is not None


def test_the_callback_redirects_to_the_return_url_when_configured(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALSYNC_RETURN_URL", "https://cs.example.com/profile?tab=calendar")
    bootstrap.reset()
    done = sandbox.connect(ANNA)
    assert done.status == 302
    assert done.location == "https://cs.example.com/profile?tab=calendar"
    assert sandbox.member(ANNA)["calendar"]["status"] == "connected"


def test_a_connect_link_is_usable_more_than_once_while_valid(sandbox: Sandbox) -> None:
    link = sandbox.link(LinkPurpose.CONNECT, ANNA)
    first, second = sandbox.get(link), sandbox.get(link)
    assert first.status == second.status == 302
    assert _query(first.location)["state"] != _query(second.location)["state"]
    assert sandbox.get(sandbox.get(second.location).location).status == 200


def test_reconnect_rotates_the_secret_and_keeps_the_cursor_for_the_same_account(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    first_token = sandbox.stored_token(ANNA)
    members = sandbox.db.collection("tenants").document("acme").collection("members")
    members.document("m-anna").update({"calendar.syncToken": "cursor-1", "calendar.lastError": "old"})

    assert sandbox.connect(ANNA).status == 200

    assert sandbox.secret_states(ANNA) == {1: "DESTROYED", 2: "ENABLED"}
    assert sandbox.stored_token(ANNA) != first_token
    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["syncToken"] == "cursor-1"  # same Google account: the cursor still holds
    assert calendar["lastError"] is None
    assert sandbox.jobs() == [SyncJob("acme", "m-anna", "connected")] * 2


def test_reconnecting_another_google_account_resets_the_sync_cursor(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    members = sandbox.db.collection("tenants").document("acme").collection("members")
    members.document("m-anna").update(
        {"calendar.syncToken": "cursor-1", "calendar.pageToken": "p", "email": "anna.new@northwind-cs.com"}
    )

    assert sandbox.connect(ANNA).status == 200

    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["googleEmail"] == "anna.new@northwind-cs.com"
    assert calendar["syncToken"] is None
    assert calendar["pageToken"] is None
    assert sandbox.secret_states(ANNA) == {1: "DESTROYED", 2: "ENABLED"}


# --- attacks and mistakes: a 4xx and nothing changes --------------------------------------------


def test_expired_link_is_refused(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    reply = sandbox.get(sandbox.link(LinkPurpose.CONNECT, ANNA, expires_in=timedelta(seconds=-1)))
    assert reply.status == 410
    assert "expired" in reply.body
    assert sandbox.snapshot() == before


def test_tampered_link_is_refused(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    link = sandbox.link(LinkPurpose.CONNECT, ANNA)
    for tampered in (link.replace("m-anna", "m-carl"), link.replace("sig=", "sig=A") + "x", link + "0"):
        reply = sandbox.get(tampered)
        assert 400 <= reply.status < 500
        assert "Location" not in reply.headers
    assert sandbox.get(link.split("&sig=")[0]).status == 400  # no signature at all
    assert sandbox.snapshot() == before


def test_a_disconnect_link_does_not_start_a_consent(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    disconnect = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
    reply = sandbox.get(CONNECT_URL + "?" + urlsplit(disconnect).query)
    assert reply.status == 403
    assert sandbox.snapshot() == before


def test_link_for_another_tenants_member_is_refused(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    reply = sandbox.get(sandbox.link(LinkPurpose.CONNECT, ("acme", "m-bob", "")))  # Bob is globex's
    assert reply.status == 404
    assert sandbox.snapshot() == before


def test_replayed_state_is_refused_without_side_effects(sandbox: Sandbox) -> None:
    callback = sandbox.consent_redirect(ANNA)
    assert sandbox.get(callback).status == 200
    assert len(sandbox.jobs()) == 1
    before = sandbox.snapshot()

    replay = sandbox.get(callback)

    assert replay.status == 400
    assert "already" in replay.body
    assert sandbox.snapshot() == before
    assert sandbox.jobs() == []


def test_state_of_one_member_with_the_code_of_another_connects_nobody(sandbox: Sandbox) -> None:
    anna = _query(sandbox.consent_redirect(ANNA))
    carl = _query(sandbox.consent_redirect(CARL))
    before = sandbox.snapshot()

    mixed = sandbox.get(f"{CALLBACK_URL}?{urlencode({'state': carl['state'], 'code': anna['code']})}")

    assert mixed.status == 400  # Carl's PKCE verifier does not fit Anna's code
    assert sandbox.snapshot() == before
    # Carl's own flow still completes: the state was not burnt by the failed attempt.
    own = sandbox.get(f"{CALLBACK_URL}?{urlencode({'state': carl['state'], 'code': carl['code']})}")
    assert own.status == 200
    assert sandbox.member(CARL)["calendar"]["googleEmail"] == CARL[2]
    assert sandbox.member(ANNA)["calendar"]["status"] == "not_connected"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"code": "4/0abc"},
        {"state": "never-issued", "code": "4/0abc"},
        {"state": "", "code": "4/0abc"},
        {"state": "x" * 5000, "code": "4/0abc"},
    ],
    ids=["nothing", "no-state", "unknown-state", "empty-state", "huge-state"],
)
def test_missing_or_unknown_state_is_refused(sandbox: Sandbox, params: dict[str, str]) -> None:
    before = sandbox.snapshot()
    reply = sandbox.get(f"{CALLBACK_URL}?{urlencode(params)}")
    assert reply.status == 400
    assert sandbox.snapshot() == before


def test_missing_code_is_refused_and_the_state_survives(sandbox: Sandbox) -> None:
    callback = _query(sandbox.consent_redirect(ANNA))
    before = sandbox.snapshot()
    reply = sandbox.get(f"{CALLBACK_URL}?{urlencode({'state': callback['state']})}")
    assert reply.status == 400
    assert "code" in reply.body
    assert sandbox.snapshot() == before
    complete = sandbox.get(f"{CALLBACK_URL}?{urlencode(callback)}")
    assert complete.status == 200


def test_expired_state_is_refused(sandbox: Sandbox) -> None:
    callback = _query(sandbox.consent_redirect(ANNA))
    sandbox.db.collection("oauthStates").document(state_key(callback["state"])).update(
        {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)}
    )
    before = sandbox.snapshot()
    reply = sandbox.get(f"{CALLBACK_URL}?{urlencode(callback)}")
    assert reply.status == 400
    assert "expired" in reply.body
    assert sandbox.snapshot() == before


def test_access_denied_records_last_error_and_connects_nothing(sandbox: Sandbox) -> None:
    sandbox.standin.consent.mode = "deny"
    callback = sandbox.consent_redirect(ANNA)
    assert _query(callback)["error"] == "access_denied"

    reply = sandbox.get(callback)

    assert reply.status == 403
    assert "not connected" in reply.body.lower() or "not given" in reply.body
    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["status"] == "not_connected"
    assert "access_denied" in calendar["lastError"]
    assert sandbox.secret_states(ANNA) == {}
    assert sandbox.jobs() == []
    assert sandbox.get(callback).status == 400  # and the state is used up


def test_access_denied_leaves_a_connected_member_connected(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    sandbox.jobs()
    sandbox.standin.consent.mode = "deny"
    assert sandbox.connect(ANNA).status == 403
    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["status"] == "connected"
    assert sandbox.secret_states(ANNA) == {1: "ENABLED"}


def test_unticked_calendar_scope_is_not_a_connection(sandbox: Sandbox) -> None:
    sandbox.standin.consent.mode = "grant_without_calendar"
    reply = sandbox.connect(ANNA)
    assert reply.status == 403
    assert "calendar" in reply.body.lower()
    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["status"] == "not_connected"
    assert calendar["lastError"] == SCOPE_MISSING_MESSAGE
    assert sandbox.secret_states(ANNA) == {}
    assert sandbox.jobs() == []


def test_token_endpoint_failure_changes_nothing_and_the_callback_can_be_retried(sandbox: Sandbox) -> None:
    callback = sandbox.consent_redirect(ANNA)
    before = sandbox.snapshot()
    sandbox.standin.faults.inject("token", status=500)

    failed = sandbox.get(callback)

    assert failed.status == 503
    assert sandbox.snapshot() == before
    assert sandbox.jobs() == []
    retried = sandbox.get(callback)  # the browser's reload
    assert retried.status == 200
    assert sandbox.member(ANNA)["calendar"]["status"] == "connected"


def test_secret_manager_failure_leaves_nothing_half_written(sandbox: Sandbox) -> None:
    callback = sandbox.consent_redirect(ANNA)
    members_before = sandbox.snapshot()["members"]
    sandbox.standin.faults.inject("secretmanager", status=500)

    failed = sandbox.get(callback)

    assert failed.status == 503
    assert "not connected" in failed.body
    after = sandbox.snapshot()
    assert after["members"] == members_before
    assert after["secrets"] == {}
    assert sandbox.jobs() == []
    assert sandbox.connect(ANNA).status == 200  # a new attempt works


@pytest.mark.parametrize("failing_call", [1, 2, 3], ids=["add-version", "list-versions", "destroy-old"])
def test_secret_manager_failure_during_a_reconnect_keeps_the_old_token(
    sandbox: Sandbox, failing_call: int
) -> None:
    assert sandbox.connect(ANNA).status == 200
    old_token = sandbox.stored_token(ANNA)
    sandbox.jobs()
    callback = sandbox.consent_redirect(ANNA)
    members_before = sandbox.snapshot()["members"]
    if failing_call > 1:  # let the calls before the failing one through
        sandbox.standin.faults.inject("secretmanager", delay_s=0.001, count=failing_call - 1)
    sandbox.standin.faults.inject("secretmanager", status=500)

    failed = sandbox.get(callback)

    states = sandbox.secret_states(ANNA)
    assert failed.status == 503
    assert sandbox.snapshot()["members"] == members_before
    assert [s for s in states.values() if s == "ENABLED"] == ["ENABLED"]
    assert sandbox.stored_token(ANNA) == old_token
    assert sandbox.jobs() == []


def test_methods_other_than_get_are_refused(sandbox: Sandbox) -> None:
    before = sandbox.snapshot()
    assert sandbox.request("POST", sandbox.link(LinkPurpose.CONNECT, ANNA)).status == 405
    assert sandbox.request("POST", f"{CALLBACK_URL}?state=x&code=y").status == 405
    assert sandbox.snapshot() == before


# --- disconnect ---------------------------------------------------------------------------------


def test_disconnect_get_only_asks_and_post_revokes_and_destroys(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    token = sandbox.stored_token(ANNA)
    interactions = sandbox.db.collection("tenants").document("acme").collection("interactions")
    interactions.document("i1").set({"type": "Google calendar", "memberIds": ["m-anna"]})
    link = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
    members = sandbox.db.collection("tenants").document("acme").collection("members")
    members.document("m-anna").update({"name": "<script>alert(1)</script>"})
    before = sandbox.snapshot()

    page = sandbox.get(link)  # what a mail scanner does

    assert page.status == 200
    assert '<form method="post"' in page.body
    assert "<script>" not in page.body
    assert "&lt;script&gt;" in page.body
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    action = page.body.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert action == "?" + urlsplit(link).query
    assert sandbox.snapshot() == before
    assert sandbox.refresh_status(token)[0] == 200

    done = sandbox.request("POST", DISCONNECT_URL + action)

    assert done.status == 200
    assert "disconnected" in done.body.lower()
    assert sandbox.refresh_status(token) == (400, "invalid_grant")
    assert sandbox.secret_states(ANNA) == {}
    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["status"] == "disconnected"
    assert interactions.document("i1").get().exists  # interactions stay

    # Reconnecting later works.
    assert sandbox.connect(ANNA).status == 200
    assert sandbox.member(ANNA)["calendar"]["status"] == "connected"
    assert sandbox.secret_states(ANNA) == {1: "ENABLED"}


def test_disconnect_tolerates_an_already_revoked_token(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    sandbox.standin.revoke_refresh_token(sandbox.stored_token(ANNA))
    assert sandbox.request("POST", sandbox.link(LinkPurpose.DISCONNECT, ANNA)).status == 200
    assert sandbox.member(ANNA)["calendar"]["status"] == "disconnected"
    assert sandbox.secret_states(ANNA) == {}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_or_expired_disconnect_links_change_nothing(sandbox: Sandbox, method: str) -> None:
    assert sandbox.connect(ANNA).status == 200
    token = sandbox.stored_token(ANNA)
    before = sandbox.snapshot()
    expired = sandbox.link(LinkPurpose.DISCONNECT, ANNA, expires_in=timedelta(seconds=-5))
    tampered = sandbox.link(LinkPurpose.DISCONNECT, ANNA).replace("m-anna", "m-carl")
    connect_link = DISCONNECT_URL + "?" + urlsplit(sandbox.link(LinkPurpose.CONNECT, ANNA)).query
    assert sandbox.request(method, expired).status == 410
    assert sandbox.request(method, tampered).status == 403
    assert sandbox.request(method, connect_link).status == 403
    assert sandbox.request(method, DISCONNECT_URL).status == 400
    assert sandbox.snapshot() == before
    assert sandbox.refresh_status(token)[0] == 200


def test_revoke_failure_leaves_the_member_connected_and_a_retry_finishes(sandbox: Sandbox) -> None:
    assert sandbox.connect(ANNA).status == 200
    token = sandbox.stored_token(ANNA)
    link = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
    before = sandbox.snapshot()
    sandbox.standin.faults.inject("revoke", status=503)

    assert sandbox.request("POST", link).status == 503

    assert sandbox.snapshot() == before
    assert sandbox.refresh_status(token)[0] == 200
    assert sandbox.request("POST", link).status == 200
    assert sandbox.refresh_status(token) == (400, "invalid_grant")
    assert sandbox.member(ANNA)["calendar"]["status"] == "disconnected"


# --- the command line ---------------------------------------------------------------------------


def _calsync(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    import io
    import sys

    from shared.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        main(argv)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def test_cli_connect_link_prints_a_working_link_for_existing_members_only(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _calsync(["connect-link", "--tenant", "acme", "--member", "m-anna"], monkeypatch) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith(CONNECT_URL + "?")
    expires = datetime.fromtimestamp(int(_query(url)["exp"]), UTC)
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    consent = sandbox.get(url)
    assert consent.status == 302
    assert sandbox.get(sandbox.get(consent.location).location).status == 200
    capsys.readouterr()

    assert _calsync(["connect-link", "--tenant", "acme", "--member", "m-bob"], monkeypatch) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "unknown member" in captured.err
    assert captured.err.count("\n") == 1

    assert _calsync(["disconnect-link", "--tenant", "acme", "--member", "m-anna"], monkeypatch) == 0
    disconnect = capsys.readouterr().out.strip()
    assert disconnect.startswith(DISCONNECT_URL + "?")
    assert sandbox.get(disconnect).status == 200


def test_cli_set_token_stores_like_the_callback_and_disconnect_revokes(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sandbox.standin.issue_refresh_token(ANNA[2])
    members = sandbox.db.collection("tenants").document("acme").collection("members")
    members.document("m-anna").update({"calendar.syncToken": "cursor-of-some-account"})

    assert _calsync(["set-token", "--tenant", "acme", "--member", "m-anna"], monkeypatch, first + "\n") == 0

    assert first not in capsys.readouterr().out
    calendar = sandbox.member(ANNA)["calendar"]
    assert calendar["status"] == "connected"
    assert calendar["googleEmail"] is None  # the first sync fills it in
    assert calendar["syncToken"] is None  # unknown account: start over
    assert calendar["nextSyncAt"] is not None
    assert sandbox.secret_states(ANNA) == {1: "ENABLED"}
    assert sandbox.stored_token(ANNA) == first
    assert sandbox.jobs() == [SyncJob("acme", "m-anna", "connected")]

    second = sandbox.standin.issue_refresh_token(ANNA[2])
    assert _calsync(["set-token", "--tenant", "acme", "--member", "m-anna"], monkeypatch, second) == 0
    assert sandbox.secret_states(ANNA) == {1: "DESTROYED", 2: "ENABLED"}
    assert sandbox.stored_token(ANNA) == second

    assert _calsync(["set-token", "--tenant", "acme", "--member", "m-anna"], monkeypatch, "  \n") == 1
    assert _calsync(["set-token", "--tenant", "acme", "--member", "nobody"], monkeypatch, second) == 1
    assert sandbox.secret_states(ANNA) == {1: "DESTROYED", 2: "ENABLED"}

    assert _calsync(["disconnect", "--tenant", "acme", "--member", "m-anna"], monkeypatch) == 0
    assert sandbox.refresh_status(second) == (400, "invalid_grant")
    assert sandbox.secret_states(ANNA) == {}
    assert sandbox.member(ANNA)["calendar"]["status"] == "disconnected"
    # Disconnecting again is fine (nothing left to revoke).
    assert _calsync(["disconnect", "--tenant", "acme", "--member", "m-anna"], monkeypatch) == 0


# --- nothing secret ever leaves: logs, pages, Firestore ----------------------------------------


def _all_documents(db: firestore.Client) -> list[dict[str, Any]]:
    found = []

    def walk(collection: Any) -> None:
        for doc in collection.stream():
            found.append(doc.to_dict() or {})
            for sub in doc.reference.collections():
                walk(sub)

    for collection in db.collections():
        walk(collection)
    return found


def test_no_token_code_or_verifier_leaks_into_logs_pages_or_firestore(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import logging
    import sys

    from shared import logs

    # Everything at DEBUG, even the libraries: what a careless log setup would print.
    logs.configure(level="DEBUG", stream="stdout")

    class EverythingHandler(logging.Handler):  # prints every attribute, structured extras too
        def emit(self, record: logging.LogRecord) -> None:
            sys.stderr.write(json.dumps(record.__dict__, default=str) + "\n")

    handler = EverythingHandler()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.WARNING)  # the test browser's own requests
    # The Google SDKs keep their (structured, payload-carrying) DEBUG records to themselves unless
    # GOOGLE_SDK_PYTHON_LOGGING_SCOPE or a logging setup says otherwise: let them all through.
    monkeypatch.setattr(logging.getLogger("google"), "propagate", True)
    codes, verifiers, states = [], [], []
    try:

        def connect_watching(who: tuple[str, str, str]) -> Reply:
            consent = sandbox.get(sandbox.link(LinkPurpose.CONNECT, who))
            state = _query(consent.location)["state"]
            states.append(state)
            verifiers.append(pkce_verifier(LINK_KEY, state))
            google = sandbox.get(consent.location)
            if "code" in _query(google.location):
                codes.append(_query(google.location)["code"])
            return sandbox.get(google.location)

        assert connect_watching(ANNA).status == 200
        assert connect_watching(ANNA).status == 200  # reconnect
        sandbox.standin.consent.mode = "grant_without_calendar"
        assert connect_watching(CARL).status == 403
        sandbox.standin.consent.mode = "deny"
        assert connect_watching(CARL).status == 403
        sandbox.standin.consent.mode = "grant"
        sandbox.standin.faults.inject("token", status=500)
        assert connect_watching(CARL).status == 503
        sandbox.standin.faults.inject("secretmanager", status=500)
        assert connect_watching(CARL).status == 503
        replay = sandbox.consent_redirect(CARL)
        assert sandbox.get(replay).status == 200
        assert sandbox.get(replay).status == 400
        codes.append(_query(replay)["code"])
        link = sandbox.link(LinkPurpose.DISCONNECT, ANNA)
        assert sandbox.get(link).status == 200
        sandbox.standin.faults.inject("revoke", status=500)
        assert sandbox.request("POST", link).status == 503
        assert sandbox.request("POST", link).status == 200
        manual = sandbox.standin.issue_refresh_token(BOB[2])
        assert _calsync(["set-token", "--tenant", "globex", "--member", "m-bob"], monkeypatch, manual) == 0
        assert _calsync(["disconnect", "--tenant", "globex", "--member", "m-bob"], monkeypatch) == 0
        output = capfd.readouterr()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logs.configure()  # back to INFO

    grants = sandbox.standin.oauth.refresh_grants()
    refresh_tokens = [g.token for g in grants]
    access_tokens = [a for g in grants for a in g.access_tokens]
    assert len(refresh_tokens) >= 5
    assert access_tokens
    assert len(codes) >= 5
    assert len(verifiers) == 6
    secrets = refresh_tokens + access_tokens + codes + verifiers

    logged = output.out + output.err
    assert '"message": "member connected"' in logged  # the logs were captured
    encoded = [base64.b64encode(t.encode()).decode() for t in refresh_tokens]  # as in API payloads
    for value in [*secrets, *states, *encoded]:
        assert value not in logged
    for reply in sandbox.replies:
        shown = reply.body + json.dumps(reply.headers)
        for value in secrets:
            assert value not in shown
        for state in states:  # only the consent redirect carries the state (to Google)
            if state in shown:
                assert reply.status == 302
                assert reply.location.startswith(sandbox.standin.auth_uri)
    stored = json.dumps(_all_documents(sandbox.db), default=str)
    for value in refresh_tokens + access_tokens + codes + states + verifiers:
        assert value not in stored


def test_of_two_callbacks_holding_the_same_state_only_one_consumes_it(sandbox: Sandbox) -> None:
    from shared.adapters.firestore.oauth_states import FirestoreOAuthStateStore
    from shared.services.ports import PendingConsent

    store = FirestoreOAuthStateStore(sandbox.db)
    now = datetime.now(UTC)
    store.create("k" * 64, PendingConsent("acme", "m-anna", now, now + timedelta(minutes=10)))
    first, second = store.get("k" * 64), store.get("k" * 64)  # both read before either writes
    assert first is not None
    assert second is not None
    assert first.consumed_at is None

    assert store.consume("k" * 64, first, now) is True
    assert store.consume("k" * 64, second, now) is False
    assert store.consume("k" * 64, first, now) is False
    after = store.get("k" * 64)
    assert after is not None
    assert after.consumed_at is not None
    assert store.get("unknown") is None


def test_concurrent_callbacks_with_the_same_state_connect_once(sandbox: Sandbox) -> None:
    import threading

    callback = urlsplit(sandbox.consent_redirect(ANNA))
    app = sandbox.clients["oauth_callback"].application
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def open_callback() -> None:
        client = app.test_client()
        barrier.wait()
        statuses.append(client.get(callback.path, query_string=callback.query).status_code)

    threads = [threading.Thread(target=open_callback) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200, 400]
    assert sandbox.secret_states(ANNA) == {1: "ENABLED"}
    assert sandbox.jobs() == [SyncJob("acme", "m-anna", "connected")]
