"""Fixtures shared by every test layer.

Emulator-backed fixtures start Google's emulators themselves (once per pytest worker), isolate
each test by giving it its own Firestore project id, and stop the emulators by process group.
Where the jars are missing the tests are skipped and the run ends with a loud banner; the
summary always says how many tests ran against the real emulators. Tests that need Chromium
(tests/support/browser.py) are skipped the same way, with their own banner.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from shared.sandbox import emulators
from shared.sandbox.google_standin import GoogleStandIn
from tests.support import browser
from tests.support.sandbox import FixedClock

_EMULATOR_PROPERTY = "calsync_emulators"


@pytest.fixture(autouse=True)
def _logs_to_stdout() -> None:
    """Every test starts with the functions' logging (INFO, JSON lines on stdout): a CLI test
    switches it to stderr for the process."""
    from shared import logs

    logs.configure()


@pytest.fixture
def standin() -> Iterator[GoogleStandIn]:
    """The Google stand-in (OAuth, Calendar, Secret Manager) on a free loopback port."""
    with GoogleStandIn() as running:
        yield running


@pytest.fixture
def clock() -> FixedClock:
    """A clock at the sample's anchor instant, moved by hand."""
    return FixedClock()


@pytest.fixture(scope="session")
def emulator_hosts() -> Iterator[emulators.EmulatorHosts]:
    """Both emulators for this pytest worker; skipped (loudly, see the summary) when absent."""
    reason = emulators.missing_reason()
    if reason:
        pytest.skip(f"EMULATORS MISSING: {reason}")
    with emulators.running_emulators() as hosts:
        yield hosts


@pytest.fixture
def uses_emulators(request: pytest.FixtureRequest) -> None:
    """Marks the test as one that ran against the real emulators (counted in the summary)."""
    request.node.user_properties.append((_EMULATOR_PROPERTY, True))


@pytest.fixture
def firestore_project(
    emulator_hosts: emulators.EmulatorHosts,
    monkeypatch: pytest.MonkeyPatch,
    uses_emulators: None,
) -> str:
    """A fresh, empty Firestore emulator project for this test; the env points clients at it."""
    project = f"test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator_hosts.firestore)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", emulator_hosts.pubsub)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", project)
    return project


@pytest.fixture
def firestore_client(firestore_project: str):  # type: ignore[no-untyped-def]
    from google.cloud import firestore

    client = firestore.Client(project=firestore_project)
    yield client
    client.close()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_COUNTS] = {"passed": 0, "skipped_missing": 0, "skipped_browser": 0}
    # Tests run with the sandbox's insecure-transport switch only where they set it themselves.
    os.environ.setdefault("CALSYNC_TEST_RUN", "1")


_COUNTS = pytest.StashKey[dict[str, int]]()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = _CONFIG.get("config")
    if config is None:
        return
    counts = config.stash[_COUNTS]
    if report.when == "call" and report.passed and (_EMULATOR_PROPERTY, True) in report.user_properties:
        counts["passed"] += 1
    if report.skipped and "EMULATORS MISSING" in str(report.longrepr):
        counts["skipped_missing"] += 1
    if report.skipped and browser.MISSING in str(report.longrepr):
        counts["skipped_browser"] += 1


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    counts = config.stash[_COUNTS]
    if hasattr(config, "workerinput"):
        return  # the controller reports for the whole run
    terminalreporter.write_sep("=", "calsync: real components", bold=True)
    terminalreporter.write_line(
        f"{counts['passed']} tests passed against the real Firestore/Pub/Sub emulators"
    )
    if counts["skipped_missing"]:
        terminalreporter.write_sep("!", "EMULATOR TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"{counts['skipped_missing']} tests were SKIPPED because the emulator jars are not on "
            f"this machine ({emulators.missing_reason()}). Install the Google Cloud CLI with its "
            "Firestore and Pub/Sub emulators to run them.",
            red=True,
            bold=True,
        )
    if counts["skipped_browser"]:
        terminalreporter.write_sep("!", "BROWSER TESTS SKIPPED", red=True, bold=True)
        terminalreporter.write_line(
            f"{counts['skipped_browser']} tests were SKIPPED because no Chromium is installed "
            "(`apt-get install -y chromium`; .ci/run installs it). The report page was not "
            "checked in a real browser.",
            red=True,
            bold=True,
        )
