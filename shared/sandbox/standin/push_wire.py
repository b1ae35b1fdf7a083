"""Wire formats of the stand-in's Calendar push notifications (shared.sandbox.standin.push):
the Channel resource, the notification message and its `X-Goog-*` headers, watch validation."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from shared.sandbox.standin.calendar import calendar_error
from shared.sandbox.standin.web import Response

WATCH_TYPES = frozenset({"web_hook", "webhook"})
SUCCESS_STATUSES = frozenset({102, 200, 201, 202, 204})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_CHANNEL_ID = re.compile(r"[A-Za-z0-9\-_+/=]{1,64}")


@dataclass
class Channel:
    """A notification channel as the stand-in keeps it (`channels()` returns copies)."""

    id: str
    email: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration: datetime
    stopped: bool = False
    expired_early: bool = False
    last_number: int = 0

    @property
    def expiration_ms(self) -> int:
        return int(self.expiration.timestamp() * 1000)

    def resource(self) -> dict[str, Any]:
        """Google's Channel resource, as the watch call answers it."""
        body: dict[str, Any] = {
            "kind": "api#channel",
            "id": self.id,
            "resourceId": self.resource_id,
            "resourceUri": self.resource_uri,
        }
        if self.token is not None:
            body["token"] = self.token
        body["expiration"] = str(self.expiration_ms)
        return body


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt. `status` is the receiver's answer (None with `error` when the
    connection failed); times are `time.monotonic()`: when sent, and when the change was made."""

    channel_id: str
    state: str
    number: int
    attempt: int
    status: int | None
    error: str | None
    sent_at: float
    changed_at: float


def notification_headers(channel: Channel, state: str, number: int) -> dict[str, str]:
    """Google's headers of one notification message."""
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Channel-Expiration": format_datetime(channel.expiration, usegmt=True),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-URI": channel.resource_uri,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        "Content-Length": "0",
    }
    if channel.token is not None:
        headers["X-Goog-Channel-Token"] = channel.token
    return headers


def post_notification(
    channel: Channel, state: str, number: int, timeout_s: float
) -> tuple[int | None, str | None]:
    """POST one notification (empty body); (status, None), or (None, error) without an answer."""
    parts = urlsplit(channel.address)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=b"", headers=notification_headers(channel, state, number))
        answer = connection.getresponse()
        answer.read()
        return answer.status, None
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()


def invalid_watch(body: Any) -> Response | None:
    """Google's 400 for a watch body it would refuse, or None."""
    if not isinstance(body, dict):
        return calendar_error(400, "parseError", "Parse Error")
    if not body.get("id"):
        return calendar_error(400, "required", "Required channel id.")
    if not isinstance(body["id"], str) or not _CHANNEL_ID.fullmatch(body["id"]):
        return calendar_error(400, "invalid", f"Invalid channel id: {body['id']}")
    if body.get("type") not in WATCH_TYPES:
        return calendar_error(400, "invalid", f"Invalid value for channel type: {body.get('type')}")
    if not body.get("address"):
        return calendar_error(400, "required", "Required channel address.")
    address = str(body["address"])
    parts = urlsplit(address)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None  # the stand-in's one concession: loopback receivers over plain http
    return calendar_error(400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}")
