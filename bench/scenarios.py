"""The benchmark scenarios (see docs/benchmarks.md). Each returns a dict of figures; the runner
takes medians over runs and prints the table."""

from __future__ import annotations

import base64
import dataclasses
import gc
import json
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from bench import synthetic
from bench.counting import FirestoreOps
from bench.sandbox import SIGNING_KEY, SYNC_TOPIC, BenchSandbox, python
from bench.synthetic import TENANT, CalendarGenerator, DirectoryShape
from shared import bootstrap
from shared.services.sync import SyncSettings, SyncSummary, sync_member

Log = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    runs: int
    accounts: int  # the matching directory (pure core)
    users_per_account: int
    sync_accounts: int  # the directory of the tenant in the emulator (see docs/benchmarks.md)
    sync_users_per_account: int
    colleagues: int
    full_sync_events: int
    changed_fraction: float
    fanout_members: int
    fanout_tenants: int
    matching_events: int
    memory_events: int
    memory_runs: int
    cold_runs: int
    cold_events: int

    @property
    def directory(self) -> DirectoryShape:
        return DirectoryShape(self.accounts, self.users_per_account, self.colleagues)

    @property
    def sync_directory(self) -> DirectoryShape:
        return DirectoryShape(self.sync_accounts, self.sync_users_per_account, self.colleagues)


FULL = Sizes(
    runs=3,
    accounts=10_000,
    users_per_account=10,
    sync_accounts=500,
    sync_users_per_account=2,
    colleagues=30,
    full_sync_events=10_000,
    changed_fraction=0.01,
    fanout_members=100_000,
    fanout_tenants=100,
    matching_events=20_000,
    memory_events=50_000,
    memory_runs=1,
    cold_runs=3,
    cold_events=50,
)
SMOKE = Sizes(
    runs=1,
    accounts=200,
    users_per_account=5,
    sync_accounts=100,
    sync_users_per_account=2,
    colleagues=5,
    full_sync_events=300,
    changed_fraction=0.02,
    fanout_members=300,
    fanout_tenants=3,
    matching_events=300,
    memory_events=400,
    memory_runs=1,
    cold_runs=1,
    cold_events=10,
)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _anchor() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def parse_child_result(output: str) -> dict[str, Any]:
    from bench.child import MARKER

    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            return dict(json.loads(line[len(MARKER) :]))
    raise RuntimeError(f"child printed no result:\n{output[-3000:]}")


# --- the tenant the sync scenarios share ------------------------------------------------------


class SyncTenant:
    """The benchmark tenant in its own Firestore project: directory imported through
    `calsync import`'s service, members connected as the OAuth callback would."""

    def __init__(self, sandbox: BenchSandbox, sizes: Sizes, log: Log) -> None:
        self.sandbox = sandbox
        self.sizes = sizes
        self.log = log
        self.anchor = _anchor()
        self.members = (
            [f"full-{r}" for r in range(sizes.runs)]
            + [f"mem-{r}" for r in range(sizes.memory_runs)]
            + ["cold-sync", "cold-oauth", "warmup"]
        )
        self.generators: dict[str, CalendarGenerator] = {}
        self.synced: set[str] = set()
        self.import_s = 0.0
        self._ready = False

    def ensure_ready(self) -> None:
        if self._ready:
            return
        from shared.services.directory_import import import_directory

        self.sandbox.use_project("sync")
        directory = synthetic.directory_file(self.sizes.sync_directory, self.members)
        started = time.perf_counter()
        import_directory(json.dumps(directory).encode(), bootstrap.directory_store())
        self.import_s = time.perf_counter() - started
        self.log(
            f"  directory imported: {len(directory['accounts'])} accounts, {len(directory['users'])} users "
            f"in {self.import_s:.1f}s"
        )
        self._ready = True

    def calendar(self, member_id: str, events: int) -> CalendarGenerator:
        """Load `events` generated events into the member's stand-in calendar (once)."""
        if member_id not in self.generators:
            generator = CalendarGenerator(member_id, self.sizes.sync_directory, self.anchor)
            calendar = self.sandbox.standin.calendar(generator.email)
            calendar.time_zone = "Europe/Stockholm"
            calendar.load_events(generator.events(events))
            self.generators[member_id] = generator
        return self.generators[member_id]

    def connect(self, member_id: str) -> str:
        """Token in Secret Manager (stand-in), member connected and due: `calsync set-token`'s
        service, which stores it as oauth_callback does."""
        token = self.sandbox.standin.issue_refresh_token(synthetic.member_email(member_id))
        bootstrap.connect_service(full_oauth=False).set_token(TENANT, member_id, token)
        return token

    def sync(self, member_id: str, deps: Any = None) -> SyncSummary:
        deps = deps or bootstrap.sync_deps()
        settings = SyncSettings(budget_s=bootstrap.config().sync_budget_s)
        summary = sync_member(deps, TENANT, member_id, settings=settings)
        if summary.outcome != "synced":
            raise RuntimeError(f"sync of {member_id} ended {summary.outcome}: {summary.error}")
        self.synced.add(member_id)
        return summary

    def synced_member(self, member_id: str, events: int) -> CalendarGenerator:
        """A member whose calendar of `events` events has been fully synced once."""
        self.ensure_ready()
        generator = self.calendar(member_id, events)
        if member_id not in self.synced:
            self.connect(member_id)
            self.sync(member_id)
        return generator

    def warm_up(self) -> None:
        """One small sync first, so no timed run pays for channels, discovery or caches."""
        self.synced_member("warmup", 100)


