"""Benchmark: re-matching after ONE new user in a tenant with 100,000 stored meetings (smoke: ~1,000).

    python -m bench.rematch [--smoke]      (also part of `python -m bench`)

Setup (not measured): the synthetic directory is imported; members' synthetic calendars
(`bench.synthetic`) become stored meetings and interactions through the sync's own path (Google
payload -> `events.event_from_google` -> `planning.plan_member_changes` ->
`FirestoreMeetingStore.apply`), without the Calendar stand-in (the `full_sync` scenario measures
that part), so the 100,000 meetings take a minute or two rather than the length of a full sync.

Measured, per run: a contact the CS platform adds to the directory, written as it would write it
(`email`, `name`, `accountId`, no derived `emailKey`), for an address that occurs in the stored
meetings without being a user (the most frequent such address: the worst case the data offers),
then `rematch_directory_change` for that document's event, as `directory_changed` runs it.
Firestore operations are counted at the client's RPC layer (`bench.counting`):

- `rematch_docs_read`: every document read (the user document for the emailKey fix, the
  `emails array-contains-any` query, the meetings it found, the directory lookups for those
  meetings' attendees, the tenant and the members' addresses);
- `rematch_latency_ms`: wall time of the re-match (fix, find, read, plan, write);
- `rematch_meetings`: meetings the change concerned (re-evaluated);
- `rematch_find_ms`: the part of the latency spent in the `emails array-contains-any` query;
- `rematch_latency_outside_queries_ms`: the latency minus the queries (the index query and the
  directory lookups): the fix, reading the meetings, planning, the commit.

The point: the reads follow the meetings containing the new address, not the 100,000. On the
emulator the latency does not: the emulator has no indexes and answers queries by scanning, so
each query's time grows with the data it holds (the find takes ~0.3 s at 1,000 meetings, 10-20 s
at 100,000, and the directory lookups as long again). Firestore serves both from single-field
indexes; `rematch_latency_outside_queries_ms` is the part of the latency the emulator measures
faithfully.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import synthetic
from bench.counting import FirestoreOps
from bench.sandbox import BenchSandbox
from bench.synthetic import TENANT, CalendarGenerator, DirectoryShape
from shared import bootstrap
from shared.sandbox import emulators
from shared.sandbox.local import configured

Log = Callable[[str], None]

FULL = {"meetings": 100_000, "members": 10, "accounts": 5_000, "runs": 3}
SMOKE = {"meetings": 1_000, "members": 2, "accounts": 200, "runs": 1}
CHUNK = 150  # meetings planned and written per commit while filling the tenant
# 100,000 meetings with their interactions take ~2.5 GB of emulator heap: the scenario runs on a
# Firestore emulator of its own, so it neither starves nor is starved by the other scenarios'.
FIRESTORE_HEAP = "6g"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(smoke: bool = False, sandbox: BenchSandbox | None = None, log: Log = _log) -> dict[str, float]:
    """The figures (medians over runs). Always on a Firestore emulator of its own (`sandbox`,
    when `python -m bench` passes it, is not needed: nothing here uses the stand-in)."""
    sizes = SMOKE if smoke else FULL
    with _own_firestore(sandbox.run_id if sandbox else secrets.token_hex(3)):
        addresses = _fill_tenant(sizes, log)
        return _measure(addresses, sizes["runs"], log)


@contextlib.contextmanager
def _own_firestore(run_id: str) -> Iterator[None]:
    """A Firestore emulator with FIRESTORE_HEAP, this process pointed at it meanwhile."""
    jar = emulators.firestore_jar()
    if jar is None:
        raise emulators.EmulatorsUnavailable(emulators.missing_reason() or "no Firestore emulator jar")
    port = emulators.free_port()
    argv = ["java", "-Duser.language=en", f"-Xmx{FIRESTORE_HEAP}", "-cp", str(jar)]
    argv += [
        "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    process = emulators.start_process(
        "firestore-emulator-rematch", argv, f"http://127.0.0.1:{port}/", f"127.0.0.1:{port}"
    )
    env = {"FIRESTORE_EMULATOR_HOST": process.host, "GOOGLE_CLOUD_PROJECT": f"bench-rematch-{run_id}"}
    try:
        with configured(env):
            yield
    finally:
        process.stop()


def _fill_tenant(sizes: dict[str, int], log: Log) -> list[tuple[str, int]]:
    """Import the directory and store `meetings` meetings; returns the addresses that occur in
    stored meetings without being users, most frequent first (with their meeting counts)."""
    from shared.domain import events as event_rules
    from shared.domain.directory_file import parse_directory
    from shared.domain.matching import MatchingContext
    from shared.domain.models import Account, DirectorySnapshot, EventHeld, MeetingRecord, StoredMeeting
    from shared.domain.planning import plan_member_changes
    from shared.services.directory_import import import_directory

    shape = DirectoryShape(accounts=sizes["accounts"], users_per_account=5, colleagues=10)
    members = [f"rm-{i}" for i in range(sizes["members"])]
    raw = json.dumps(synthetic.directory_file(shape, members)).encode()
    started = time.perf_counter()
    import_directory(raw, bootstrap.directory_store())
    directory = parse_directory(raw)
    log(
        f"  rematch: directory imported ({sizes['accounts']} accounts) "
        f"in {time.perf_counter() - started:.1f}s"
    )

    users: dict[str, list[Any]] = {}
    for user in directory.users:
        users.setdefault(user.email, []).append(user)
    accounts: dict[str, list[Account]] = {}
    for row in directory.accounts:
        for domain in row.domains:
            accounts.setdefault(domain, []).append(Account(row.id, row.name, row.domains))
    member_emails = frozenset(m.email for m in directory.members)
    context = MatchingContext(
        tenant=directory.tenant,
        member_emails=member_emails,
        directory=DirectorySnapshot(
            users_by_email={e: tuple(u) for e, u in users.items()},
            accounts_by_domain={d: tuple(a) for d, a in accounts.items()},
        ),
    )
    now = datetime.now(UTC)
    anchor = datetime(now.year, now.month, now.day, tzinfo=UTC)
    window_start = now - timedelta(days=directory.tenant.settings.backfill_days)
    store = bootstrap.meeting_store()
    per_member = -(-sizes["meetings"] // len(members))
    counts: Counter[str] = Counter()
    stored = 0
    started = time.perf_counter()

    def chunks() -> Iterator[tuple[str, list[Any]]]:
        for member in members:
            generator = CalendarGenerator(member, shape, anchor, seed=11)
            held: list[Any] = []
            k = 0
            while len(held) < per_member:
                change = event_rules.event_from_google(
                    generator.event(k),
                    member_id=member,
                    member_email=generator.email,
                    calendar_time_zone="Europe/Stockholm",
                    settings=directory.tenant.settings,
                    window_start=window_start,
                    generation=1,
                )
                k += 1
                if isinstance(change, EventHeld):
                    held.append(change)
                    if len(held) % CHUNK == 0:
                        yield member, held[-CHUNK:]
            if len(held) % CHUNK:
                yield member, held[-(len(held) % CHUNK) :]

    def write(member: str, changes: list[Any]) -> int:
        keys = {c.copy.meeting_key for c in changes}
        empty = {k: StoredMeeting(MeetingRecord(meeting_key=k, copies={}), None) for k in keys}
        plan = plan_member_changes(
            member_id=member,
            changes=changes,
            stored=empty,
            event_keys={},
            context=context,
            now=now,
            window_start=window_start,
        )
        store.apply(TENANT, plan)
        return len(plan.meeting_writes)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = []
        for member, changes in chunks():
            for change in changes:
                for attendee in change.copy.attendees:
                    email = attendee.email
                    if (
                        email not in users
                        and email not in member_emails
                        and not email.endswith(f"@{synthetic.INTERNAL_DOMAIN}")
                    ):
                        counts[email] += 1
            futures.append(pool.submit(write, member, changes))
        for future in futures:
            stored += future.result()
    log(f"  rematch: {stored} meetings stored in {time.perf_counter() - started:.1f}s")
    # Resources (rooms) are never considered; skip them as candidates for a new contact.
    return [(e, n) for e, n in counts.most_common() if "@resource.calendar.google.com" not in e]


class _Timed:
    """A store whose calls are timed, by method name (where the latency goes)."""

    def __init__(self, store: Any, seconds: dict[str, float]) -> None:
        self._store = store
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if not callable(method):
            return method

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
                return list(result) if name == "meeting_keys_for_addresses" else result
            finally:
                self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - started

        return timed


def _measure(addresses: list[tuple[str, int]], runs: int, log: Log) -> dict[str, float]:
    from dataclasses import replace

    from shared.services.ports import DirectoryChange
    from shared.services.rematch import rematch_directory_change

    client = bootstrap.firestore_client()
    base = bootstrap.rematch_deps()
    users = client.collection("tenants").document(TENANT).collection("users")
    reads: list[float] = []
    latencies: list[float] = []
    concerned: list[float] = []
    finds: list[float] = []
    outside: list[float] = []
    for run_index, (email, occurrences) in enumerate(addresses[:runs]):
        user_id = f"u-new-{run_index}"
        document = {"email": email, "name": "New Contact", "accountId": "acc-00000"}
        users.document(user_id).set(document)
        seconds: dict[str, float] = {}
        deps = replace(
            base, meetings=_Timed(base.meetings, seconds), directory=_Timed(base.directory, seconds)
        )
        ops = FirestoreOps().attach(client)
        started = time.perf_counter()
        try:
            summary = rematch_directory_change(
                deps, DirectoryChange(TENANT, "users", user_id, None, document)
            )
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            ops.detach()
        reads.append(ops.reads)
        latencies.append(elapsed_ms)
        concerned.append(summary.meetings)
        finds.append(seconds.get("meeting_keys_for_addresses", 0.0) * 1000)
        queries_ms = (seconds.get("meeting_keys_for_addresses", 0.0) + seconds.get("lookup", 0.0)) * 1000
        outside.append(elapsed_ms - queries_ms)
        where = ", ".join(
            f"{name} {s * 1000:.0f}" for name, s in sorted(seconds.items(), key=lambda i: -i[1])
        )
        log(
            f"  rematch: new user in {occurrences} stored meetings -> {summary.meetings} re-evaluated, "
            f"{summary.changed} interactions changed; {ops.reads} reads, {ops.writes} writes, "
            f"{ops.queries} queries, {elapsed_ms:.0f} ms (ms per store call: {where})"
        )
    return {
        "rematch_docs_read": statistics.median(reads),
        "rematch_latency_ms": statistics.median(latencies),
        "rematch_meetings": statistics.median(concerned),
        "rematch_find_ms": statistics.median(finds),
        "rematch_latency_outside_queries_ms": statistics.median(outside),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rematch", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="~1,000 stored meetings instead of 100,000")
    args = parser.parse_args(argv)
    figures = run(smoke=args.smoke)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
