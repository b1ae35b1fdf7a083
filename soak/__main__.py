"""`python -m soak [--seed N] [--members 200] [--tenants 3] [--rounds 5] [--out bench/soak.json]
[--short]`: the fault soak (README.md#fault-soak). Exits 1 when the run did not end quiescent
within its deadline or found any difference from the fault-free reference."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from soak.faults import FaultSettings
from soak.pipeline import PipelineSettings
from soak.report import execute, write_report
from soak.run import SoakConfig


def parse(argv: Sequence[str] | None = None) -> SoakConfig:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--members", type=int, default=None, help="default 200 (short: 20)")
    parser.add_argument("--tenants", type=int, default=None, help="default 3 (short: 1)")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (short: 2)")
    parser.add_argument("--round-s", type=float, default=None, help="seconds per round (30; short 12)")
    parser.add_argument("--events", type=int, default=None, help="events per member (50; short 30)")
    parser.add_argument("--deadline-s", type=float, default=None, help="global deadline (720; short 150)")
    parser.add_argument("--out", type=Path, default=Path("bench/soak.json"))
    parser.add_argument("--short", action="store_true", help="1 tenant, 20 members, 2 rounds, ~2 minutes")
    parser.add_argument(
        "--race-directory",
        action="store_true",
        help="also add a guest to a meeting and the same person to the directory at once",
    )
    args = parser.parse_args(argv)
    short = bool(args.short)

    def pick(value: float | None, full: float, small: float) -> float:
        return value if value is not None else (small if short else full)

    return SoakConfig(
        seed=args.seed,
        members=int(pick(args.members, 200, 20)),
        tenants=int(pick(args.tenants, 3, 1)),
        rounds=int(pick(args.rounds, 5, 2)),
        round_s=pick(args.round_s, 30.0, 12.0),
        events=int(pick(args.events, 50, 30)),
        deadline_s=pick(args.deadline_s, 720.0, 150.0),
        out=args.out,
        short=short,
        race_directory=bool(args.race_directory),
        pipeline=PipelineSettings(lease_ttl_s=20.0, lease_fence_s=5.0, firestore_heap="512m")
        if short
        else PipelineSettings(),
        faults=FaultSettings(gap_s=(0.5, 1.5), firestore_stop_s=(3.0, 6.0)) if short else FaultSettings(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(argv)
    report, passed = execute(config)
    write_report(report, config)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
