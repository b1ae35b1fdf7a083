"""The `calsync` command (README.md#command-line). Each group of subcommands lives in its own module; heavy
imports happen inside the commands so `calsync --help` stays fast."""

from __future__ import annotations

import os
import sys

import click

from shared.cli.app import cli
from shared.errors import CalsyncError

# Importing the modules registers their subcommands on `cli`.
from shared.cli import demo, directory, exclusions, links, rematch, report, syncing  # noqa: F401  isort: skip


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: exit 0 on success, else one line on stderr and a non-zero status."""
    from shared import logs

    logs.configure(stream="stderr")  # stdout is for the command's own output
    try:
        cli.main(args=argv, prog_name="calsync", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("calsync: error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        click.echo(f"calsync: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except CalsyncError as error:
        click.echo(f"calsync: error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("calsync: error: interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # one line for users; CALSYNC_DEBUG=1 shows the traceback
        if os.environ.get("CALSYNC_DEBUG"):
            raise
        first_line = (str(error).splitlines() or [""])[0][:300]
        click.echo(f"calsync: error: unexpected {type(error).__name__}: {first_line}", err=True)
        sys.exit(1)
