"""Re-matching stored meetings after a directory change (README.md#how-meetings-are-matched-to-accounts, last
paragraph), without reading any calendar: the use case behind `directory_changed`, `calsync rematch` and the
end of
`calsync import`.

    which meetings: the stored meetings whose attendees include a changed user's old or new
      address, or whose domain levels include a changed account's old or new domains (the
      meetings' `emails[]`/`domains[]` index: no scan of the tenant's meetings);
    then per chunk: read them -> look up the directory as it is NOW -> plan_rematch (pure) ->
      apply atomically, re-reading on write conflicts (shared.services.recompute).

A change event only chooses WHICH meetings to recompute; the result depends on the directory
as it is when they are recomputed, never on the event's payload. So duplicate and out-of-order
deliveries converge on what a fresh sync would produce, and running it twice writes nothing the
second time.

What raises what (the retry contract):
- returns a `RematchSummary` (also when there was nothing to do);
- raises NotFound for an unknown tenant (acknowledge with an error log);
- raises TransientError when Firestore is unavailable or the meetings kept changing under it
  (retry: the re-match is idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.domain import directory_keys, planning
from shared.domain.directory_file import DirectoryFile
from shared.domain.directory_keys import ACCOUNTS, USERS, Collection
from shared.domain.exclusions import Exclusions
from shared.domain.models import MeetingRecord, Plan, StoredMeeting, Tenant
from shared.errors import NotFound
from shared.logs import get_logger
from shared.services.ports import Clock, DirectoryChange, RematchDirectoryStore, RematchMeetingStore
from shared.services.recompute import DirectoryCache, copies_in_meetings, read_plan_apply
from shared.services.timing import finished

MAX_LISTED_CHANGES = 10_000  # what a summary keeps for printing; the counts are always complete


@dataclass(frozen=True)
class RematchDeps:
    directory: RematchDirectoryStore
    meetings: RematchMeetingStore
    clock: Clock


@dataclass(frozen=True)
class RematchSettings:
    chunk_size: int = 200  # meetings read, planned and written atomically together
    max_conflict_retries: int = 8  # re-read and re-plan a chunk a sync changed meanwhile
    page_size: int = 1000  # meeting keys per page when re-matching a whole tenant


class InteractionChangeKind(StrEnum):
    """What a re-match did to one interaction. Moved: the meeting now goes to another account;
    updated: same account, different content (a domain match became a direct match, a name)."""

    ADDED = "added"
    MOVED = "moved"
    UPDATED = "updated"
    REMOVED = "removed"


@dataclass(frozen=True)
class InteractionChange:
    """One interaction added, moved, updated or removed by a re-match."""

    kind: InteractionChangeKind
    meeting_key: str
    title: str
    date: str
    account_before: str | None
    account_after: str | None


@dataclass
class RematchSummary:
    tenant_id: str
    scope: str  # "tenant", "import", or the changed document (`users/u-1`)
    emails: int = 0  # addresses whose meetings were looked up
    domains: int = 0  # domains whose meetings were looked up
    meetings: int = 0  # stored meetings re-evaluated
    meetings_written: int = 0
    copies_removed: int = 0  # members' copies no longer stored (excluded, README.md#exclusions)
    added: int = 0
    moved: int = 0
    updated: int = 0
    removed: int = 0
    conflicts: int = 0
    too_large: int = 0  # meetings left as stored: re-matched, a document would exceed the limit
    skipped: str | None = None  # why nothing was looked at
    duration_ms: int = 0
    changes: list[InteractionChange] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.added + self.moved + self.updated + self.removed

    def count(self, change: InteractionChange) -> None:
        """Count one change (and keep it for printing, up to MAX_LISTED_CHANGES)."""
        if change.kind is InteractionChangeKind.ADDED:
            self.added += 1
        elif change.kind is InteractionChangeKind.MOVED:
            self.moved += 1
        elif change.kind is InteractionChangeKind.UPDATED:
            self.updated += 1
        else:
            self.removed += 1
        if len(self.changes) < MAX_LISTED_CHANGES:
            self.changes.append(change)

    def as_log_fields(self) -> dict[str, Any]:
        fields = {k: v for k, v in self.__dict__.items() if v is not None and k != "changes"}
        fields["changed"] = self.changed
        return fields

    def one_line(self) -> str:
        what = f"{self.added} added, {self.moved} moved, {self.updated} updated, {self.removed} removed"
        return f"re-matched {self.meetings} meetings of tenant {self.tenant_id}: interactions {what}"


Progress = Callable[[int, int], None]  # (meetings done, meetings in all)


# --- entry points ----------------------------------------------------------------------------


def rematch_directory_change(
    deps: RematchDeps, change: DirectoryChange, settings: RematchSettings | None = None
) -> RematchSummary:
    """`directory_changed`: first bring the document's `emailKey`/`domainKeys` in line with
    what it says now (the CS platform may write without them; written only when they differ, so
    the event of that write changes nothing), then re-match the meetings that contain the old or
    new address (user) or domains (account). An event that only carries that fix is skipped.
    See the module docstring for what raises what."""
    started = time.monotonic()
    summary = RematchSummary(change.tenant_id, f"{change.collection}/{change.document_id}")
    emails_now, domains_now = deps.directory.refresh_derived_keys(
        change.tenant_id, change.collection, change.document_id
    )
    if directory_keys.is_derived_fields_echo(change.collection, change.old, change.new):
        summary.skipped = "only the derived emailKey/domainKeys changed"
        return finished(summary, started)
    emails, domains = directory_keys.affected_keys(change.collection, change.old, change.new)
    _rematch_addresses(deps, summary, emails | emails_now, domains | domains_now, settings)
    return finished(summary, started)


def rematch_addresses(
    deps: RematchDeps,
    tenant_id: str,
    emails: Iterable[str],
    domains: Iterable[str],
    settings: RematchSettings | None = None,
    *,
    scope: str = "addresses",
    on_progress: Progress | None = None,
) -> RematchSummary:
    """Re-match the stored meetings containing any of these (normalised) attendee emails or
    domain levels. See the module docstring for what raises what."""
    started = time.monotonic()
    summary = RematchSummary(tenant_id, scope)
    _rematch_addresses(deps, summary, frozenset(emails), frozenset(domains), settings, on_progress)
    return finished(summary, started)


def rematch_tenant(
    deps: RematchDeps,
    tenant_id: str,
    settings: RematchSettings | None = None,
    *,
    on_progress: Progress | None = None,
) -> RematchSummary:
    """`calsync rematch --tenant T`: every stored meeting of the tenant, paged (one read per
    meeting for its key, one for the meeting). See the module docstring for what raises what."""
    settings = settings or RematchSettings()
    started = time.monotonic()
    summary = RematchSummary(tenant_id, "tenant")
    deps.directory.get_tenant(tenant_id)  # an unknown tenant is an error, not "0 meetings"
    deps.directory.mark_directory_changed(tenant_id, deps.clock.now())  # before the read
    keys = [key for page in deps.meetings.meeting_keys(tenant_id, settings.page_size) for key in page]
    _Rematch(deps, summary, settings, on_progress).run(keys)
    return finished(summary, started)


# --- after `calsync import` ------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryBefore:
    """What the users, accounts, tenant and members of an import file were before it was
    written (to tell what the import changed)."""

    tenant: Tenant | None
    member_emails: frozenset[str]
    member_exclusions: Mapping[str, Exclusions]  # members without any left out
    users: Mapping[str, Mapping[str, Any]]
    accounts: Mapping[str, Mapping[str, Any]]


def read_before_import(deps: RematchDeps, directory: DirectoryFile) -> DirectoryBefore:
    """Read the documents an import of `directory` will overwrite (one read per row).
    Raises TransientError."""
    tenant_id = directory.tenant.id
    try:
        tenant: Tenant | None = deps.directory.get_tenant(tenant_id)
    except NotFound:
        tenant = None
    member_emails: frozenset[str] = frozenset()
    member_exclusions: Mapping[str, Exclusions] = {}
    if tenant is not None:
        member_emails, member_exclusions = deps.directory.members_for_matching(tenant_id)
    return DirectoryBefore(
        tenant=tenant,
        member_emails=member_emails,
        member_exclusions=member_exclusions,
        users=deps.directory.directory_documents(tenant_id, USERS, (u.id for u in directory.users)),
        accounts=deps.directory.directory_documents(tenant_id, ACCOUNTS, (a.id for a in directory.accounts)),
    )


@dataclass(frozen=True)
class RematchKeys:
    """What an import's re-match covers: the meetings containing these emails or domain levels,
    or every meeting of the tenant."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    every_meeting: bool = False

    def __or__(self, other: RematchKeys) -> RematchKeys:
        return RematchKeys(
            self.emails | other.emails,
            self.domains | other.domains,
            self.every_meeting or other.every_meeting,
        )

    @property
    def is_empty(self) -> bool:
        return not (self.emails or self.domains or self.every_meeting)


