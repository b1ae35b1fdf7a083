"""The HTTP plumbing of the stand-in: a threaded stdlib server, a small request/response pair,
the request log and fault injection shared by every emulated service."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SERVICES = frozenset({"calendar", "token", "revoke", "auth", "secretmanager"})
MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        """The form-encoded body (first value of each field)."""
        if "application/x-www-form-urlencoded" not in self.headers.get("content-type", ""):
            return {}
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}

    def json(self) -> Any:
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
    return Response(status, body, [("Content-Type", "application/json; charset=UTF-8"), *(headers or [])])


def html_response(status: int, title: str, text: str) -> Response:
    from html import escape

    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(text)}</p></body></html>"
    )
    return Response(status, page.encode("utf-8"), [("Content-Type", "text/html; charset=utf-8")])


def redirect(location: str) -> Response:
    return Response(302, b"", [("Location", location), ("Content-Type", "text/html; charset=UTF-8")])


def rfc3339(moment: datetime, digits: int = 3) -> str:
    """UTC timestamp as Google writes it: `2026-11-24T17:00:00.000Z` (3 or 6/9 fraction digits)."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits == 0:
        return base + "Z"
    fraction = f"{moment.microsecond:06d}"
    return f"{base}.{(fraction + '000')[:digits]}Z"


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp (with `Z` or an offset) as an aware datetime; raises ValueError."""
    value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return value


# --- request log ------------------------------------------------------------------------------


class RequestLog:
    """Thread-safe log of `(service, method, path)` for every request handled (query strings
    left out, so no token or code ever lands in it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[tuple[str, str, str]] = []

    def append(self, service: str, method: str, path: str) -> None:
        with self._lock:
            self._entries.append((service, method, path))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def count(self, service: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for s, m, _ in self._entries
                if (service is None or s == service) and (method is None or m == method)
            )

    def snapshot(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __getitem__(self, index: int) -> tuple[str, str, str]:
        with self._lock:
            return self._entries[index]


# --- fault injection --------------------------------------------------------------------------


@dataclass
class Fault:
    service: str
    status: int | None
    reason: str | None
    delay_s: float
    remaining: int


class Faults:
    """Faults for the next requests of a service: an error status with Google's error body,
    and/or a delay before answering. Faults of one service apply in the order injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []

    def inject(
        self,
        service: str,
        status: int | None = None,
        count: int = 1,
        reason: str | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """The next `count` requests to `service` fail with `status` (Google's error body for
        it; `reason` picks the variant, e.g. "userRateLimitExceeded"), after waiting `delay_s`
        seconds. With `status=None` they are only delayed (slow answers)."""
        if service not in SERVICES:
            raise ValueError(f"unknown service {service!r}; one of {sorted(SERVICES)}")
        if status is None and delay_s <= 0:
            raise ValueError("a fault needs a status, a delay, or both")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.append(Fault(service, status, reason, float(delay_s), count))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def pending(self, service: str | None = None) -> int:
        with self._lock:
            return sum(f.remaining for f in self._queue if service is None or f.service == service)

    def take(self, service: str) -> Fault | None:
        with self._lock:
            for fault in self._queue:
                if fault.service == service:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._queue.remove(fault)
                    return fault
        return None


# --- the server ---------------------------------------------------------------------------------

Handler = Callable[[Request], tuple[str, Response]]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else every keep-alive call waits ~40 ms (delayed ACK)
    server_version = "calsync-google-standin"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)  # type: ignore[attr-defined]

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        dispatch: Handler = self.server.dispatch  # type: ignore[attr-defined]
        _, response = dispatch(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is `GoogleStandIn.requests`; URLs may carry codes/tokens."""


class StandInHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, dispatch: Handler) -> None:
        super().__init__((host, port), _RequestHandler)
        self.dispatch = dispatch
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Drop every open keep-alive connection: after `stop()` nothing is served any more."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)
