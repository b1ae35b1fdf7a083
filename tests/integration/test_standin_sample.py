"""The sample tenant and calendars: they parse, load into the stand-in, shift by whole weeks
keeping weekday and local time, and are served through the production Calendar client."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.domain.directory_file import parse_directory
from shared.sandbox.google_standin import SAMPLE_ANCHOR, SAMPLE_DIR, GoogleStandIn
from shared.sandbox.standin import sample
from tests.support.google_clients import calendar_service

CALENDARS = sorted((SAMPLE_DIR / "calendars").glob("*.json"))
REPO = Path(__file__).resolve().parents[2]


def tenant() -> dict[str, Any]:
    return dict(json.loads((SAMPLE_DIR / "tenant.json").read_text(encoding="utf-8")))


def member_emails() -> dict[str, str]:
    return {m["id"]: m["email"] for m in tenant()["members"]}


def test_tenant_file_parses_and_sets_its_traps() -> None:
    parsed = parse_directory((SAMPLE_DIR / "tenant.json").read_bytes())
    assert parsed.is_valid, parsed.problems
    assert parsed.tenant.internal_domains == ("northwind-cs.com",)
    assert "gmx.de" in parsed.tenant.settings.free_mail_domains_allowed
    assert len(parsed.accounts) >= 8
    assert len(parsed.users) >= 20
    assert len(parsed.members) == 3
    owners: dict[str, set[str]] = {}
    for account in parsed.accounts:
        for domain in account.domains:
            owners.setdefault(domain, set()).add(account.id)
    assert any(len(ids) > 1 for ids in owners.values()), "an ambiguous domain"
    by_email: dict[str, set[str]] = {}
    for user in parsed.users:
        by_email.setdefault(user.email, set()).add(user.account_id)
    assert any(len(ids) > 1 for ids in by_email.values()), "an ambiguous user"
    raw_domains = [d for a in tenant()["accounts"] for d in a["domains"]]
    assert any(d.startswith("https://www.") for d in raw_domains)


def test_every_member_has_a_calendar_file() -> None:
    assert {p.stem for p in CALENDARS} == set(member_emails())
    for path in CALENDARS:
        data = sample.read_calendar_file(path)
        ZoneInfo(data["timeZone"])
        assert data["items"]
        for item in data["items"]:
            assert item["kind"] == "calendar#event"
            assert re.fullmatch(r"[a-v0-9]{5,}(_\d{8}(T\d{6}Z)?)?", item["id"]), item["id"]
            assert {"id", "status", "updated", "start", "end", "iCalUID", "etag"} <= set(item)


def _local(point: dict[str, Any], calendar_zone: str) -> datetime:
    zone = ZoneInfo(point.get("timeZone") or calendar_zone)
    return datetime.fromisoformat(point["dateTime"]).astimezone(zone)


@pytest.mark.parametrize(
    "now",
    [
        SAMPLE_ANCHOR,
        SAMPLE_ANCHOR + timedelta(days=3),  # rounds to the same week
        SAMPLE_ANCHOR + timedelta(weeks=20, days=2),  # across the spring daylight-saving change
        SAMPLE_ANCHOR - timedelta(weeks=60),
    ],
)
def test_shift_keeps_weekday_and_local_time(now: datetime) -> None:
    weeks = sample.weeks_between(SAMPLE_ANCHOR, now)
    assert abs((SAMPLE_ANCHOR + timedelta(weeks=weeks)) - now) <= timedelta(days=3, hours=12)
    for path in CALENDARS:
        original = sample.read_calendar_file(path)
        zone = original["timeZone"]
        shifted = sample.shift_calendar(original, weeks)
        for before, after in zip(original["items"], shifted["items"], strict=True):
            for name in ("start", "end", "originalStartTime"):
                if name not in before:
                    continue
                if "date" in before[name]:
                    moved = datetime.fromisoformat(after[name]["date"]) - datetime.fromisoformat(
                        before[name]["date"]
                    )
                    assert moved == timedelta(weeks=weeks)
                    continue
                old, new = _local(before[name], zone), _local(after[name], zone)
                assert new.weekday() == old.weekday()
                assert (new.hour, new.minute) == (old.hour, old.minute)
                assert new.date() - old.date() == timedelta(weeks=weeks)
            for name in ("created", "updated"):
                delta = datetime.fromisoformat(after[name]) - datetime.fromisoformat(before[name])
                assert delta == timedelta(weeks=weeks)
            if "originalStartTime" in after:
                instant = datetime.fromisoformat(after["originalStartTime"]["dateTime"]).astimezone(UTC)
                assert after["id"] == f"{after['recurringEventId']}_{instant.strftime('%Y%m%dT%H%M%SZ')}"
            else:
                assert after["id"] == before["id"]


def test_sample_calendars_are_served_shifted_around_now(standin: GoogleStandIn) -> None:
    now = datetime(2027, 3, 10, 9, 30, tzinfo=UTC)
    weeks = sample.weeks_between(SAMPLE_ANCHOR, now)
    for member_id, email in member_emails().items():
        standin.load_calendar_file(email, SAMPLE_DIR / "calendars" / f"{member_id}.json", now=now)

    service = calendar_service(standin, standin.issue_refresh_token(member_emails()["m-anna"]))
    items: list[dict[str, Any]] = []
    request = service.events().list(calendarId="primary", singleEvents=True, showDeleted=True, maxResults=7)
    while request is not None:
        page = request.execute()
        items.extend(page["items"])
        request = service.events().list_next(request, page)
    assert page["timeZone"] == "Europe/Stockholm"
    original = sample.read_calendar_file(SAMPLE_DIR / "calendars" / "m-anna.json")["items"]
    assert len(items) == len(original)
    cancelled = [i for i in items if i["status"] == "cancelled"]
    assert cancelled
    assert all(
        set(i) <= {"kind", "etag", "id", "status", "recurringEventId", "originalStartTime"} for i in cancelled
    )
    starts = [
        datetime.fromisoformat(i["start"]["dateTime"]) for i in items if "dateTime" in i.get("start", {})
    ]
    assert all(abs(s - now) < timedelta(weeks=4) for s in starts)
    assert weeks == 15
    # A first sync's timeMin (now - 365 days) leaves out Chloé's meeting of last year (S31) only.
    chloe = calendar_service(standin, standin.issue_refresh_token(member_emails()["m-chloe"]))
    year_ago = (now - timedelta(days=365)).isoformat()
    recent = chloe.events().list(calendarId="primary", timeMin=year_ago, maxResults=2500).execute()
    everything = chloe.events().list(calendarId="primary", maxResults=2500).execute()
    assert [i["summary"] for i in everything["items"] if i not in recent["items"]] == [
        "Acme kickoff (last year)"
    ]


def test_expected_interactions_refer_to_the_directory_and_the_files() -> None:
    expected = json.loads((SAMPLE_DIR / "expected_interactions.json").read_text(encoding="utf-8"))
    directory = tenant()
    accounts = {a["id"] for a in directory["accounts"]}
    users = {u["id"] for u in directory["users"]}
    members = {m["id"] for m in directory["members"]}
    readme = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    keys: set[str] = set()
    for path in CALENDARS:
        for item in sample.read_calendar_file(path)["items"]:
            key = item["iCalUID"]
            if "originalStartTime" in item:
                instant = datetime.fromisoformat(item["originalStartTime"]["dateTime"]).astimezone(UTC)
                key += "@" + instant.strftime("%Y%m%dT%H%M%SZ")
            keys.add(key)
    assert expected["interactions"]
    for row in expected["interactions"]:
        assert row["accountId"] in accounts
        assert set(row["memberIds"]) <= members
        assert row["meetingKey"] in keys
        assert all(a["userId"] in users for a in row["attendees"] if a["userId"])
        for label in row["samples"]:
            assert f"| {label} |" in readme


def test_standalone_server_prints_urls_and_stops_on_sigterm() -> None:
    calendar = SAMPLE_DIR / "calendars" / "m-ben.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.sandbox.google_standin",
            "--port",
            "0",
            "--calendar",
            f"ben@northwind-cs.com={calendar}",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("serving"):
                break
        text = "".join(lines)
        assert "calendar ben@northwind-cs.com: 15 events" in text
        assert re.search(r"token_uri: http://127\.0\.0\.1:\d+/token", text), text
        assert re.search(r"calendar_endpoint: http://127\.0\.0\.1:\d+/calendar/v3/", text), text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
