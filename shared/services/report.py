"""`build_report`: the operator report of one tenant (README.md#operator-report).

Gather bounded inputs through the ports → rank and group them in `shared.domain.report` (pure).
Reads, whatever the tenant's size: the tenant document; every member (the table lists them);
12 aggregation counts; the meetings from 90 days ago on (one projected read each, capped at
`MEETING_SCAN_LIMIT`); one batched directory lookup of the ambiguous keys; the names of the top
accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shared.domain import report as rules
from shared.domain.directory_keys import ACCOUNTS
from shared.domain.report import Report
from shared.services.ports import Clock, MemberStore, RematchDirectoryStore, ReportStore

# At most this many meetings are read for the top accounts and the matching quality; past it
# the report says it is incomplete (`complete: false`). 50,000 projected reads ~ $0.03.
MEETING_SCAN_LIMIT = 50_000


@dataclass(frozen=True)
class ReportDeps:
    directory: RematchDirectoryStore
    members: MemberStore
    reports: ReportStore
    clock: Clock


def build_report(deps: ReportDeps, tenant_id: str, *, scan_limit: int = MEETING_SCAN_LIMIT) -> Report:
    """The report as of the clock's now. Raises NotFound (unknown tenant), TransientError
    (Firestore unavailable: nothing is half-written, just run it again)."""
    tenant = deps.directory.get_tenant(tenant_id)
    now = deps.clock.now()
    members = rules.member_health(deps.members.list_members(tenant_id))
    starts = rules.week_starts(now)
    counts = deps.reports.count_interactions(tenant_id, rules.weekly_ranges(starts))
    weekly = tuple(rules.WeekCount(s, n) for s, n in zip(starts, counts, strict=True))

    since = now - timedelta(days=rules.RECENT_DAYS)
    meetings, complete = deps.reports.recent_meetings(tenant_id, since, scan_limit)
    ranked = rules.top_accounts(meetings, since, now)
    documents = deps.directory.directory_documents(tenant_id, ACCOUNTS, [a.account_id for a in ranked])
    top = rules.with_names(ranked, {a: str(d.get("name") or "") for a, d in documents.items()})

    emails, domains = rules.ambiguous_lookup_keys(meetings)
    directory = deps.directory.lookup(tenant_id, emails, domains)
    return Report(
        tenant_id=tenant.id,
        generated_at=now,
        members=members,
        weekly=weekly,
        top_accounts=top,
        unmatched_domains=rules.unmatched_domains(meetings, tenant),
        ambiguous=rules.ambiguous_keys(meetings, directory),
        meetings_read=len(meetings),
        complete=complete,
    )
