"""`calsync sync` and `calsync interactions` (README.md#command-line) against the emulator and the
stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from shared.sandbox.google_standin import GoogleStandIn
from tests.support import sandbox
from tests.support.cli import run_cli

pytestmark = pytest.mark.usefixtures("firestore_project")


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleStandIn]:
    with GoogleStandIn() as running:
        sandbox.point_env_at(monkeypatch, running)
        sandbox.import_sample_directory()
        sandbox.load_sample_calendars(running, now=datetime.now(UTC))
        for member in sandbox.sample_members():
            sandbox.connect(running, member["id"], member["email"])
        yield running


def rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by member (first column), split on white space."""
    return {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.startswith("northwind/")}


def test_sync_without_options_syncs_every_connected_member_and_prints_a_summary(
    standin: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "sync")
    assert code == 0
    table = rows(out)
    assert {m: r[1:3] for m, r in table.items()} == {
        "northwind/m-anna": ["synced", "yes"],
        "northwind/m-ben": ["synced", "yes"],
        "northwind/m-chloe": ["synced", "yes"],
    }
    assert "3 members (3 synced)" in out


def test_sync_of_one_member_with_full_listing(
    standin: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "sync", "--tenant", "northwind", "--member", "m-anna")
    code, out, _ = run_cli(capsys, "sync", "--tenant", "northwind", "--member", "m-anna", "--full")
    assert code == 0
    assert {m: r[1:3] for m, r in rows(out).items()} == {"northwind/m-anna": ["synced", "yes"]}


def test_sync_reports_a_member_that_needs_reauth_and_exits_non_zero(
    standin: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared import bootstrap

    standin.revoke_refresh_token(bootstrap.token_vault().read("northwind", "m-ben"))
    code, out, err = run_cli(capsys, "sync", "--tenant", "northwind")
    assert code == 1
    assert rows(out)["northwind/m-ben"][1] == "needs_reauth"
    assert err.strip().splitlines()[-1] == "calsync: error: 1 of 3 members did not sync (see the table)"


def test_sync_errors_are_one_line(standin: GoogleStandIn, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "sync", "--member", "m-anna")
    assert code != 0
    assert err.strip() == "calsync: error: --member needs --tenant"
    code, _, err = run_cli(capsys, "sync", "--tenant", "northwind", "--member", "nobody")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "nobody" in err


def test_interactions_lists_a_table_and_json_documents(
    standin: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys, "sync")
    code, out, _ = run_cli(capsys, "interactions", "--tenant", "northwind")
    assert code == 0
    assert out.strip().splitlines()[-1] == f"{len(sandbox.expected_interactions())} interactions"
    code, out, _ = run_cli(capsys, "interactions", "--tenant", "northwind", "--account", "acc-logo", "--json")
    assert code == 0
    documents = json.loads(out)
    assert {d["accountId"] for d in documents} == {"acc-logo"}
    assert len(documents) == 2
    first = documents[0]
    assert set(first) >= {
        "id",
        "type",
        "accountId",
        "meetingKey",
        "title",
        "date",
        "startTime",
        "endTime",
        "timeZone",
        "durationMinutes",
        "participants",
        "attendees",
        "memberIds",
        "organizerEmail",
        "createdAt",
        "updatedAt",
    }
    assert first["type"] == "Google calendar"
    assert first["startTime"].endswith("Z")
    datetime.fromisoformat(first["startTime"].replace("Z", "+00:00"))


def test_interactions_of_an_unknown_tenant_is_an_error(
    standin: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "interactions", "--tenant", "nope")
    assert code == 1
    assert err.startswith("calsync: error:")
    assert len(err.strip().splitlines()) == 1
