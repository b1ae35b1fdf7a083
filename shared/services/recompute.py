"""Recomputing stored meetings: the step the sync and the re-match share.

    read the meetings -> look up exactly the directory entries they need -> plan (pure) ->
    apply atomically; if a meeting changed meanwhile (WriteConflict), read again and re-plan;
    if the plan is too large for one commit of the store, split the work in halves; if a
    meeting (or one of its interactions) would be a document over the store's size limit, leave
    out the work that makes it so, and write the rest (docs/reference.md#size-limits).

`DirectoryCache` looks the directory up in batches, once per key for the life of one job (a sync
job, a re-match run); `read_plan_apply` is the optimistic-concurrency loop around one chunk of work.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from shared.domain import matching
from shared.domain.exclusions import Exclusions
from shared.domain.models import DirectorySnapshot, MemberCopy, Plan, StoredMeeting, Tenant
from shared.domain.planning import plan_without_meetings
from shared.errors import DocumentTooLarge, TransientError, WriteConflict
from shared.services.ports import DirectoryStore, MeetingStore


class DirectoryCache:
    """The tenant, its members' addresses and the users/accounts looked up so far, for one job.

    Each email and domain level is fetched once (in batches) and then served from memory: the
    job sees the directory as it was when it first needed each key."""

    def __init__(
        self,
        directory: DirectoryStore,
        tenant_id: str,
        *,
        extra_member_emails: Iterable[str] = (),
        extra_member_exclusions: Mapping[str, Exclusions] | None = None,
    ) -> None:
        self._store = directory
        self._tenant_id = tenant_id
        self._extra_member_emails = frozenset(extra_member_emails)
        self._tenant: Tenant | None = None
        self._member_emails: frozenset[str] | None = None
        # the syncing member's exclusions as its sync read them win over the members' read
        self._extra_member_exclusions = dict(extra_member_exclusions or {})
        self._member_exclusions: Mapping[str, Exclusions] = {}
        self._users: dict[str, Any] = {}
        self._accounts: dict[str, Any] = {}

    def tenant_if_read(self) -> Tenant | None:
        """The tenant as this cache read it, or None when it has not looked anything up yet."""
        return self._tenant

    def tenant(self) -> Tenant:
        """Raises NotFound for an unknown tenant, TransientError."""
        if self._tenant is None:
            self._tenant = self._store.get_tenant(self._tenant_id)
        return self._tenant

    def member_emails(self) -> frozenset[str]:
        """Every member's address (read with their exclusions). Raises TransientError."""
        if self._member_emails is None:
            emails, exclusions = self._store.members_for_matching(self._tenant_id)
            self._member_exclusions = {**exclusions, **self._extra_member_exclusions}
            self._member_emails = emails | self._extra_member_emails
        return self._member_emails

    def member_exclusions(self) -> Mapping[str, Exclusions]:
        """Member id -> the member's own exclusions. Raises TransientError."""
        self.member_emails()
        return self._member_exclusions

    def context(self, copies: Iterable[MemberCopy]) -> matching.MatchingContext:
        """A matching context holding the directory entries these copies need (looked up in
        batches when not fetched before). Raises NotFound (tenant), TransientError."""
        tenant = self.tenant()
        emails, domains = matching.lookup_keys(copies, tenant, self.member_emails())
        missing_emails = [e for e in emails if e not in self._users]
        missing_domains = [d for d in domains if d not in self._accounts]
        if missing_emails or missing_domains:
            found = self._store.lookup(self._tenant_id, missing_emails, missing_domains)
            for email in missing_emails:
                self._users[email] = tuple(found.users_by_email.get(email, ()))
            for domain in missing_domains:
                self._accounts[domain] = tuple(found.accounts_by_domain.get(domain, ()))
        snapshot = DirectorySnapshot(
            users_by_email={e: self._users[e] for e in emails},
            accounts_by_domain={d: self._accounts[d] for d in domains},
        )
        return matching.MatchingContext(
            tenant=tenant,
            member_emails=self.member_emails(),
            directory=snapshot,
            member_exclusions=self.member_exclusions(),
        )


def copies_in_meetings(stored: Iterable[StoredMeeting]) -> list[MemberCopy]:
    """Every member copy these stored meetings hold (what their matching needs looked up)."""
    return [copy for meeting in stored for copy in meeting.record.copies.values()]


T = TypeVar("T")
# The meeting keys a part of the work concerns, and the plan for that part given those meetings.
KeysOf = Callable[[Sequence[T]], Collection[str]]
Decide = Callable[[Sequence[T], dict[str, StoredMeeting]], Plan]
# The work without what makes these meetings too large to store (the caller counts and logs it).
DropTooLarge = Callable[[Sequence[T], frozenset[str]], Sequence[T]]


def read_plan_apply(
    meetings: MeetingStore,
    tenant_id: str,
    work: Sequence[T],
    *,
    keys_of: KeysOf[T],
    decide: Decide[T],
    apply: Callable[[dict[str, StoredMeeting], Plan], None],
    too_large: DropTooLarge[T],
    retries: int,
    on_conflict: Callable[[], None],
    gave_up: str,
) -> None:
    """Read the meetings `keys_of(work)` names, `decide` a plan for the work from them (pure),
    `apply` it (atomically, through the meeting store). When a meeting changed since it was read
    (WriteConflict), read again and decide again, at most `retries` more times.

    When the plan does not fit in one commit of the store and the work has more than one item,
    nothing is written: the work is split in halves, and each half is read, planned and applied
    the same way on its own. When a meeting of the plan would be a document over the store's
    limit, the plan is decided again from `too_large(work, those meetings)`, and what is still
    too large is left as stored; the same when the store refuses a document of a one-item part
    (DocumentTooLarge). Work that concerns no meeting reads nothing.
    Raises TransientError(`gave_up`) when the meetings kept changing, and whatever the ports and
    callbacks raise."""

    def recompute(part: Sequence[T]) -> None:
        keys = keys_of(part)
        if not keys:
            return
        for _ in range(retries + 1):
            stored = meetings.read_meetings(tenant_id, keys)
            plan = _plan_within_document_limit(meetings, part, stored, decide, too_large)
            if len(part) > 1 and not meetings.fits_in_one_commit(plan):
                split(part)
                return
            try:
                apply(stored, plan)
            except WriteConflict:
                on_conflict()
                continue
            except DocumentTooLarge:
                if len(part) > 1:
                    split(part)
                else:
                    too_large(part, frozenset(keys))  # the store refused it: leave it as stored
            return
        raise TransientError(gave_up)

    def split(part: Sequence[T]) -> None:
        middle = len(part) // 2
        recompute(part[:middle])
        recompute(part[middle:])

    recompute(work)


def _plan_within_document_limit(
    meetings: MeetingStore,
    part: Sequence[T],
    stored: dict[str, StoredMeeting],
    decide: Decide[T],
    too_large: DropTooLarge[T],
) -> Plan:
    """The plan for `part`, without what would make a document over the store's limit."""
    plan = decide(part, stored)
    oversized = meetings.oversized_meetings(plan)
    if not oversized:
        return plan
    plan = decide(too_large(part, oversized), stored)
    return plan_without_meetings(plan, meetings.oversized_meetings(plan), stored)
