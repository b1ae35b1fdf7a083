"""calsync subcommands: links and connections (README.md#command-line): `connect-link`, `disconnect-link`,
`disconnect`, `set-token`. Each checks that the member exists in that tenant first."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta

import click

from shared.cli.app import cli
from shared.cli.options import ID


def _tenant_member(function: Callable[..., None]) -> Callable[..., None]:
    function = click.option("--member", "member_id", type=ID, required=True, help="Member id.")(function)
    return click.option("--tenant", "tenant_id", type=ID, required=True, help="Tenant id.")(function)


def _print_link(purpose_name: str, tenant_id: str, member_id: str, ttl_minutes: int | None) -> None:
    from shared import bootstrap
    from shared.domain import links

    purpose = links.LinkPurpose(purpose_name)
    url_setting = "connect_url" if purpose is links.LinkPurpose.CONNECT else "disconnect_url"
    settings = bootstrap.require("project", "link_signing_key", url_setting)
    if purpose is links.LinkPurpose.CONNECT:
        base, default_ttl = settings.required("connect_url"), links.CONNECT_LINK_TTL
    else:
        base, default_ttl = settings.required("disconnect_url"), links.DISCONNECT_LINK_TTL
    ttl = timedelta(minutes=ttl_minutes) if ttl_minutes else default_ttl
    service = bootstrap.connect_service(full_oauth=False)
    click.echo(service.signed_link(purpose, tenant_id, member_id, base, ttl))


_TTL_OPTION = click.option(
    "--ttl-minutes",
    type=click.IntRange(1, 60 * 24 * 30),
    default=None,
    help="How long the link stays valid (connect: 15 minutes by default; disconnect: 1 hour).",
)


@cli.command("connect-link")
@_tenant_member
@_TTL_OPTION
def connect_link(tenant_id: str, member_id: str, ttl_minutes: int | None) -> None:
    """Print a signed connect URL (to CALSYNC_CONNECT_URL) for one member."""
    _print_link("connect", tenant_id, member_id, ttl_minutes)


@cli.command("disconnect-link")
@_tenant_member
@_TTL_OPTION
def disconnect_link(tenant_id: str, member_id: str, ttl_minutes: int | None) -> None:
    """Print a signed disconnect URL (to CALSYNC_DISCONNECT_URL) for one member."""
    _print_link("disconnect", tenant_id, member_id, ttl_minutes)


@cli.command("disconnect")
@_tenant_member
def disconnect(tenant_id: str, member_id: str) -> None:
    """Revoke the member's Google consent, destroy its token, mark it disconnected."""
    from shared import bootstrap

    bootstrap.connect_service(full_oauth=False).disconnect(tenant_id, member_id)
    click.echo(f"disconnected member {member_id} of tenant {tenant_id}")


@cli.command("set-token")
@_tenant_member
def set_token(tenant_id: str, member_id: str) -> None:
    """Read a refresh token on standard input and store it as the OAuth callback would."""
    from shared import bootstrap

    if sys.stdin.isatty():
        token = str(click.prompt("refresh token", hide_input=True, err=True))
    else:
        token = sys.stdin.read()
    queued = bootstrap.connect_service(full_oauth=False).set_token(tenant_id, member_id, token)
    note = "" if queued else " (first sync not queued: the next scheduled run picks it up)"
    click.echo(f"stored a new token for member {member_id} of tenant {tenant_id}: connected{note}")