def import_rematch_keys(directory: DirectoryFile, before: DirectoryBefore) -> RematchKeys:
    """What an import of `directory` over `before` changes for matching (pure, known before
    anything is written): the old and new keys of the users and accounts whose matching fields
    change; every meeting when the tenant's own matching rules change (internal domains,
    free-mail exceptions, `excludeDeclined`, a member's address). Nothing for a new tenant."""
    if before.tenant is None:  # a new tenant: no meeting can be stored yet
        return RematchKeys()
    if _tenant_rules_changed(directory, before):
        return RematchKeys(every_meeting=True)
    emails: set[str] = set()
    domains: set[str] = set()
    for user in directory.users:
        new = {"email": user.email, "name": user.name, "accountId": user.account_id, "emailKey": user.email}
        _add_changed(USERS, before.users.get(user.id), new, emails, domains)
    for account in directory.accounts:
        new_account = {"domains": list(account.raw_domains), "domainKeys": list(account.domains)}
        _add_changed(ACCOUNTS, before.accounts.get(account.id), new_account, emails, domains)
    return RematchKeys(frozenset(emails), frozenset(domains))


def rematch_keys(
    deps: RematchDeps,
    tenant_id: str,
    keys: RematchKeys,
    settings: RematchSettings | None = None,
    *,
    on_progress: Progress | None = None,
) -> RematchSummary:
    """Re-match what `keys` cover (the end of `calsync import`). Raises NotFound, TransientError."""
    if keys.is_empty:
        return RematchSummary(tenant_id, "import", skipped="nothing the import changed concerns matching")
    if keys.every_meeting:
        summary = rematch_tenant(deps, tenant_id, settings, on_progress=on_progress)
        summary.scope = "import (tenant rules changed: every meeting)"
        return summary
    return rematch_addresses(
        deps, tenant_id, keys.emails, keys.domains, settings, scope="import", on_progress=on_progress
    )