# --- 1. full sync, and the floor ----------------------------------------------------------------


class TimedLookups:
    """The directory store, with the wall time during which at least one `lookup` was in
    flight (the emulator scans a collection per query: see docs/benchmarks.md)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._active = 0
        self._since = 0.0
        self.seconds = 0.0
        self.calls = 0

    def lookup(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._active == 0:
                self._since = time.perf_counter()
            self._active += 1
            self.calls += 1
        try:
            return self._store.lookup(*args, **kwargs)
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self.seconds += time.perf_counter() - self._since

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def floor_sync(
    sandbox: BenchSandbox, email: str, time_min: datetime, documents: int, run: int
) -> dict[str, Any]:
    """The raw work no implementation can avoid: list the same pages with the same client
    library (googleapiclient, the same parameters), then write `documents` interaction-shaped
    documents with plain batched writes (500 per commit)."""
    import google_auth_httplib2
    import httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    token = sandbox.standin.issue_refresh_token(email)
    db = bootstrap.firestore_client()
    started = time.perf_counter()
    credentials = Credentials(
        token=None,
        refresh_token=token,
        token_uri=sandbox.standin.token_uri,
        client_id=sandbox.standin.client_id,
        client_secret=sandbox.standin.client_secret,
        scopes=["https://www.googleapis.com/auth/calendar.events.readonly"],
    )
    raw_http = httplib2.Http(timeout=60)
    service = build(
        "calendar",
        "v3",
        static_discovery=True,
        cache_discovery=False,
        http=raw_http,
        client_options={"api_endpoint": sandbox.standin.calendar_endpoint},
    )
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=raw_http)
    params: dict[str, Any] = {
        "calendarId": "primary",
        "singleEvents": True,
        "showDeleted": True,
        "maxResults": 2500,
        "timeMin": time_min.isoformat().replace("+00:00", "Z"),
    }
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        body = service.events().list(**params).execute(http=http)
        pages += 1
        items.extend(i for i in body.get("items", []) if i.get("attendees"))
        if not body.get("nextPageToken"):
            break
        params["pageToken"] = body["nextPageToken"]
    listed = time.perf_counter()
    collection = db.collection("tenants").document(TENANT).collection(f"floor-{run}")
    now = datetime.now(UTC)
    batch = db.batch()
    pending = 0
    for n in range(documents):
        event = items[n % len(items)] if items else {"id": str(n), "attendees": []}
        batch.set(collection.document(f"{event['id']}-{n}"), _floor_document(event, now))
        pending += 1
        if pending == 500:
            batch.commit()
            batch = db.batch()
            pending = 0
    if pending:
        batch.commit()
    finished = time.perf_counter()
    return {
        "seconds": finished - started,
        "list_seconds": listed - started,
        "write_seconds": finished - listed,
        "pages": pages,
        "documents": documents,
    }


def _floor_document(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An interaction-shaped document straight from the payload (no rules, no matching)."""
    people = [a for a in event.get("attendees", []) if a.get("email")]
    start = event.get("start", {}).get("dateTime") or event.get("start", {}).get("date") or ""
    end = event.get("end", {}).get("dateTime") or event.get("end", {}).get("date") or ""
    return {
        "type": "Google calendar",
        "accountId": "acc-floor",
        "meetingKey": event.get("iCalUID", event.get("id")),
        "title": event.get("summary", ""),
        "date": start[:10],
        "startTime": now,
        "endTime": now,
        "timeZone": event.get("start", {}).get("timeZone", "UTC"),
        "durationMinutes": 60,
        "participants": [
            {
                "email": a["email"].lower(),
                "name": a.get("displayName", ""),
                "responseStatus": a.get("responseStatus", "needsAction"),
                "internal": False,
                "organizer": bool(a.get("organizer")),
            }
            for a in people
        ],
        "attendees": [
            {
                "email": a["email"].lower(),
                "name": a.get("displayName", ""),
                "userId": None,
                "matchedBy": "domain",
                "minutesInMeeting": 60,
            }
            for a in people[:2]
        ],
        "memberIds": ["floor"],
        "organizerEmail": event.get("organizer", {}).get("email", ""),
        "createdAt": now,
        "updatedAt": now,
        "rawEnd": end,
    }


