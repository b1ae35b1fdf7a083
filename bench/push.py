"""The push-notification benchmarks (docs/benchmarks.md#push-notifications).

- `freshness`: through the whole local pipeline (`local_sandbox(push=True)`: stand-in ->
  calendar_notification -> Pub/Sub emulator push -> sync_worker -> Firestore emulator), how
  long a calendar change takes to become a stored interaction;
- `burst`: the same pipeline, 50 notifications of one member within a second -> how many
  `events.list` calls they cost (coalescing);
- `quiet_day`: in-process services with a moved clock against the emulators and a stand-in on
  the same clock, 15-minute scheduler ticks over simulated days -> Calendar requests per member
  and day, with push and with polling.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import synthetic
from bench.sandbox import BenchSandbox
from bench.synthetic import TENANT, CalendarGenerator, DirectoryShape
from shared import bootstrap
from shared.domain.events import meeting_key_of
from shared.sandbox.google_standin import GoogleStandIn
from shared.sandbox.local import LocalSandbox, local_sandbox
from shared.services.ports import SyncJob

Log = Callable[[str], None]
SHAPE = DirectoryShape(accounts=50, users_per_account=2, colleagues=3)
EVENTS_PER_MEMBER = 20
TICK = timedelta(minutes=15)
TICKS_PER_DAY = 96
CHANNEL_KEY = b"bench-channel-key-0123456789abcdef"


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


def _anchor() -> datetime:
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
        anchor = _anchor()
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


def freshness(pipe: Pipeline, sizes: PushSizes, log: Log, timeout_s: float = 120.0) -> dict[str, Any]:
    """A steady stream of changes over the members; each change's delay until its interaction's
    meeting is stored, polled every 100 ms (one batched read of the keys still awaited)."""
    standin, meetings = pipe.sandbox.standin, bootstrap.meeting_store()
    pushes_before = pipe.sandbox.push_syncs()
    delivered_before = standin.push.counters()["delivered"]
    changed_at: dict[str, float] = {}
    delays: dict[str, float] = {}
    started = time.monotonic()
    n = 0
    while len(delays) < sizes.changes and time.monotonic() - started < timeout_s:
        while n < sizes.changes and time.monotonic() - started >= n / sizes.change_rate_per_s:
            member = pipe.members[n % len(pipe.members)]
            event = new_event(synthetic.member_email(member), n, pipe.anchor, SHAPE)
            key = str(meeting_key_of(event))
            changed_at[key] = time.monotonic()
            standin.calendar(synthetic.member_email(member)).upsert_event(event)
            n += 1
        awaited = [k for k in changed_at if k not in delays]
        if awaited:
            found = meetings.read_meetings(TENANT, awaited)
            seen = time.monotonic()
            for key in awaited:
                if found[key].version is not None:
                    delays[key] = seen - changed_at[key]
        time.sleep(0.1)
    if len(delays) < sizes.changes:
        raise TimeoutError(f"{sizes.changes - len(delays)} changes not stored within {timeout_s:.0f}s")
    settle(pipe.sandbox, pipe.members)
    values = list(delays.values())
    push_runs = pipe.sandbox.push_syncs() - pushes_before
    log(
        f"  {len(values)} changes: p50 {percentile(values, 0.5):.2f}s, p95 {percentile(values, 0.95):.2f}s, "
        f"max {max(values):.2f}s; {push_runs} push-triggered worker runs"
    )
    return {
        "push_freshness_p50_s": percentile(values, 0.5),
        "push_freshness_p95_s": percentile(values, 0.95),
        "push_freshness_max_s": max(values),
        "push_freshness_worker_runs": push_runs,
        "_details": {
            "push_freshness": {
                "members": len(pipe.members),
                "changes": len(values),
                "change_rate_per_s": sizes.change_rate_per_s,
                "mean_s": round(statistics.fmean(values), 3),
                "notifications_delivered": standin.push.counters()["delivered"] - delivered_before,
                "setup_s": round(pipe.setup_s, 1),
                "poll_interval_s": 0.1,
            }
        },
    }


def _notification_outcomes(sandbox: LocalSandbox, skip_lines: int, member_id: str) -> dict[str, int]:
    """`outcome` of the "notification answered" lines of `member_id` after the first lines."""
    outcomes: dict[str, int] = {}
    lines = sandbox.host.log_path.read_text(errors="replace").splitlines()[skip_lines:]
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
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
    log_lines = len(sandbox.host.log_path.read_text(errors="replace").splitlines())
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


# --- the quiet day: in-process services on a moved clock ---------------------------------------


class MovedClock:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def now(self) -> datetime:
        return self.value


class _Receiver(BaseHTTPRequestHandler):
    """The notification URL of the quiet day: answers 200 to everything (no change comes)."""

    def do_POST(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/calendar_notification"
    finally:
        server.shutdown()
        server.server_close()


class _Jobs:
    """The job publisher of the simulation: keeps the jobs for the tick to run."""

    def __init__(self) -> None:
        self.jobs: list[SyncJob] = []

    def publish(self, jobs: Any) -> int:
        batch = list(jobs)
        self.jobs.extend(batch)
        return len(batch)


@contextlib.contextmanager
def _standin_env(standin: GoogleStandIn) -> Iterator[None]:
    """This process's configuration pointed at `standin` for the block."""
    names = {
        "CALSYNC_OAUTH_TOKEN_URI": standin.token_uri,
        "CALSYNC_OAUTH_AUTH_URI": standin.auth_uri,
        "CALSYNC_OAUTH_REVOKE_URI": standin.revoke_uri,
        "CALSYNC_CALENDAR_ENDPOINT": standin.calendar_endpoint,
        "CALSYNC_SECRET_MANAGER_ENDPOINT": standin.secret_manager_endpoint,
    }
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    bootstrap.reset()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        bootstrap.reset()


