"""calsync subcommand: `report` (README.md#operator-report)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from shared.cli.app import cli
from shared.cli.options import ID
from shared.cli.output import table, utc_text
from shared.domain.report import Report


def summary_text(report: Report) -> str:
    """A few lines for a terminal: who must reconnect, activity, what fails to match."""
    reconnect = len(report.must_reconnect)
    lines = [f"tenant {report.tenant_id}: {len(report.members)} members, {reconnect} must reconnect"]
    if report.must_reconnect:
        rows = [
            {
                "member": m.member_id,
                "status": m.status.value,
                "lastSuccessAt": utc_text(m.last_success_at),
                "failures": m.consecutive_failures,
                "lastError": (m.last_error or "")[:60] or None,
            }
            for m in report.must_reconnect
        ]
        lines.append(table(("member", "status", "lastSuccessAt", "failures", "lastError"), rows))
    weekly = ", ".join(str(w.interactions) for w in report.weekly)
    lines.append(f"interactions per week (oldest first, last 12): {weekly}")
    top = ", ".join(f"{a.account_id} {a.meetings}" for a in report.top_accounts[:5]) or "none"
    lines.append(f"top accounts (90 days): {top}")
    unmatched = ", ".join(f"{d.domain} ({d.meetings})" for d in report.unmatched_domains[:5]) or "none"
    lines.append(f"unmatched domains: {unmatched}")
    ambiguous = ", ".join(f"{a.key} ({'/'.join(a.accounts)})" for a in report.ambiguous[:5]) or "none"
    lines.append(f"ambiguous: {ambiguous}")
    if not report.complete:
        lines.append(f"note: only the first {report.meetings_read} meetings were read (the scan's cap)")
    return "\n".join(lines)


def write_html(report: Report, path: Path) -> Path:
    """Write the page; returns its absolute path."""
    from shared.services.report_page import render_report_html

    path.write_text(render_report_html(report), encoding="utf-8")
    return path.resolve()


@cli.command("report")
@click.option("--tenant", "tenant_id", type=ID, required=True, help="Tenant id.")
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="Write the page here."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def report_command(tenant_id: str, html_file: Path | None, as_json: bool) -> None:
    """The tenant's sync health and matching quality: members (those who must reconnect first),
    interactions per week, top accounts, unmatched and ambiguous domains. `--html FILE` writes a
    self-contained page; `--json` prints the same facts; on a terminal a short summary too."""
    from shared import bootstrap
    from shared.domain.report import report_to_json
    from shared.services.report import build_report

    report = build_report(bootstrap.report_deps(), tenant_id)
    if html_file is not None:
        written = write_html(report, html_file)
        click.echo(f"wrote {written}", err=as_json)
    if as_json:
        click.echo(json.dumps(report_to_json(report), indent=2, ensure_ascii=False))
    elif html_file is None or sys.stdout.isatty():
        click.echo(summary_text(report))
