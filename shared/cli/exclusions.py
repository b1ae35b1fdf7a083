"""calsync subcommand: exclude (change the tenant's or a member's excluded addresses and apply the
change at once, README.md#exclusions)."""

from __future__ import annotations

import click

from shared.cli.app import cli
from shared.cli.options import ID


@cli.command("exclude")
@click.option("--tenant", "tenant_id", type=ID, required=True, help="Tenant id.")
@click.option("--member", "member_id", type=ID, default=None, help="Member id (default: the tenant's list).")
@click.option("--add", "add", multiple=True, metavar="ADDR", help="Email or domain (@firm.com) to exclude.")
@click.option("--remove", "remove", multiple=True, metavar="ADDR", help="Email or domain to stop excluding.")
@click.argument("more", nargs=-1, metavar="[ADDR]...")
@click.option("--max-lines", default=200, show_default=True, help="Removed interactions listed at most.")
def exclude_command(
    tenant_id: str,
    member_id: str | None,
    add: tuple[str, ...],
    remove: tuple[str, ...],
    more: tuple[str, ...],
    max_lines: int,
) -> None:
    """Exclude addresses (emails, or domains like @firm.com that also cover their subdomains)
    for the whole tenant or for one member (--member), or stop excluding them.

    \b
      calsync exclude --tenant T --add lawyer@firm.com @bank.com
      calsync exclude --tenant T --member M --remove @bank.com

    Adding removes at once the stored copies and interactions the exclusion now covers (no
    calendar is read) and lists them. Removing makes the next sync of the members concerned
    (the member, or every connected member) a full one, so what it hid comes back."""
    from shared import bootstrap
    from shared.cli.rematch import print_changes
    from shared.services.exclusions import change_exclusions

    if bool(add) == bool(remove):
        raise click.UsageError("give either --add or --remove")
    adding, removing = (add + more, ()) if add else ((), remove + more)
    summary = change_exclusions(bootstrap.exclusion_deps(), tenant_id, member_id, add=adding, remove=removing)
    if summary.purge is not None:
        print_changes(summary.purge, max_lines)
    click.echo(summary.one_line())
