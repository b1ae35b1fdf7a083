"""Re-matching after directory changes (shared.services.rematch) against the Firestore emulator,
with the sample tenant synced through the production adapters and the Google stand-in.

Every change kind is written the way the CS platform would write it (plain `email`/`domains`,
no derived `emailKey`/`domainKeys`), delivered to the service as the trigger would deliver it
(the document before and after), and the result is compared with a full resync from scratch
(meetings and interactions deleted, every member listed again): they must be identical.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore

from shared import bootstrap
from shared.cli import main
from shared.sandbox.google_standin import GoogleStandIn
from shared.services.ports import DirectoryChange
from shared.services.rematch import (
    RematchDeps,
    RematchSummary,
    rematch_directory_change,
    rematch_tenant,
)
from shared.services.sync import SyncDeps, sync_member
from tests.support import sandbox
from tests.support.cli import import_file
from tests.support.sandbox import TENANT, FixedClock

pytestmark = pytest.mark.usefixtures("firestore_project")

# Sample meetings (shared/sandbox/sample/README.md)
S02 = "3cv4rgtt85jbtkmbfcjq9nk209@google.com"  # Globex onboarding: new.hire@globex.com by domain
S04 = "u50rsukj55flqvustjihlfaa9s@google.com"  # samir@initech.io ambiguous (Initech, Initrode)
S16 = "uu50rdn5jfn2kat0g6rdc4lruv@google.com"  # jane.prospect@gmail.com (free mail), nothing
S18 = "015kgrhd0ia6oo60547j055m6s@google.com"  # wile.e.personal@gmail.com, user of Acme
S19 = "5ovh5123kjf0a48i684ucc156b@google.com"  # Acme + Globex (partnerships@globex.com by domain)
S22 = "5ehq5ag4m9eb1pb8tv0evud5cl@google.com"  # milton.waddams@initrode.com, user of Initrode
S29 = "57diakgmi160pqjpmnp67qu6je@google.com"  # founder@unknown-startup.io, no account
S32 = "u5ulvnb6qb44pbunc90cr9a1sb@google.com"  # Logo + jane.prospect@gmail.com + samir@initech.io


@pytest.fixture
def sync_deps(standin: GoogleStandIn, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> SyncDeps:
    sandbox.point_env_at(monkeypatch, standin)
    sandbox.import_sample_directory()
    sandbox.load_sample_calendars(standin)
    for member in sandbox.sample_members():
        sandbox.connect(standin, member["id"], member["email"])
    deps = replace(bootstrap.sync_deps(), clock=clock, publisher=None)
    for member in sandbox.sample_members():
        assert sync_member(deps, TENANT, member["id"]).outcome == "synced"
    return deps


@pytest.fixture
def deps(sync_deps: SyncDeps, clock: FixedClock) -> RematchDeps:
    return replace(bootstrap.rematch_deps(), clock=clock)


@pytest.fixture
def db(sync_deps: SyncDeps) -> firestore.Client:
    return bootstrap.firestore_client()


def _tenant(db: firestore.Client) -> Any:
    return db.collection("tenants").document(TENANT)


def write(
    db: firestore.Client, deps: RematchDeps, collection: str, doc_id: str, fields: dict[str, Any] | None
) -> DirectoryChange:
    """Write (set whole, or delete when None) a directory document as the CS platform would, and
    return the change its document-written event describes."""
    ref = _tenant(db).collection(collection).document(doc_id)
    old = ref.get().to_dict()
    if fields is None:
        ref.delete()
    else:
        ref.set(fields)
    new = ref.get().to_dict()
    return DirectoryChange(TENANT, collection, doc_id, old, new)  # type: ignore[arg-type]


def deliver(deps: RematchDeps, change: DirectoryChange) -> RematchSummary:
    return rematch_directory_change(deps, change)


def state(db: firestore.Client) -> dict[str, Any]:
    """Every interaction (without its timestamps) and each meeting's matching outcome."""
    interactions = {}
    for snapshot in _tenant(db).collection("interactions").stream():
        data = snapshot.to_dict()
        data.pop("createdAt")
        data.pop("updatedAt")
        interactions[snapshot.id] = data
    meetings = {}
    for snapshot in _tenant(db).collection("meetings").stream():
        data = snapshot.to_dict()
        meetings[data["meetingKey"]] = (
            sorted(data["interactions"]),
            data["unmatched"],
            data["emails"],
            data["domains"],
        )
    return {"interactions": interactions, "meetings": meetings}


