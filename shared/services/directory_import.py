"""`calsync import`: upsert a tenant's directory from a JSON file (README.md#command-line).

The whole file is validated before anything is written (`shared.domain.directory_file`); one
read checks the users that point at accounts outside the file: a user may point at an account
that already exists in the tenant (imported earlier, or written by the CS platform). Then the
store upserts the rows. Import never deletes: accounts, users and members missing from the file
are left alone. It never resets a member's connection or sync state (`calendar`).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.directory_file import DirectoryFile, DirectoryFileInvalid, parse_directory
from shared.services.exclusions import ExclusionDeps, ExclusionSummary, apply_import_exclusions
from shared.services.ports import DirectoryImportStore
from shared.services.rematch import (
    RematchDeps,
    RematchKeys,
    RematchSummary,
    import_rematch_keys,
    read_before_import,
    rematch_keys,
)


@dataclass(frozen=True)
class ImportSummary:
    tenant_id: str
    accounts: int
    users: int
    members: int
    new_members: int


def validate_directory(text: str | bytes, store: DirectoryImportStore) -> DirectoryFile:
    """Parse and validate the whole file, resolving references to accounts outside it against
    the tenant. Raises DirectoryFileInvalid listing every bad row, TransientError."""
    directory = parse_directory(text)
    outside = directory.outside_account_ids
    if outside and directory.tenant.id:
        existing = store.existing_account_ids(directory.tenant.id, outside)
    else:  # without a usable tenant id the file is already invalid: don't add noise
        existing = outside
    directory = directory.with_account_references(existing)
    if directory.problems:
        raise DirectoryFileInvalid(directory.problems)
    return directory


def import_directory(text: str | bytes, store: DirectoryImportStore) -> ImportSummary:
    """Validate the whole file, then upsert it. Raises DirectoryFileInvalid (nothing written),
    TransientError (Firestore unavailable; the import can be re-run: it is an upsert)."""
    return _write(validate_directory(text, store), store)


def _write(directory: DirectoryFile, store: DirectoryImportStore) -> ImportSummary:
    counts = store.write_directory(directory)
    return ImportSummary(
        tenant_id=directory.tenant.id,
        accounts=counts["accounts"],
        users=counts["users"],
        members=counts["members"],
        new_members=counts["newMembers"],
    )


@dataclass(frozen=True)
class ImportResult:
    """What `calsync import` did: the rows upserted, and the re-match of what they changed."""

    imported: ImportSummary
    rematched: RematchSummary
    exclusions: ExclusionSummary | None = None  # what the exclusions changed (README.md#exclusions)


def import_and_rematch(
    text: str | bytes,
    deps: RematchDeps,
    store: DirectoryImportStore,
    exclusions: ExclusionDeps | None = None,
) -> ImportResult:
    """`calsync import`: note the directory rows the file names as they are now, import the
    file, then re-match the stored meetings whose matching the import changed (what
    `directory_changed` would also do, document by document). Raises DirectoryFileInvalid
    (nothing written), NotFound, TransientError (the import and the re-match can both be re-run).
    With `exclusions`, the exclusions the file adds are purged and those it removes make the
    next sync of the members concerned a full one (shared.services.exclusions)."""
    parsed = validate_directory(text, store)  # nothing is written for a file with a bad row
    before = read_before_import(deps, parsed)
    tenant_id = parsed.tenant.id
    # What this import changes for matching is recorded before it writes, with what an earlier
    # import that stopped midway left to do (README.md#reliability): a re-run finishes both.
    emails, domains, every = store.pending_rematch(tenant_id)
    keys = import_rematch_keys(parsed, before) | RematchKeys(emails, domains, every)
    if not keys.is_empty:
        store.save_pending_rematch(tenant_id, keys.emails, keys.domains, keys.every_meeting)
    imported = _write(parsed, store)
    rematched = rematch_keys(deps, tenant_id, keys)
    if not keys.is_empty:
        store.clear_pending_rematch(tenant_id)
    excluded = apply_import_exclusions(exclusions, parsed, before) if exclusions is not None else None
    return ImportResult(imported, rematched, excluded)