def _add_changed(
    collection: Collection,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    emails: set[str],
    domains: set[str],
) -> None:
    if old is not None and directory_keys.is_matching_unchanged(collection, old, new):
        return
    changed_emails, changed_domains = directory_keys.affected_keys(collection, old, new)
    emails.update(changed_emails)
    domains.update(changed_domains)


def _tenant_rules_changed(directory: DirectoryFile, before: DirectoryBefore) -> bool:
    old = before.tenant
    new = directory.tenant
    if old is None:
        return False
    if set(old.internal_domains) != set(new.internal_domains):
        return True
    if (old.settings.exclude_declined, old.settings.free_mail_domains_allowed) != (
        new.settings.exclude_declined,
        new.settings.free_mail_domains_allowed,
    ):
        return True
    # A member of the file with an address no member had: a new member, or one whose address
    # changed (its old address leaves the members' set).
    return any(member.email not in before.member_emails for member in directory.members)


# --- the work ----------------------------------------------------------------------------------


def _rematch_addresses(
    deps: RematchDeps,
    summary: RematchSummary,
    emails: frozenset[str],
    domains: frozenset[str],
    settings: RematchSettings | None,
    on_progress: Progress | None = None,
) -> None:
    summary.emails, summary.domains = len(emails), len(domains)
    if not emails and not domains:
        return
    deps.directory.mark_directory_changed(summary.tenant_id, deps.clock.now())  # before the read
    keys = deps.meetings.meeting_keys_for_addresses(summary.tenant_id, sorted(emails), sorted(domains))
    _Rematch(deps, summary, settings or RematchSettings(), on_progress).run(keys)


