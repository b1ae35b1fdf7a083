"""calsync subcommands: demo."""

from __future__ import annotations

import signal
from types import FrameType

import click

from shared.cli.app import cli


@cli.command("demo")
def demo_command() -> None:
    """Run the whole pipeline in the local sandbox and print the interactions it produced.

    Starts Google's Firestore and Pub/Sub emulators, a stand-in for Google's OAuth, Calendar and
    Secret Manager, and every function under functions-framework; imports the sample tenant,
    connects its members through the OAuth flow, syncs through schedule_sync -> Pub/Sub ->
    sync_worker, then changes the calendars and syncs again. Stops everything it started.
    """
    from shared.sandbox.demo import run_demo
    from shared.sandbox.emulators import EmulatorsUnavailable

    def stop(signum: int, _: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds the sandbox's clean-up

    signal.signal(signal.SIGTERM, stop)
    try:
        run_demo(click.echo)
    except EmulatorsUnavailable as error:
        raise click.ClickException(str(error)) from None
    except TimeoutError as error:
        raise click.ClickException(f"the demo timed out: {error}") from None
