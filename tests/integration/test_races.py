"""Races that must converge by themselves (README.md#reliability), against the real Firestore
emulator and the production Calendar client talking to the Google stand-in.

Each race is made to happen deterministically: a directory store that lets a directory change
(and its re-match, as the `directory_changed` trigger runs it) happen right after the sync
looked the directory up; a stand-in that holds a listing while the member reconnects."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from shared import bootstrap
from shared.domain.calendar_state import disconnected
from shared.domain.directory_keys import ACCOUNTS
from shared.domain.models import DirectorySnapshot
from shared.errors import TokenMissing, TransientError
from shared.sandbox.google_standin import GoogleStandIn
from shared.services.directory_import import import_and_rematch
from shared.services.ports import DirectoryChange, DirectoryStore
from shared.services.rematch import rematch_directory_change
from shared.services.sync import SyncDeps, sync_member
from tests.support import sandbox
from tests.support.sandbox import TENANT, FixedClock

pytestmark = pytest.mark.usefixtures("firestore_project")

NEW_ACCOUNT = {"name": "Unknown Startup", "domains": ["unknown-startup.io"]}


@pytest.fixture
def deps(standin: GoogleStandIn, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> SyncDeps:
    sandbox.point_env_at(monkeypatch, standin)
    sandbox.import_sample_directory()
    sandbox.load_sample_calendars(standin)
    for member in sandbox.sample_members():
        sandbox.connect(standin, member["id"], member["email"])
    return replace(bootstrap.sync_deps(continuations=False), clock=clock)


class DirectoryChangedAfterLookup:
    """The sync's directory store; the first lookup of `domain` returns what the directory held,
    and then the CS platform adds an account owning it and the trigger's re-match runs, before
    the sync writes anything with what it looked up."""

    def __init__(self, inner: DirectoryStore, domain: str) -> None:
        self._inner = inner
        self._domain = domain
        self.changed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def lookup(self, tenant_id: str, emails: Iterable[str], domains: Iterable[str]) -> DirectorySnapshot:
        domains = list(domains)
        found = self._inner.lookup(tenant_id, emails, domains)
        if not self.changed and self._domain in domains:
            self.changed = True
            from google.cloud import firestore

            path = f"tenants/{tenant_id}/accounts/acc-unknown"
            firestore.Client().document(path).set(NEW_ACCOUNT)
            change = DirectoryChange(tenant_id, ACCOUNTS, "acc-unknown", None, NEW_ACCOUNT)
            rematch_directory_change(bootstrap.rematch_deps(), change)
        return found


def _accounts_of_meetings_with(domain: str) -> set[str]:
    return {
        item.account_id
        for item in bootstrap.meeting_store().list_interactions(TENANT)
        if any(a.email.endswith("@" + domain) for a in item.attendees)
    }


def test_an_account_added_while_a_sync_runs_is_matched_without_a_manual_rematch(deps: SyncDeps) -> None:
    directory = DirectoryChangedAfterLookup(deps.directory, "unknown-startup.io")
    racing = replace(deps, directory=directory)
    summaries = [sync_member(racing, TENANT, m["id"]) for m in sandbox.sample_members()]
    assert directory.changed  # the race happened: the re-match ran between lookup and write
    assert {s.outcome for s in summaries} == {"synced"}
    assert _accounts_of_meetings_with("unknown-startup.io") == {"acc-unknown"}
    unmatched = {a.email for m in bootstrap.meeting_store().list_unmatched(TENANT) for a in m}
    assert not any(e.endswith("@unknown-startup.io") for e in unmatched)
    assert sum(s.replanned for s in summaries) >= 1


def test_a_sync_without_a_directory_change_replans_nothing(deps: SyncDeps) -> None:
    summary = sync_member(deps, TENANT, "m-anna")
    assert summary.outcome == "synced"
    assert summary.replanned == 0


def test_a_reconnect_during_a_sync_keeps_its_cursor_reset(
    deps: SyncDeps, standin: GoogleStandIn, clock: FixedClock
) -> None:
    """The member reconnects with another Google account while a sync of the old one waits on
    Calendar: the running sync must not save the old calendar's cursor over the reset."""
    assert sync_member(deps, TENANT, "m-anna").outcome == "synced"
    old_email = "anna@northwind-cs.com"
    standin.calendar(old_email).upsert_event(
        {
            "id": "late-change",
            "status": "confirmed",
            "summary": "Acme follow-up",
            "start": {"dateTime": "2026-11-26T10:00:00Z"},
            "end": {"dateTime": "2026-11-26T10:30:00Z"},
            "organizer": {"email": old_email, "self": True},
            "attendees": [{"email": old_email, "self": True}, {"email": "road.runner@acme.com"}],
        }
    )
    standin.faults.inject("calendar", delay_s=2.0, count=1)  # the next listing waits
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = sync_member(deps, TENANT, "m-anna")
        except TransientError as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    threading.Event().wait(0.7)  # the sync holds the lease and waits on Calendar
    other = standin.issue_refresh_token("anna.private@gmail.com")
    bootstrap.connect_service(full_oauth=False).set_token(TENANT, "m-anna", other)
    worker.join(timeout=30)
    assert "error" in outcome  # its saves were refused: it stopped (and would be redelivered)
    state = bootstrap.member_store().get_member(TENANT, "m-anna").calendar
    assert state.sync_token is None
    assert state.page_token is None
    assert state.lease_owner is None

    clock.advance(minutes=1)
    again = sync_member(deps, TENANT, "m-anna")  # the redelivery: the new account's calendar
    assert again.outcome == "synced"
    assert again.full
    held = bootstrap.meeting_store().meeting_keys_held_by(TENANT, "m-anna")
    assert held == []  # the new account's calendar is empty: nothing of the old one stays


