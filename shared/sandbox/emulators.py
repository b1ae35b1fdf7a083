"""Start and stop Google's Firestore and Pub/Sub emulators from the jars of the machine's
Google Cloud CLI (see ../shared/STACK.md).

Each emulator runs `java` directly (not the `gcloud` wrapper, which would leave the JVM behind)
in its own process group, on a free loopback port, and is stopped by that group. It is also
killed when the process that started it dies abruptly (Linux parent-death signal), and on
normal interpreter exit (atexit), so an interrupted test run or demo leaves nothing running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1
_running: set[RunningProcess] = set()


class EmulatorsUnavailable(RuntimeError):
    """The emulator jars (or java) are not on this machine."""


def sdk_root() -> Path | None:
    """The Google Cloud CLI root (parent of the `bin/` holding the real gcloud), if installed."""
    override = os.environ.get("CALSYNC_GCLOUD_SDK_ROOT")
    if override:
        return Path(override)
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return None
    return Path(os.path.realpath(gcloud)).parent.parent


def firestore_jar() -> Path | None:
    root = sdk_root()
    jar = root / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar" if root else None
    return jar if jar and jar.is_file() else None


def pubsub_jar() -> Path | None:
    root = sdk_root()
    if not root:
        return None
    jars = sorted((root / "platform/pubsub-emulator/lib").glob("cloud-pubsub-emulator-*-all.jar"))
    return jars[-1] if jars else None


def missing_reason() -> str | None:
    """Why the emulators cannot run here, or None when they can."""
    if not shutil.which("java"):
        return "java is not installed"
    if sdk_root() is None:
        return "the Google Cloud CLI (gcloud) is not installed"
    if firestore_jar() is None:
        return f"no Firestore emulator jar under {sdk_root()}/platform"
    if pubsub_jar() is None:
        return f"no Pub/Sub emulator jar under {sdk_root()}/platform"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(eq=False)
class RunningProcess:
    """A child started in its own process group; `stop()` ends the whole group."""

    name: str
    process: subprocess.Popen[bytes]
    host: str
    log_path: Path

    @property
    def address(self) -> str:
        return self.host

    def stop(self, grace_s: float = 5.0) -> None:
        """End the process group and delete the log (errors quote its tail before this)."""
        _running.discard(self)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=grace_s)
        self.log_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_lines()[-lines:])

    def log_lines(self) -> list[str]:
        """What the process wrote so far (stdout and stderr), a line each; none once stopped."""
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []


def json_records(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The JSON-line log records among `lines` (the functions' structured logs), in order."""
    found = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def start_process(
    name: str, argv: list[str], ready_url: str, host: str, env: dict[str, str] | None = None
) -> RunningProcess:
    """Start `argv` in its own process group and poll `ready_url` until it answers 2xx."""
    log = Path(tempfile.mkstemp(prefix=f"calsync-{name}-", suffix=".log")[1])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            env=env,
        )
    running = RunningProcess(name, process, host, log)
    _running.add(running)
    deadline = time.monotonic() + READY_TIMEOUT_S
    delay = 0.05
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = running.log_tail()
            running.stop()
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:  # noqa: S310 - loopback
                if 200 <= response.status < 300:
                    return running
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    tail = running.log_tail()
    running.stop()
    raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f}s:\n{tail}")


def start_firestore(port: int | None = None, max_heap: str = "256m") -> RunningProcess:
    """The Firestore emulator. 256 MB keeps it near 350 MB resident under load (STACK.md); a
    collection group of 100,000 documents needs about 1g."""
    jar = firestore_jar()
    if jar is None:
        raise EmulatorsUnavailable(missing_reason() or "no Firestore emulator jar")
    port = port or free_port()
    argv = [
        "java",
        "-Duser.language=en",
        f"-Xmx{max_heap}",
        "-cp",
        str(jar),
        "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    return start_process("firestore-emulator", argv, f"http://127.0.0.1:{port}/", f"127.0.0.1:{port}")


def start_pubsub(port: int | None = None) -> RunningProcess:
    jar = pubsub_jar()
    if jar is None:
        raise EmulatorsUnavailable(missing_reason() or "no Pub/Sub emulator jar")
    port = port or free_port()
    argv = ["java", "-Xmx256m", "-jar", str(jar), "--host=127.0.0.1", f"--port={port}"]
    return start_process("pubsub-emulator", argv, f"http://127.0.0.1:{port}/", f"127.0.0.1:{port}")


@dataclass(frozen=True)
class EmulatorHosts:
    firestore: str  # HOST:PORT, for FIRESTORE_EMULATOR_HOST
    pubsub: str  # HOST:PORT, for PUBSUB_EMULATOR_HOST


@contextlib.contextmanager
def running_emulators() -> Iterator[EmulatorHosts]:
    """Both emulators for the duration of the block; stopped by process group afterwards."""
    firestore = start_firestore()
    try:
        pubsub = start_pubsub()
    except BaseException:
        firestore.stop()
        raise
    try:
        yield EmulatorHosts(firestore=firestore.host, pubsub=pubsub.host)
    finally:
        pubsub.stop()
        firestore.stop()


def wipe_firestore(host: str, project: str) -> None:
    """Delete every document of one project in the Firestore emulator."""
    request = urllib.request.Request(
        f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents",
        method="DELETE",
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


@atexit.register
def _stop_all() -> None:
    for running in list(_running):
        running.stop(grace_s=2.0)
