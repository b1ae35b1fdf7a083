"""Signed links (pure): the connect and disconnect links that prove who a member is.

A link carries its claims in the query string, `t` (tenant id), `m` (member id), `exp` (expiry,
Unix seconds) and `sig`, the HMAC-SHA256 (base64url, unpadded) over a canonical encoding of
(version, purpose, tenant, member, expiry) under `CALSYNC_LINK_SIGNING_KEY`. The purpose is not
in the query: it is implied by the URL the link points at, so a connect link presented to the
disconnect endpoint fails as a bad signature. A link is usable any number of times until it
expires (single use is the job of the OAuth `state`, not of the link).

Verification checks, in order: well-formed (`malformed`), signature in constant time
(`bad_signature`), then expiry (`expired`), so nothing is said about an unsigned link beyond
"bad signature". No I/O, no clock: callers pass `now`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlencode, urlsplit, urlunsplit

from shared.domain import ids
from shared.errors import InvalidInput

CONNECT_LINK_TTL = timedelta(minutes=15)
DISCONNECT_LINK_TTL = timedelta(hours=24)  # may be mailed; disconnecting is the safe direction
_VERSION = "calsync-link-v1"
_SIGNATURE_BYTES = 32
PARAMS = ("t", "m", "exp", "sig")


class LinkPurpose(StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"


class LinkErrorKind(StrEnum):
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


class LinkError(InvalidInput):
    """A link that cannot be trusted; `kind` says why (the message is safe to show)."""

    def __init__(self, kind: LinkErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class LinkClaims:
    purpose: LinkPurpose
    tenant_id: str
    member_id: str
    expires_at: datetime  # UTC, whole seconds


def sign_link(
    key: str | bytes,
    purpose: LinkPurpose,
    tenant_id: str,
    member_id: str,
    expires_at: datetime,
) -> dict[str, str]:
    """The query parameters of a signed link (`t`, `m`, `exp`, `sig`).

    Raises ValueError for an invalid id (shared.domain.ids), or a naive `expires_at`."""
    for name, value in (("tenant", tenant_id), ("member", member_id)):
        problem = ids.id_problem(value)
        if problem is not None:
            raise ValueError(f"{name} {problem}")
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    exp = int(expires_at.timestamp())
    return {
        "t": tenant_id,
        "m": member_id,
        "exp": str(exp),
        "sig": _signature(key, purpose, tenant_id, member_id, exp),
    }


def verify_link(
    key: str | bytes, purpose: LinkPurpose, params: Mapping[str, str], now: datetime
) -> LinkClaims:
    """The claims of a link that is well-formed, signed for `purpose` with `key`, and not
    expired at `now`. Raises LinkError (kind malformed, bad_signature or expired)."""
    tenant_id, member_id = params.get("t") or "", params.get("m") or ""
    raw_exp, raw_sig = params.get("exp") or "", params.get("sig") or ""
    if not (tenant_id and member_id and raw_exp and raw_sig):
        raise LinkError(LinkErrorKind.MALFORMED, "The link is incomplete: open the full link you were sent.")
    if not (ids.is_valid_id(tenant_id) and ids.is_valid_id(member_id)):
        raise LinkError(LinkErrorKind.MALFORMED, "The link is malformed.")
    if not raw_exp.isascii() or not raw_exp.isdigit() or len(raw_exp) > 12:
        raise LinkError(LinkErrorKind.MALFORMED, "The link is malformed.")
    if _decode_signature(raw_sig) is None:
        raise LinkError(LinkErrorKind.MALFORMED, "The link is malformed.")
    exp = int(raw_exp)
    expected = _signature(key, purpose, tenant_id, member_id, exp)
    if not hmac.compare_digest(expected.encode("ascii"), raw_sig.encode("ascii")):
        raise LinkError(
            LinkErrorKind.BAD_SIGNATURE, "The link is not valid (it was altered or is not for this page)."
        )
    expires_at = datetime.fromtimestamp(exp, UTC)
    if now >= expires_at:
        raise LinkError(LinkErrorKind.EXPIRED, "The link has expired: ask for a new one.")
    return LinkClaims(purpose, tenant_id, member_id, expires_at)


def link_url(base_url: str, params: Mapping[str, str]) -> str:
    """`base_url` with the link's parameters added to its query string (existing ones kept)."""
    parts = urlsplit(base_url)
    extra = urlencode([(name, params[name]) for name in PARAMS])
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _signature(key: str | bytes, purpose: LinkPurpose, tenant_id: str, member_id: str, exp: int) -> str:
    raw_key = key.encode() if isinstance(key, str) else key
    if not raw_key:
        raise ValueError("the link signing key is empty")
    # JSON of a list is an unambiguous encoding whatever characters the ids contain.
    message = json.dumps([_VERSION, str(purpose), tenant_id, member_id, exp], separators=(",", ":"))
    digest = hmac.new(raw_key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _decode_signature(raw: str) -> bytes | None:
    if not raw.isascii() or len(raw) != 43:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + "=")
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == _SIGNATURE_BYTES else None
