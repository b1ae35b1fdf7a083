"""Headless Chromium for the tests that look at a page in a real browser.

Every run gets a fresh profile, no network (`--host-resolver-rules` makes every host
unresolvable) and a net log, so a test can show that the page itself asked for nothing: requests
the page starts carry its (opaque `file://`) origin as initiator, the browser's own background
requests (component updates, time) carry "not an origin".
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

MISSING = "CHROMIUM MISSING"
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def browser_path() -> str | None:
    return next((found for name in _BROWSER_NAMES if (found := shutil.which(name))), None)


@dataclass(frozen=True)
class Rendered:
    dom: str  # the DOM after rendering (`--dump-dom`)
    page_requests: list[str]  # URLs the page itself asked for (expected: none)


def _page_requests(net_log: Path) -> list[str]:
    log = json.loads(net_log.read_text(encoding="utf-8"))
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start_job
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != "not an origin"
        and not event["params"]["url"].startswith("file:")
    ]


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, *_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def render(page: Path, screenshot: Path) -> Rendered:
    """The page's DOM and the requests it made, and a PNG of it at 1200x1600."""
    browser = browser_path()
    assert browser is not None, MISSING
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="calsync-chromium-") as scratch:
        root = Path(scratch)
        net_log = root / "net-log.json"
        dumped = _run(browser, root / "dom", f"--log-net-log={net_log}", "--dump-dom", url)
        requests = _page_requests(net_log)
        _run(browser, root / "png", "--window-size=1200,1600", f"--screenshot={screenshot}", url)
    return Rendered(dom=dumped.stdout, page_requests=requests)
