"""`python -m bench [--smoke] [--only NAME ...] [--out PATH] [--runs N]` (also `make bench`).

Starts its own emulators and Google stand-in, runs the scenarios, prints a table of medians and
writes them to bench/results.json (docs/benchmarks.md says what each figure means). The push
pipeline scenarios (push_freshness, push_burst) run last, in the whole local pipeline
(shared.sandbox.local, push on), which starts emulators of its own once the others are stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import exclude, push, push_day, rematch, scenarios
from bench.sandbox import bench_sandbox

DEFAULT_OUT = Path(__file__).resolve().parent / "results.json"
SCENARIOS = (
    "full_sync",
    "nochange",
    "changed",
    "fanout",
    "matching",
    "memory",
    "cold_start",
    "rematch",
    "exclude",
    "push_requests",
    "push_freshness",
    "push_burst",
)
# Scenarios run in the full local pipeline (shared.sandbox.local, push on), after the others.
PIPELINE_SCENARIOS = ("push_freshness", "push_burst")

# figure -> (label, unit, target description, check)
FIGURES: dict[str, tuple[str, str, str, Any]] = {
    "full_sync_events_per_s": ("full sync throughput", "events/s", "", None),
    "floor_ratio": ("floor time / calsync time", "", ">= 0.8", lambda v: v >= 0.8),
    "nochange_calendar_requests": ("no-change sync: Calendar requests", "", "= 1", lambda v: v == 1),
    "nochange_secret_accesses": ("no-change sync: Secret Manager accesses", "", "<= 1", lambda v: v <= 1),
    "nochange_firestore_ops": ("no-change sync: Firestore reads+writes", "", "<= 6", lambda v: v <= 6),
    "nochange_latency_ms": ("no-change sync: latency", "ms", "", None),
    "changed1pct_latency_ms": ("1% changed sync: latency", "ms", "", None),
    "changed1pct_firestore_writes": ("1% changed sync: Firestore writes", "", "", None),
    "fanout_members_per_s": ("fan-out throughput", "messages/s", "", None),
    "fanout_total_s": ("fan-out total time", "s", "<= 20 (100,000 members)", None),
    "match_attendees_per_s": ("matching (1 core)", "attendees/s", ">= 500,000", lambda v: v >= 500_000),
    "peak_rss_mb_50k": ("full sync peak RSS", "MB", "<= 300", lambda v: v <= 300),
    "cold_start_ms_sync_worker": ("cold start: sync_worker", "ms", "", None),
    "cold_start_ms_schedule_sync": ("cold start: schedule_sync", "ms", "", None),
    "cold_start_ms_oauth_callback": ("cold start: oauth_callback", "ms", "", None),
    "rematch_docs_read": ("re-match, 1 new user in 100k meetings: docs read", "", "", None),
    "rematch_latency_ms": ("re-match, 1 new user in 100k meetings: latency", "ms", "", None),
    "exclude_docs_read": ("exclusion of 1 domain added: docs read", "", "", None),
    "exclude_meetings_mentioning": ("exclusion of 1 domain added: meetings mentioning it", "", "", None),
    "exclude_meetings_stored": ("exclusion of 1 domain added: meetings stored", "", "", None),
    "calendar_requests_per_member_day": (
        "push on, quiet calendar: Calendar requests per member-day",
        "",
        "<= 10",
        lambda v: v <= 10,
    ),
    "calendar_requests_per_member_day_polling": (
        "push off (polling every 15 min): Calendar requests per member-day",
        "",
        "= 96",
        lambda v: v == 96,
    ),
    "push_freshness_p50_s": ("push: change -> stored interaction, p50", "s", "", None),
    "push_freshness_p95_s": ("push: change -> stored interaction, p95", "s", "<= 5", lambda v: v <= 5),
    "push_freshness_max_s": ("push: change -> stored interaction, max", "s", "", None),
    "push_freshness_worker_runs": ("push: worker runs for the changes", "", "", None),
    "push_burst_list_calls": (
        "push: 50 notifications in 1 s: events.list calls",
        "",
        "<= 2",
        lambda v: v <= 2,
    ),
    "push_burst_notifications_queued": ("push burst: notifications that queued a job", "", "", None),
    "push_burst_notifications_coalesced": ("push burst: notifications coalesced", "", "", None),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _format(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,.0f}"


def print_table(figures: dict[str, float], smoke: bool, fanout_members: int) -> None:
    rows = [("figure", "key", "median", "target", "met")]
    for key, (label, unit, target, check) in FIGURES.items():
        if key not in figures:
            continue
        value = figures[key]
        met = ""
        if key == "fanout_total_s":
            met = "" if smoke or fanout_members < 100_000 else ("yes" if value <= 20 else "NO")
        elif check is not None and not smoke:
            met = "yes" if check(value) else "NO"
        rows.append((label, key, f"{_format(value)} {unit}".strip(), target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _run_in_sandbox(
    selected: list[str],
    smoke: bool,
    sizes: scenarios.Sizes,
    push_sizes: push.PushSizes,
    started: float,
    collect: Callable[[dict[str, Any]], None],
) -> None:
    """The scenarios of the benchmark's own sandbox (emulators and stand-in, in-process services)."""
    with bench_sandbox() as sandbox:
        tenant = scenarios.SyncTenant(sandbox, sizes, _log)
        steps = {
            "full_sync": lambda: scenarios.full_sync(tenant, sizes, _log),
            "nochange": lambda: scenarios.nochange(tenant, sizes, _log),
            "changed": lambda: scenarios.changed(tenant, sizes, _log),
            "fanout": lambda: scenarios.fanout(sandbox, sizes, _log),
            "matching": lambda: scenarios.matching(sizes, _log),
            "memory": lambda: scenarios.memory(tenant, sizes, _log),
            "cold_start": lambda: scenarios.cold_start(tenant, sizes, _log),
            "rematch": lambda: rematch.run(smoke, sandbox, _log),
            "exclude": lambda: exclude.run(smoke, sandbox, _log),
            "push_requests": lambda: push_day.quiet_day(sandbox, push_sizes, _log),
        }
        for name in selected:
            _log(f"[{time.perf_counter() - started:6.1f}s] {name}")
            collect(steps[name]())


