"""Signed links (pure): the connect and disconnect links that prove who a member is.

A link carries its claims in the query string, `t` (tenant id), `m` (member id), `exp` (expiry,
Unix seconds), for a disconnect link `c` (the connection it ends), and `sig`, the HMAC-SHA256
(base64url, unpadded) over a canonical encoding of (version, purpose, tenant, member, expiry
[, connection]) under the purpose's own key, derived from `CALSYNC_LINK_SIGNING_KEY`
(shared.domain.keys). The purpose is not in the query: it is implied by the URL the link points
at, so a connect link presented to the disconnect endpoint fails as a bad signature.

A connect link is usable any number of times until it expires (15 minutes): single use is the
job of the OAuth `state`, and the callback attaches only the member's own Google account. A
disconnect link lives one hour and is bound to the member's current connection
(`connection_marker` of `connectedAt`): once that connection has ended (disconnected) or been
replaced (reconnected), the link is used up. Links end up in request logs
(README.md#security): these limits are what keeps a logged link from being worth replaying.

Verification checks, in order: well-formed (`malformed`), signature in constant time
(`bad_signature`), then expiry (`expired`), so nothing is said about an unsigned link beyond
"bad signature". Whether a disconnect link's connection is still current (`used`) is checked by
the caller against the member. No I/O, no clock: callers pass `now`.
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
from shared.domain.keys import KeyPurpose, derive_key
from shared.errors import InvalidInput

CONNECT_LINK_TTL = timedelta(minutes=15)
DISCONNECT_LINK_TTL = timedelta(hours=1)  # and used up by the disconnect it makes
_VERSION = "calsync-link-v1"
_MAX_CONNECTION_LENGTH = 32
_SIGNATURE_BYTES = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NO_CONNECTION = "none"
PARAMS = ("t", "m", "c", "exp", "sig")


class LinkPurpose(StrEnum):
    CONNECT = "connect"
    DISCONNECT = "disconnect"


_KEY_PURPOSES = {
    LinkPurpose.CONNECT: KeyPurpose.CONNECT_LINK,
    LinkPurpose.DISCONNECT: KeyPurpose.DISCONNECT_LINK,
}


class LinkErrorKind(StrEnum):
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    USED = "used"  # a disconnect link whose connection has ended or been replaced


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
    connection: str | None = None  # a disconnect link's `connection_marker`


def connection_marker(connected_at: datetime | None) -> str:
    """The member's current connection as a disconnect link names it: `connectedAt` in
    microseconds since the epoch (exact, no float), or `none` when never connected."""
    if connected_at is None:
        return NO_CONNECTION
    return str((connected_at.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1))


def sign_link(
    key: str | bytes,
    purpose: LinkPurpose,
    tenant_id: str,
    member_id: str,
    expires_at: datetime,
    connection: str | None = None,
) -> dict[str, str]:
    """The query parameters of a signed link (`t`, `m`, `exp`, `sig`; `c` for `connection`,
    which a disconnect link must have and a connect link must not).

    Raises ValueError for an invalid id (shared.domain.ids) or connection, or a naive `expires_at`."""
    for name, value in (("tenant", tenant_id), ("member", member_id)):
        problem = ids.id_problem(value)
        if problem is not None:
            raise ValueError(f"{name} {problem}")
    if (connection is not None) != (purpose is LinkPurpose.DISCONNECT):
        raise ValueError("a disconnect link names its connection; a connect link does not")
    if connection is not None and not _is_connection(connection):
        raise ValueError("connection must be a connection_marker")
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    exp = int(expires_at.timestamp())
    params = {"t": tenant_id, "m": member_id, "exp": str(exp)}
    if connection is not None:
        params["c"] = connection
    params["sig"] = _signature(key, purpose, tenant_id, member_id, exp, connection)
    return params


def verify_link(
    key: str | bytes, purpose: LinkPurpose, params: Mapping[str, str], now: datetime
) -> LinkClaims:
    """The claims of a link that is well-formed, signed for `purpose` with `key`, and not
    expired at `now`. Raises LinkError (kind malformed, bad_signature or expired)."""
    tenant_id, member_id = params.get("t") or "", params.get("m") or ""
    raw_exp, raw_sig = params.get("exp") or "", params.get("sig") or ""
    connection = params.get("c") if purpose is LinkPurpose.DISCONNECT else None
    if not (tenant_id and member_id and raw_exp and raw_sig):
        raise LinkError(LinkErrorKind.MALFORMED, "The link is incomplete: open the full link you were sent.")
    if connection is not None and not _is_connection(connection):
        raise LinkError(LinkErrorKind.MALFORMED, "The link is malformed.")
    if not (ids.is_valid_id(tenant_id) and ids.is_valid_id(member_id)):
        raise LinkError(LinkErrorKind.MALFORMED, "The link is malformed.")
    if not raw_exp.isascii() or not raw_exp.isdigit() or len(raw_exp) > 12:
        raise LinkError(LinkErrorKind.MALFORMED, "The link is malformed.")
    if _decode_signature(raw_sig) is None:
        raise LinkError(LinkErrorKind.MALFORMED, "The link is malformed.")
    exp = int(raw_exp)
    # A disconnect link without `c` (e.g. a connect link's query) cannot match: every
    # disconnect signature covers a connection.
    expected = _signature(key, purpose, tenant_id, member_id, exp, connection)
    if not hmac.compare_digest(expected.encode("ascii"), raw_sig.encode("ascii")):
        raise LinkError(
            LinkErrorKind.BAD_SIGNATURE, "The link is not valid (it was altered or is not for this page)."
        )
    expires_at = datetime.fromtimestamp(exp, UTC)
    if now >= expires_at:
        raise LinkError(LinkErrorKind.EXPIRED, "The link has expired: ask for a new one.")
    return LinkClaims(purpose, tenant_id, member_id, expires_at, connection)


def link_url(base_url: str, params: Mapping[str, str]) -> str:
    """`base_url` with the link's parameters added to its query string (existing ones kept)."""
    parts = urlsplit(base_url)
    extra = urlencode([(name, params[name]) for name in PARAMS if name in params])
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _is_connection(value: str) -> bool:
    return value == NO_CONNECTION or (
        0 < len(value) <= _MAX_CONNECTION_LENGTH and value.isascii() and value.isdigit()
    )


def _signature(
    key: str | bytes, purpose: LinkPurpose, tenant_id: str, member_id: str, exp: int, connection: str | None
) -> str:
    claims: list[object] = [_VERSION, str(purpose), tenant_id, member_id, exp]
    if connection is not None:
        claims.append(connection)
    # JSON of a list is an unambiguous encoding whatever characters the ids contain.
    message = json.dumps(claims, separators=(",", ":"))
    digest = hmac.new(derive_key(key, _KEY_PURPOSES[purpose]), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _decode_signature(raw: str) -> bytes | None:
    if not raw.isascii() or len(raw) != 43:
        return None
    try:
        decoded = base64.urlsafe_b64decode(raw + "=")
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == _SIGNATURE_BYTES else None
