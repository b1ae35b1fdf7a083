"""Ids: what a tenant, account, user or member id may be, and the deterministic ids derived from
them, so that re-running a sync rewrites the same documents.

An id given to calsync (by `calsync import`, a job, a link, an event or the CLI) is 1-128
characters of `A-Z a-z 0-9 . _ -`, neither `.` nor `..`, and not of the form `__…__` (Firestore
reserves those): it is always one Firestore path segment, never a path (docs/reference.md#ids).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TypeGuard

_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_RESERVED = re.compile(r"__.*__")
# Joins a meeting key and an account id. A valid account id cannot hold it, so the last one in
# the joined text is always the separator: the join is injective whatever the meeting key holds.
_SEPARATOR = "\x1f"


def id_problem(value: object) -> str | None:
    """Why `value` is not a valid id (a short sentence naming it), or None."""
    if not isinstance(value, str) or not value:
        return "id must be a non-empty string"
    shown = json.dumps(value[:130])
    if not _ID.fullmatch(value):
        return f"id {shown} is not usable as a document id (1-128 characters of A-Z a-z 0-9 . _ -)"
    if value in (".", "..") or _RESERVED.fullmatch(value):
        return f"id {shown} is not usable as a document id (reserved)"
    return None


def is_valid_id(value: object) -> TypeGuard[str]:
    return id_problem(value) is None


def meeting_id(meeting_key: str) -> str:
    """The id of `tenants/{t}/meetings/{id}` for a meeting key."""
    return hashlib.sha256(meeting_key.encode()).hexdigest()[:40]


def interaction_id(meeting_key: str, account_id: str) -> str:
    """The id of `tenants/{t}/interactions/{id}`: one per (meeting, account)."""
    digest = hashlib.sha256(f"{meeting_key}{_SEPARATOR}{account_id}".encode())
    return digest.hexdigest()[:40]
