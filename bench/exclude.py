"""Benchmark: adding ONE domain exclusion to a tenant with many stored meetings (smoke: ~1,000).

    python -m bench.exclude [--smoke]      (also part of `python -m bench`, `--only exclude`)

Setup (not measured): the same synthetic tenant as `bench.rematch` (directory imported, members'
synthetic calendars stored through the sync's own planning and the meeting store), on a Firestore
emulator of its own. The domain excluded is the domain of the most frequent non-user address in
the stored meetings; how many meetings mention it, and how many are stored in all, are counted
beforehand with aggregation queries (not part of the measurement).

Measured: `change_exclusions(--add @domain)` for the tenant, as `calsync exclude` runs it (write
the list, find the meetings through the `domains array-contains-any` index, re-plan them with the
exclusion in place, commit). Firestore operations are counted at the client's RPC layer
(`bench.counting`):

- `exclude_docs_read`: every document read (the tenant for the list, the index query, the meetings
  it found, the directory lookups of their attendees, the tenant again and the members);
- `exclude_meetings_mentioning`: stored meetings whose `domains[]` hold the domain;
- `exclude_meetings_stored`: all the stored meetings of the tenant;
- `exclude_copies_removed`, `exclude_latency_ms`.

The point: the reads follow the meetings that mention the domain (about 2 per meeting plus a few
dozen), not the number stored.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from typing import Any

from bench.counting import FirestoreOps
from bench.rematch import Log, _fill_tenant, _log, _own_firestore
from bench.sandbox import BenchSandbox
from bench.synthetic import TENANT
from shared import bootstrap

FULL = {"meetings": 20_000, "members": 10, "accounts": 2_000, "runs": 1}
SMOKE = {"meetings": 1_000, "members": 2, "accounts": 200, "runs": 1}


def run(smoke: bool = False, sandbox: BenchSandbox | None = None, log: Log = _log) -> dict[str, float]:
    """The figures of one exclusion added, on a Firestore emulator of its own."""
    sizes = SMOKE if smoke else FULL
    with _own_firestore(sandbox.run_id if sandbox else secrets.token_hex(3)):
        addresses = _fill_tenant(sizes, log)
        domain = addresses[0][0].rpartition("@")[2]
        return _measure(domain, log)


def _count(query: Any) -> int:
    (result,) = query.count().get()
    return int(result[0].value)


def _measure(domain: str, log: Log) -> dict[str, float]:
    from google.cloud import firestore

    from shared.services.exclusions import change_exclusions

    client = bootstrap.firestore_client()
    meetings = client.collection("tenants").document(TENANT).collection("meetings")
    stored = _count(meetings)
    mentioning = _count(meetings.where(filter=firestore.FieldFilter("domains", "array_contains", domain)))
    ops = FirestoreOps().attach(client)
    started = time.perf_counter()
    try:
        summary = change_exclusions(bootstrap.exclusion_deps(), TENANT, None, add=[f"@{domain}"])
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        ops.detach()
    purge = summary.purge
    assert purge is not None
    left = _count(meetings.where(filter=firestore.FieldFilter("domains", "array_contains", domain)))
    log(
        f"  exclude: @{domain} in {mentioning} of {stored} stored meetings -> {purge.meetings} re-evaluated, "
        f"{purge.copies_removed} copies and {purge.removed} interactions removed, {left} left; "
        f"{ops.reads} reads, {ops.writes} writes, {ops.queries} queries, {elapsed_ms:.0f} ms"
    )
    return {
        "exclude_docs_read": float(ops.reads),
        "exclude_meetings_mentioning": float(mentioning),
        "exclude_meetings_stored": float(stored),
        "exclude_copies_removed": float(purge.copies_removed),
        "exclude_latency_ms": elapsed_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exclude", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="~1,000 stored meetings instead of 20,000")
    args = parser.parse_args(argv)
    print(json.dumps(run(smoke=args.smoke), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