def resync_from_scratch(db: firestore.Client, sync_deps: SyncDeps) -> dict[str, Any]:
    """Delete every meeting and interaction, list every calendar again, and return the state."""
    for name in ("meetings", "interactions"):
        db.recursive_delete(_tenant(db).collection(name))
    for member in sandbox.sample_members():
        assert sync_member(sync_deps, TENANT, member["id"], full=True).outcome == "synced"
    return state(db)


def accounts_of(db: firestore.Client, meeting_key: str) -> dict[str, list[tuple[str, Any, str]]]:
    """account -> its attendees (email, userId, matchedBy) for one meeting's interactions."""
    query = (
        _tenant(db)
        .collection("interactions")
        .where(filter=firestore.FieldFilter("meetingKey", "==", meeting_key))
    )
    return {
        s.get("accountId"): sorted((a["email"], a["userId"], a["matchedBy"]) for a in s.get("attendees"))
        for s in query.stream()
    }


def assert_same_as_a_fresh_sync(db: firestore.Client, sync_deps: SyncDeps) -> None:
    rematched = state(db)
    assert rematched == resync_from_scratch(db, sync_deps)


# --- users ---------------------------------------------------------------------------------------


def test_user_added_matches_its_meetings_directly(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    assert accounts_of(db, S29) == {}
    change = write(
        db,
        deps,
        "users",
        "u-founder",
        {"email": "Founder@Unknown-Startup.io", "name": "F", "accountId": "acc-hooli"},
    )
    summary = deliver(deps, change)
    assert (summary.added, summary.moved, summary.removed) == (1, 0, 0)
    assert accounts_of(db, S29) == {"acc-hooli": [("founder@unknown-startup.io", "u-founder", "email")]}
    user = _tenant(db).collection("users").document("u-founder").get().to_dict()
    assert user["emailKey"] == "founder@unknown-startup.io"  # filled in by the trigger
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_user_added_on_a_matched_domain_turns_a_domain_match_into_a_direct_one(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    assert ("new.hire@globex.com", None, "domain") in accounts_of(db, S02)["acc-globex"]
    summary = deliver(
        deps,
        write(
            db,
            deps,
            "users",
            "u-new",
            {"email": "new.hire@globex.com", "name": "N", "accountId": "acc-globex"},
        ),
    )
    assert (summary.added, summary.updated, summary.removed) == (0, 1, 0)
    assert ("new.hire@globex.com", "u-new", "email") in accounts_of(db, S02)["acc-globex"]
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_user_removed(db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps) -> None:
    assert "acc-acme" in accounts_of(db, S18)
    summary = deliver(deps, write(db, deps, "users", "u-wile-home", None))
    assert summary.removed == 1
    assert accounts_of(db, S18) == {}
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_user_email_changed(db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps) -> None:
    # wile.e.personal@gmail.com -> jane.prospect@gmail.com: S18 loses Acme, S16 and S32 gain it.
    change = write(
        db,
        deps,
        "users",
        "u-wile-home",
        {
            "email": "Jane.Prospect@gmail.com",
            "name": "Jane",
            "accountId": "acc-acme",
            "emailKey": "wile.e.personal@gmail.com",
        },
    )
    summary = deliver(deps, change)
    assert (summary.added, summary.removed) == (2, 1)
    assert accounts_of(db, S18) == {}
    assert accounts_of(db, S16) == {"acc-acme": [("jane.prospect@gmail.com", "u-wile-home", "email")]}
    assert "acc-acme" in accounts_of(db, S32)
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_user_moved_to_another_account(db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps) -> None:
    assert set(accounts_of(db, S22)) == {"acc-initrode"}
    moved = {"email": "milton.waddams@initrode.com", "name": "Milton Waddams", "accountId": "acc-hooli"}
    summary = deliver(deps, write(db, deps, "users", "u-milton", moved))
    assert (summary.moved, summary.added, summary.removed) == (1, 0, 0)
    assert summary.changes[0].account_before == "acc-initrode"
    assert summary.changes[0].account_after == "acc-hooli"
    assert set(accounts_of(db, S22)) == {"acc-hooli"}
    assert_same_as_a_fresh_sync(db, sync_deps)


# --- accounts ------------------------------------------------------------------------------------


def test_account_added(db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps) -> None:
    change = write(
        db,
        deps,
        "accounts",
        "acc-unknown",
        {"name": "Unknown", "domains": ["https://www.Unknown-Startup.io/"]},
    )
    summary = deliver(deps, change)
    assert summary.added == 1
    assert accounts_of(db, S29) == {"acc-unknown": [("founder@unknown-startup.io", None, "domain")]}
    account = _tenant(db).collection("accounts").document("acc-unknown").get().to_dict()
    assert account["domainKeys"] == ["unknown-startup.io"]
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_account_removed_makes_a_shared_domain_unambiguous(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    # initech.io belongs to Initech and Initrode: samir@initech.io matches neither until Initrode goes.
    assert "acc-initech" not in accounts_of(db, S32)
    summary = deliver(deps, write(db, deps, "accounts", "acc-initrode", None))
    assert (summary.added, summary.updated) == (1, 1)  # S32 gains Initech; S04 gains samir
    assert ("samir@initech.io", None, "domain") in accounts_of(db, S04)["acc-initech"]
    assert "acc-initech" in accounts_of(db, S32)
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_account_domains_changed(db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps) -> None:
    # Globex moves from globex.com to globex.net: its domain matches go, its users stay.
    change = write(db, deps, "accounts", "acc-globex", {"name": "Globex", "domains": ["globex.net"]})
    summary = deliver(deps, change)
    assert summary.changed >= 2
    assert accounts_of(db, S19)["acc-globex"] == [("frank.grimes@globex.com", "u-frank", "email")]
    assert ("new.hire@globex.com", None, "domain") not in accounts_of(db, S02)["acc-globex"]
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_a_domain_becoming_ambiguous_removes_its_domain_matches(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    hooli = _tenant(db).collection("accounts").document("acc-hooli").get().to_dict()
    change = write(db, deps, "accounts", "acc-hooli", {**hooli, "domains": ["hooli.xyz", "Globex.com"]})
    deliver(deps, change)
    s19 = accounts_of(db, S19)
    assert s19["acc-globex"] == [("frank.grimes@globex.com", "u-frank", "email")]
    assert "acc-hooli" not in s19
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_a_domain_becoming_unambiguous_by_a_domain_change(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    initrode = _tenant(db).collection("accounts").document("acc-initrode").get().to_dict()
    change = write(db, deps, "accounts", "acc-initrode", {**initrode, "domains": ["initrode.com"]})
    summary = deliver(deps, change)
    assert summary.added == 1
    assert "acc-initech" in accounts_of(db, S32)
    assert_same_as_a_fresh_sync(db, sync_deps)


# --- delivery ------------------------------------------------------------------------------------


def test_duplicate_delivery_changes_nothing_the_second_time(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    change = write(
        db,
        deps,
        "users",
        "u-milton",
        {"email": "milton.waddams@initrode.com", "name": "M", "accountId": "acc-hooli"},
    )
    first = deliver(deps, change)
    after_first = state(db)
    second = deliver(deps, change)
    assert first.changed > 0
    assert (second.changed, second.meetings_written) == (0, 0)
    assert second.meetings == first.meetings
    assert state(db) == after_first


def test_out_of_order_delivery_converges_on_the_directory_as_it_is_now(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    user = {"name": "Wile", "accountId": "acc-acme"}
    to_jane = write(db, deps, "users", "u-wile-home", {**user, "email": "jane.prospect@gmail.com"})
    to_founder = write(db, deps, "users", "u-wile-home", {**user, "email": "founder@unknown-startup.io"})
    deliver(deps, to_founder)  # the later event first
    deliver(deps, to_jane)  # then the earlier one: must not bring jane back
    deliver(deps, to_founder)  # and a duplicate
    assert accounts_of(db, S29) == {"acc-acme": [("founder@unknown-startup.io", "u-wile-home", "email")]}
    assert accounts_of(db, S16) == {}
    assert accounts_of(db, S18) == {}
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_the_event_of_the_derived_key_fix_is_a_no_op(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    ref = _tenant(db).collection("users").document("u-founder")
    created = write(
        db,
        deps,
        "users",
        "u-founder",
        {"email": "founder@unknown-startup.io", "name": "F", "accountId": "acc-hooli"},
    )
    deliver(deps, created)
    fixed = ref.get()
    assert fixed.get("emailKey") == "founder@unknown-startup.io"
    echo = DirectoryChange(TENANT, "users", "u-founder", created.new, fixed.to_dict())
    summary = deliver(deps, echo)
    assert (bool(summary.skipped), summary.meetings) == (True, 0)
    assert ref.get().update_time == fixed.update_time  # no further write: no loop


def test_rematch_of_the_whole_tenant_repairs_what_no_event_reported(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps, clock: FixedClock
) -> None:
    # Written with the derived keys already in place and no event delivered: only a full re-match sees it.
    _tenant(db).collection("accounts").document("acc-unknown").set(
        {"name": "Unknown", "domains": ["unknown-startup.io"], "domainKeys": ["unknown-startup.io"]}
    )
    _tenant(db).collection("users").document("u-wile-home").delete()
    progress: list[tuple[int, int]] = []
    summary = rematch_tenant(deps, TENANT, on_progress=lambda done, total: progress.append((done, total)))
    assert (summary.added, summary.removed) == (1, 1)
    assert summary.meetings == len(state(db)["meetings"])
    assert progress[-1] == (summary.meetings, summary.meetings)
    again = rematch_tenant(deps, TENANT)
    assert (again.changed, again.meetings_written) == (0, 0)
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_only_the_meetings_a_change_concerns_are_read(
    db: firestore.Client, deps: RematchDeps, sync_deps: SyncDeps
) -> None:
    summary = deliver(
        deps,
        write(
            db,
            deps,
            "users",
            "u-milton",
            {"email": "milton.waddams@initrode.com", "name": "M", "accountId": "acc-hooli"},
        ),
    )
    assert summary.meetings == 1  # S22 only, not the tenant's other stored meetings
    nothing = deliver(
        deps,
        write(db, deps, "users", "u-nobody", {"email": "nobody@nowhere.example", "accountId": "acc-hooli"}),
    )
    assert (nothing.meetings, nothing.changed) == (0, 0)


def test_unknown_tenant_and_deleted_document_are_handled(deps: RematchDeps, db: firestore.Client) -> None:
    gone = DirectoryChange("no-such-tenant", "users", "u-1", {"email": "x@y.example"}, None)
    assert rematch_directory_change(deps, gone).meetings == 0  # no meeting mentions it: nothing to do
    with pytest.raises(Exception, match="unknown tenant"):
        rematch_tenant(deps, "no-such-tenant")


# --- the command line ----------------------------------------------------------------------------


def _sample_file() -> dict[str, Any]:
    return json.loads((sandbox.SAMPLE_DIR / "tenant.json").read_text())


def test_import_rematches_what_it_changed(
    db: firestore.Client,
    sync_deps: SyncDeps,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _sample_file()
    assert import_file(tmp_path, data, capsys)[-1].startswith("re-matched 0 meetings")  # nothing changed
    next(u for u in data["users"] if u["id"] == "u-milton")["accountId"] = "acc-hooli"
    data["accounts"].append({"id": "acc-unknown", "name": "Unknown", "domains": ["unknown-startup.io"]})
    lines = import_file(tmp_path, data, capsys)
    assert lines[-1] == (
        "re-matched 2 meetings of tenant northwind: interactions 1 added, 1 moved, 0 updated, 0 removed"
    )
    assert set(accounts_of(db, S22)) == {"acc-hooli"}
    assert set(accounts_of(db, S29)) == {"acc-unknown"}
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_import_that_changes_the_tenants_rules_rematches_every_meeting(
    db: firestore.Client,
    sync_deps: SyncDeps,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = _sample_file()
    data["tenant"]["internalDomains"].append("initech.io")  # Initech's people become internal
    lines = import_file(tmp_path, data, capsys)
    assert "removed" in lines[-1]
    assert not lines[-1].startswith("re-matched 0 ")
    assert accounts_of(db, S04) == {}
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_calsync_rematch_prints_what_changed(
    db: firestore.Client, sync_deps: SyncDeps, capsys: pytest.CaptureFixture[str]
) -> None:
    milton = _tenant(db).collection("users").document("u-milton")
    milton.update({"accountId": "acc-hooli"})  # no event delivered
    capsys.readouterr()
    main(["rematch", "--tenant", TENANT])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["change", "date", "title", "from", "to"]
    assert out[1].split()[0] == "moved"
    assert out[1].split()[-2:] == ["acc-initrode", "acc-hooli"]
    assert "Initrode: late call" in out[1]
    assert len(out) == 3
    assert out[-1].endswith("interactions 0 added, 1 moved, 0 updated, 0 removed")
    main(["rematch", "--tenant", TENANT])
    assert capsys.readouterr().out.splitlines()[-1].endswith("0 added, 0 moved, 0 updated, 0 removed")
    assert_same_as_a_fresh_sync(db, sync_deps)


def test_calsync_rematch_of_an_unknown_tenant_is_a_one_line_error(
    sync_deps: SyncDeps, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["rematch", "--tenant", "nope"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip() == "calsync: error: unknown tenant 'nope'"
