"""`calsync report` (README.md#operator-report) on the sample tenant after a sync, against the
Firestore emulator, and its page in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared import bootstrap
from shared.domain.report import week_starts
from shared.sandbox.google_standin import GoogleStandIn
from tests.support import browser, sandbox
from tests.support.cli import run_cli
from tests.support.sandbox import TENANT

pytestmark = pytest.mark.usefixtures("firestore_project")
SCREENSHOT = Path("/tmp/report.png")  # kept for people to look at


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[GoogleStandIn]:
    """The sample tenant, its calendars shifted to now, every member connected and synced."""
    with GoogleStandIn() as running:
        sandbox.point_env_at(monkeypatch, running)
        sandbox.import_sample_directory()
        sandbox.load_sample_calendars(running, now=datetime.now(UTC))
        for member in sandbox.sample_members():
            sandbox.connect(running, member["id"], member["email"])
        assert run_cli(capsys, "sync")[0] == 0
        yield running


def report_json(capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    code, out, err = run_cli(capsys, "report", "--tenant", TENANT, "--json")
    assert code == 0, err
    return dict(json.loads(out))


def test_the_json_names_the_samples_unmatched_and_ambiguous_domains_exactly(
    synced: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_json(capsys)
    # shared/sandbox/sample/README.md: S29 no_match; S04 and S32 initech.io; S20 the ambiguous
    # user; jane.prospect@gmail.com (S16, S32) is free mail and left out.
    assert report["unmatchedDomains"] == [{"domain": "unknown-startup.io", "meetings": 1, "addresses": 1}]
    assert report["ambiguous"] == [
        {"key": "initech.io", "kind": "domain", "accounts": ["acc-initech", "acc-initrode"], "meetings": 2},
        {
            "key": "dana.scully@fbi-consulting.com",
            "kind": "address",
            "accounts": ["acc-acme", "acc-globex"],
            "meetings": 1,
        },
    ]
    assert [(m["memberId"], m["status"], m["googleEmail"]) for m in report["members"]] == [
        ("m-anna", "connected", "anna@northwind-cs.com"),
        ("m-ben", "connected", "ben@northwind-cs.com"),
        ("m-chloe", "connected", "chloe@northwind-cs.com"),
    ]
    assert all(m["push"]["state"] == "polling" and m["lastSuccessAt"] for m in report["members"])
    assert report["complete"] is True


def test_weekly_counts_and_top_accounts_agree_with_the_stored_interactions(
    synced: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    report = report_json(capsys)
    now = datetime.now(UTC)
    stored = bootstrap.meeting_store().list_interactions(TENANT)
    starts = week_starts(now)
    expected_weekly = [sum(1 for i in stored if s <= i.start_time < s + timedelta(days=7)) for s in starts]
    assert [w["interactions"] for w in report["weekly"]] == expected_weekly
    assert [w["weekStart"] for w in report["weekly"]] == [s.date().isoformat() for s in starts]
    assert sum(expected_weekly) > 0
    recent = Counter(i.account_id for i in stored if now - timedelta(days=90) <= i.start_time < now)
    assert {a["accountId"]: a["meetings"] for a in report["topAccounts"]} == dict(recent)
    counts = [a["meetings"] for a in report["topAccounts"]]
    assert counts == sorted(counts, reverse=True)
    assert report["topAccounts"][0]["name"]  # names come from the directory


def test_a_member_who_must_reconnect_comes_first(
    synced: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.domain.calendar_state import reauth_needed

    members = bootstrap.member_store()
    state = members.get_member(TENANT, "m-chloe").calendar
    members.update_calendar(TENANT, "m-chloe", reauth_needed(state, "invalid_grant", now=datetime.now(UTC)))
    report = report_json(capsys)
    first = report["members"][0]
    assert (first["memberId"], first["status"], first["mustReconnect"]) == ("m-chloe", "needs_reauth", True)
    code, out, _ = run_cli(capsys, "report", "--tenant", TENANT)
    assert code == 0
    assert "1 must reconnect" in out
    assert "m-chloe" in out
    assert "unknown-startup.io (1)" in out


def test_an_unknown_tenant_is_one_line_and_a_non_zero_exit(
    synced: GoogleStandIn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "report", "--tenant", "nobody")
    assert code != 0
    assert err.startswith("calsync: error:")


def _row(dom: str, attribute: str, value: str) -> list[str]:
    """The cells' text of the table row marked `data-<attribute>="<value>"`."""
    row = re.search(rf'<tr data-{attribute}="{re.escape(value)}">(.*?)</tr>', dom, re.S)
    assert row is not None, value
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1))
    ]


@pytest.fixture
def chromium() -> None:
    """Skipped loudly (tests/conftest.py prints a banner) when no Chromium is installed."""
    if browser.browser_path() is None:
        pytest.skip(f"{browser.MISSING}: install chromium (apt-get install -y chromium)")


def test_the_page_in_a_real_browser_has_the_sections_the_bars_and_the_numbers_and_fetches_nothing(
    chromium: None, synced: GoogleStandIn, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "report", "--tenant", TENANT, "--html", str(page))
    assert code == 0, err
    facts = report_json(capsys)
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"https?://", html)  # no resource reference at all
    rendered = browser.render(page, tmp_path / "report.png")
    assert rendered.page_requests == []
    dom = rendered.dom
    for section in ("members", "weekly", "top-accounts", "unmatched", "ambiguous"):
        assert f'<section id="{section}"' in dom
    assert "<title>calsync report: northwind" in dom
    bars = re.findall(r'<g class="week" data-week="([\d-]+)" data-value="(\d+)">\s*<rect class="bar"', dom)
    assert [(w, int(v)) for w, v in bars] == [(w["weekStart"], w["interactions"]) for w in facts["weekly"]]
    description = re.search(r'<desc id="chart-desc">([^<]*)</desc>', dom)
    assert description is not None
    assert description.group(1).count("week of") == 12
    assert _row(dom, "domain", "unknown-startup.io") == ["unknown-startup.io", "1", "1"]
    assert _row(dom, "key", "initech.io") == ["initech.io", "domain", "acc-initech, acc-initrode", "2"]
    assert _row(dom, "key", "dana.scully@fbi-consulting.com")[2:] == ["acc-acme, acc-globex", "1"]
    assert 'role="img"' in dom
    assert dom.count('scope="col"') >= 17
    shutil.copyfile(tmp_path / "report.png", SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 10_000
