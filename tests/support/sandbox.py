"""Test support: the sample tenant in the sandbox, wired to the real adapters.

Everything goes through production code paths: the directory is imported with the import
service, tokens are issued by the Google stand-in and stored by the Secret Manager adapter, and
interactions are read back with the Firestore store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import bootstrap
from shared.sandbox.google_standin import GoogleStandIn

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "sandbox" / "sample"
TENANT = "northwind"
ANCHOR = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the sample files are written for this instant
SIGNING_KEY = "test-signing-key-0123456789abcdef"


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = ANCHOR) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)


def sample_members() -> list[dict[str, str]]:
    return list(json.loads((SAMPLE_DIR / "tenant.json").read_text())["members"])


def point_env_at(
    monkeypatch: pytest.MonkeyPatch, standin: GoogleStandIn, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Set the configuration variables (README.md#configuration) for the sandbox (emulator variables are set
    by the fixtures)."""
    env = {
        "CALSYNC_OAUTH_CLIENT_ID": standin.client_id,
        "CALSYNC_OAUTH_CLIENT_SECRET": standin.client_secret,
        "CALSYNC_OAUTH_AUTH_URI": standin.auth_uri,
        "CALSYNC_OAUTH_TOKEN_URI": standin.token_uri,
        "CALSYNC_OAUTH_REVOKE_URI": standin.revoke_uri,
        "CALSYNC_CALENDAR_ENDPOINT": standin.calendar_endpoint,
        "CALSYNC_SECRET_MANAGER_ENDPOINT": standin.secret_manager_endpoint,
        "CALSYNC_LINK_SIGNING_KEY": SIGNING_KEY,
        "CALSYNC_SYNC_TOPIC": "calsync-sync-jobs",
        **(extra or {}),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    return env


def import_sample_directory() -> None:
    from shared.services.directory_import import import_directory

    import_directory((SAMPLE_DIR / "tenant.json").read_bytes(), bootstrap.directory_store())


def load_sample_calendars(standin: GoogleStandIn, *, now: datetime | None = None) -> None:
    """The sample members' calendars, at the sample's anchor or shifted by whole weeks to `now`."""
    for member in sample_members():
        standin.load_calendar_file(
            member["email"], SAMPLE_DIR / "calendars" / f"{member['id']}.json", now=now
        )


def connect(standin: GoogleStandIn, member_id: str, email: str, tenant: str = TENANT) -> str:
    """Connect a member through `calsync set-token`'s service: the token the stand-in issues for
    `email` goes to Secret Manager exactly as the OAuth callback stores it, and the member is
    connected (its Google email is filled in by the first sync)."""
    token = standin.issue_refresh_token(email)
    bootstrap.connect_service(full_oauth=False).set_token(tenant, member_id, token)
    return token


@dataclass(frozen=True)
class InteractionView:
    """The parts of an interaction the expected file pins down."""

    title: str
    date: str
    start: str
    end: str
    time_zone: str
    duration: int
    organizer: str
    member_ids: tuple[str, ...]
    attendees: tuple[tuple[str, str | None, str], ...]


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stored_interactions(tenant: str = TENANT) -> dict[tuple[str, str], InteractionView]:
    """(meetingKey, accountId) -> view, read back through the Firestore store."""
    views = {}
    for item in bootstrap.meeting_store().list_interactions(tenant):
        views[(item.meeting_key, item.account_id)] = InteractionView(
            title=item.title,
            date=item.date,
            start=_utc(item.start_time),
            end=_utc(item.end_time),
            time_zone=item.time_zone,
            duration=item.duration_minutes,
            organizer=item.organizer_email,
            member_ids=tuple(item.member_ids),
            attendees=tuple(sorted((a.email, a.user_id, str(a.matched_by)) for a in item.attendees)),
        )
    return views


def expected_interactions() -> dict[tuple[str, str], InteractionView]:
    data: dict[str, Any] = json.loads((SAMPLE_DIR / "expected_interactions.json").read_text())
    views = {}
    for item in data["interactions"]:
        views[(item["meetingKey"], item["accountId"])] = InteractionView(
            title=item["title"],
            date=item["date"],
            start=item["startTime"],
            end=item["endTime"],
            time_zone=item["timeZone"],
            duration=item["durationMinutes"],
            organizer=item["organizerEmail"],
            member_ids=tuple(sorted(item["memberIds"])),
            attendees=tuple(sorted((a["email"], a["userId"], a["matchedBy"]) for a in item["attendees"])),
        )
    return views