class _Rematch:
    """One re-match run: the directory is looked up once per key for the whole run."""

    def __init__(
        self,
        deps: RematchDeps,
        summary: RematchSummary,
        settings: RematchSettings,
        on_progress: Progress | None,
    ) -> None:
        self.deps = deps
        self.summary = summary
        self.settings = settings
        self.on_progress = on_progress
        self.directory = DirectoryCache(deps.directory, summary.tenant_id)
        self.too_large_seen: set[str] = set()

    def run(self, keys: Sequence[str]) -> None:
        total = len(keys)
        if self.on_progress:
            self.on_progress(0, total)
        for start in range(0, total, self.settings.chunk_size):
            chunk = keys[start : start + self.settings.chunk_size]
            self._chunk(chunk)
            self.summary.meetings += len(chunk)
            if self.on_progress:
                self.on_progress(min(start + len(chunk), total), total)

    def _chunk(self, keys: Sequence[str]) -> None:
        def decide(_: Sequence[str], stored: dict[str, StoredMeeting]) -> Plan:
            context = self.directory.context(copies_in_meetings(stored.values()))
            return planning.plan_rematch(stored, context, self.deps.clock.now())

        def count_conflict() -> None:
            self.summary.conflicts += 1

        read_plan_apply(
            self.deps.meetings,
            self.summary.tenant_id,
            keys,
            keys_of=lambda part: part,
            decide=decide,
            apply=self._apply,
            too_large=self._leave_too_large,
            retries=self.settings.max_conflict_retries,
            on_conflict=count_conflict,
            gave_up="meetings kept changing during a directory re-match (write conflicts); retry later",
        )

    def _leave_too_large(self, keys: Sequence[str], too_large: frozenset[str]) -> Sequence[str]:
        """Meetings whose re-matched documents would exceed the store's limit stay as they are
        (counted and logged once; docs/reference.md#size-limits)."""
        for key in sorted(too_large - self.too_large_seen):
            self.too_large_seen.add(key)
            self.summary.too_large += 1
            get_logger(component="rematch").warning(
                "meeting too large to store once re-matched: left as it was",
                tenant_id=self.summary.tenant_id,
                meeting_key=key,
            )
        return [k for k in keys if k not in too_large]

    def _apply(self, stored: dict[str, StoredMeeting], plan: Plan) -> None:
        if plan.is_empty:
            return
        self.deps.meetings.apply(self.summary.tenant_id, plan)
        self.summary.meetings_written += len(plan.meeting_writes)
        self.summary.copies_removed += copies_removed(stored, plan)
        for change in interaction_changes(stored, plan):
            self.summary.count(change)


def copies_removed(stored: Mapping[str, StoredMeeting], plan: Plan) -> int:
    """How many members' copies the plan's meeting writes leave out."""
    removed = 0
    for write in plan.meeting_writes:
        before = stored[write.meeting_key].record.copies if write.meeting_key in stored else {}
        after = write.record.copies if write.record is not None else {}
        removed += len(set(before) - set(after))
    return removed


def interaction_changes(stored: Mapping[str, StoredMeeting], plan: Plan) -> list[InteractionChange]:
    """What a re-match plan does to interactions, per meeting: accounts that gained one and
    accounts that lost one pair up as moves (in account order); the rest are added or removed;
    an account kept whose interaction is rewritten is an update."""
    upserts = {(i.meeting_key, i.account_id): i for i in plan.interaction_upserts}
    described = {i.meeting_key: (i.title, i.date) for i in plan.interaction_upserts}
    changes: list[InteractionChange] = []
    for write in plan.meeting_writes:
        key = write.meeting_key
        old = stored[key].record if key in stored else None
        before = set(old.interaction_hashes) if old is not None else set()
        after = set(write.record.interaction_hashes) if write.record is not None else set()
        title, date = described.get(key) or _describe(old)
        gained, lost = sorted(after - before), sorted(before - after)
        pairs = min(len(gained), len(lost))
        for account_before, account_after in zip(lost[:pairs], gained[:pairs], strict=True):
            changes.append(
                InteractionChange(
                    InteractionChangeKind.MOVED, key, title, date, account_before, account_after
                )
            )
        changes.extend(
            InteractionChange(InteractionChangeKind.ADDED, key, title, date, None, a) for a in gained[pairs:]
        )
        changes.extend(
            InteractionChange(InteractionChangeKind.REMOVED, key, title, date, a, None) for a in lost[pairs:]
        )
        changes.extend(
            InteractionChange(InteractionChangeKind.UPDATED, key, title, date, a, a)
            for a in sorted(before & after)
            if (key, a) in upserts
        )
    return changes


def _describe(old: MeetingRecord | None) -> tuple[str, str]:
    """Title and start date (UTC) of a meeting's most recently updated copy."""
    copies = list(old.copies.values()) if old is not None else []
    if not copies:
        return "", ""
    latest = max(copies, key=lambda c: (c.updated, c.member_id))
    return latest.title, latest.start.date().isoformat()
