"""`calsync import` and `calsync status`, in-process against the Firestore emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore

from shared import bootstrap
from shared.cli import main


@pytest.fixture
def env(firestore_project: str) -> Iterator[str]:
    bootstrap.reset()  # the fixture pointed the environment at a fresh emulator project
    yield firestore_project
    bootstrap.reset()


def _directory() -> dict[str, Any]:
    return {
        "tenant": {
            "id": "acme",
            "name": "Acme CS",
            "internalDomains": ["acme-cs.example"],
            "settings": {"backfillDays": 30, "defaultTimeZone": "Europe/Paris"},
        },
        "accounts": [
            {"id": "logo", "name": "Logo Ltd", "domains": ["https://www.Logo.co.uk/"]},
            {"id": "globex", "name": "Globex", "domains": ["globex.example", "globex.co"]},
        ],
        "users": [
            {"id": "u1", "email": "Ann@Logo.co.uk", "name": "Ann", "accountId": "logo"},
            {"id": "u2", "email": "bob@globex.example", "name": "Bob", "accountId": "globex"},
        ],
        "members": [
            {"id": "m1", "email": "Me@acme-cs.example", "name": "Me"},
            {"id": "m2", "email": "you@acme-cs.example", "name": "You"},
        ],
    }


def _write(tmp_path: Path, data: Any, name: str = "directory.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _dump(client: firestore.Client) -> dict[str, Any]:
    """Every document of the project, by path (with update times, so rewrites show too)."""
    found: dict[str, Any] = {}

    def walk(collection: Any) -> None:
        for ref in collection.list_documents():
            snapshot = ref.get()
            if snapshot.exists:
                found[ref.path] = (snapshot.to_dict(), snapshot.update_time)
            for sub in ref.collections():
                walk(sub)

    for collection in client.collections():
        walk(collection)
    return found


def test_import_writes_the_directory(
    env: str, firestore_client: firestore.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["import", _write(tmp_path, _directory())])
    assert capsys.readouterr().out.splitlines() == [
        "imported tenant acme: 2 accounts, 2 users, 2 members (2 new)",
        "re-matched 0 meetings of tenant acme: interactions 0 added, 0 moved, 0 updated, 0 removed",
    ]

    docs = {path: data for path, (data, _) in _dump(firestore_client).items()}
    assert docs["tenants/acme"] == {
        "name": "Acme CS",
        "internalDomains": ["acme-cs.example"],
        "settings": {"backfillDays": 30, "defaultTimeZone": "Europe/Paris"},
    }
    assert docs["tenants/acme/accounts/logo"] == {
        "name": "Logo Ltd",
        "domains": ["https://www.Logo.co.uk/"],
        "domainKeys": ["logo.co.uk"],
    }
    assert docs["tenants/acme/users/u1"] == {
        "email": "ann@logo.co.uk",
        "emailKey": "ann@logo.co.uk",
        "name": "Ann",
        "accountId": "logo",
    }
    assert docs["tenants/acme/members/m1"] == {
        "email": "me@acme-cs.example",
        "name": "Me",
        "calendar": {"status": "not_connected", "consecutiveFailures": 0},
    }
    assert len(docs) == 7

    # what the stores read back
    store = bootstrap.directory_store()
    assert store.get_tenant("acme").settings.backfill_days == 30
    snapshot = store.lookup("acme", ["ann@logo.co.uk"], ["logo.co.uk", "globex.co"])
    assert [u.id for u in snapshot.users_by_email["ann@logo.co.uk"]] == ["u1"]
    assert [a.id for a in snapshot.accounts_by_domain["globex.co"]] == ["globex"]


def test_reimport_is_idempotent_and_keeps_calendar_state(
    env: str, firestore_client: firestore.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _directory())
    main(["import", path])
    connected = {
        "status": "connected",
        "googleEmail": "me@gmail.com",
        "consecutiveFailures": 0,
        "syncToken": "cursor",
        "nextSyncAt": datetime(2026, 11, 24, tzinfo=UTC),
    }
    member = firestore_client.document("tenants/acme/members/m1")
    member.update({"calendar": connected, "extra": "kept"})
    firestore_client.document("tenants/acme/accounts/other").set(
        {"name": "Not in the file", "domainKeys": []}
    )
    before = {p: d for p, (d, _) in _dump(firestore_client).items()}

    main(["import", path])
    assert capsys.readouterr().out.splitlines()[-2].endswith("2 members (0 new)")
    after = {p: d for p, (d, _) in _dump(firestore_client).items()}
    assert after == before
    assert after["tenants/acme/members/m1"]["calendar"] == connected

    # a changed file updates names and adds rows; a user may point at an account already stored
    changed = _directory()
    changed["members"][0]["name"] = "Me Renamed"
    changed["users"].append({"id": "u3", "email": "c@other.example", "name": "C", "accountId": "other"})
    main(["import", _write(tmp_path, changed, "changed.json")])
    after = {p: d for p, (d, _) in _dump(firestore_client).items()}
    assert after["tenants/acme/members/m1"]["name"] == "Me Renamed"
    assert after["tenants/acme/members/m1"]["calendar"] == connected
    assert after["tenants/acme/members/m1"]["extra"] == "kept"
    assert after["tenants/acme/users/u3"]["accountId"] == "other"
    assert "tenants/acme/accounts/other" in after


def test_a_bad_file_names_each_bad_row_and_writes_nothing(
    env: str, firestore_client: firestore.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["import", _write(tmp_path, _directory())])
    capsys.readouterr()
    before = _dump(firestore_client)

    bad = _directory()
    bad["tenant"]["name"] = "Renamed (must not be written)"
    bad["tenant"]["settings"]["backfillDays"] = 0
    bad["accounts"].append({"id": "new", "name": "New", "domains": ["new.example", "bad domain!"]})
    bad["accounts"].append({"id": "logo", "name": "Dup", "domains": []})
    bad["users"].append({"id": "u-9", "email": "x@acme.example", "name": "X", "accountId": "acme"})
    bad["users"].append({"id": "u4", "email": "not-an-email", "name": "Y", "accountId": "logo"})
    bad["members"].append({"id": "m3", "email": "ME@acme-cs.example", "name": "Twin"})
    bad["members"].append({"id": "m4", "email": "ok@acme-cs.example", "name": "Valid row, still not written"})

    with pytest.raises(SystemExit) as exited:
        main(["import", _write(tmp_path, bad, "bad.json")])
    assert exited.value.code != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        'calsync: error: tenant (id "acme"): settings.backfillDays must be an integer from 1 to 3650, got 0',
        'calsync: error: accounts[2] (id "new"): domains has malformed domain "bad domain!"',
        'calsync: error: accounts[3] (id "logo"): duplicate id (also accounts[0])',
        'calsync: error: users[2] (id "u-9"): accountId "acme" is not an account in this file or the tenant',
        'calsync: error: users[3] (id "u4"): malformed email "not-an-email"',
        'calsync: error: members[2] (id "m3"): duplicate member email "me@acme-cs.example" (also members[0])',
        "calsync: error: 6 invalid rows in the directory file; nothing was imported",
    ]
    assert _dump(firestore_client) == before


def test_unreadable_json_and_missing_file_are_one_line_errors(
    env: str, firestore_client: firestore.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["import", _write(tmp_path, "{not json")])
    assert exited.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("calsync: error: file: not valid JSON")
    assert len(lines) == 2
    with pytest.raises(SystemExit) as exited:
        main(["import", str(tmp_path / "missing.json")])
    assert exited.value.code != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert _dump(firestore_client) == {}


def test_status_lists_members_with_their_calendar_state(
    env: str, firestore_client: firestore.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["import", _write(tmp_path, _directory())])
    firestore_client.document("tenants/acme/members/m2").update(
        {
            "calendar.status": "error",
            "calendar.googleEmail": "you@gmail.com",
            "calendar.lastSuccessAt": datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
            "calendar.consecutiveFailures": 3,
            "calendar.lastError": "Calendar API unavailable",
            "calendar.syncToken": "opaque-cursor",
        }
    )
    capsys.readouterr()

    main(["status", "--tenant", "acme"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "member",
        "email",
        "status",
        "googleEmail",
        "lastSuccessAt",
        "consecutiveFailures",
        "lastError",
        "push",
        "pushExpiresAt",
    ]
    assert lines[1].split() == ["m1", "me@acme-cs.example", "not_connected", "-", "-", "0", "-", "off", "-"]
    assert lines[2].split() == [
        "m2",
        "you@acme-cs.example",
        "error",
        "you@gmail.com",
        "2026-11-20T08:30:00Z",
        "3",
        "Calendar",
        "API",
        "unavailable",
        "off",
        "-",
    ]

    main(["status", "--tenant", "acme", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["member"] for r in rows] == ["m1", "m2"]
    assert rows[1]["lastSuccessAt"] == "2026-11-20T08:30:00Z"
    assert rows[1]["consecutiveFailures"] == 3
    assert "opaque-cursor" not in json.dumps(rows)

    with pytest.raises(SystemExit):
        main(["status", "--tenant", "nobody"])
    assert capsys.readouterr().err.strip() == "calsync: error: unknown tenant 'nobody'"
