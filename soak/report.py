"""The whole soak run and its report (printed and written to bench/soak.json)."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any

from shared import logs
from soak.check import Difference
from soak.faults import FaultInjector
from soak.run import DeadlineReached, Soak, SoakConfig


def execute(config: SoakConfig) -> tuple[dict[str, Any], bool]:
    """Run the soak; returns the report and whether it passed (quiescent, no difference)."""
    logs.configure(level="WARNING", stream="stderr")
    begun = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - begun:6.1f}s] {line}", flush=True)

    soak = Soak(config, log)
    injector = FaultInjector(soak.pipeline, soak.world, config.seed, config.faults, log)
    report: dict[str, Any] = {"quiescent": False, "differences": None, "error": None}
    differences: list[Difference] = []
    try:
        soak.set_up()
        injector.start()
        try:
            soak.run_rounds(injector)
        finally:
            injector.stop()
        report |= soak.settle()
        report["dead_letters"] = soak.pipeline.drain_dead_letters()
        differences, compared = soak.reference()
        report["interactions_compared"] = compared
        report["differences"] = len(differences)
        for difference in differences:
            log(f"DIFFERENCE {difference.line()}")
    except DeadlineReached as error:
        report["error"] = str(error)
        log(f"STOPPED: {error}")
    except Exception as error:  # reported (and the run fails) rather than lost in a traceback
        report["error"] = f"{type(error).__name__}: {error}"
        log(f"FAILED during {soak.phase}: {report['error']}")
        import traceback

        traceback.print_exc()
    finally:
        report |= _figures(soak, injector, config)
        report["wall_time_s"] = round(time.monotonic() - begun, 1)
        soak.pipeline.stop()
    report["difference_list"] = [d.__dict__ for d in differences[:200]]
    passed = bool(report["quiescent"]) and report["differences"] == 0
    report["passed"] = passed
    return report, passed


def _figures(soak: Soak, injector: FaultInjector, config: SoakConfig) -> dict[str, Any]:
    records = soak.pipeline.worker_records()
    finished = [r for r in records if r.get("message") == "sync finished"]
    failed = [r for r in records if r.get("message") == "sync failed; Pub/Sub will redeliver"]
    outcomes = Counter(str(r.get("outcome")) for r in finished)
    notes = soak.pipeline.notification_records() if soak.pipeline.rest is not None else []
    answered = Counter(str(r.get("outcome")) for r in notes if r.get("message") == "notification answered")
    return {
        "seed": config.seed,
        "short": config.short,
        "race_directory": config.race_directory,
        "members": len(soak.tokens) or config.members,
        "tenants": config.tenants,
        "rounds": config.rounds,
        "round_s": config.round_s,
        "meetings": len(soak.world.meetings),
        "changes": dict(sorted(soak.changes.items())),
        "faults": {kind: injector.counts.get(kind, 0) for kind in sorted(set(injector.counts) | _kinds())},
        "fault_errors": injector.errors,
        "worker_kills_mid_page": injector.kills_mid_page,
        "worker_deliveries": len(finished) + len(failed),
        "worker_outcomes": dict(sorted(outcomes.items())),
        "redeliveries": len(failed),
        "duplicates_suppressed": {
            "worker_busy": outcomes.get("busy", 0),
            "notifications_coalesced": answered.get("coalesced", 0),
        },
        "notifications": dict(sorted(answered.items())),
        "notifier": soak.pipeline.standin.push.counters(),
        "peak_worker_rss_mb": round(soak.pipeline.final_rss() / 1024, 1),
        "settings": {
            "budget_s": config.pipeline.budget_s,
            "backstop_s": config.pipeline.backstop_s,
            "lease_ttl_s": config.pipeline.lease_ttl_s,
            "lease_fence_s": config.pipeline.lease_fence_s,
            "deadline_s": config.deadline_s,
            "firestore_heap": config.pipeline.firestore_heap,
        },
    }


def _kinds() -> set[str]:
    from soak.faults import FAULT_KINDS

    return set(FAULT_KINDS)


def write_report(report: dict[str, Any], config: SoakConfig) -> None:
    config.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, sort_keys=True, default=str)
    config.out.write_text(text + "\n")
    summary = {k: v for k, v in report.items() if k != "difference_list"}
    print(json.dumps(summary, indent=2, sort_keys=True, default=str))
    print(f"written to {config.out}", file=sys.stderr)
