"""calsync subcommands: sync (in-process, the same service as the worker) and interactions."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from shared.cli.app import cli
from shared.cli.options import ID
from shared.cli.output import table, utc_text

_SYNC_COLUMNS = (
    "member",
    "outcome",
    "full",
    "events",
    "written",
    "deleted",
    "unmatched",
    "ambiguous",
    "ms",
    "error",
)
_INTERACTION_COLUMNS = ("date", "start", "min", "account", "title", "attendees", "members")


@cli.command("sync")
@click.option("--tenant", "tenant_id", type=ID, help="Only this tenant (default: every tenant).")
@click.option("--member", "member_id", type=ID, help="Only this member (needs --tenant).")
@click.option("--full", is_flag=True, help="Full listing instead of the incremental one.")
def sync_command(tenant_id: str | None, member_id: str | None, full: bool) -> None:
    """Sync the selected members now, in this process (all connected members by default), with
    the same service code as the sync_worker function, then print a summary."""
    from shared import bootstrap
    from shared.services.sync import SyncRunTotals, sync_member

    if member_id and not tenant_id:
        raise click.UsageError("--member needs --tenant")
    members = bootstrap.member_store()
    if member_id:
        assert tenant_id is not None
        members.get_member(tenant_id, member_id)  # unknown member: one-line error
        selected = [(tenant_id, member_id)]
    else:
        if tenant_id:
            bootstrap.directory_store().get_tenant(tenant_id)
        selected = list(members.connected_members(tenant_id))
    if not selected:
        click.echo("no connected members to sync")
        return
    deps = bootstrap.sync_deps(continuations=False)
    totals = SyncRunTotals()
    rows: list[dict[str, Any]] = []
    with click.progressbar(
        selected, label="syncing", item_show_func=lambda item: item[1] if item else None, file=sys.stderr
    ) as progress:
        for tenant, member in progress:
            summary = sync_member(deps, tenant, member, full=full)
            totals.add(summary)
            rows.append(
                {
                    "member": f"{tenant}/{member}",
                    "outcome": summary.outcome,
                    "full": "yes" if summary.full else "no",
                    "events": summary.events_seen,
                    "written": summary.interactions_written,
                    "deleted": summary.interactions_deleted,
                    "unmatched": summary.unmatched,
                    "ambiguous": summary.ambiguous,
                    "ms": summary.duration_ms,
                    "error": summary.error,
                }
            )
    click.echo(table(_SYNC_COLUMNS, rows))
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(totals.outcomes.items()))
    click.echo(
        f"{totals.members} members ({outcomes}); {totals.events_seen} events seen; "
        f"{totals.interactions_written} interactions written, {totals.interactions_deleted} deleted"
    )
    failed = sum(n for o, n in totals.outcomes.items() if o not in ("synced", "busy"))
    if failed:
        raise click.ClickException(f"{failed} of {totals.members} members did not sync (see the table)")


@cli.command("interactions")
@click.option("--tenant", "tenant_id", type=ID, required=True, help="Tenant id.")
@click.option("--account", "account_id", type=ID, help="Only this account.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of the interaction documents.")
def interactions_command(tenant_id: str, account_id: str | None, as_json: bool) -> None:
    """List interactions, oldest first (`--json`: the [interaction
    documents](docs/reference.md#the-interaction-document) plus `id`, times as RFC 3339 UTC strings)."""
    from shared import bootstrap
    from shared.adapters.firestore.codecs import interaction_to_json

    bootstrap.directory_store().get_tenant(tenant_id)
    found = bootstrap.meeting_store().list_interactions(tenant_id, account_id)
    if as_json:
        click.echo(json.dumps([interaction_to_json(i) for i in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no interactions")
        return
    rows = [
        {
            "date": i.date,
            "start": utc_text(i.start_time),
            "min": i.duration_minutes,
            "account": i.account_id,
            "title": i.title[:40],
            "attendees": ", ".join(a.email for a in i.attendees),
            "members": ", ".join(i.member_ids),
        }
        for i in found
    ]
    click.echo(table(_INTERACTION_COLUMNS, rows))
    click.echo(f"{len(found)} interactions")
