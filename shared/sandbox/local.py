"""The whole pipeline on this machine: Google's emulators, the Google stand-in, and every entry
point served by functions-framework, wired like production:

    browser ──> oauth_connect ──302──> stand-in consent ──302──> oauth_callback
                                                                   │ token -> Secret Manager (stand-in)
                                                                   │ first sync job
    schedule_sync ──publish──> Pub/Sub emulator ──push──> sync_worker ──> Firestore emulator
                                        └── dead-letter topic after 5 attempts
    with push on: stand-in calendar change ──POST──> calendar_notification ──publish──> (as above)

Used by `calsync demo` and the end-to-end tests. Everything it starts is stopped when the block
ends (processes by process group), also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from shared import bootstrap
from shared.sandbox import emulators
from shared.sandbox.emulators import RunningProcess, free_port
from shared.sandbox.functions_host import start_functions_host
from shared.sandbox.google_standin import GoogleStandIn

SYNC_TOPIC = "calsync-sync-jobs"
DEAD_LETTER_TOPIC = "calsync-sync-jobs-dead"
PUSH_SUBSCRIPTION = "calsync-sync-worker-push"
MAX_DELIVERY_ATTEMPTS = 5


@dataclass
class LocalSandbox:
    project: str
    env: dict[str, str]
    standin: GoogleStandIn
    host: RunningProcess
    host_url: str
    hosts: emulators.EmulatorHosts
    _http: requests.Session = field(default_factory=requests.Session)

    # --- the browser's part of the OAuth flow ----------------------------------------------

    def connect_through_browser(self, tenant_id: str, member_id: str) -> requests.Response:
        """Open a signed connect link and follow the redirects like a browser (one hop at a
        time, so the stand-in's consent page is visited too). Returns the final response."""
        from shared.domain.links import LinkPurpose

        link = bootstrap.connect_service(full_oauth=False).signed_link(
            LinkPurpose.CONNECT, tenant_id, member_id, self.env["CALSYNC_CONNECT_URL"], timedelta(minutes=15)
        )
        response = self._http.get(link, allow_redirects=False, timeout=30)
        for _ in range(5):
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303) or not location:
                return response
            response = self._http.get(location, allow_redirects=False, timeout=30)
        return response

    def run_scheduler(self) -> dict[str, Any]:
        """What Cloud Scheduler does: POST to schedule_sync. Returns its JSON answer."""
        response = self._http.post(f"{self.host_url}/schedule_sync", timeout=120)
        response.raise_for_status()
        return dict(response.json())

    # --- waiting for the asynchronous part --------------------------------------------------

    def worker_summaries(self) -> list[dict[str, Any]]:
        """The one-line summaries the sync_worker logged so far (JSON lines of the host)."""
        return [
            record
            for record in emulators.json_records(self.host.log_lines())
            if record.get("function") == "sync_worker" and record.get("message") == "sync finished"
        ]

    def push_syncs(self) -> int:
        """How many worker runs so far were push jobs (queued by a notification)."""
        return sum(1 for record in self.worker_summaries() if record.get("reason") == "push")

    def wait_until_watched(self, member_ids: list[str], tenant_id: str, timeout_s: float = 60.0) -> int:
        """Poll Firestore until every member's push channel is active; returns how many."""
        from shared.domain.models import PushStatus

        members = bootstrap.member_store()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [members.get_member(tenant_id, m).calendar for m in member_ids]
            if all(s.push_status is PushStatus.ACTIVE for s in states):
                return len(states)
            time.sleep(0.2)
        raise TimeoutError(f"push channels not active within {timeout_s:.0f}s\n{self.host.log_tail(30)}")

    def wait_until_synced(
        self, member_ids: list[str], since: datetime, tenant_id: str, timeout_s: float = 120.0
    ) -> None:
        """Poll Firestore until every member finished a sync after `since` and holds no lease,
        and the worker has been quiet for a moment (no more deliveries in flight)."""
        members = bootstrap.member_store()
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        seen = -1
        while time.monotonic() < deadline:
            states = [members.get_member(tenant_id, m).calendar for m in member_ids]
            done = all(
                s.last_sync_at is not None and s.last_sync_at >= since and s.lease_owner is None
                for s in states
            )
            count = len(self.worker_summaries())
            if done and count == seen:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.5:
                    return
            else:
                quiet_since = None
            seen = count
            time.sleep(0.25)
        final = {m: members.get_member(tenant_id, m).calendar for m in member_ids}
        detail = "; ".join(
            f"{m}: lastSyncAt={s.last_sync_at} lease={s.lease_owner} error={s.last_error}"
            for m, s in final.items()
        )
        raise TimeoutError(
            f"members did not finish syncing within {timeout_s:.0f}s of {since} "
            f"({len(self.worker_summaries())} worker runs; {detail})\nfunctions host log:\n"
            f"{self.host.log_tail(30)}"
        )