def _worker(clock: MovedClock, url: str | None, jobs: _Jobs) -> tuple[Any, Any]:
    """The worker's dependencies and settings, as `bootstrap.worker_deps()` builds them, on the
    moved clock; push on with a notification URL, off (polling) without."""
    from shared.services.channels import ChannelDeps, PushSettings
    from shared.services.sync import SyncSettings
    from shared.services.worker import WorkerDeps

    push_settings = PushSettings(notification_url=url, token_key=CHANNEL_KEY)
    channels = ChannelDeps(
        members=bootstrap.member_store(),
        channels=bootstrap.channel_store(),
        calendar=bootstrap.calendar_channels(),
        vault=bootstrap.token_vault(),
        clock=clock,
        settings=push_settings,
    )
    sync = replace(bootstrap.sync_deps(), clock=clock, publisher=jobs)
    backstop = float(push_settings.backstop_interval_s) if url else None
    settings = SyncSettings(budget_s=bootstrap.config().sync_budget_s, backstop_interval_s=backstop)
    return WorkerDeps(sync=sync, channels=channels, publisher=jobs), settings


def _tick(deps: Any, settings: Any, jobs: _Jobs, now: datetime) -> int:
    """One scheduler run at `now` (`schedule_sync`: due members held and published), then every
    job it published run by the worker's use case; returns how many jobs ran."""
    from shared.services.schedule import schedule_sync
    from shared.services.worker import run_sync_job

    deps.sync.clock.value = now
    jobs.jobs.clear()
    schedule_sync(deps.sync.members, jobs, now)
    ran = 0
    while jobs.jobs:
        job = jobs.jobs.pop(0)
        summary = run_sync_job(deps, job, settings)
        if summary.outcome != "synced":
            raise RuntimeError(f"{job.member_id} at {now}: {summary.outcome} {summary.error}")
        ran += 1
    return ran


def _kinds(requests: list[tuple[str, str, str]]) -> dict[str, int]:
    kinds = {"list": 0, "watch": 0, "stop": 0, "other": 0}
    for service, method, path in requests:
        if service != "calendar":
            continue
        if method == "GET" and path.endswith("/events"):
            kinds["list"] += 1
        elif method == "POST" and path.endswith("/events/watch"):
            kinds["watch"] += 1
        elif method == "POST" and path.endswith("/channels/stop"):
            kinds["stop"] += 1
        else:
            kinds["other"] += 1
    return kinds


