"""Exclusions (README.md#exclusions) against the Firestore emulator, with the sample tenant synced
through the production adapters and the Google stand-in: adding one purges exactly what a fresh
sync with it in place would not store; removing one brings back, at the next sync, exactly what a
fresh sync without it gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore

from shared import bootstrap
from shared.cli import main
from shared.services.sync import SyncDeps, sync_member
from tests.integration.test_rematch import (  # the same sample tenant, synced the same way
    S02,
    S19,
    accounts_of,
    resync_from_scratch,
    state,
)
from tests.integration.test_rematch import db as db
from tests.integration.test_rematch import sync_deps as sync_deps
from tests.support import sandbox
from tests.support.cli import import_file
from tests.support.sandbox import TENANT

pytestmark = pytest.mark.usefixtures("firestore_project")

S21 = "s9dd2mp597up7m9nf3flr3uhvt@google.com"  # Globex renewal, on m-ben's and m-chloe's calendars


def _tenant(db: firestore.Client) -> Any:
    return db.collection("tenants").document(TENANT)


def exclude(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()
    main(["exclude", "--tenant", TENANT, *args])
    return capsys.readouterr().out.splitlines()


def globex_meetings(db: firestore.Client) -> set[str]:
    query = (
        _tenant(db)
        .collection("meetings")
        .where(filter=firestore.FieldFilter("domains", "array_contains", "globex.com"))
    )
    return {s.get("meetingKey") for s in query.stream()}


def sync_all(sync_deps: SyncDeps) -> list[Any]:
    return [sync_member(sync_deps, TENANT, m["id"]) for m in sandbox.sample_members()]


def test_a_tenant_domain_exclusion_purges_at_once_what_a_fresh_sync_would_not_store(
    db: firestore.Client, sync_deps: SyncDeps, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(db)
    assert "acc-globex" in accounts_of(db, S02)
    out = exclude(capsys, "--add", "@Globex.com")
    assert out[0].split() == ["change", "date", "title", "from", "to"]
    assert any(line.split()[0] == "removed" and "Globex onboarding" in line for line in out[1:-2])
    assert out[-1].startswith("exclusions of the tenant (northwind): 1 entries; removed ")
    assert _tenant(db).get().get("settings.excludedAddresses") == ["@globex.com"]
    assert globex_meetings(db) == set()  # nothing stored about them, for anyone
    assert accounts_of(db, S02) == {}
    assert accounts_of(db, S19) == {}  # the whole meeting goes, its Acme interaction too
    purged = state(db)
    assert purged == resync_from_scratch(db, sync_deps)
    # counted as dropped `excluded` by the sync, never stored
    summaries = [sync_member(sync_deps, TENANT, m["id"], full=True) for m in sandbox.sample_members()]
    assert sum(s.excluded for s in summaries) >= 3
    assert state(db) == purged
    # a re-match never brings them back
    capsys.readouterr()
    main(["rematch", "--tenant", TENANT])
    assert capsys.readouterr().out.splitlines()[-1].endswith("0 added, 0 moved, 0 updated, 0 removed")
    # removing it: the next (ordinary) sync of every member is a full one and restores everything
    out = exclude(capsys, "--remove", "globex.com")
    assert out[-1].endswith("removed 0 stored copies and 0 interactions; 3 members will sync in full")
    for member in sandbox.sample_members():
        calendar = _tenant(db).collection("members").document(member["id"]).get().get("calendar")
        assert calendar.get("syncToken") is None
    assert all(s.full for s in sync_all(sync_deps))
    assert state(db) == before


def test_a_member_exclusion_hides_that_members_copy_only(
    db: firestore.Client, sync_deps: SyncDeps, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(db)
    (interaction,) = (
        _tenant(db)
        .collection("interactions")
        .where(filter=firestore.FieldFilter("meetingKey", "==", S21))
        .stream()
    )
    assert interaction.get("memberIds") == ["m-ben", "m-chloe"]
    out = exclude(capsys, "--member", "m-chloe", "--add", "legal@globex.com")
    assert out[-1].startswith("exclusions of member m-chloe (northwind): 1 entries; removed 1 stored copies")
    (interaction,) = (
        _tenant(db)
        .collection("interactions")
        .where(filter=firestore.FieldFilter("meetingKey", "==", S21))
        .stream()
    )
    assert interaction.get("memberIds") == ["m-ben"]  # Ben's copy still makes it, with Ben's details
    meeting = next(
        iter(
            _tenant(db)
            .collection("meetings")
            .where(filter=firestore.FieldFilter("meetingKey", "==", S21))
            .stream()
        )
    )
    assert sorted(meeting.get("copies")) == ["m-ben"]
    assert state(db) == resync_from_scratch(db, sync_deps)
    out = exclude(capsys, "--member", "m-chloe", "--remove", "legal@globex.com")
    assert out[-1].endswith("1 members will sync in full")
    sync_all(sync_deps)
    assert state(db) == before


def test_an_exclusion_written_without_the_purge_is_applied_by_a_rematch(
    db: firestore.Client, sync_deps: SyncDeps, capsys: pytest.CaptureFixture[str]
) -> None:
    _tenant(db).update({"settings.excludedAddresses": ["@globex.com"]})  # e.g. written by the CS platform
    assert globex_meetings(db)
    main(["rematch", "--tenant", TENANT])
    assert globex_meetings(db) == set()
    assert state(db) == resync_from_scratch(db, sync_deps)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--add", "not an address"],
            'entry "not an address" is neither an email nor a domain (like @firm.com)',
        ),
        (["--add", "a@b.com", "--remove", "c@d.com"], "give either --add or --remove"),
        ([], "give either --add or --remove"),
        (["--member", "nobody", "--add", "a@b.com"], "unknown member 'nobody' of tenant 'northwind'"),
        (["--member", "../x", "--add", "a@b.com"], None),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    db: firestore.Client, capsys: pytest.CaptureFixture[str], args: list[str], message: str | None
) -> None:
    before = state(db)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["exclude", "--tenant", TENANT, *args])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("calsync: error: ")
    if message is not None:
        assert err.endswith(message)
    assert state(db) == before
    assert "excludedAddresses" not in (_tenant(db).get().get("settings") or {})


def test_import_validates_exclusions_and_applies_what_it_adds_and_removes(
    db: firestore.Client, sync_deps: SyncDeps, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(db)
    data = json.loads((sandbox.SAMPLE_DIR / "tenant.json").read_text())
    members = {m["id"]: m for m in data["members"]}
    members["m-chloe"]["excludedAddresses"] = ["@globex.com", "bad entry"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit):
        main(["import", str(path)])
    assert 'members[2] (id "m-chloe"): excludedAddresses entry "bad entry"' in capsys.readouterr().err
    assert state(db) == before
    members["m-chloe"]["excludedAddresses"] = ["legal@globex.com"]
    tokens = {
        m: _tenant(db).collection("members").document(m).get().get("calendar.syncToken") for m in members
    }
    lines = import_file(tmp_path, data, capsys)
    assert lines[-1].startswith("exclusions of the tenant (northwind): 0 entries; removed 1 stored copies")
    calendar = {m: _tenant(db).collection("members").document(m).get().get("calendar") for m in members}
    assert {m: c.get("syncToken") for m, c in calendar.items()} == tokens  # import resets nothing
    assert all(c["status"] == "connected" for c in calendar.values())
    assert state(db) == resync_from_scratch(db, sync_deps)
    del members["m-chloe"]["excludedAddresses"]  # absent from the row: left as stored
    import_file(tmp_path, data, capsys)
    assert _tenant(db).collection("members").document("m-chloe").get().get("excludedAddresses") == [
        "legal@globex.com"
    ]
    members["m-chloe"]["excludedAddresses"] = []
    lines = import_file(tmp_path, data, capsys)
    assert lines[-1].endswith("1 members will sync in full")
    assert _tenant(db).collection("members").document("m-chloe").get().get("calendar.syncToken") is None
    sync_all(sync_deps)
    assert state(db) == before


def test_the_sample_stays_as_it_was_without_exclusions(db: firestore.Client, sync_deps: SyncDeps) -> None:
    assert bootstrap.directory_store().excluded_addresses(TENANT, None).is_empty
    assert state(db) == resync_from_scratch(db, sync_deps)
