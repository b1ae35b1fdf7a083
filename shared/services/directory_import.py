"""`calsync import`: upsert a tenant's directory from a JSON file (SPEC §7).

The whole file is validated before anything is written (`shared.domain.directory_file`); one
read checks the users that point at accounts outside the file: a user may point at an account
that already exists in the tenant (imported earlier, or written by the CS platform). Then the
store upserts the rows. Import never deletes: accounts, users and members missing from the file
are left alone. It never resets a member's connection or sync state (`calendar`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from shared.domain.directory_file import DirectoryFile, DirectoryFileInvalid, parse_directory


class DirectoryImportStore(Protocol):
    """What an import needs from the directory store (FirestoreDirectoryStore implements it)."""

    def existing_account_ids(self, tenant_id: str, account_ids: Iterable[str]) -> frozenset[str]:
        """Which of these accounts exist in the tenant. Raises TransientError."""
        ...

    def write_directory(self, directory: DirectoryFile) -> dict[str, int]:
        """Upsert a validated directory; returns counts. Raises TransientError."""
        ...


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
    directory = validate_directory(text, store)
    counts = store.write_directory(directory)
    return ImportSummary(
        tenant_id=directory.tenant.id,
        accounts=counts["accounts"],
        users=counts["users"],
        members=counts["members"],
        new_members=counts["newMembers"],
    )
