"""The fault-free reference and the comparison.

The reference is a NEW empty Firestore project on the same emulator: the final directories
imported, the same refresh tokens stored, and every member synced in-process, fault-free
(`sync_member` with `bootstrap.sync_deps(continuations=False)`), against the final stand-in
calendars. Then the interactions of both projects are compared document for document: the
same ids, and every field except createdAt/updatedAt.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from shared import bootstrap
from shared.services.directory_import import import_directory
from shared.services.sync import SyncOutcome, sync_member
from soak.pipeline import Log
from soak.world import World

IGNORED_FIELDS = frozenset({"createdAt", "updatedAt"})


@dataclass(frozen=True)
class Difference:
    tenant_id: str
    interaction_id: str
    field: str
    soak: Any
    reference: Any

    def line(self) -> str:
        return (
            f"{self.tenant_id}/interactions/{self.interaction_id} {self.field}: "
            f"soak={_short(self.soak)} reference={_short(self.reference)}"
        )


def build_reference(world: World, tokens: dict[tuple[str, str], str], log: Log) -> str:
    """Fill a fresh project with the fault-free result; returns its id. Switches this
    process's GOOGLE_CLOUD_PROJECT to it (the caller switches back)."""
    project = f"calsync-soak-ref-{secrets.token_hex(3)}"
    os.environ["GOOGLE_CLOUD_PROJECT"] = project
    bootstrap.reset()
    for tenant in world.tenants:
        import_directory(json.dumps(world.import_file(tenant)).encode(), bootstrap.directory_store())
    connect = bootstrap.connect_service(full_oauth=False)
    for (tenant_id, member_id), token in tokens.items():
        connect.set_token(tenant_id, member_id, token)
    deps = bootstrap.sync_deps(continuations=False)

    def sync(pair: tuple[str, str]) -> str:
        return str(sync_member(deps, pair[0], pair[1]).outcome)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(sync, tokens))
    bad = [o for o in outcomes if o != SyncOutcome.SYNCED]
    log(f"reference: {len(outcomes)} members synced fault-free in project {project} ({len(bad)} not synced)")
    if bad:
        raise RuntimeError(f"the reference sync did not sync every member: {bad}")
    return project


def interactions(project: str, tenant_id: str) -> dict[str, dict[str, Any]]:
    """Raw interaction documents of one tenant, without createdAt/updatedAt."""
    from google.cloud import firestore

    client = firestore.Client(project=project)
    try:
        found = {}
        for snapshot in client.collection("tenants").document(tenant_id).collection("interactions").stream():
            doc = snapshot.to_dict() or {}
            found[snapshot.id] = {k: v for k, v in doc.items() if k not in IGNORED_FIELDS}
        return found
    finally:
        client.close()


def compare(soak_project: str, reference_project: str, tenant_ids: list[str]) -> tuple[list[Difference], int]:
    """Every difference between the two projects' interactions, and how many were compared."""
    differences: list[Difference] = []
    compared = 0
    for tenant_id in tenant_ids:
        ours, theirs = interactions(soak_project, tenant_id), interactions(reference_project, tenant_id)
        compared += len(theirs)
        for interaction_id in sorted(set(ours) | set(theirs)):
            a, b = ours.get(interaction_id), theirs.get(interaction_id)
            if a is None or b is None:
                differences.append(Difference(tenant_id, interaction_id, "<document>", a, b))
                continue
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    differences.append(Difference(tenant_id, interaction_id, name, a.get(name), b.get(name)))
    return differences, compared


def _short(value: Any, limit: int = 600) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "…"