def _simulate(
    standin: GoogleStandIn, clock: MovedClock, members: list[str], url: str | None, days: int
) -> dict[str, Any]:
    """Connect `members`, run the first scheduler tick (their connection sync, and the watch),
    then `days` simulated days of 15-minute ticks; Calendar requests per member, per day."""
    jobs = _Jobs()
    prepare_tenant(standin, members, _anchor())
    deps, settings = _worker(clock, url, jobs)
    clock.value = datetime.now(UTC) + timedelta(minutes=1)
    mark = len(standin.requests)
    _tick(deps, settings, jobs, clock.value)
    connection = _kinds(standin.requests.snapshot()[mark:])
    per_day, jobs_run = [], 0
    for _ in range(days):
        mark = len(standin.requests)
        for _ in range(TICKS_PER_DAY):
            jobs_run += _tick(deps, settings, jobs, clock.value + TICK)
        per_day.append(_kinds(standin.requests.snapshot()[mark:]))
    states = [deps.sync.members.get_member(TENANT, m).calendar for m in members]
    return {"connection": connection, "days": per_day, "jobs_run": jobs_run, "states": states}


def _renewal_days(states: list[Any]) -> float:
    """The mean time from a channel's creation to its renewal, in days (push.renew_time)."""
    spans = [
        (s.push_renew_at - s.push_started_at).total_seconds() / 86_400
        for s in states
        if s.push_renew_at is not None and s.push_started_at is not None
    ]
    return statistics.fmean(spans) if spans else float("nan")


def _per_member(kinds: dict[str, int], members: int) -> float:
    return sum(kinds.values()) / members


def quiet_day(sandbox: BenchSandbox, sizes: PushSizes, log: Log) -> dict[str, Any]:
    """Quiet calendars (no change at all) under the scheduler every 15 minutes: Calendar
    requests (list + watch + stop) per member and day, push on and push off."""
    clock = MovedClock(datetime.now(UTC))
    # Access tokens outlive the simulation: the client's refresh runs on the real clock, the
    # stand-in's expiry on the moved one, and a 401 would count a request production never makes.
    standin = GoogleStandIn(clock=clock.now, access_token_ttl_s=60 * 86_400)
    with standin, _standin_env(standin), receiver() as url:
        sandbox.use_project("pushday")
        started = time.perf_counter()
        push = _simulate(
            standin, clock, [f"quiet-{i:02d}" for i in range(sizes.quiet_members)], url, sizes.quiet_days
        )
        push_s = time.perf_counter() - started
        sandbox.use_project("pollday")
        started = time.perf_counter()
        poll = _simulate(standin, clock, [f"poll-{i:02d}" for i in range(sizes.poll_members)], None, 1)
        poll_s = time.perf_counter() - started
    day = _per_member(push["days"][0], sizes.quiet_members)
    renewal_days = _renewal_days(push["states"])
    renewal = (1 + 1 + 1) / renewal_days  # the renew job's listing, the watch, the stop
    days = push["days"]
    week = sum(_per_member(d, sizes.quiet_members) for d in days) / len(days)
    polling = _per_member(poll["days"][0], sizes.poll_members)
    log(
        f"  push: {day:.2f} requests per member on a quiet day + renewal 3 / {renewal_days:.2f} days "
        f"= {day + renewal:.2f}; over {len(days)} simulated days {week:.2f}; polling: {polling:.2f} "
        f"({push_s:.0f}s + {poll_s:.0f}s)"
    )
    return {
        "calendar_requests_per_member_day": day + renewal,
        "calendar_requests_per_member_day_polling": polling,
        "_details": {
            "calendar_requests_per_member_day": {
                "members_push": sizes.quiet_members,
                "members_polling": sizes.poll_members,
                "ticks_per_day": TICKS_PER_DAY,
                "quiet_day_measured": day,
                "quiet_day_by_kind": push["days"][0],
                "renewal_interval_days_mean": round(renewal_days, 3),
                "renewal_requests_per_member_day": round(renewal, 3),
                "simulated_days": len(days),
                "simulated_days_by_kind": days,
                "simulated_days_mean_per_member_day": round(week, 3),
                "connection_by_kind": push["connection"],
                "polling_day_by_kind": poll["days"][0],
                "simulation_s": {"push": round(push_s, 1), "polling": round(poll_s, 1)},
            }
        },
    }