def sandbox_env(
    project: str, hosts: emulators.EmulatorHosts, standin: GoogleStandIn, host_url: str, *, push: bool
) -> dict[str, str]:
    """The configuration (README.md#configuration) of a pipeline whose functions are served at
    `host_url`, against these emulators and this stand-in; with `push`, notifications go to the
    host's `calendar_notification`."""
    env = {
        "GOOGLE_CLOUD_PROJECT": project,
        "FIRESTORE_EMULATOR_HOST": hosts.firestore,
        "PUBSUB_EMULATOR_HOST": hosts.pubsub,
        "CALSYNC_OAUTH_CLIENT_ID": standin.client_id,
        "CALSYNC_OAUTH_CLIENT_SECRET": standin.client_secret,
        "CALSYNC_OAUTH_REDIRECT_URI": f"{host_url}/oauth_callback",
        "CALSYNC_CONNECT_URL": f"{host_url}/oauth_connect",
        "CALSYNC_DISCONNECT_URL": f"{host_url}/oauth_disconnect",
        "CALSYNC_OAUTH_AUTH_URI": standin.auth_uri,
        "CALSYNC_OAUTH_TOKEN_URI": standin.token_uri,
        "CALSYNC_OAUTH_REVOKE_URI": standin.revoke_uri,
        "CALSYNC_CALENDAR_ENDPOINT": standin.calendar_endpoint,
        "CALSYNC_SECRET_MANAGER_ENDPOINT": standin.secret_manager_endpoint,
        "CALSYNC_SYNC_TOPIC": SYNC_TOPIC,
        "CALSYNC_LINK_SIGNING_KEY": secrets.token_hex(32),
        # The stand-in speaks plain http on loopback; oauthlib refuses that unless told.
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
        "OAUTHLIB_RELAX_TOKEN_SCOPE": "1",
    }
    if push:
        env["CALSYNC_NOTIFICATION_URL"] = f"{host_url}/calendar_notification"
    return env


def create_push_subscription(project: str, topic: str, endpoint: str) -> None:
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(project, topic)
    dead_path = publisher.topic_path(project, DEAD_LETTER_TOPIC)
    for path in (topic_path, dead_path):
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(name=path)
    with contextlib.suppress(AlreadyExists):
        subscriber.create_subscription(
            request={
                "name": subscriber.subscription_path(project, f"{DEAD_LETTER_TOPIC}-keep"),
                "topic": dead_path,
            }
        )
    subscriber.create_subscription(
        request={
            "name": subscriber.subscription_path(project, PUSH_SUBSCRIPTION),
            "topic": topic_path,
            "push_config": {"push_endpoint": endpoint},
            "ack_deadline_seconds": 600,
            "dead_letter_policy": {
                "dead_letter_topic": dead_path,
                "max_delivery_attempts": MAX_DELIVERY_ATTEMPTS,
            },
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 10}},
        }
    )
    subscriber.close()


@contextlib.contextmanager
def local_sandbox(
    project: str | None = None, log: Callable[[str], None] = lambda _: None, *, push: bool = False
) -> Iterator[LocalSandbox]:
    """Start everything, point this process's environment at it, and stop it all afterwards.
    With `push`, members get push channels: the stand-in notifies `calendar_notification`."""
    reason = emulators.missing_reason()
    if reason:
        raise emulators.EmulatorsUnavailable(
            f"the local sandbox needs Google's Firestore and Pub/Sub emulators: {reason}"
        )
    project = project or f"calsync-demo-{secrets.token_hex(3)}"
    saved_env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        log("starting the Firestore and Pub/Sub emulators")
        hosts = stack.enter_context(emulators.running_emulators())
        standin = stack.enter_context(GoogleStandIn())
        port = free_port()
        host_url = f"http://127.0.0.1:{port}"
        env = sandbox_env(project, hosts, standin, host_url, push=push)
        os.environ.update(env)
        stack.callback(_restore_env, saved_env)
        bootstrap.reset()
        stack.callback(bootstrap.reset)
        log("starting the functions (functions-framework) and the Google stand-in")
        host = start_functions_host(env, port=port)
        stack.callback(host.stop)
        create_push_subscription(
            project,
            env["CALSYNC_SYNC_TOPIC"],
            f"{host_url}/sync_worker/projects/{project}/topics/{env['CALSYNC_SYNC_TOPIC']}",
        )
        yield LocalSandbox(project, env, standin, host, host_url, hosts)


@contextlib.contextmanager
def configured(values: dict[str, str]) -> Iterator[None]:
    """This process's environment with `values` set for the block (the adapters rebuilt on both
    sides of it), as it was afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    bootstrap.reset()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        bootstrap.reset()


def _restore_env(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)


def sample_dir() -> Path:
    return Path(__file__).resolve().parent / "sample"