def full_sync(tenant: SyncTenant, sizes: Sizes, log: Log) -> dict[str, Any]:
    tenant.ensure_ready()
    tenant.warm_up()
    rates, ratios, runs = [], [], []
    for r in range(sizes.runs):
        member = f"full-{r}"
        tenant.calendar(member, sizes.full_sync_events)
        tenant.connect(member)
        email = synthetic.member_email(member)
        time_min = tenant.anchor - timedelta(days=400)

        directory = TimedLookups(bootstrap.directory_store())
        deps = dataclasses.replace(bootstrap.sync_deps(), directory=directory)
        started = time.perf_counter()
        summary = tenant.sync(member, deps)
        seconds = time.perf_counter() - started
        floor = floor_sync(tenant.sandbox, email, time_min, summary.interactions_written, r)
        rate = summary.events_seen / seconds
        ratio = floor["seconds"] / seconds
        rates.append(rate)
        ratios.append(ratio)
        runs.append(
            {
                "calsync_s": round(seconds, 3),
                "calsync_directory_lookup_s": round(directory.seconds, 3),
                "directory_lookups": directory.calls,
                "floor_s": round(floor["seconds"], 3),
                "floor_list_s": round(floor["list_seconds"], 3),
                "floor_write_s": round(floor["write_seconds"], 3),
                "events": summary.events_seen,
                "held": summary.held,
                "meetings_written": summary.meetings_written,
                "interactions_written": summary.interactions_written,
                "unmatched": summary.unmatched,
                "ambiguous": summary.ambiguous,
            }
        )
        log(
            f"  run {r + 1}: calsync {seconds:.2f}s (directory lookups {directory.seconds:.2f}s) "
            f"({rate:.0f} events/s, {summary.interactions_written} "
            f"interactions, {summary.meetings_written} meetings), floor {floor['seconds']:.2f}s "
            f"(list {floor['list_seconds']:.2f}s + write {floor['write_seconds']:.2f}s): ratio {ratio:.2f}"
        )
    return {
        "full_sync_events_per_s": median(rates),
        "floor_ratio": median(ratios),
        "_details": {
            "full_sync_runs": runs,
            "directory_import_s": round(tenant.import_s, 2),
            # What the ratio would be if the emulator's directory queries (collection scans) took
            # no time: an indication only (a lookup in flight may overlap other work).
            "floor_ratio_lookups_excluded": round(
                median(
                    [r["floor_s"] / max(r["calsync_s"] - r["calsync_directory_lookup_s"], 1e-9) for r in runs]
                ),
                3,
            ),
        },
    }


# --- 2. and 3. incremental syncs --------------------------------------------------------------