def _run_in_pipeline(
    selected: list[str], push_sizes: push.PushSizes, started: float, collect: Callable[[dict[str, Any]], None]
) -> None:
    """The push scenarios of the whole local pipeline (its own emulators, stand-in and functions)."""
    _log(f"[{time.perf_counter() - started:6.1f}s] starting the local pipeline (push on)")
    with push.pipeline(push_sizes, _log) as pipe:
        steps = {
            "push_freshness": lambda: push.freshness(pipe, push_sizes, _log),
            "push_burst": lambda: push.burst(pipe, push_sizes, _log),
        }
        for name in selected:
            _log(f"[{time.perf_counter() - started:6.1f}s] {name}")
            collect(steps[name]())


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run (checks the bench works)")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results file (default bench/results.json)"
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 3; 1 with --smoke)")
    args = parser.parse_args(argv)
    sizes = scenarios.SMOKE if args.smoke else scenarios.FULL
    if args.runs:
        sizes = dataclasses.replace(sizes, runs=args.runs, cold_runs=args.runs)
    selected = args.only or list(SCENARIOS)
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {}

    def collect(result: dict[str, Any]) -> None:
        details.update(result.pop("_details", {}))
        figures.update(result)

    push_sizes = push.SMOKE if args.smoke else push.FULL
    in_sandbox = [name for name in SCENARIOS if name in selected and name not in PIPELINE_SCENARIOS]
    if in_sandbox:
        _run_in_sandbox(in_sandbox, args.smoke, sizes, push_sizes, started, collect)
    in_pipeline = [name for name in PIPELINE_SCENARIOS if name in selected]
    if in_pipeline:
        _run_in_pipeline(in_pipeline, push_sizes, started, collect)
    elapsed = time.perf_counter() - started

    out: dict[str, Any] = {}
    if args.only and args.out.exists():  # keep the other figures of an earlier run
        out = json.loads(args.out.read_text())
    out.update({k: float(v) for k, v in figures.items()})
    out.setdefault("details", {}).update(details)
    meta = {
        "smoke": args.smoke,
        "runs": sizes.runs,
        "sizes": dataclasses.asdict(sizes),
        "push_sizes": dataclasses.asdict(push_sizes),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "elapsed_s": round(elapsed, 1),
    }
    if args.only and isinstance(out.get("meta"), dict):  # the earlier run's meta stays; this run's is added
        out["meta"].setdefault("partial_runs", {})[",".join(selected)] = meta
    else:
        out["meta"] = meta
    bad = [k for k, v in figures.items() if not math.isfinite(float(v))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, sort_keys=False) + "\n")
    print()
    print_table(figures, args.smoke, sizes.fanout_members)
    print(f"\n{len(figures)} figures in {elapsed:.0f}s -> {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(run())
