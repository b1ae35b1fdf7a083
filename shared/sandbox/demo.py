"""`calsync demo`: the whole pipeline in the local sandbox, end to end, then the interactions.

1. start the sandbox (emulators, Google stand-in, the functions), import the sample tenant and
   load its members' calendars into the stand-in (shifted to the weeks around now);
2. connect every member through the real browser flow (signed link -> oauth_connect -> consent
   -> oauth_callback), which stores the token and queues a first sync;
3. run the scheduler (schedule_sync -> Pub/Sub -> push -> sync_worker) and wait until it settles;
4. print the interactions per account and a summary;
5. with push notifications on (README.md#push-notifications): wait until every member's calendar
   is watched, change the calendars (a cancellation, a moved meeting, an added attendee), and
   wait, without running the scheduler, until the changes arrive through the stand-in's
   notifications (calendar_notification -> Pub/Sub -> sync_worker); print the measured delay
   and what changed;
6. write the operator report of the sample tenant (README.md#operator-report) to a file in the
   temporary directory and print its path; stop everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared import bootstrap
from shared.domain.models import Interaction, UnmatchedReason
from shared.sandbox.local import LocalSandbox, local_sandbox, sample_dir

TENANT = "northwind"
Echo = Callable[[str], None]


def run_demo(echo: Echo) -> None:
    with local_sandbox(log=lambda line: echo(f"· {line}"), push=True) as sandbox:
        members = _prepare(sandbox, echo)
        started = datetime.now(UTC)
        for member in members:
            page = sandbox.connect_through_browser(TENANT, member["id"])
            status = bootstrap.member_store().get_member(TENANT, member["id"]).calendar.status
            echo(f"· connected {member['email']} through the OAuth flow (HTTP {page.status_code}, {status})")
        answer = sandbox.run_scheduler()
        echo(f"· schedule_sync published {answer.get('published')} sync jobs; waiting for the worker")
        ids = [m["id"] for m in members]
        sandbox.wait_until_synced(ids, started, TENANT)
        before = _interactions()
        _print_interactions(before, echo)
        _print_summary(sandbox, len(members), echo)

        watched = sandbox.wait_until_watched(ids, TENANT)
        echo(f"· push channels active for {watched} members (calendar.push.status = active)")
        echo("")
        echo("== Changing the calendars: a cancellation, a moved meeting, an added attendee")
        pushes = sandbox.push_syncs()
        changed_at = time.monotonic()
        for line in _change_calendars(sandbox, members):
            echo(f"· {line}")
        echo("· not running the scheduler: waiting for Google's push notifications")
        after = _wait_for_change(before, changed_at)
        delay = time.monotonic() - changed_at
        echo(
            f"· the changes arrived through push notifications in {delay:.1f} s "
            f"({sandbox.push_syncs() - pushes} push-triggered worker runs, "
            f"{sandbox.standin.push.counters().get('delivered', 0)} notifications delivered)"
        )
        _print_changes(before, after, echo)
        _write_report(echo)
        echo("· stopping the sandbox")


def _wait_for_change(
    before: dict[tuple[str, str], Interaction], since: float, timeout_s: float = 60.0
) -> dict[tuple[str, str], Interaction]:
    """The interactions once they differ from `before` and have stayed so for a moment."""
    changed: dict[tuple[str, str], Interaction] | None = None
    while time.monotonic() - since < timeout_s:
        now = _interactions()
        if _essences(now) != _essences(before):
            if changed is not None and _essences(changed) == _essences(now):
                return now
            changed = now
        time.sleep(0.2)
    raise TimeoutError(f"no change arrived through push notifications within {timeout_s:.0f} s")


def _essences(items: dict[tuple[str, str], Interaction]) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {key: _essence(item) for key, item in items.items()}


def _write_report(echo: Echo) -> None:
    import tempfile
    from pathlib import Path

    from shared.cli.report import summary_text, write_html
    from shared.services.report import build_report

    report = build_report(bootstrap.report_deps(), TENANT)
    path = write_html(report, Path(tempfile.gettempdir()) / f"calsync-report-{TENANT}.html")
    echo("")
    echo(f"== Operator report of tenant {TENANT!r}")
    echo(summary_text(report))
    echo(f"report: {path}")


def _prepare(sandbox: LocalSandbox, echo: Echo) -> list[dict[str, Any]]:
    import json

    from shared.services.directory_import import import_directory

    text = (sample_dir() / "tenant.json").read_bytes()
    summary = import_directory(text, bootstrap.directory_store())
    echo(f"· imported the sample tenant {TENANT!r}: {summary}")
    members: list[dict[str, Any]] = json.loads(text)["members"]
    now = datetime.now(UTC)
    for member in members:
        calendar = sandbox.standin.load_calendar_file(
            member["email"], sample_dir() / "calendars" / f"{member['id']}.json", now=now
        )
        echo(f"· loaded {len(calendar.events)} events into {member['email']}'s Google calendar")
    return members


def _interactions() -> dict[tuple[str, str], Interaction]:
    return {(i.meeting_key, i.account_id): i for i in bootstrap.meeting_store().list_interactions(TENANT)}


def _describe(item: Interaction) -> str:
    local = item.start_time.astimezone(_zone(item.time_zone)).strftime("%a %H:%M")
    who = ", ".join(f"{a.email} ({a.matched_by})" for a in item.attendees)
    members = ",".join(item.member_ids)
    when = f"{item.date} {local} {item.time_zone:<17} {item.duration_minutes:>3} min"
    return f"{when}  {item.title!r}  {who}  [{members}]"


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _print_interactions(items: dict[tuple[str, str], Interaction], echo: Echo) -> None:
    accounts: dict[str, list[Interaction]] = {}
    for item in items.values():
        accounts.setdefault(item.account_id, []).append(item)
    echo("")
    echo(f"== Interactions of tenant {TENANT!r}, per account")
    for account_id in sorted(accounts):
        rows = sorted(accounts[account_id], key=lambda i: i.start_time)
        echo(f"{account_id} ({len(rows)})")
        for item in rows:
            echo(f"  {_describe(item)}")


def _print_summary(sandbox: LocalSandbox, member_count: int, echo: Echo) -> None:
    summaries = sandbox.worker_summaries()
    events = sum(int(s.get("events_seen", 0)) for s in summaries)
    written = sum(int(s.get("interactions_written", 0)) for s in summaries)
    unmatched = ambiguous = 0
    for meeting in bootstrap.meeting_store().list_unmatched(TENANT):
        for address in meeting:
            if address.reason == UnmatchedReason.NO_MATCH or address.reason == UnmatchedReason.FREE_MAIL:
                unmatched += 1
            else:
                ambiguous += 1
    echo("")
    echo(
        f"== Summary: {member_count} members synced in {len(summaries)} worker runs; {events} events seen; "
        f"{written} interactions written; {len(_interactions())} interactions stored; "
        f"{unmatched} unmatched and {ambiguous} ambiguous addresses kept for later matching"
    )


def _change_calendars(sandbox: LocalSandbox, members: list[dict[str, Any]]) -> list[str]:
    """Cancel one meeting, move another by a day, add an attendee to a third (first member's
    calendar: meetings that produced interactions)."""
    email = members[0]["email"]
    calendar = sandbox.standin.calendar(email)
    held = [
        e
        for e in calendar.events
        if e.get("status") != "cancelled"
        and "dateTime" in e.get("start", {})
        and any(not a.get("self") and "acme" in a.get("email", "") for a in e.get("attendees", []))
    ]
    others = [
        e
        for e in calendar.events
        if e.get("status") != "cancelled"
        and "dateTime" in e.get("start", {})
        and e not in held
        and e.get("attendees")
    ]
    lines = []
    if held:
        cancelled = held[0]
        calendar.cancel_event(cancelled["id"])
        lines.append(f"{email}: cancelled {cancelled.get('summary')!r}")
    if len(held) > 1:
        moved = held[1]
        for side in ("start", "end"):
            point = dict(moved[side])
            point["dateTime"] = _plus_day(point["dateTime"])
            moved[side] = point
        calendar.upsert_event(moved)
        lines.append(f"{email}: moved {moved.get('summary')!r} one day later")
    if others:
        grown = others[0]
        grown["attendees"] = [
            *grown["attendees"],
            {"email": "wile.coyote@acme.com", "displayName": "Wile E. Coyote", "responseStatus": "accepted"},
        ]
        calendar.upsert_event(grown)
        lines.append(f"{email}: added wile.coyote@acme.com to {grown.get('summary')!r}")
    return lines


def _plus_day(stamp: str) -> str:
    moved = datetime.fromisoformat(stamp) + timedelta(days=1)
    return moved.isoformat()


def _print_changes(
    before: dict[tuple[str, str], Interaction], after: dict[tuple[str, str], Interaction], echo: Echo
) -> None:
    echo("")
    echo("== What the incremental sync changed")
    for key in sorted(set(before) - set(after)):
        echo(f"  removed  {before[key].account_id}: {_describe(before[key])}")
    for key in sorted(set(after) - set(before)):
        echo(f"  added    {after[key].account_id}: {_describe(after[key])}")
    for key in sorted(set(before) & set(after)):
        if _essence(before[key]) != _essence(after[key]):
            echo(f"  changed  {after[key].account_id}: {_describe(after[key])}")
    echo(f"  ({len(after)} interactions now, {len(before)} before)")


def _essence(item: Interaction) -> tuple[Any, ...]:
    return (item.start_time, item.end_time, item.title, item.attendees, item.member_ids)
