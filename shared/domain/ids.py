"""Deterministic document ids, so that re-running a sync rewrites the same documents."""

from __future__ import annotations

import hashlib

_SEPARATOR = "\x1f"  # cannot occur in a meeting key or an account id read from JSON text


def meeting_id(meeting_key: str) -> str:
    """The id of `tenants/{t}/meetings/{id}` for a meeting key."""
    return hashlib.sha256(meeting_key.encode()).hexdigest()[:40]


def interaction_id(meeting_key: str, account_id: str) -> str:
    """The id of `tenants/{t}/interactions/{id}`: one per (meeting, account)."""
    digest = hashlib.sha256(f"{meeting_key}{_SEPARATOR}{account_id}".encode())
    return digest.hexdigest()[:40]
