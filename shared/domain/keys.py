"""One key per purpose, derived from `CALSYNC_LINK_SIGNING_KEY` (pure).

The one configured secret never signs or derives anything itself: each use gets its own key,
HMAC-SHA256(signing key, "calsync-key-v1" 0x1F purpose), so a value made for one purpose (a
connect link's signature, a disconnect link's, a PKCE verifier) can never be replayed as, or
help to forge, a value of another. Rotating `CALSYNC_LINK_SIGNING_KEY` rotates them all.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

_LABEL = b"calsync-key-v1\x1f"


class KeyPurpose(StrEnum):
    CONNECT_LINK = "connect-link"
    DISCONNECT_LINK = "disconnect-link"
    OAUTH_PKCE = "oauth-pkce"
    CHANNEL_TOKEN = "channel-token"  # noqa: S105 - a label; push channel tokens, when no key of their own is configured


def derive_key(signing_key: str | bytes, purpose: KeyPurpose) -> bytes:
    """The 32-byte key of `purpose`. Raises ValueError for an empty signing key."""
    raw = signing_key.encode() if isinstance(signing_key, str) else signing_key
    if not raw:
        raise ValueError("the link signing key is empty")
    return hmac.new(raw, _LABEL + str(purpose).encode(), hashlib.sha256).digest()
