"""Changing exclusions and applying the change at once (README.md#exclusions): the use case of
`calsync exclude` and of the end of `calsync import`.

    adding: the stored meetings that mention an added email or domain are found through the
      meetings' `emails[]`/`domains[]` index (never a scan) and re-planned with the exclusions in
      place (the re-match, shared.services.rematch): excluded copies are removed, and with them
      the interactions only they produced. No calendar is read.
    removing: the members concerned (the member, or every connected member for the tenant's
      list) get a full sync next time (`calendar_state.full_sync_requested`), which brings back
      what the exclusion hid.

What raises what (the retry contract):
- InvalidInput for an entry that is neither an email nor a domain (nothing changed);
- NotFound for an unknown tenant or member (nothing changed);
- TransientError when Firestore is unavailable: re-running the same command is safe (the adds
  are purged and the removes re-synced again, whether or not they were already on the list).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shared.domain import exclusions as exclusion_rules
from shared.domain.calendar_state import full_sync_requested
from shared.domain.directory_file import DirectoryFile
from shared.domain.exclusions import NO_EXCLUSIONS, Exclusions
from shared.errors import InvalidInput
from shared.services.ports import ExclusionStore, MemberStore
from shared.services.rematch import DirectoryBefore, RematchDeps, RematchSummary, rematch_addresses


@dataclass(frozen=True)
class ExclusionDeps:
    rematch: RematchDeps
    exclusions: ExclusionStore
    members: MemberStore


@dataclass
class ExclusionSummary:
    tenant_id: str
    member_id: str | None
    entries: list[str]  # the list after the change
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    purge: RematchSummary | None = None  # what adding removed
    full_sync_members: list[str] = field(default_factory=list)  # members whose next sync is full

    def one_line(self) -> str:
        scope = f"member {self.member_id}" if self.member_id else "the tenant"
        removed = self.purge.copies_removed if self.purge else 0
        deleted = self.purge.removed if self.purge else 0
        return (
            f"exclusions of {scope} ({self.tenant_id}): {len(self.entries)} entries; "
            f"removed {removed} stored copies and {deleted} interactions; "
            f"{len(self.full_sync_members)} members will sync in full"
        )


def parse_entries(entries: Sequence[str]) -> Exclusions:
    """The exclusions named on the command line. Raises InvalidInput naming the first bad one."""
    parsed, problems = exclusion_rules.parse_exclusion_list(list(entries))
    if problems:
        raise InvalidInput(problems[0])
    return parsed


def change_exclusions(
    deps: ExclusionDeps,
    tenant_id: str,
    member_id: str | None,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
) -> ExclusionSummary:
    """`calsync exclude`: add and remove entries of the tenant's list (`member_id` None) or of
    one member's, then apply the change. See the module docstring for what raises what."""
    adding, removing = parse_entries(add), parse_entries(remove)
    if adding.is_empty and removing.is_empty:
        raise InvalidInput("give at least one address to --add or --remove")
    if adding.emails & removing.emails or adding.domains & removing.domains:
        raise InvalidInput("the same address cannot be both added and removed")
    current = deps.exclusions.excluded_addresses(tenant_id, member_id)
    after = (current | adding) - removing
    deps.exclusions.set_excluded_addresses(tenant_id, member_id, after)
    summary = ExclusionSummary(tenant_id, member_id, after.entries(), adding.entries(), removing.entries())
    apply_exclusion_change(deps, summary, tenant_id, member_id, added=adding, removed=removing)
    return summary


def apply_exclusion_change(
    deps: ExclusionDeps,
    summary: ExclusionSummary,
    tenant_id: str,
    member_id: str | None,
    *,
    added: Exclusions,
    removed: Exclusions,
) -> None:
    """Once the lists are written: purge what `added` covers, and make the next sync of the
    members concerned by `removed` a full one. Raises NotFound, TransientError."""
    if not added.is_empty:
        emails, domains = exclusion_rules.index_keys(added)
        summary.purge = rematch_addresses(deps.rematch, tenant_id, emails, domains, scope="exclude")
    if not removed.is_empty:
        members = [member_id] if member_id else [m for _, m in deps.members.connected_members(tenant_id)]
        for member in members:
            deps.members.update_calendar(tenant_id, member, full_sync_requested())
        summary.full_sync_members.extend(members)


def apply_import_exclusions(
    deps: ExclusionDeps, directory: DirectoryFile, before: DirectoryBefore
) -> ExclusionSummary:
    """After `calsync import` wrote `directory`: purge what the tenant's and the members' lists
    gained, and make the next sync of the members concerned by what they lost a full one
    (every connected member when the tenant's list lost any). Raises NotFound, TransientError."""
    tenant_id = directory.tenant.id
    old_tenant = before.tenant.settings.excluded_addresses if before.tenant else NO_EXCLUSIONS
    new_tenant = directory.tenant.settings.excluded_addresses
    added, removed = new_tenant - old_tenant, old_tenant - new_tenant
    summary = ExclusionSummary(tenant_id, None, new_tenant.entries(), added.entries(), removed.entries())
    member_removed: list[str] = []
    for row in directory.members:
        if row.excluded_addresses is None:  # not in the file: left as stored
            continue
        old = before.member_exclusions.get(row.id, NO_EXCLUSIONS)
        added |= row.excluded_addresses - old
        if not (old - row.excluded_addresses).is_empty:
            member_removed.append(row.id)
    if before.tenant is None:  # a new tenant: nothing stored, nobody synced yet
        return summary
    apply_exclusion_change(deps, summary, tenant_id, None, added=added, removed=removed)
    if removed.is_empty:
        for member in member_removed:
            deps.members.update_calendar(tenant_id, member, full_sync_requested())
        summary.full_sync_members.extend(member_removed)
    return summary