def _counted_sync(
    tenant: SyncTenant, member: str, ops: FirestoreOps
) -> tuple[float, SyncSummary, dict[str, int]]:
    standin = tenant.sandbox.standin
    standin.requests.clear()
    ops.reset()
    started = time.perf_counter()
    summary = tenant.sync(member)
    seconds = time.perf_counter() - started
    counts = {
        "calendar_requests": standin.requests.count("calendar"),
        "secret_accesses": standin.requests.count("secretmanager"),
        "token_requests": standin.requests.count("token"),
        "firestore_reads": ops.reads,
        "firestore_writes": ops.writes,
        "firestore_queries": ops.queries,
    }
    return seconds, summary, counts


def nochange(tenant: SyncTenant, sizes: Sizes, log: Log) -> dict[str, Any]:
    member = "full-0"
    tenant.synced_member(member, sizes.full_sync_events)
    ops = FirestoreOps().attach(bootstrap.firestore_client())
    try:
        latencies, all_counts = [], []
        for r in range(max(3, sizes.runs)):
            seconds, summary, counts = _counted_sync(tenant, member, ops)
            latencies.append(seconds * 1000)
            all_counts.append(counts)
            log(f"  run {r + 1}: {seconds * 1000:.1f} ms, {counts}, {summary.events_seen} events seen")
    finally:
        ops.detach()
    last = all_counts[-1]
    return {
        "nochange_calendar_requests": median([c["calendar_requests"] for c in all_counts]),
        "nochange_secret_accesses": median([c["secret_accesses"] for c in all_counts]),
        "nochange_firestore_ops": median([c["firestore_reads"] + c["firestore_writes"] for c in all_counts]),
        "nochange_latency_ms": median(latencies),
        "_details": {"nochange_counts": last},
    }


def changed(tenant: SyncTenant, sizes: Sizes, log: Log) -> dict[str, Any]:
    member = "full-0"
    generator = tenant.synced_member(member, sizes.full_sync_events)
    calendar = tenant.sandbox.standin.calendar(generator.email)
    step = max(1, round(1 / sizes.changed_fraction))
    ops = FirestoreOps().attach(bootstrap.firestore_client())
    try:
        latencies, writes, runs = [], [], []
        for r in range(sizes.runs):
            changed_ids = range(r, sizes.full_sync_events, step)
            for k in changed_ids:
                calendar.upsert_event(generator.changed(k, r + 1))
            seconds, summary, counts = _counted_sync(tenant, member, ops)
            latencies.append(seconds * 1000)
            writes.append(counts["firestore_writes"])
            runs.append(
                {
                    **counts,
                    "events_changed": len(changed_ids),
                    "events_seen": summary.events_seen,
                    "interactions_written": summary.interactions_written,
                    "interactions_deleted": summary.interactions_deleted,
                    "meetings_written": summary.meetings_written,
                }
            )
            log(f"  run {r + 1}: {len(changed_ids)} events changed: {seconds * 1000:.0f} ms, {counts}")
    finally:
        ops.detach()
    return {
        "changed1pct_latency_ms": median(latencies),
        "changed1pct_firestore_writes": median(writes),
        "_details": {"changed1pct_runs": runs},
    }


# --- 4. fan-out -------------------------------------------------------------------------------


def fanout(sandbox: BenchSandbox, sizes: Sizes, log: Log) -> dict[str, Any]:
    from shared.services.schedule import QUEUED_HOLD, schedule_sync

    sandbox.use_project("fanout")
    db = bootstrap.firestore_client()
    now = datetime.now(UTC)
    per_tenant = max(1, sizes.fanout_members // sizes.fanout_tenants)

    def write_tenant(t: int) -> None:
        members = db.collection("tenants").document(f"t-{t:04d}").collection("members")
        batch, pending = db.batch(), 0
        for m in range(per_tenant):
            batch.set(
                members.document(f"m-{m:05d}"),
                {
                    "email": f"m{m}@tenant{t}.example",
                    "name": f"Member {m}",
                    "calendar": {
                        "status": "connected",
                        "nextSyncAt": now - timedelta(minutes=1 + m % 60),
                        "consecutiveFailures": 0,
                    },
                },
            )
            pending += 1
            if pending == 500:
                batch.commit()
                batch, pending = db.batch(), 0
        if pending:
            batch.commit()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write_tenant, range(sizes.fanout_tenants)))
    total = per_tenant * sizes.fanout_tenants
    log(f"  {total} connected members written in {time.perf_counter() - started:.1f}s")
    rates, times = [], []
    for r in range(sizes.runs):
        bootstrap.reset()  # a fresh instance: clients and channels are part of the run
        # each run holds the members it publishes (their jobs are queued): the next run is timed
        # as if it came after that hold, when every member is due again
        run_at = datetime.now(UTC) + r * (QUEUED_HOLD + timedelta(minutes=1))
        started = time.perf_counter()
        result = schedule_sync(bootstrap.member_store(), bootstrap.job_publisher(), run_at)
        seconds = time.perf_counter() - started
        if result["published"] != total:
            raise RuntimeError(f"schedule_sync published {result['published']} of {total}")
        rates.append(total / seconds)
        times.append(seconds)
        log(f"  run {r + 1}: {total} members in {seconds:.2f}s ({total / seconds:.0f} messages/s)")
    sandbox.use_project("sync")
    return {
        "fanout_members_per_s": median(rates),
        "fanout_total_s": median(times),
        "_details": {"fanout_members": total},
    }


