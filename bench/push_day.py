"""The quiet-day push benchmark (docs/benchmarks.md#push-notifications): in-process services
with a moved clock against the bench's emulators and a stand-in on the same clock, 15-minute
scheduler ticks over simulated days -> Calendar requests per member and day, with push on
(backstop and renewal only) and off (polling).
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.push import Log, PushSizes, day_start, prepare_tenant
from bench.sandbox import BenchSandbox
from bench.synthetic import TENANT
from shared import bootstrap
from shared.sandbox.google_standin import GoogleStandIn
from shared.sandbox.local import configured
from shared.services.ports import SyncJob

TICK = timedelta(minutes=15)
TICKS_PER_DAY = 96
CHANNEL_KEY = b"bench-channel-key-0123456789abcdef"


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
    with configured(names):
        yield


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
    prepare_tenant(standin, members, day_start())
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
