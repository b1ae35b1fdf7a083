"""The benchmark (`make bench`, `python -m bench`) in its smoke version: tiny sizes, one run.

It checks that every scenario runs against the emulators and the Google stand-in, and that the
results file holds every figure the issue asks for as a number. The figures themselves are not
checked here (they need the full sizes, see docs/benchmarks.md)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from shared.sandbox import emulators

REPO_ROOT = Path(__file__).resolve().parents[2]
KEYS = (
    "full_sync_events_per_s",
    "floor_ratio",
    "nochange_calendar_requests",
    "nochange_secret_accesses",
    "nochange_firestore_ops",
    "nochange_latency_ms",
    "changed1pct_latency_ms",
    "fanout_members_per_s",
    "match_attendees_per_s",
    "peak_rss_mb_50k",
    "cold_start_ms_sync_worker",
    "cold_start_ms_schedule_sync",
    "cold_start_ms_oauth_callback",
    "exclude_docs_read",
    "exclude_meetings_mentioning",
    "exclude_meetings_stored",
    "calendar_requests_per_member_day",
    "calendar_requests_per_member_day_polling",
    "push_freshness_p50_s",
    "push_freshness_p95_s",
    "push_freshness_max_s",
    "push_freshness_worker_runs",
    "push_burst_list_calls",
)


@pytest.mark.timeout(330)
def test_the_smoke_benchmark_runs_and_writes_every_figure(tmp_path: Path, uses_emulators: None) -> None:
    reason = emulators.missing_reason()
    if reason:
        pytest.skip(f"EMULATORS MISSING: {reason}")
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=320,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads(out.read_text())
    for key in KEYS:
        value = results.get(key)
        assert isinstance(value, int | float), (key, value)
        assert not isinstance(value, bool), (key, value)
        assert math.isfinite(value), (key, value)
    # What the counters must show even at tiny sizes: a sync with no changes lists once and
    # reads the token once.
    assert results["nochange_calendar_requests"] == 1
    assert results["nochange_secret_accesses"] == 1
    assert results["meta"]["smoke"] is True
    # Adding a domain exclusion reads what mentions the domain (about two reads per meeting and a
    # few dozen more), not the tenant's stored meetings (README.md#exclusions).
    mentioning = results["exclude_meetings_mentioning"]
    assert 0 < mentioning < results["exclude_meetings_stored"] / 10
    assert results["exclude_docs_read"] <= 2 * mentioning + 60
    # Push (docs/benchmarks.md#push-notifications): a quiet watched calendar is listed at the
    # backstop only, a polled one at every 15-minute tick; every change arrives through the pipeline.
    assert results["calendar_requests_per_member_day_polling"] == 96
    assert results["calendar_requests_per_member_day"] <= 10
    assert results["push_freshness_worker_runs"] >= 1
    assert results["push_burst_list_calls"] >= 1
    assert "figure" in done.stdout  # the table was printed
