"""calsync subcommands: directory (`import`, `status`)."""

from __future__ import annotations

import json
from typing import IO, Any

import click

from shared.cli.app import cli
from shared.cli.options import ID
from shared.cli.output import table, utc_text


@cli.command("import")
@click.argument("file", type=click.File("rb"))
def import_command(file: IO[bytes]) -> None:
    """Upsert a tenant's directory from a JSON FILE ("-" reads standard input).

    \b
    {"tenant": {"id", "name", "internalDomains", "settings"},
     "accounts": [{"id", "name", "domains"}],
     "users": [{"id", "email", "name", "accountId"}],
     "members": [{"id", "email", "name", "excludedAddresses"?}]}

    The whole file is checked first: if any row is invalid, each bad row is reported on one
    line and nothing is written. A user may point at an account already in the tenant.

    This is an upsert: rows in the file are created or updated; accounts, users and members
    that are not in the file are left alone (nothing is deleted). The tenant's settings are
    replaced by the file's (absent settings take their defaults). A member's connection and
    sync state is never changed; new members start as not_connected.

    Afterwards the stored meetings whose matching the import changed are re-evaluated (as
    `calsync rematch` does, for just those), and one line says what changed.
    """
    from shared import bootstrap
    from shared.domain.directory_file import DirectoryFileInvalid
    from shared.services.directory_import import import_and_rematch

    try:
        result = import_and_rematch(
            file.read(), bootstrap.rematch_deps(), bootstrap.directory_store(), bootstrap.exclusion_deps()
        )
    except DirectoryFileInvalid as error:
        for line in error.problems:
            click.echo(f"calsync: error: {line}", err=True)
        raise
    summary = result.imported
    click.echo(
        f"imported tenant {summary.tenant_id}: {summary.accounts} accounts, {summary.users} users, "
        f"{summary.members} members ({summary.new_members} new)"
    )
    click.echo(result.rematched.one_line())
    excluded = result.exclusions
    if excluded is not None and (excluded.purge is not None or excluded.full_sync_members):
        click.echo(excluded.one_line())


_STATUS_COLUMNS = (
    "member",
    "email",
    "status",
    "googleEmail",
    "lastSuccessAt",
    "consecutiveFailures",
    "lastError",
    "push",
    "pushExpiresAt",
)


def _member_status(member: Any) -> dict[str, Any]:
    calendar = member.calendar
    return {
        "member": member.id,
        "email": member.email,
        "name": member.name,
        "status": str(calendar.status.value),
        "googleEmail": calendar.google_email,
        "connectedAt": utc_text(calendar.connected_at),
        "lastSyncAt": utc_text(calendar.last_sync_at),
        "lastSuccessAt": utc_text(calendar.last_success_at),
        "nextSyncAt": utc_text(calendar.next_sync_at),
        "consecutiveFailures": calendar.consecutive_failures,
        "lastError": calendar.last_error,
        "push": str(calendar.push_status.value),
        "pushExpiresAt": utc_text(calendar.push_expires_at),
        "pushLastNotificationAt": utc_text(calendar.push_last_notification_at),
        "pushError": calendar.push_last_error,
    }


@cli.command("status")
@click.option("--tenant", "tenant_id", type=ID, required=True, help="Tenant id.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def status_command(tenant_id: str, as_json: bool) -> None:
    """Each member's connection and sync state (status, Google account, last success, failures,
    push channel: `active`/`off`/`failed` and its expiry)."""
    from shared import bootstrap

    bootstrap.directory_store().get_tenant(tenant_id)  # an unknown tenant is an error, not an empty list
    rows = [_member_status(m) for m in bootstrap.member_store().list_members(tenant_id)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        click.echo(table(_STATUS_COLUMNS, rows))
    else:
        click.echo(f"tenant {tenant_id} has no members")
