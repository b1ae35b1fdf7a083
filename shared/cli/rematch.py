"""calsync subcommand: rematch (re-evaluate stored meetings against the directory as it is now),
and the summary `calsync import` prints after its own re-match."""

from __future__ import annotations

import sys
from typing import Any

import click

from shared.cli.app import cli
from shared.cli.options import ID
from shared.cli.output import table

_CHANGE_COLUMNS = ("change", "date", "title", "from", "to")


def print_changes(summary: Any, max_lines: int) -> None:
    """The interactions a re-match added, moved, updated or removed, then one summary line."""
    rows = [
        {
            "change": c.kind,
            "date": c.date,
            "title": c.title[:40],
            "from": c.account_before,
            "to": c.account_after,
        }
        for c in summary.changes[:max_lines]
    ]
    if rows:
        click.echo(table(_CHANGE_COLUMNS, rows))
    hidden = summary.changed - len(rows)
    if hidden > 0:
        click.echo(f"... and {hidden} more")
    click.echo(summary.one_line())


class _Progress:
    """A progress bar on stderr, made once the number of meetings is known."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="re-matching meetings", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@cli.command("rematch")
@click.option("--tenant", "tenant_id", type=ID, required=True, help="Tenant id.")
@click.option("--max-lines", default=200, show_default=True, help="Changes listed at most.")
def rematch_command(tenant_id: str, max_lines: int) -> None:
    """Re-evaluate every stored meeting of the tenant against the directory as it is now, without
    reading any calendar, and print the interactions added, moved, updated and removed.

    Safe to run at any time and as often as you like: a second run changes nothing. The
    directory_changed function does the same for just the meetings one change concerns."""
    from shared import bootstrap
    from shared.services.rematch import rematch_tenant

    progress = _Progress()
    try:
        summary = rematch_tenant(bootstrap.rematch_deps(), tenant_id, on_progress=progress)
    finally:
        progress.close()
    print_changes(summary, max_lines)
