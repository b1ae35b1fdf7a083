"""The operator report's aggregation (shared.domain.report) and page (shared.services.report_page)
on hand-made meetings: ranking, free-mail and internal domains left out, ambiguous keys with the
accounts that claim them, members who must reconnect first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.models import (
    Account,
    CalendarState,
    ConnectionStatus,
    DirectorySnapshot,
    Member,
    PushStatus,
    Tenant,
    TenantSettings,
    UnmatchedAddress,
    UnmatchedReason,
    User,
)
from shared.domain.report import (
    RecentMeeting,
    Report,
    WeekCount,
    ambiguous_keys,
    ambiguous_lookup_keys,
    member_health,
    report_to_json,
    top_accounts,
    unmatched_domains,
    week_starts,
    with_names,
)
from shared.services.report_page import chart_bars, render_report_html

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday
TENANT = Tenant(
    id="t1",
    name="T",
    internal_domains=("ours.com",),
    settings=TenantSettings(free_mail_domains_allowed=frozenset({"gmx.de"})),
)
NO_MATCH = UnmatchedReason.NO_MATCH


def meeting(
    *unmatched: tuple[str, UnmatchedReason], accounts: tuple[str, ...] = (), days_ago: int = 1
) -> RecentMeeting:
    return RecentMeeting(
        start=NOW - timedelta(days=days_ago),
        account_ids=accounts,
        unmatched=tuple(UnmatchedAddress(e, r) for e, r in unmatched),
    )


def test_unmatched_domains_rank_by_meetings_then_distinct_addresses_then_name() -> None:
    meetings = [
        meeting(("a@beta.io", NO_MATCH), ("b@beta.io", NO_MATCH)),
        meeting(("a@alpha.io", NO_MATCH)),
        meeting(("a@alpha.io", NO_MATCH), ("c@gamma.io", NO_MATCH)),
        meeting(("a@beta.io", NO_MATCH)),
        meeting(("z@delta.io", NO_MATCH)),
        meeting(("y@gamma.io", NO_MATCH)),
    ]
    ranked = [(d.domain, d.meetings, d.addresses) for d in unmatched_domains(meetings, TENANT)]
    assert ranked == [("beta.io", 2, 2), ("gamma.io", 2, 2), ("alpha.io", 2, 1), ("delta.io", 1, 1)]


def test_subdomains_count_under_the_registrable_domain_once_per_meeting() -> None:
    meetings = [meeting(("ops@eu.unknown.co.uk", NO_MATCH), ("ceo@unknown.co.uk", NO_MATCH))]
    assert [(d.domain, d.meetings, d.addresses) for d in unmatched_domains(meetings, TENANT)] == [
        ("unknown.co.uk", 1, 2)
    ]


def test_free_mail_internal_and_ambiguous_addresses_are_not_unmatched_domains() -> None:
    meetings = [
        meeting(
            ("jane@gmail.com", UnmatchedReason.FREE_MAIL),
            ("jane@gmail.com", NO_MATCH),  # even if stored as no_match (an older record)
            ("x@ours.com", NO_MATCH),
            ("x@eu.ours.com", NO_MATCH),
            ("s@initech.io", UnmatchedReason.AMBIGUOUS_DOMAIN),
            ("d@fbi.com", UnmatchedReason.AMBIGUOUS_USER),
            ("shop@gmx.de", NO_MATCH),  # free mail the tenant allows: a company domain
        )
    ]
    assert [d.domain for d in unmatched_domains(meetings, TENANT)] == ["gmx.de"]


def test_ambiguous_keys_name_the_claiming_accounts_and_rank_by_meetings() -> None:
    meetings = [
        meeting(
            ("s@initech.io", UnmatchedReason.AMBIGUOUS_DOMAIN),
            ("t@sales.initech.io", UnmatchedReason.AMBIGUOUS_DOMAIN),
        ),
        meeting(("s@initech.io", UnmatchedReason.AMBIGUOUS_DOMAIN)),
        meeting(("dana@fbi.com", UnmatchedReason.AMBIGUOUS_USER), ("x@nowhere.io", NO_MATCH)),
    ]
    emails, domains = ambiguous_lookup_keys(meetings)
    assert emails == {"dana@fbi.com"}
    assert domains == {"initech.io", "sales.initech.io"}
    directory = DirectorySnapshot(
        users_by_email={
            "dana@fbi.com": (
                User("u1", "dana@fbi.com", "D", "acc-b"),
                User("u2", "dana@fbi.com", "D", "acc-a"),
            )
        },
        accounts_by_domain={
            "initech.io": (Account("acc-initrode", "Initrode"), Account("acc-initech", "Initech")),
            "sales.initech.io": (),
        },
    )
    found = [(a.key, a.kind, a.accounts, a.meetings) for a in ambiguous_keys(meetings, directory)]
    assert found == [
        ("initech.io", "domain", ("acc-initech", "acc-initrode"), 2),
        ("dana@fbi.com", "address", ("acc-a", "acc-b"), 1),
    ]


def test_an_ambiguous_subdomain_level_is_the_key_when_accounts_own_that_level() -> None:
    meetings = [meeting(("t@sales.initech.io", UnmatchedReason.AMBIGUOUS_DOMAIN))]
    directory = DirectorySnapshot(
        accounts_by_domain={"sales.initech.io": (Account("acc-x", "X"), Account("acc-y", "Y"))}
    )
    assert [(a.key, a.accounts) for a in ambiguous_keys(meetings, directory)] == [
        ("sales.initech.io", ("acc-x", "acc-y"))
    ]


def test_top_accounts_count_meetings_in_the_window_most_first_then_by_id() -> None:
    since = NOW - timedelta(days=90)
    meetings = [
        meeting(accounts=("acc-b", "acc-a")),
        meeting(accounts=("acc-b",)),
        meeting(accounts=("acc-a",)),
        meeting(accounts=("acc-c",)),
        meeting(accounts=("acc-c",), days_ago=91),  # before the window
        meeting(accounts=("acc-c",), days_ago=-3),  # upcoming: not in the last 90 days
    ]
    ranked = with_names(top_accounts(meetings, since, NOW, limit=2), {"acc-a": "Alpha"})
    assert [(a.account_id, a.name, a.meetings) for a in ranked] == [("acc-a", "Alpha", 2), ("acc-b", "", 2)]


def test_weeks_start_on_monday_utc_oldest_first() -> None:
    starts = week_starts(NOW)
    assert len(starts) == 12
    assert starts[-1] == datetime(2026, 11, 23, tzinfo=UTC)
    assert starts[0] == datetime(2026, 9, 7, tzinfo=UTC)
    assert all(s.weekday() == 0 for s in starts)


def _member(member_id: str, status: ConnectionStatus) -> Member:
    return Member(member_id, f"{member_id}@ours.com", member_id.upper(), CalendarState(status=status))


def test_members_who_must_reconnect_come_first() -> None:
    rows = member_health(
        [
            _member("a", ConnectionStatus.CONNECTED),
            _member("b", ConnectionStatus.ERROR),
            _member("c", ConnectionStatus.NOT_CONNECTED),
            _member("d", ConnectionStatus.NEEDS_REAUTH),
        ]
    )
    assert [(r.member_id, r.must_reconnect) for r in rows] == [
        ("b", True),
        ("d", True),
        ("a", False),
        ("c", False),
    ]
    assert {r.push_state for r in rows} == {"polling"}


def test_a_members_push_channel_shows_as_active_with_its_expiry_or_failed() -> None:
    expires = NOW + timedelta(days=6)
    active = CalendarState(
        status=ConnectionStatus.CONNECTED,
        push_status=PushStatus.ACTIVE,
        push_channel_id="calsync-1",
        push_expires_at=expires,
    )
    failed = CalendarState(
        status=ConnectionStatus.CONNECTED, push_status=PushStatus.FAILED, push_expires_at=expires
    )
    rows = member_health(
        [
            Member("a", "a@ours.com", "A", active),
            Member("b", "b@ours.com", "B", failed),
            _member("c", ConnectionStatus.CONNECTED),
        ]
    )
    assert [(r.push_state, r.push_expires_at) for r in rows] == [
        ("active", expires),
        ("failed", None),
        ("polling", None),
    ]


def _report() -> Report:
    meetings = [meeting(("x@unknown.io", NO_MATCH), accounts=("acc-a",))]
    return Report(
        tenant_id="t1",
        generated_at=NOW,
        members=member_health([_member("a", ConnectionStatus.NEEDS_REAUTH)]),
        weekly=tuple(WeekCount(s, n) for s, n in zip(week_starts(NOW), range(12), strict=True)),
        top_accounts=with_names(
            top_accounts(meetings, NOW - timedelta(days=90), NOW), {"acc-a": "<Alpha & Co>"}
        ),
        unmatched_domains=unmatched_domains(meetings, TENANT),
        ambiguous=(),
        meetings_read=1,
    )


def test_the_json_has_the_contract_keys() -> None:
    document = report_to_json(_report())
    assert {"members", "weekly", "topAccounts", "unmatchedDomains", "ambiguous"} <= set(document)
    assert document["unmatchedDomains"] == [{"domain": "unknown.io", "meetings": 1, "addresses": 1}]
    assert document["weekly"][-1] == {"weekStart": "2026-11-23", "interactions": 11}
    assert document["members"][0]["push"] == {"state": "polling", "expiresAt": None}
    assert document["members"][0]["mustReconnect"] is True


def test_the_page_escapes_names_and_fetches_nothing() -> None:
    page = render_report_html(_report())
    assert "&lt;Alpha &amp; Co&gt;" in page
    assert "<Alpha" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    assert 'role="img"' in page
    assert "week of 2026-11-23: 11" in page  # the chart's text alternative lists the numbers
    assert '<th scope="col">' in page
    assert "<title>calsync report: t1" in page
    assert "@media print" in page
    assert "⚠ reconnect" in page  # not colour alone


def test_bars_scale_to_the_largest_week_and_an_empty_tenant_has_flat_bars() -> None:
    weeks = tuple(WeekCount(s, n) for s, n in zip(week_starts(NOW), [0] * 11 + [4], strict=True))
    bars = chart_bars(weeks)
    assert bars[-1].height > 0
    assert all(b.height == 0 for b in bars[:-1])
    empty = chart_bars(tuple(WeekCount(s, 0) for s in week_starts(NOW)))
    assert {b.height for b in empty} == {0}
