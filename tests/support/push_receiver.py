"""A local webhook receiver for Calendar push notifications: records every POST's headers and
answers a configurable status."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Notification:
    headers: dict[str, str]  # lower-case names
    path: str
    body: bytes
    received_at: float  # time.monotonic()
    status: int  # what the receiver answered

    @property
    def state(self) -> str:
        return self.headers.get("x-goog-resource-state", "")

    @property
    def number(self) -> int:
        return int(self.headers.get("x-goog-message-number", "0"))

    @property
    def channel_id(self) -> str:
        return self.headers.get("x-goog-channel-id", "")


class NotificationReceiver:
    """ThreadingHTTPServer on 127.0.0.1. `status` is the default answer; `statuses` (a list)
    answers the next requests first, one each; `on_notification` runs before answering."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.statuses: list[int] = []
        self.on_notification: Callable[[Notification], None] | None = None
        self._lock = threading.Condition()
        self._received: list[Notification] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/notifications"

    def __enter__(self) -> NotificationReceiver:
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def received(self) -> list[Notification]:
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Notification]:
        """At least `count` notifications (all received so far), or AssertionError."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self._received)} notifications received, wanted {count}")
                self._lock.wait(left)
            return list(self._received)

    def _record(self, handler: BaseHTTPRequestHandler) -> int:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            status = self.statuses.pop(0) if self.statuses else self.status
        note = Notification(
            {k.lower(): v for k, v in handler.headers.items()}, handler.path, body, time.monotonic(), status
        )
        if self.on_notification is not None:
            self.on_notification(note)
        with self._lock:
            self._received.append(note)
            self._lock.notify_all()
        return status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                status = receiver._record(self)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Silent."""

        return Handler
