"""End to end: functions-framework serving every entry point, the Pub/Sub emulator pushing to
sync_worker, the Firestore emulator holding the result, the Google stand-in for OAuth, Calendar
and Secret Manager. The tests are one story on one sandbox, in order."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import bootstrap
from shared.domain.models import ConnectionStatus
from shared.sandbox import emulators
from shared.sandbox.local import LocalSandbox, local_sandbox, sample_dir
from shared.services.sync import sync_member
from tests.support import sandbox as support

# One story on one sandbox: the tests depend on each other's order, so `make test` distributes
# with `--dist loadscope` (a module stays on one worker). (pytest-xdist's `xdist_group` mark is
# inert under pytest 9, which no longer reads the `_nodeid` that xdist rewrites.)
pytestmark = pytest.mark.e2e
TENANT = "northwind"


class Story:
    def __init__(self, sandbox: LocalSandbox) -> None:
        self.sandbox = sandbox
        self.members = support.sample_members()
        self.ids = [m["id"] for m in self.members]

    def email_of(self, member_id: str) -> str:
        return next(m["email"] for m in self.members if m["id"] == member_id)

    def schedule_and_wait(self, member_ids: list[str] | None = None) -> dict[str, Any]:
        started = datetime.now(UTC)
        answer = self.sandbox.run_scheduler()
        self.sandbox.wait_until_synced(member_ids or self.ids, started, TENANT)
        return answer

    def publish_raw(self, data: bytes) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(self.sandbox.project, self.sandbox.env["CALSYNC_SYNC_TOPIC"])
        publisher.publish(topic, data).result(timeout=30)

    def worker_log(self, message: str) -> list[dict[str, Any]]:
        lines = []
        for line in self.sandbox.host.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("function") == "sync_worker" and record.get("message") == message:
                    lines.append(record)
        return lines


@pytest.fixture(scope="module")
def story() -> Iterator[Story]:
    reason = emulators.missing_reason()
    if reason:
        pytest.skip(f"EMULATORS MISSING: {reason}")
    with local_sandbox() as sandbox:
        from shared.services.directory_import import import_directory

        import_directory((sample_dir() / "tenant.json").read_bytes(), bootstrap.directory_store())
        now = datetime.now(UTC)
        for member in support.sample_members():
            sandbox.standin.load_calendar_file(
                member["email"], sample_dir() / "calendars" / f"{member['id']}.json", now=now
            )
        yield Story(sandbox)


def _projection(tenant: str = TENANT) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        (i.meeting_key, i.account_id): (
            i.title,
            i.date,
            i.start_time,
            i.end_time,
            i.time_zone,
            i.duration_minutes,
            i.member_ids,
            tuple((a.email, a.user_id, str(a.matched_by)) for a in i.attendees),
        )
        for i in bootstrap.meeting_store().list_interactions(tenant)
    }


def _reference_projection(story: Story) -> dict[tuple[str, str], tuple[Any, ...]]:
    """The same calendars synced in-process into a fresh project: what the pipeline must equal."""
    saved = os.environ["GOOGLE_CLOUD_PROJECT"]
    os.environ["GOOGLE_CLOUD_PROJECT"] = f"{saved}-reference"
    bootstrap.reset()
    try:
        support.import_sample_directory()
        for member in story.members:
            support.connect(story.sandbox.standin, member["id"], member["email"])
        deps = bootstrap.sync_deps(continuations=False)
        for member_id in story.ids:
            assert sync_member(deps, TENANT, member_id).outcome == "synced"
        return _projection()
    finally:
        os.environ["GOOGLE_CLOUD_PROJECT"] = saved
        bootstrap.reset()


def test_members_connect_through_the_browser_flow_and_a_first_sync_is_queued(
    story: Story, uses_emulators: None
) -> None:
    for member_id in story.ids:
        page = story.sandbox.connect_through_browser(TENANT, member_id)
        assert page.status_code == 200
        state = bootstrap.member_store().get_member(TENANT, member_id).calendar
        assert state.status == ConnectionStatus.CONNECTED
        assert state.google_email == story.email_of(member_id)
    story.sandbox.wait_until_synced(story.ids, datetime(2000, 1, 1, tzinfo=UTC), TENANT)
    assert {r["reason"] for r in story.worker_log("sync finished")} == {"connected"}


def test_scheduled_sync_through_pubsub_matches_the_in_process_sync_of_the_sample(
    story: Story, uses_emulators: None
) -> None:
    answer = story.schedule_and_wait()
    assert answer["published"] == len(story.ids)
    pipeline = _projection()
    assert len(pipeline) == len(support.expected_interactions())
    assert pipeline == _reference_projection(story)


def test_updates_and_cancellations_arrive_incrementally(story: Story, uses_emulators: None) -> None:
    calendar = story.sandbox.standin.calendar(story.email_of("m-anna"))
    before = _projection()
    cancelled_key = ("66jk4345mnfgb8po35gg07i4mp@google.com", "acc-acme")
    assert cancelled_key in before
    calendar.cancel_event("66jk4345mnfgb8po35gg07i4mp")
    grown = calendar.get_event("u50rsukj55flqvustjihlfaa9s")
    grown["attendees"] = [
        *grown["attendees"],
        {"email": "wile.coyote@acme.com", "responseStatus": "accepted"},
    ]
    calendar.upsert_event(grown)

    story.schedule_and_wait()

    after = _projection()
    assert cancelled_key not in after
    assert after[("u50rsukj55flqvustjihlfaa9s@google.com", "acc-acme")][-1] == (
        ("wile.coyote@acme.com", "u-wile", "email"),
    )
    assert set(after) == (set(before) - {cancelled_key}) | {
        ("u50rsukj55flqvustjihlfaa9s@google.com", "acc-acme")
    }
    last = [r for r in story.worker_log("sync finished") if r["member_id"] == "m-anna"][-1]
    assert last["full"] is False
    assert last["events_seen"] == 2


def test_an_expired_sync_token_is_a_full_resync_that_drops_vanished_events(
    story: Story, uses_emulators: None
) -> None:
    calendar = story.sandbox.standin.calendar(story.email_of("m-chloe"))
    chloe_keys = {k for k, v in _projection().items() if "m-chloe" in v[6]}
    victim = next(e for e in calendar.events if e.get("summary") == "Déjeuner avec Logo")
    kept = [e for e in calendar.events if e["id"] != victim["id"]]
    calendar.clear()
    calendar.load_events(kept)
    calendar.expire_sync_tokens()

    story.schedule_and_wait()

    last = [r for r in story.worker_log("sync finished") if r["member_id"] == "m-chloe"][-1]
    assert last["resynced_after_expiry"] is True
    after = {k for k, v in _projection().items() if "m-chloe" in v[6]}
    assert after == {k for k in chloe_keys if k[0] != victim["iCalUID"]}


def test_duplicate_deliveries_give_the_result_of_one(story: Story, uses_emulators: None) -> None:
    before = _projection()
    started = datetime.now(UTC)
    job = json.dumps({"v": 1, "tenantId": TENANT, "memberId": "m-ben", "reason": "manual"}).encode()
    for _ in range(3):
        story.publish_raw(job)
    story.sandbox.wait_until_synced(["m-ben"], started, TENANT)
    assert _projection() == before


def test_malformed_and_unknown_jobs_are_acknowledged_not_retried(story: Story, uses_emulators: None) -> None:
    rejected_before = len(story.worker_log("sync job rejected (acknowledged, not retried)"))
    unknown_before = len(story.worker_log("sync job names an unknown tenant or member (acknowledged)"))
    story.publish_raw(b"not json at all")
    story.publish_raw(base64.b64encode(b"\x00\x01"))
    story.publish_raw(json.dumps({"v": 1, "tenantId": TENANT, "memberId": "nobody"}).encode())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rejected = len(story.worker_log("sync job rejected (acknowledged, not retried)")) - rejected_before
        unknown = (
            len(story.worker_log("sync job names an unknown tenant or member (acknowledged)"))
            - unknown_before
        )
        if rejected >= 2 and unknown >= 1:
            break
        time.sleep(0.25)
    time.sleep(2.5)  # a redelivery (minimum backoff 1 s) would show up as another log line
    assert len(story.worker_log("sync job rejected (acknowledged, not retried)")) - rejected_before == 2
    assert (
        len(story.worker_log("sync job names an unknown tenant or member (acknowledged)")) - unknown_before
        == 1
    )


def test_a_transient_calendar_outage_is_redelivered_by_pubsub_until_it_succeeds(
    story: Story, uses_emulators: None
) -> None:
    failed_before = len(story.worker_log("sync failed; Pub/Sub will redeliver"))
    story.sandbox.standin.faults.inject("calendar", status=503, count=6)  # one job retries 5 times
    started = datetime.now(UTC)
    story.publish_raw(
        json.dumps({"v": 1, "tenantId": TENANT, "memberId": "m-ben", "reason": "manual"}).encode()
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and story.sandbox.standin.faults.pending("calendar"):
        time.sleep(0.25)
    state = bootstrap.member_store().get_member(TENANT, "m-ben").calendar
    while time.monotonic() < deadline and not (state.last_success_at and state.last_success_at >= started):
        time.sleep(0.25)
        state = bootstrap.member_store().get_member(TENANT, "m-ben").calendar
    assert state.last_success_at is not None
    assert state.last_success_at >= started
    assert state.status == ConnectionStatus.CONNECTED
    assert state.consecutive_failures == 0
    assert len(story.worker_log("sync failed; Pub/Sub will redeliver")) == failed_before + 1


def test_revoked_consent_stops_scheduling_the_member(story: Story, uses_emulators: None) -> None:
    token = bootstrap.token_vault().read(TENANT, "m-ben")
    story.sandbox.standin.revoke_refresh_token(token)
    story.schedule_and_wait(["m-ben"])
    state = bootstrap.member_store().get_member(TENANT, "m-ben").calendar
    assert state.status == ConnectionStatus.NEEDS_REAUTH
    answer = story.sandbox.run_scheduler()
    assert answer["published"] == len(story.ids) - 1