# --- partial writes ---------------------------------------------------------------------------


class StopsAfterWriting:
    """An import store whose Firestore fails right after the directory rows were written (the
    process dies, the network goes), before the import's re-match ran."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def write_directory(self, directory: Any) -> dict[str, int]:
        self._inner.write_directory(directory)
        raise TransientError("Firestore unavailable while writing the directory")


def _moved_user_file() -> bytes:
    data = json.loads((sandbox.SAMPLE_DIR / "tenant.json").read_text())
    for user in data["users"]:
        if user["email"] == "road.runner@acme.com":
            user["accountId"] = "acc-globex"
    return json.dumps(data).encode()


def _accounts_of(email: str) -> set[str]:
    return {
        item.account_id
        for item in bootstrap.meeting_store().list_interactions(TENANT)
        if any(a.email == email for a in item.attendees)
    }


def test_an_import_that_stopped_midway_is_finished_by_running_it_again(deps: SyncDeps) -> None:
    for member in sandbox.sample_members():
        sync_member(deps, TENANT, member["id"])
    assert _accounts_of("road.runner@acme.com") == {"acc-acme"}
    text = _moved_user_file()
    store = bootstrap.directory_store()
    with pytest.raises(TransientError):
        import_and_rematch(text, bootstrap.rematch_deps(), StopsAfterWriting(store))
    assert _accounts_of("road.runner@acme.com") == {"acc-acme"}  # written, not re-matched yet

    again = import_and_rematch(text, bootstrap.rematch_deps(), store)  # what the operator does
    assert again.rematched.meetings >= 1
    assert _accounts_of("road.runner@acme.com") == {"acc-globex"}
    assert store.pending_rematch(TENANT) == (frozenset(), frozenset(), False)  # nothing left to do


class FailsToMarkConnected:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def update_calendar(self, *args: Any, **kwargs: Any) -> Any:
        raise TransientError("Firestore unavailable while marking the member connected")


def _connect_service_failing_to_mark(standin: GoogleStandIn) -> Any:
    service = bootstrap.connect_service(full_oauth=False)
    service._members = FailsToMarkConnected(service._members)
    return service


def test_a_token_stored_for_a_member_who_could_not_be_marked_connected_is_destroyed(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    bootstrap.member_store().update_calendar(TENANT, "m-ben", disconnected())  # not connected now
    bootstrap.token_vault().destroy(TENANT, "m-ben")
    token = standin.issue_refresh_token("ben@northwind-cs.com")
    with pytest.raises(TransientError):
        _connect_service_failing_to_mark(standin).set_token(TENANT, "m-ben", token)
    with pytest.raises(TokenMissing):
        bootstrap.token_vault().read(TENANT, "m-ben")  # no live token left behind
    assert bootstrap.member_store().get_member(TENANT, "m-ben").calendar.status == "disconnected"


def test_a_reconnect_that_could_not_be_recorded_keeps_the_member_working(
    deps: SyncDeps, standin: GoogleStandIn
) -> None:
    token = standin.issue_refresh_token("anna@northwind-cs.com")
    with pytest.raises(TransientError):
        _connect_service_failing_to_mark(standin).set_token(TENANT, "m-anna", token)
    assert bootstrap.token_vault().read(TENANT, "m-anna") == token  # the new one (older destroyed)
    assert sync_member(deps, TENANT, "m-anna").outcome == "synced"