# --- 5. matching ------------------------------------------------------------------------------


def matching(sizes: Sizes, log: Log) -> dict[str, Any]:
    from shared.domain import emails as email_rules
    from shared.domain import matching as rules
    from shared.domain.events import event_from_google
    from shared.domain.models import Account, DirectorySnapshot, EventHeld, Tenant, TenantSettings, User

    shape = sizes.directory
    directory = synthetic.directory_file(shape, ["match"])
    users: dict[str, list[User]] = {}
    for u in directory["users"]:
        email = email_rules.normalize_email(u["email"])
        users.setdefault(email, []).append(User(u["id"], email, u["name"], u["accountId"]))
    accounts: dict[str, list[Account]] = {}
    for a in directory["accounts"]:
        domains = tuple(dict.fromkeys(email_rules.normalize_domain(d) for d in a["domains"]))
        for d in domains:
            accounts.setdefault(d, []).append(Account(a["id"], a["name"], domains))
    snapshot = DirectorySnapshot(
        users_by_email={e: tuple(v) for e, v in users.items()},
        accounts_by_domain={d: tuple(v) for d, v in accounts.items()},
    )
    settings = TenantSettings()
    tenant = Tenant(TENANT, "Benchmark CS", (synthetic.INTERNAL_DOMAIN,), settings)
    member_emails = frozenset(m["email"] for m in directory["members"])
    generator = CalendarGenerator("match", shape, _anchor())
    window = _anchor() - timedelta(days=400)
    copies = []
    for k in range(sizes.matching_events):
        change = event_from_google(
            generator.event(k),
            member_id="match",
            member_email=generator.email,
            calendar_time_zone="UTC",
            settings=settings,
            window_start=window,
            generation=1,
        )
        if isinstance(change, EventHeld):
            copies.append(change.copy)
    attendees = sum(len(c.attendees) for c in copies)
    chunk = 200

    def one_pass() -> float:
        started = time.perf_counter()
        for start in range(0, len(copies), chunk):
            context = rules.MatchingContext(tenant=tenant, member_emails=member_emails, directory=snapshot)
            for copy in copies[start : start + chunk]:
                rules.match_copy(copy, context)
        return time.perf_counter() - started

    one_pass()  # warm the process-wide caches (public suffix list, free-mail list)
    # The bench process holds the stand-in's calendars and the earlier scenarios' objects: keep
    # the garbage collector from traversing them during the allocation-heavy passes.
    gc.collect()
    gc.freeze()
    rates = []
    for r in range(max(3, sizes.runs)):
        seconds = one_pass()
        rates.append(attendees / seconds)
        log(
            f"  run {r + 1}: {attendees} attendees of {len(copies)} meetings in {seconds * 1000:.0f} ms "
            f"({attendees / seconds:,.0f}/s)"
        )
    gc.unfreeze()
    return {
        "match_attendees_per_s": median(rates),
        "_details": {
            "matching_attendees": attendees,
            "matching_meetings": len(copies),
            "matching_context_per": chunk,
        },
    }


# --- 6. memory --------------------------------------------------------------------------------


