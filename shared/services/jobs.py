"""The sync job message (README, "Data in Firestore"): UTF-8 JSON, ids only, schema-versioned.

    {"v": 1, "tenantId": "...", "memberId": "...", "reason": "scheduled"}

with `reason` one of `shared.services.ports.JobReason` (scheduled, push, renew, connected,
continuation, manual).

`decode_job` raises `InvalidInput` for anything else (bad JSON or UTF-8, unknown `v`, missing or
non-string ids, unknown reason, oversize): such a message is acknowledged with an error log,
since redelivering it cannot help. `job_from_push_message` does the same for the message of a
Pub/Sub push (its `data` is the job, base64-encoded), which `push_message` takes out of the event.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from shared.domain import ids
from shared.errors import InvalidInput
from shared.services.ports import JobReason, SyncJob

SCHEMA_VERSION = 1
MAX_JOB_BYTES = 4096  # a job is two ids and a word; anything bigger is not ours


def encode_job(job: SyncJob) -> bytes:
    """The message data for one job (compact UTF-8 JSON)."""
    return json.dumps(
        {
            "v": SCHEMA_VERSION,
            "tenantId": job.tenant_id,
            "memberId": job.member_id,
            "reason": str(job.reason),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def decode_job(data: bytes | str) -> SyncJob:
    """Parse message data. Raises InvalidInput (never echoing the payload, which may be anything)."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_JOB_BYTES:
        raise InvalidInput(f"sync job message too large ({len(raw)} bytes, at most {MAX_JOB_BYTES})")
    try:
        message = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"sync job message is not UTF-8 JSON ({type(error).__name__})") from None
    if not isinstance(message, dict):
        raise InvalidInput("sync job message is not a JSON object")
    version = message.get("v")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise InvalidInput(f"sync job message has unknown schema version {version!r:.20}")
    found: list[str] = []
    for name in ("tenantId", "memberId"):
        value = message.get(name)
        if not ids.is_valid_id(value):
            raise InvalidInput(f"sync job message has a missing or malformed {name}")
        found.append(value)
    try:
        reason = JobReason(message.get("reason", JobReason.SCHEDULED))
    except (ValueError, TypeError):  # TypeError: a list or an object
        raise InvalidInput("sync job message has an unknown reason") from None
    return SyncJob(tenant_id=found[0], member_id=found[1], reason=reason)


def push_message(event_data: Any) -> Mapping[str, Any]:
    """The `message` of a Pub/Sub push envelope (`{"message": {...}, "subscription": ...}`), or
    an empty mapping when the event carries none (decoding it then raises InvalidInput)."""
    message = event_data.get("message") if isinstance(event_data, Mapping) else None
    return message if isinstance(message, Mapping) else {}


def job_from_push_message(message: Mapping[str, Any]) -> SyncJob:
    """The job a Pub/Sub push message carries (base64 of the job's JSON in `data`).
    Raises InvalidInput when `data` is missing, not base64, or not a valid job."""
    data = message.get("data")
    if not isinstance(data, str):
        raise InvalidInput("Pub/Sub message has no data")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("Pub/Sub message data is not base64") from None
    return decode_job(raw)
