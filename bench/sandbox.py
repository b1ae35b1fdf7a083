"""The benchmark's own sandbox: Google's Firestore and Pub/Sub emulators and the Google stand-in,
started here and stopped when the block ends, with this process's environment pointed at them.

A Firestore project per purpose keeps the scenarios apart (projects are isolated in the
emulator): `use_project()` switches the environment and forgets the cached clients.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared import bootstrap
from shared.sandbox import emulators
from shared.sandbox.google_standin import GoogleStandIn

REPO_ROOT = Path(__file__).resolve().parents[1]
SIGNING_KEY = "bench-signing-key-0123456789abcdef"
SYNC_TOPIC = "calsync-sync-jobs"
FIRESTORE_HEAP = "3g"
CALLBACK_URL = "http://127.0.0.1:9/oauth_callback"  # never opened: the stand-in redirects to it


@dataclass
class BenchSandbox:
    hosts: emulators.EmulatorHosts
    standin: GoogleStandIn
    run_id: str

    def base_env(self) -> dict[str, str]:
        return {
            "FIRESTORE_EMULATOR_HOST": self.hosts.firestore,
            "PUBSUB_EMULATOR_HOST": self.hosts.pubsub,
            "CALSYNC_OAUTH_CLIENT_ID": self.standin.client_id,
            "CALSYNC_OAUTH_CLIENT_SECRET": self.standin.client_secret,
            "CALSYNC_OAUTH_REDIRECT_URI": CALLBACK_URL,
            "CALSYNC_OAUTH_AUTH_URI": self.standin.auth_uri,
            "CALSYNC_OAUTH_TOKEN_URI": self.standin.token_uri,
            "CALSYNC_OAUTH_REVOKE_URI": self.standin.revoke_uri,
            "CALSYNC_CALENDAR_ENDPOINT": self.standin.calendar_endpoint,
            "CALSYNC_SECRET_MANAGER_ENDPOINT": self.standin.secret_manager_endpoint,
            "CALSYNC_SYNC_TOPIC": SYNC_TOPIC,
            "CALSYNC_LINK_SIGNING_KEY": SIGNING_KEY,
            "CALSYNC_CONNECT_URL": "http://127.0.0.1:9/oauth_connect",
            "CALSYNC_DISCONNECT_URL": "http://127.0.0.1:9/oauth_disconnect",
            # The stand-in speaks plain http on loopback; oauthlib refuses that unless told.
            "OAUTHLIB_INSECURE_TRANSPORT": "1",
            "OAUTHLIB_RELAX_TOKEN_SCOPE": "1",
        }

    def project(self, purpose: str) -> str:
        return f"bench-{purpose}-{self.run_id}"

    def use_project(self, purpose: str) -> str:
        """Point this process (GOOGLE_CLOUD_PROJECT) at the project for `purpose`."""
        project = self.project(purpose)
        os.environ["GOOGLE_CLOUD_PROJECT"] = project
        bootstrap.reset()
        return project

    def child_env(self, purpose: str) -> dict[str, str]:
        """The environment of a child process working in the project for `purpose`."""
        return {
            **os.environ,
            **self.base_env(),
            "GOOGLE_CLOUD_PROJECT": self.project(purpose),
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }


@contextlib.contextmanager
def _emulators(heap: str = FIRESTORE_HEAP) -> Iterator[emulators.EmulatorHosts]:
    # A larger heap than the tests' 256 MB: the benchmark keeps a 110,000-document directory,
    # 100,000 members and tens of thousands of meetings, which exhaust 256 MB (OutOfMemoryError
    # in the emulator, UNKNOWN errors in the client).
    firestore = emulators.start_firestore(max_heap=heap)
    try:
        pubsub = emulators.start_pubsub()
    except BaseException:
        firestore.stop()
        raise
    try:
        yield emulators.EmulatorHosts(firestore=firestore.host, pubsub=pubsub.host)
    finally:
        pubsub.stop()
        firestore.stop()


@contextlib.contextmanager
def bench_sandbox() -> Iterator[BenchSandbox]:
    reason = emulators.missing_reason()
    if reason:
        raise emulators.EmulatorsUnavailable(f"the benchmarks need Google's emulators: {reason}")
    saved = dict(os.environ)
    try:
        with _emulators() as hosts, GoogleStandIn() as standin:
            sandbox = BenchSandbox(hosts, standin, secrets.token_hex(3))
            os.environ.update(sandbox.base_env())
            bootstrap.reset()
            yield sandbox
    finally:
        os.environ.clear()
        os.environ.update(saved)
        bootstrap.reset()


def python() -> str:
    return sys.executable
