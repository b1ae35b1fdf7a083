"""The soak's pipeline: like `local_sandbox(push=True)`, but the `sync_worker` runs in its own
functions-framework process, so it can be SIGKILLed mid-page and restarted on the same port
with a new clock skew, and the Firestore emulator is started here so it can be SIGSTOPped.

    rest host (oauth_*, schedule_sync, calendar_notification) <── stand-in notifier
    Pub/Sub emulator ──push──> worker host (sync_worker, skewed clock) ── dead letters after 5
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from shared import bootstrap
from shared.sandbox import emulators
from shared.sandbox.emulators import RunningProcess, free_port
from shared.sandbox.functions_host import (
    LEASE_FENCE_ENV,
    LEASE_TTL_ENV,
    SKEW_ENV,
    TARGETS,
    start_functions_host,
)
from shared.sandbox.google_standin import GoogleStandIn
from shared.sandbox.local import DEAD_LETTER_TOPIC, SYNC_TOPIC, create_push_subscription, sandbox_env

DEAD_KEEP = f"{DEAD_LETTER_TOPIC}-keep"
Log = Callable[[str], None]


@dataclass(frozen=True)
class PipelineSettings:
    budget_s: float = 1.0  # CALSYNC_SYNC_BUDGET_S: big calendars continue across jobs
    backstop_s: int = 60  # CALSYNC_BACKSTOP_INTERVAL_S
    lease_ttl_s: float = 60.0  # sandbox switch: a killed worker's lease lapses within a minute
    lease_fence_s: float = 10.0
    # The emulator keeps both projects in memory: 256 MB (the tests' heap) runs out of memory
    # with 200 members' meetings (OutOfMemoryError, then UNKNOWN errors in the clients).
    firestore_heap: str = "2g"


@dataclass
class Pipeline:
    settings: PipelineSettings
    log: Log
    project: str = field(default_factory=lambda: f"calsync-soak-{secrets.token_hex(3)}")
    firestore: RunningProcess | None = None
    pubsub: RunningProcess | None = None
    standin: GoogleStandIn = field(default_factory=GoogleStandIn)
    rest: RunningProcess | None = None
    worker: RunningProcess | None = None
    worker_port: int = 0
    rest_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    worker_lines: list[str] = field(default_factory=list)  # logs of killed worker processes
    peak_rss_kb: int = 0
    skew_s: float = 0.0
    _saved_env: dict[str, str] = field(default_factory=dict)
    _http: requests.Session = field(default_factory=requests.Session)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self, skew_s: float) -> None:
        self._saved_env = dict(os.environ)
        self.firestore = emulators.start_firestore(max_heap=self.settings.firestore_heap)
        self.pubsub = emulators.start_pubsub()
        self.standin.start()
        rest_port, self.worker_port = free_port(), free_port()
        self.rest_url = f"http://127.0.0.1:{rest_port}"
        self.env = self._env(self.rest_url)
        os.environ.update(self.env)
        bootstrap.reset()
        rest_targets = [t for t in TARGETS if t != "sync_worker"]
        self.rest = start_functions_host(self.env, port=rest_port, targets=rest_targets)
        self.start_worker(skew_s)
        endpoint = (
            f"http://127.0.0.1:{self.worker_port}/sync_worker/projects/{self.project}/topics/{SYNC_TOPIC}"
        )
        create_push_subscription(self.project, SYNC_TOPIC, endpoint)

    def _env(self, host_url: str) -> dict[str, str]:
        assert self.firestore is not None
        assert self.pubsub is not None
        hosts = emulators.EmulatorHosts(firestore=self.firestore.host, pubsub=self.pubsub.host)
        return {
            **sandbox_env(self.project, hosts, self.standin, host_url, push=True),
            "CALSYNC_BACKSTOP_INTERVAL_S": str(self.settings.backstop_s),
            "CALSYNC_SYNC_BUDGET_S": str(self.settings.budget_s),
            LEASE_TTL_ENV: str(self.settings.lease_ttl_s),
            LEASE_FENCE_ENV: str(self.settings.lease_fence_s),
        }

    def start_worker(self, skew_s: float) -> None:
        self.skew_s = skew_s
        env = {**self.env, SKEW_ENV: f"{skew_s:.1f}"}
        self.worker = start_functions_host(env, port=self.worker_port, targets=["sync_worker"])

    def kill_worker(self) -> None:
        """SIGKILL the worker's process group (whatever it is doing), keeping its log."""
        worker, self.worker = self.worker, None
        if worker is None:
            return
        self._note_rss(worker)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        self.worker_lines += worker.log_lines()
        worker.stop()

    def restart_worker(self, skew_s: float) -> None:
        self.kill_worker()
        self.start_worker(skew_s)

    def _note_rss(self, worker: RunningProcess) -> None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{worker.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))

    def pause_firestore(self, paused: bool) -> None:
        assert self.firestore is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.firestore.process.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.pause_firestore(False)
        self.kill_worker()
        for process in (self.rest, self.pubsub, self.firestore):
            if process is not None:
                process.stop()
        self.standin.stop()
        os.environ.clear()
        os.environ.update(self._saved_env)
        bootstrap.reset()

    # --- what the functions did ----------------------------------------------------------------

    def worker_records(self) -> list[dict[str, Any]]:
        lines = list(self.worker_lines)
        if self.worker is not None:
            lines += self.worker.log_lines()
        return _records(lines, "sync_worker")

    def notification_records(self) -> list[dict[str, Any]]:
        assert self.rest is not None
        return _records(self.rest.log_lines(), "calendar_notification")

    def final_rss(self) -> int:
        if self.worker is not None:
            self._note_rss(self.worker)
        return self.peak_rss_kb

    def connect_through_browser(self, tenant_id: str, member_id: str) -> int:
        """Open a signed connect link and follow the redirects as a browser would (oauth_connect
        -> the stand-in's consent -> oauth_callback, which stores the token and queues the
        first sync). Returns the final HTTP status."""
        from datetime import timedelta

        from shared.domain.links import LinkPurpose

        link = bootstrap.connect_service(full_oauth=False).signed_link(
            LinkPurpose.CONNECT, tenant_id, member_id, self.env["CALSYNC_CONNECT_URL"], timedelta(minutes=15)
        )
        response = self._http.get(link, allow_redirects=False, timeout=30)
        for _ in range(5):
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303) or not location:
                break
            response = self._http.get(location, allow_redirects=False, timeout=30)
        return response.status_code

    def run_scheduler(self) -> dict[str, Any]:
        response = self._http.post(f"{self.rest_url}/schedule_sync", timeout=120)
        response.raise_for_status()
        return dict(response.json())

    def publish_twice(self, data: bytes) -> None:
        """The same job published twice at once (two deliveries, possibly concurrent)."""
        publisher = bootstrap.publisher_client()
        topic = publisher.topic_path(self.project, SYNC_TOPIC)
        futures = [publisher.publish(topic, data), publisher.publish(topic, data)]
        for future in futures:
            future.result(timeout=30)

    def drain_dead_letters(self) -> int:
        from google.api_core.exceptions import DeadlineExceeded
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        subscriber = pubsub_v1.SubscriberClient()
        path = subscriber.subscription_path(self.project, DEAD_KEEP)
        count = 0
        try:
            while True:
                try:
                    answer = subscriber.pull(request={"subscription": path, "max_messages": 100}, timeout=5)
                except DeadlineExceeded:
                    return count
                if not answer.received_messages:
                    return count
                count += len(answer.received_messages)
                ids = [m.ack_id for m in answer.received_messages]
                subscriber.acknowledge(request={"subscription": path, "ack_ids": ids})
        finally:
            subscriber.close()


def _records(lines: list[str], function: str) -> list[dict[str, Any]]:
    return [record for record in emulators.json_records(lines) if record.get("function") == function]


def wait_for(condition: Callable[[], bool], timeout_s: float, poll_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll_s)
    return False
