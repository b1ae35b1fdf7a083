"""One soak run: the world set up and connected, the rounds of changes under faults, the end
(faults stopped, backstop syncs until quiescent), the reference and the comparison, the report."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared import bootstrap
from shared.domain.models import PushStatus
from shared.errors import TransientError
from shared.sandbox.standin import calendar as standin_calendar
from shared.services.directory_import import import_directory
from shared.services.ports import DirectoryChange
from shared.services.rematch import rematch_directory_change
from soak.changes import Changer
from soak.check import Difference, build_reference, compare
from soak.faults import FaultInjector, FaultSettings
from soak.pipeline import Log, Pipeline, PipelineSettings
from soak.world import DirectoryEdit, World

PAGE_SIZE = 25  # the stand-in's page cap for the soak: a 50-event calendar lists in 2 pages
BROWSER_MEMBERS = 2  # per tenant, connected through the OAuth flow; the others with set-token


@dataclass(frozen=True)
class SoakConfig:
    seed: int = 1
    members: int = 200
    tenants: int = 3
    rounds: int = 5
    round_s: float = 30.0
    events: int = 50
    deadline_s: float = 720.0
    out: Path = Path("bench/soak.json")
    short: bool = False
    race_directory: bool = False  # also add guests to meetings and to the directory at once
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    faults: FaultSettings = field(default_factory=FaultSettings)


class DeadlineReached(Exception):
    """The global deadline passed: the run stops and reports."""


@dataclass
class Soak:
    config: SoakConfig
    log: Log
    started: float = field(default_factory=time.monotonic)
    pipeline: Pipeline = field(init=False)
    world: World = field(init=False)
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    changes: Counter[str] = field(default_factory=Counter)
    phase: str = "setup"

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(self.config.pipeline, self.log)
        self.world = World(
            self.config.seed, self.config.tenants, self.config.members, self.config.events, datetime.now(UTC)
        )
        self.rng = random.Random(self.config.seed * 31 + 7)

    def left_s(self) -> float:
        return self.config.deadline_s - (time.monotonic() - self.started)

    def check_deadline(self) -> None:
        if self.left_s() <= 0:
            raise DeadlineReached(
                f"global deadline of {self.config.deadline_s:.0f}s reached during {self.phase}"
            )

    # --- setup ---------------------------------------------------------------------------------

    def set_up(self) -> None:
        standin_calendar.MAX_MAX_RESULTS = PAGE_SIZE  # Google may answer fewer than maxResults too
        skew = round(self.rng.uniform(-self.config.faults.skew_s, self.config.faults.skew_s), 1)
        self.pipeline.start(skew)
        self.world.initial_meetings()
        by_holder: dict[str, list[dict[str, Any]]] = {}
        for meeting in self.world.meetings.values():
            for holder in meeting.holders:
                by_holder.setdefault(holder, []).append(self.world.copy_for(meeting, holder))
        for holder, events in by_holder.items():
            self.pipeline.standin.calendar(holder).load_events(events)
        for tenant in self.world.tenants:
            import_directory(json.dumps(self.world.import_file(tenant)).encode(), bootstrap.directory_store())
        self._connect()
        self.log(
            f"world: {len(self.world.tenants)} tenants, {len(self.tokens)} members, "
            f"{len(self.world.meetings)} meetings ({sum(map(len, by_holder.values()))} calendar events); "
            f"worker skew {skew:+.1f}s; waiting for the first syncs and the push channels"
        )
        self._wait_connected()

    def _connect(self) -> None:
        """The first BROWSER_MEMBERS members of each tenant through the OAuth flow (their token is
        then read back for the reference), the others with `set-token`."""
        connect = bootstrap.connect_service(full_oauth=False)
        for tenant in self.world.tenants:
            for index, member_id in enumerate(tenant.members):
                if index < BROWSER_MEMBERS:
                    status = self.pipeline.connect_through_browser(tenant.id, member_id)
                    if status != 200:
                        raise RuntimeError(
                            f"connecting {tenant.id}/{member_id} in the browser ended {status}"
                        )
                    token = bootstrap.token_vault().read(tenant.id, member_id)
                else:
                    token = self.pipeline.standin.issue_refresh_token(self.world.member_email(member_id))
                    connect.set_token(tenant.id, member_id, token)
                self.tokens[(tenant.id, member_id)] = token

    def _wait_connected(self) -> None:
        members = bootstrap.member_store()
        while True:
            self.check_deadline()
            states = [m.calendar for t in self.world.tenants for m in members.list_members(t.id)]
            ready = [
                s
                for s in states
                if s.last_success_at and s.lease_owner is None and s.push_status is PushStatus.ACTIVE
            ]
            if len(ready) == len(self.tokens):
                self.log(f"all {len(ready)} members synced and watched after {self.elapsed():.0f}s")
                return
            time.sleep(1.0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    # --- rounds --------------------------------------------------------------------------------

    def run_rounds(self, injector: FaultInjector) -> None:
        changer = Changer(self.world, self.pipeline.standin)
        for number in range(1, self.config.rounds + 1):
            self.phase = f"round {number}"
            ends = time.monotonic() + self.config.round_s
            before = sum(self.changes.values())
            while time.monotonic() < ends:
                self.check_deadline()
                for _ in range(self.rng.randint(1, 4)):
                    self.changes[f"calendar.{changer.calendar_change()}"] += 1
                if self.config.race_directory and self.rng.random() < 0.3:
                    paired = changer.attendee_and_user()
                    if paired is not None:
                        time.sleep(self.rng.uniform(0.0, 1.5))  # while the push sync may be running
                        self._write_directory(paired)
                        self.changes[f"directory.{paired.kind}"] += 1
                if self.rng.random() < 0.35:
                    edit = changer.directory_edit()
                    self._write_directory(edit)
                    self.changes[f"directory.{edit.kind}"] += 1
                time.sleep(self.rng.uniform(0.2, 0.8))
            self.log(
                f"round {number}: {sum(self.changes.values()) - before} changes; "
                f"faults so far {dict(injector.counts)}"
            )

    def _write_directory(self, edit: DirectoryEdit) -> None:
        """As the CS platform would: write the document, then re-match as the trigger would."""
        for attempt in range(6):
            try:
                client = bootstrap.firestore_client()
                ref = client.collection("tenants").document(edit.tenant_id).collection(edit.collection)
                if edit.new is None:
                    ref.document(edit.document_id).delete()
                else:
                    ref.document(edit.document_id).set(edit.new)
                change = DirectoryChange(
                    edit.tenant_id, edit.collection, edit.document_id, edit.old, edit.new
                )
                rematch_directory_change(bootstrap.rematch_deps(), change)
                return
            except TransientError as error:
                self.log(f"re-match of {edit.collection}/{edit.document_id} failed ({error}); retrying")
                time.sleep(2.0 * (attempt + 1))
        raise RuntimeError(f"the re-match of {edit} kept failing")

    # --- the end -------------------------------------------------------------------------------

    def settle(self) -> dict[str, Any]:
        """Worker restarted without skew; members made due and scheduled until every one has
        synced successfully since, no lease is held, the worker is quiet and the notifier idle."""
        self.phase = "settling"
        self.pipeline.restart_worker(0.0)
        mark, begun = datetime.now(UTC), time.monotonic()
        members = bootstrap.member_store()
        # What each member's last success says now: a worker whose clock ran ahead (the skew)
        # may have written a time after `mark` before the end, so "since the end" means a new
        # value written after this, not just a value past `mark`.
        before = self._last_successes(members)
        scheduled, last_count, quiet_since = 0, -1, 0.0
        while True:
            self.check_deadline()
            count = len(self.pipeline.worker_records())
            quiet = count == last_count and self.pipeline.standin.push.wait_idle(0.1)
            quiet_since = (quiet_since or time.monotonic()) if quiet else 0.0
            last_count = count
            # Only once the worker is quiet (every queued job done): scheduling members whose
            # jobs are still queued would only pile up duplicates.
            if quiet_since and time.monotonic() - quiet_since > 3.0:
                lagging = self._lagging(members, mark, before)
                if not lagging:
                    return {
                        "quiescent": True,
                        "scheduler_runs": scheduled,
                        "settle_s": round(time.monotonic() - begun, 1),
                    }
                members.hold_members(lagging, until=datetime.now(UTC))
                published = self.pipeline.run_scheduler().get("published")
                self.log(f"settling: {len(lagging)} members not yet synced since the end; {published} jobs")
                scheduled += 1
                quiet_since = 0.0
            time.sleep(1.0)

    def _last_successes(self, members: Any) -> dict[tuple[str, str], datetime | None]:
        return {
            (tenant.id, member.id): member.calendar.last_success_at
            for tenant in self.world.tenants
            for member in members.list_members(tenant.id)
        }

    def _lagging(
        self, members: Any, mark: datetime, before: dict[tuple[str, str], datetime | None]
    ) -> list[tuple[str, str]]:
        """Members not synced successfully since the end: no new last success, or one older
        than `mark`, or a lease still held."""
        lagging = []
        for tenant in self.world.tenants:
            for member in members.list_members(tenant.id):
                state, key = member.calendar, (tenant.id, member.id)
                success = state.last_success_at
                fresh = success is not None and success != before.get(key) and success >= mark
                if not (fresh and state.lease_owner is None):
                    lagging.append(key)
        return lagging

    def reference(self) -> tuple[list[Difference], int]:
        self.phase = "reference"
        soak_project = self.pipeline.project
        try:
            reference = build_reference(self.world, self.tokens, self.log)
        finally:
            import os

            os.environ["GOOGLE_CLOUD_PROJECT"] = soak_project
            bootstrap.reset()
        return compare(soak_project, reference, [t.id for t in self.world.tenants])
