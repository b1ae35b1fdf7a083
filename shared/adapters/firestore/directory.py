"""`FirestoreDirectoryStore`: the tenant document, accounts, users and members' addresses, as
matching reads them, and the directory writes of `calsync import`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.firestore.base import (
    ACCOUNTS,
    GET_ALL_CHUNK,
    IN_QUERY_LIMIT,
    MAX_WRITES_PER_COMMIT,
    MEMBERS,
    TENANTS,
    USERS,
    chunks,
    stream_all,
    translated,
    unique,
)
from shared.adapters.firestore.codecs import account_from_document, tenant_from_document, user_from_document
from shared.domain import directory_keys
from shared.domain import emails as email_rules
from shared.domain.directory_file import DirectoryFile
from shared.domain.exclusions import Exclusions, exclusions_from_document
from shared.domain.models import Account, ConnectionStatus, DirectorySnapshot, Tenant, User
from shared.errors import NotFound, TransientError

PENDING_REMATCH = "pendingRematch"  # tenants/{t}/pendingRematch/{n}: an import's re-match to do
_PENDING_KEYS_PER_DOCUMENT = 10_000


class FirestoreDirectoryStore:
    """Implements `DirectoryStore` (shared.services.ports), plus the reads and writes of
    `calsync import`."""

    def __init__(self, client: firestore.Client) -> None:
        self._db = client

    def _tenant(self, tenant_id: str) -> Any:
        return self._db.collection(TENANTS).document(tenant_id)

    def get_tenant(self, tenant_id: str) -> Tenant:
        """Settings parsed with the defaults of README.md#data-in-firestore (a malformed value counts as
        absent). Raises NotFound for an unknown tenant, TransientError."""
        with translated("reading a tenant"):
            snapshot = self._tenant(tenant_id).get()
        if not snapshot.exists:
            raise NotFound(f"unknown tenant {tenant_id!r}")
        return tenant_from_document(tenant_id, snapshot.to_dict() or {})

    def member_emails(self, tenant_id: str) -> frozenset[str]:
        """Every member's normalised address. Raises TransientError."""
        members = self._tenant(tenant_id).collection(MEMBERS).select(["email"])
        with translated("reading member addresses"):
            found = (s.to_dict().get("email") for s in members.stream())
            return frozenset(email_rules.normalize_email(e) for e in found if isinstance(e, str) and e)

    def members_for_matching(self, tenant_id: str) -> tuple[frozenset[str], dict[str, Exclusions]]:
        """Every member's normalised address, and each member's own exclusions (one read per
        member). Raises TransientError."""
        members = self._tenant(tenant_id).collection(MEMBERS).select(["email", "excludedAddresses"])
        emails: set[str] = set()
        exclusions: dict[str, Exclusions] = {}
        with translated("reading member addresses"):
            for snapshot in members.stream():
                data = snapshot.to_dict() or {}
                email = data.get("email")
                if isinstance(email, str) and email:
                    emails.add(email_rules.normalize_email(email))
                own = exclusions_from_document(data.get("excludedAddresses"))
                if not own.is_empty:
                    exclusions[snapshot.id] = own
        return frozenset(emails), exclusions

    def _exclusions_ref(self, tenant_id: str, member_id: str | None) -> tuple[Any, str]:
        if member_id is None:
            return self._tenant(tenant_id), "settings.excludedAddresses"
        return self._tenant(tenant_id).collection(MEMBERS).document(member_id), "excludedAddresses"

    def excluded_addresses(self, tenant_id: str, member_id: str | None) -> Exclusions:
        """The tenant's `settings.excludedAddresses` or the member's `excludedAddresses`.
        Raises NotFound, TransientError."""
        ref, _ = self._exclusions_ref(tenant_id, member_id)
        with translated("reading exclusions"):
            snapshot = ref.get()
        if not snapshot.exists:
            what = f"member {member_id!r} of tenant {tenant_id!r}" if member_id else f"tenant {tenant_id!r}"
            raise NotFound(f"unknown {what}")
        data = snapshot.to_dict() or {}
        raw = (data.get("settings") or {}) if member_id is None else data
        return exclusions_from_document(raw.get("excludedAddresses") if isinstance(raw, dict) else None)

    def set_excluded_addresses(self, tenant_id: str, member_id: str | None, exclusions: Exclusions) -> None:
        """Replace the list (an update: an unknown document raises NotFound). Raises TransientError."""
        ref, path = self._exclusions_ref(tenant_id, member_id)
        with translated("writing exclusions"):
            try:
                ref.update({path: exclusions.entries()})
            except gexc.NotFound as error:
                raise NotFound(f"unknown tenant or member ({tenant_id!r}, {member_id!r})") from error

    def lookup(self, tenant_id: str, emails: Iterable[str], domains: Iterable[str]) -> DirectorySnapshot:
        """Users whose `emailKey` is one of `emails` (`in`, 30 per query) and accounts whose
        `domainKeys` hold one of `domains` (`array-contains-any`, 30 per query). Every key looked
        up is in the snapshot, with an empty tuple when nothing matched. Raises TransientError."""
        email_keys = unique(emails)
        domain_keys = unique(domains)
        tenant = self._tenant(tenant_id)
        users: dict[str, list[User]] = {e: [] for e in email_keys}
        accounts: dict[str, list[Account]] = {d: [] for d in domain_keys}
        user_queries = [
            tenant.collection(USERS).where(filter=FieldFilter("emailKey", "in", list(chunk)))
            for chunk in chunks(email_keys, IN_QUERY_LIMIT)
        ]
        account_queries = [
            tenant.collection(ACCOUNTS).where(
                filter=FieldFilter("domainKeys", "array_contains_any", list(chunk))
            )
            for chunk in chunks(domain_keys, IN_QUERY_LIMIT)
        ]
        with translated("looking up the directory"):
            results = stream_all([*user_queries, *account_queries])
        for snapshots in results[: len(user_queries)]:
            for snapshot in snapshots:
                user = user_from_document(snapshot.id, snapshot.to_dict() or {})
                if user.email in users:
                    users[user.email].append(user)
        wanted = set(domain_keys)
        for snapshots in results[len(user_queries) :]:
            for snapshot in snapshots:
                account = account_from_document(snapshot.id, snapshot.to_dict() or {})
                for domain in account.domains:
                    if domain in wanted and all(a.id != account.id for a in accounts[domain]):
                        accounts[domain].append(account)
        return DirectorySnapshot(
            users_by_email={e: tuple(sorted(u, key=lambda x: x.id)) for e, u in users.items()},
            accounts_by_domain={d: tuple(sorted(a, key=lambda x: x.id)) for d, a in accounts.items()},
        )

    # --- an import's re-match, recorded before the import writes (README.md#reliability) --------

    def pending_rematch(self, tenant_id: str) -> tuple[frozenset[str], frozenset[str], bool]:
        emails: set[str] = set()
        domains: set[str] = set()
        every = False
        with translated("reading a pending re-match"):
            for snapshot in self._tenant(tenant_id).collection(PENDING_REMATCH).stream():
                data = snapshot.to_dict() or {}
                emails.update(e for e in data.get("emails") or [] if isinstance(e, str))
                domains.update(d for d in data.get("domains") or [] if isinstance(d, str))
                every = every or data.get("everyMeeting") is True
        return frozenset(emails), frozenset(domains), every

    def save_pending_rematch(
        self, tenant_id: str, emails: frozenset[str], domains: frozenset[str], every_meeting: bool
    ) -> None:
        """One document per 10,000 keys (a document holds at most 1 MiB), all in one commit
        (or several of 500 documents, the first ones first)."""
        keys = [("emails", e) for e in sorted(emails)] + [("domains", d) for d in sorted(domains)]
        parts = list(chunks(keys, _PENDING_KEYS_PER_DOCUMENT)) or [[]]
        collection = self._tenant(tenant_id).collection(PENDING_REMATCH)
        with translated("recording a pending re-match"):
            for group_start in range(0, len(parts), MAX_WRITES_PER_COMMIT):
                batch = self._db.batch()
                for number, part in enumerate(parts[group_start : group_start + MAX_WRITES_PER_COMMIT]):
                    batch.set(
                        collection.document(f"{group_start + number:06d}"),
                        {
                            "emails": [k for kind, k in part if kind == "emails"],
                            "domains": [k for kind, k in part if kind == "domains"],
                            "everyMeeting": every_meeting,
                        },
                    )
                batch.commit()

    def clear_pending_rematch(self, tenant_id: str) -> None:
        collection = self._tenant(tenant_id).collection(PENDING_REMATCH)
        with translated("clearing a pending re-match"):
            for reference in collection.list_documents():
                reference.delete()

    def mark_directory_changed(self, tenant_id: str, at: datetime) -> None:
        """Set the tenant's `directoryChangedAt`; an unknown tenant is left alone. Raises
        TransientError."""
        with translated("marking a directory change"), contextlib.suppress(gexc.NotFound):
            self._tenant(tenant_id).update({"directoryChangedAt": at})

    def refresh_derived_keys(
        self, tenant_id: str, collection: directory_keys.Collection, document_id: str
    ) -> tuple[frozenset[str], frozenset[str]]:
        """Bring a user's `emailKey` or an account's `domainKeys` in line with its `email` /
        `domains` as the document is NOW (the CS platform may write documents without them),
        writing only when they differ, with a precondition on the update time read (re-read
        when someone wrote in between). Returns the (emails, domains) the document is found by
        afterwards (empty when it does not exist). Raises TransientError."""
        ref = self._tenant(tenant_id).collection(collection).document(document_id)
        for _ in range(5):
            with translated("reading a directory document"):
                snapshot = ref.get()
            if not snapshot.exists:
                return frozenset(), frozenset()
            data = snapshot.to_dict() or {}
            updates = directory_keys.needs_derived_update(collection, data)
            if updates:
                option = self._db.write_option(last_update_time=snapshot.update_time)
                try:
                    with translated("fixing a directory document's keys"):
                        ref.update(
                            {k: firestore.DELETE_FIELD if v is None else v for k, v in updates.items()},
                            option=option,
                        )
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue  # written or deleted meanwhile: look again
                data = {**data, **updates}
            return directory_keys.document_keys(collection, data)
        raise TransientError(f"{collection}/{document_id} of tenant {tenant_id!r} kept changing")

    def directory_documents(
        self, tenant_id: str, collection: directory_keys.Collection, document_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """The stored fields of these users or accounts (batched gets); missing ones are left
        out. Raises TransientError."""
        parent = self._tenant(tenant_id).collection(collection)
        refs = [parent.document(i) for i in unique(document_ids)]
        found: dict[str, dict[str, Any]] = {}
        with translated("reading directory documents"):
            for chunk in chunks(refs, GET_ALL_CHUNK):
                for snapshot in self._db.get_all(list(chunk)):
                    if snapshot.exists:
                        found[snapshot.id] = snapshot.to_dict() or {}
        return found

    def existing_account_ids(self, tenant_id: str, account_ids: Iterable[str]) -> frozenset[str]:
        """Which of these account ids exist in the tenant (batched gets). Raises TransientError."""
        accounts = self._tenant(tenant_id).collection(ACCOUNTS)
        refs = [accounts.document(a) for a in unique(account_ids)]
        found: set[str] = set()
        with translated("reading accounts"):
            for chunk in chunks(refs, GET_ALL_CHUNK):
                found.update(s.id for s in self._db.get_all(list(chunk), field_paths=["name"]) if s.exists)
        return frozenset(found)

    def write_directory(self, directory: DirectoryFile) -> dict[str, int]:
        """Upsert a validated directory: the tenant document (name, internalDomains, settings
        replaced as a whole), accounts (+ `domainKeys`), users (+ `emailKey`) and members
        (email and name only: an existing member's `calendar` is never touched; a new member
        gets `calendar.status = not_connected`). Documents not in the file are left alone, and
        fields of ours only are merged, so fields others added to these documents stay.
        Written in batches of at most 500 (validated beforehand, so all rows are good).
        Returns counts. Raises TransientError."""
        tenant_ref = self._tenant(directory.tenant.id)
        members = tenant_ref.collection(MEMBERS)
        member_refs = [members.document(m.id) for m in directory.members]
        existing: set[str] = set()
        with translated("reading members"):
            for chunk in chunks(member_refs, GET_ALL_CHUNK):
                existing.update(
                    s.id for s in self._db.get_all(list(chunk), field_paths=["email"]) if s.exists
                )

        writes, new_members = _directory_writes(tenant_ref, directory, existing)
        with translated("writing the directory"):
            for chunk in chunks(writes, MAX_WRITES_PER_COMMIT):
                batch = self._db.batch()
                for ref, data in chunk:
                    batch.set(ref, data, merge=list(data))
                batch.commit()
        return {
            "accounts": len(directory.accounts),
            "users": len(directory.users),
            "members": len(directory.members),
            "newMembers": new_members,
        }


def _directory_writes(
    tenant_ref: Any, directory: DirectoryFile, existing_members: set[str]
) -> tuple[list[tuple[Any, dict[str, Any]]], int]:
    """The (document, fields to merge) of an import, and how many members are new: a new member
    gets `calendar.status = not_connected`; an existing member's `calendar` is never touched."""
    writes: list[tuple[Any, dict[str, Any]]] = [
        (
            tenant_ref,
            {
                "name": directory.tenant.name,
                "internalDomains": list(directory.tenant.internal_domains),
                "settings": dict(directory.settings_document),
            },
        )
    ]
    for account in directory.accounts:
        writes.append(
            (
                tenant_ref.collection(ACCOUNTS).document(account.id),
                {
                    "name": account.name,
                    "domains": list(account.raw_domains),
                    "domainKeys": list(account.domains),
                },
            )
        )
    for user in directory.users:
        writes.append(
            (
                tenant_ref.collection(USERS).document(user.id),
                {
                    "email": user.email,
                    "name": user.name,
                    "accountId": user.account_id,
                    "emailKey": user.email,
                },
            )
        )
    new_members = 0
    for member in directory.members:
        data: dict[str, Any] = {"email": member.email, "name": member.name}
        if member.excluded_addresses is not None:
            data["excludedAddresses"] = member.excluded_addresses.entries()
        if member.id not in existing_members:
            data["calendar"] = {"status": ConnectionStatus.NOT_CONNECTED.value, "consecutiveFailures": 0}
            new_members += 1
        writes.append((tenant_ref.collection(MEMBERS).document(member.id), data))
    return writes, new_members
