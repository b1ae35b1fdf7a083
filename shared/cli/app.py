"""The root `calsync` command group."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """calsync: Google Calendar meetings of a customer-success team, as account interactions.

    Every subcommand reads the configuration (README.md#configuration) from the environment, so it works the
    same against the local sandbox and against Google Cloud.
    """
