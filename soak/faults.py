"""The fault injector: a thread that, until stopped, injects one random fault every few seconds
and logs each with its kind. The first faults go through every kind once (shuffled), so even a
short soak injects each kind at least once; the rest are drawn at random from a seeded rng."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from shared.services.jobs import encode_job
from shared.services.ports import JobReason, SyncJob
from soak.pipeline import Log, Pipeline
from soak.world import World

FAULT_KINDS = (
    "worker_kill",
    "firestore_stop",
    "calendar_storm",
    "token_storm",
    "connection_reset",
    "slow_pages",
    "notify_drop",
    "notify_duplicate",
    "notify_delay",
    "notify_reorder",
    "duplicate_job",
)


@dataclass(frozen=True)
class FaultSettings:
    gap_s: tuple[float, float] = (1.0, 4.0)  # pause between two faults
    firestore_stop_s: tuple[float, float] = (5.0, 30.0)
    skew_s: float = 120.0  # a restarted worker's clock is off by up to this, either way


class FaultInjector:
    def __init__(
        self, pipeline: Pipeline, world: World, seed: int, settings: FaultSettings, log: Log
    ) -> None:
        self.pipeline = pipeline
        self.world = world
        self.rng = random.Random(seed * 7919 + 1)
        self.settings = settings
        self.log = log
        self.counts: Counter[str] = Counter()
        self.kills_mid_page = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-faults", daemon=True)
        self._pending = list(FAULT_KINDS)
        self.rng.shuffle(self._pending)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop injecting, resume Firestore, clear every pending stand-in fault."""
        self._stop.set()
        self._thread.join(timeout=90)
        self.pipeline.pause_firestore(False)
        self.pipeline.standin.faults.clear()
        self.pipeline.standin.push.faults.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(*self.settings.gap_s)):
            kind = self._pending.pop() if self._pending else self.rng.choice(FAULT_KINDS)
            try:
                detail = self._inject(kind)
            except Exception as error:  # a fault that could not be injected is reported, not fatal
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
                self.log(f"fault {kind} failed: {error}")
                continue
            self.counts[kind] += 1
            self.log(f"fault {kind}: {detail}")

    def _inject(self, kind: str) -> str:
        actions: dict[str, Callable[[], str]] = {
            "worker_kill": self._kill_worker,
            "firestore_stop": self._stop_firestore,
            "calendar_storm": lambda: self._storm("calendar"),
            "token_storm": lambda: self._storm("token"),
            "connection_reset": self._reset_connections,
            "slow_pages": self._slow_pages,
            "notify_drop": lambda: self._notify("drop"),
            "notify_duplicate": lambda: self._notify("duplicate"),
            "notify_delay": lambda: self._notify("delay"),
            "notify_reorder": lambda: self._notify("reorder"),
            "duplicate_job": self._duplicate_job,
        }
        return actions[kind]()

    def _big_member(self) -> tuple[str, str]:
        """A member with one of the biggest calendars (a full listing takes several pages)."""
        sizes = Counter(h for m in self.world.meetings.values() for h in m.holders)
        top = [email for email, _ in sizes.most_common(5)]
        email = self.rng.choice(top)
        member_id = email.split("@")[0]
        return self.world.member_tenant[member_id], member_id

    def _kill_worker(self) -> str:
        """Force a full listing of a big calendar, wait until its pages are being served, then
        SIGKILL the worker and restart it on the same port with a new clock skew."""
        tenant_id, member_id = self._big_member()
        standin = self.pipeline.standin
        standin.calendar(self.world.member_email(member_id)).expire_sync_tokens()
        before = standin.requests.count("calendar")
        self.pipeline.publish_twice(encode_job(SyncJob(tenant_id, member_id, JobReason.MANUAL)))
        mid_page = _wait(lambda: standin.requests.count("calendar") >= before + 2, 10.0)
        time.sleep(self.rng.uniform(0.0, 0.3))
        self.pipeline.kill_worker()
        self.kills_mid_page += int(mid_page)
        skew = round(self.rng.uniform(-self.settings.skew_s, self.settings.skew_s), 1)
        self.pipeline.start_worker(skew)
        listing = f"{tenant_id}/{member_id} (mid-page: {mid_page})"
        return f"killed while listing {listing}; restarted with skew {skew:+.1f}s"

    def _stop_firestore(self) -> str:
        seconds = round(self.rng.uniform(*self.settings.firestore_stop_s), 1)
        self.pipeline.pause_firestore(True)
        try:
            self._stop.wait(seconds)
        finally:
            self.pipeline.pause_firestore(False)
        return f"SIGSTOP for {seconds}s, then SIGCONT"

    def _storm(self, service: str) -> str:
        status = self.rng.choice((429, 500, 503))
        count = self.rng.randint(3, 12)
        self.pipeline.standin.faults.inject(service, status=status, count=count)
        return f"{count} x {status} on {service}"

    def _reset_connections(self) -> str:
        server = self.pipeline.standin._server  # the stand-in's HTTP server: drop keep-alive connections
        if server is not None:
            server.close_connections()
        return "keep-alive connections to the stand-in dropped"

    def _slow_pages(self) -> str:
        delay = round(self.rng.uniform(0.5, 2.5), 2)
        count = self.rng.randint(2, 6)
        self.pipeline.standin.faults.inject("calendar", delay_s=delay, count=count)
        return f"{count} calendar answers {delay}s late"

    def _notify(self, what: str) -> str:
        faults = self.pipeline.standin.push.faults
        count = self.rng.randint(1, 4)
        if what == "drop":
            faults.drop(count)
        elif what == "duplicate":
            faults.duplicate(count)
        elif what == "delay":
            faults.delay(round(self.rng.uniform(1.0, 5.0), 1), count)
        else:
            faults.reorder(max(2, count))
        return f"next {count} notifications: {what}"

    def _duplicate_job(self) -> str:
        tenant_id, member_id = self.rng.choice(self.world.all_members())
        reason = self.rng.choice((JobReason.PUSH, JobReason.SCHEDULED, JobReason.MANUAL))
        self.pipeline.publish_twice(encode_job(SyncJob(tenant_id, member_id, reason)))
        return f"{reason} job of {tenant_id}/{member_id} published twice at once"


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