def memory(tenant: SyncTenant, sizes: Sizes, log: Log) -> dict[str, Any]:
    tenant.ensure_ready()
    peaks, runs = [], []
    for r in range(sizes.memory_runs):
        member = f"mem-{r}"
        tenant.calendar(member, sizes.memory_events)
        tenant.connect(member)
        done = subprocess.run(
            [python(), "-m", "bench.child", "sync", TENANT, member],
            env=tenant.sandbox.child_env("sync"),
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        result = parse_child_result(done.stdout + done.stderr)
        if result.get("outcome") != "synced":
            raise RuntimeError(f"memory sync ended {result}")
        peaks.append(float(result["peak_rss_mb"]))
        runs.append(result)
        log(
            f"  run {r + 1}: {result['events_seen']} events in {result['seconds']:.1f}s, peak RSS "
            f"{result['peak_rss_mb']:.0f} MB (after imports {result['baseline_rss_mb']:.0f} MB)"
        )
    return {"peak_rss_mb_50k": median(peaks), "_details": {"memory_runs": runs}}


# --- 7. cold start ----------------------------------------------------------------------------


def _callback_query(sandbox: BenchSandbox) -> str:
    """Start a real consent for `cold-oauth` and follow the stand-in's consent to the redirect
    back: the query string Google would send to oauth_callback."""
    from shared.domain import links
    from shared.domain.links import LinkPurpose

    params = links.sign_link(
        SIGNING_KEY, LinkPurpose.CONNECT, TENANT, "cold-oauth", datetime.now(UTC) + timedelta(minutes=15)
    )
    consent_url = bootstrap.connect_service().start_connect(params)
    answer = requests.get(consent_url, allow_redirects=False, timeout=30)
    if answer.status_code != 302:
        raise RuntimeError(f"the stand-in's consent answered {answer.status_code}")
    return urlsplit(answer.headers["Location"]).query


def cold_start(tenant: SyncTenant, sizes: Sizes, log: Log) -> dict[str, Any]:
    sandbox = tenant.sandbox
    tenant.synced_member("cold-sync", sizes.cold_events)
    project = sandbox.project("sync")
    job = base64.b64encode(
        json.dumps({"v": 1, "tenantId": TENANT, "memberId": "cold-sync", "reason": "scheduled"}).encode()
    ).decode()
    results: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for target in ("sync_worker", "schedule_sync", "oauth_callback"):
        totals, runs = [], []
        for r in range(sizes.cold_runs):
            if target == "sync_worker":
                request: dict[str, Any] = {
                    "method": "POST",
                    "path": f"/projects/{project}/topics/{SYNC_TOPIC}",
                    "json": {
                        "message": {
                            "data": job,
                            "messageId": f"cold-{r}",
                            "publishTime": "2026-11-24T12:00:00Z",
                        },
                        "subscription": f"projects/{project}/subscriptions/bench",
                    },
                }
            elif target == "schedule_sync":
                request = {"method": "POST", "path": "/"}
            else:
                request = {"method": "GET", "path": "/", "query": _callback_query(sandbox)}
            done = subprocess.run(
                [python(), "-m", "bench.child", "cold", target, json.dumps(request)],
                env=sandbox.child_env("sync"),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            result = parse_child_result(done.stdout + done.stderr)
            if int(result["status"]) >= 400:
                raise RuntimeError(f"{target} answered {result['status']}: {done.stdout[-2000:]}")
            totals.append(float(result["total_ms"]))
            runs.append(result)
        results[f"cold_start_ms_{target}"] = median(totals)
        last = runs[-1]
        details[target] = {
            "import_ms": round(median([x["import_ms"] for x in runs]), 1),
            "first_request_ms": round(median([x["first_request_ms"] for x in runs]), 1),
            "status": last["status"],
            "client_libraries": last["client_libraries"],
            "peak_rss_mb": round(last["peak_rss_mb"], 1),
        }
        log(
            f"  {target}: {median(totals):.0f} ms (import {details[target]['import_ms']:.0f} + first request "
            f"{details[target]['first_request_ms']:.0f}), status {last['status']}, "
            f"imports {', '.join(last['client_libraries'])}"
        )
    return {**results, "_details": {"cold_start": details}}
