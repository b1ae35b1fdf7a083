"""The push-notification benchmarks (docs/benchmarks.md#push-notifications).

- `freshness`: through the whole local pipeline (`local_sandbox(push=True)`: stand-in ->
  calendar_notification -> Pub/Sub emulator push -> sync_worker -> Firestore emulator), how
  long a calendar change takes to become a stored interaction;
- `burst`: the same pipeline, 50 notifications of one member within a second -> how many
  `events.list` calls they cost (coalescing);
- `push_day.quiet_day` (bench/push_day.py): Calendar requests per member and day of quiet
  calendars, with push and with polling, on a moved clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import synthetic
from bench.synthetic import TENANT, CalendarGenerator, DirectoryShape
from shared import bootstrap
from shared.domain.events import meeting_key_of
from shared.sandbox import emulators
from shared.sandbox.google_standin import GoogleStandIn
from shared.sandbox.local import LocalSandbox, local_sandbox

Log = Callable[[str], None]
SHAPE = DirectoryShape(accounts=50, users_per_account=2, colleagues=3)
EVENTS_PER_MEMBER = 20


@dataclass(frozen=True)
class PushSizes:
    members: int  # freshness: members watched
    changes: int  # freshness: changes spread over them
    change_rate_per_s: float  # freshness: a steady stream
    burst: int  # burst: notifications of one member
    burst_window_s: float
    quiet_members: int  # quiet day: members with push on
    poll_members: int  # quiet day: members polled (push off)
    quiet_days: int  # quiet day: simulated days with push on (the first one is reported)


FULL = PushSizes(20, 100, 10.0, 50, 1.0, 20, 20, 7)
SMOKE = PushSizes(3, 6, 10.0, 10, 0.5, 2, 1, 1)


def day_start() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def new_event(email: str, n: int, anchor: datetime, shape: DirectoryShape) -> dict[str, Any]:
    """A new meeting of `email` with one customer of the directory: one new interaction."""
    event_id = f"pushbench{n:06d}{os.getpid() % 10_000:04d}"
    start = anchor - timedelta(days=1 + n % 5, hours=-(9 + n % 8))
    customer = synthetic.user_email(n % shape.accounts, 0)
    return {
        "kind": "calendar#event",
        "id": event_id,
        "iCalUID": f"{event_id}@google.com",
        "status": "confirmed",
        "summary": f"Push check {n}",
        "organizer": {"email": email, "self": True},
        "creator": {"email": email, "self": True},
        "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=30)).isoformat(), "timeZone": "UTC"},
        "attendees": [
            {"email": email, "self": True, "organizer": True, "responseStatus": "accepted"},
            {"email": customer, "responseStatus": "accepted"},
        ],
        "eventType": "default",
    }


# --- a synthetic tenant, connected through the real services -----------------------------------


def prepare_tenant(standin: GoogleStandIn, member_ids: list[str], anchor: datetime) -> None:
    """Directory imported with the import service, a small calendar per member in the stand-in,
    each member connected with a stand-in token (`calsync set-token`'s service)."""
    from shared.services.directory_import import import_directory

    directory = synthetic.directory_file(SHAPE, member_ids)
    import_directory(json.dumps(directory).encode(), bootstrap.directory_store())
    connect = bootstrap.connect_service(full_oauth=False)
    for member_id in member_ids:
        generator = CalendarGenerator(member_id, SHAPE, anchor)
        standin.calendar(generator.email).load_events(generator.events(EVENTS_PER_MEMBER))
        token = standin.issue_refresh_token(generator.email)
        connect.set_token(TENANT, member_id, token)


# --- the pipeline scenarios ----------------------------------------------------------------------


@dataclass
class Pipeline:
    sandbox: LocalSandbox
    members: list[str]
    anchor: datetime
    setup_s: float


@contextlib.contextmanager
def pipeline(sizes: PushSizes, log: Log) -> Iterator[Pipeline]:
    """The local sandbox with push on and `sizes.members` members synced and watched."""
    with local_sandbox(f"bench-push-{os.getpid()}", log=lambda line: log(f"  {line}"), push=True) as sandbox:
        started = time.perf_counter()
        anchor = day_start()
        members = [f"push-{i:02d}" for i in range(sizes.members)]
        since = datetime.now(UTC)
        prepare_tenant(sandbox.standin, members, anchor)
        sandbox.run_scheduler()
        sandbox.wait_until_synced(members, since, TENANT, timeout_s=180)
        sandbox.wait_until_watched(members, TENANT, timeout_s=120)
        settle(sandbox, members)
        setup_s = time.perf_counter() - started
        log(f"  {len(members)} members synced and watched in {setup_s:.1f}s")
        yield Pipeline(sandbox, members, anchor, setup_s)


def settle(sandbox: LocalSandbox, members: list[str], quiet_s: float = 2.0, timeout_s: float = 120.0) -> None:
    """Until the notifier is idle, no lease or push job is pending and the worker has logged
    nothing new for `quiet_s`."""
    store = bootstrap.member_store()
    deadline = time.monotonic() + timeout_s
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        idle = sandbox.standin.push.wait_idle(timeout=5.0)
        states = [store.get_member(TENANT, m).calendar for m in members]
        pending = any(s.lease_owner is not None or s.push_queued_at is not None for s in states)
        count = len(sandbox.worker_summaries())
        if count != seen or pending or not idle:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        time.sleep(0.25)
    raise TimeoutError(f"the pipeline did not settle within {timeout_s:.0f}s\n{sandbox.host.log_tail(20)}")


def _stream(pipe: Pipeline, sizes: PushSizes, timeout_s: float) -> dict[str, float]:
    """Changes at `change_rate_per_s`, round-robin over the members, while polling the meeting
    store every 100 ms (one batched read of the keys still awaited); meeting key -> delay."""
    standin, meetings = pipe.sandbox.standin, bootstrap.meeting_store()
    changed_at: dict[str, float] = {}
    delays: dict[str, float] = {}
    started = time.monotonic()
    n = 0
    while len(delays) < sizes.changes and time.monotonic() - started < timeout_s:
        while n < sizes.changes and time.monotonic() - started >= n / sizes.change_rate_per_s:
            email = synthetic.member_email(pipe.members[n % len(pipe.members)])
            event = new_event(email, n, pipe.anchor, SHAPE)
            changed_at[str(meeting_key_of(event))] = time.monotonic()
            standin.calendar(email).upsert_event(event)
            n += 1
        awaited = [k for k in changed_at if k not in delays]
        if awaited:
            found = meetings.read_meetings(TENANT, awaited)
            seen = time.monotonic()
            delays.update({k: seen - changed_at[k] for k in awaited if found[k].version is not None})
        time.sleep(0.1)
    if len(delays) < sizes.changes:
        raise TimeoutError(f"{sizes.changes - len(delays)} changes not stored within {timeout_s:.0f}s")
    return delays


def freshness(pipe: Pipeline, sizes: PushSizes, log: Log, timeout_s: float = 120.0) -> dict[str, Any]:
    """A steady stream of changes over the members; each change's delay until its interaction's
    meeting is stored (meeting and interactions are written in one commit)."""
    pushes_before = pipe.sandbox.push_syncs()
    delivered_before = pipe.sandbox.standin.push.counters()["delivered"]
    values = list(_stream(pipe, sizes, timeout_s).values())
    settle(pipe.sandbox, pipe.members)
    push_runs = pipe.sandbox.push_syncs() - pushes_before
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    log(
        f"  {len(values)} changes: p50 {p50:.2f}s, p95 {p95:.2f}s, max {max(values):.2f}s; "
        f"{push_runs} push-triggered worker runs"
    )
    return {
        "push_freshness_p50_s": p50,
        "push_freshness_p95_s": p95,
        "push_freshness_max_s": max(values),
        "push_freshness_worker_runs": push_runs,
        "_details": {
            "push_freshness": {
                "members": len(pipe.members),
                "changes": len(values),
                "change_rate_per_s": sizes.change_rate_per_s,
                "mean_s": round(statistics.fmean(values), 3),
                "notifications_delivered": pipe.sandbox.standin.push.counters()["delivered"]
                - delivered_before,
                "setup_s": round(pipe.setup_s, 1),
                "poll_interval_s": 0.1,
            }
        },
    }


def _notification_outcomes(sandbox: LocalSandbox, skip_lines: int, member_id: str) -> dict[str, int]:
    """`outcome` of the "notification answered" lines of `member_id` after the first lines."""
    outcomes: dict[str, int] = {}
    for record in emulators.json_records(sandbox.host.log_lines()[skip_lines:]):
        if record.get("message") == "notification answered" and record.get("member_id") == member_id:
            outcome = str(record.get("outcome"))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def burst(pipe: Pipeline, sizes: PushSizes, log: Log) -> dict[str, Any]:
    """`sizes.burst` changes of one member's calendar within `burst_window_s` (one `exists`
    notification each), then the `events.list` calls made until everything settled."""
    sandbox, member = pipe.sandbox, pipe.members[0]
    settle(sandbox, pipe.members)
    email = synthetic.member_email(member)
    calendar = sandbox.standin.calendar(email)
    log_lines = len(sandbox.host.log_lines())
    first_request = len(sandbox.standin.requests)
    pushes_before = sandbox.push_syncs()
    started = time.monotonic()
    for n in range(sizes.burst):
        calendar.upsert_event(new_event(email, 100_000 + n, pipe.anchor, SHAPE))
        time.sleep(max(0.0, started + (n + 1) * sizes.burst_window_s / sizes.burst - time.monotonic()))
    burst_s = time.monotonic() - started
    settle(sandbox, pipe.members)
    after = sandbox.standin.requests.snapshot()[first_request:]
    lists = sum(1 for s, m, p in after if s == "calendar" and m == "GET" and p.endswith("/events"))
    outcomes = _notification_outcomes(sandbox, log_lines, member)
    log(f"  {sizes.burst} changes in {burst_s:.2f}s -> {lists} events.list calls; notifications: {outcomes}")
    return {
        "push_burst_list_calls": lists,
        "push_burst_notifications_queued": outcomes.get("queued", 0),
        "push_burst_notifications_coalesced": outcomes.get("coalesced", 0),
        "_details": {
            "push_burst": {
                "changes": sizes.burst,
                "burst_s": round(burst_s, 3),
                "outcomes": outcomes,
                "push_worker_runs": sandbox.push_syncs() - pushes_before,
                "calendar_requests": sum(1 for s, _, _ in after if s == "calendar"),
            }
        },
    }
