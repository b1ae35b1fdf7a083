"""Calendar push notifications: `events.watch` channels, `channels.stop`, and the notifier that
POSTs Google's `X-Goog-*` headers (empty body) to every live channel of a calendar that changed.

- A channel gets one `sync` message (number 1) when it is created: queued *before* the watch
  answer, so it can reach the receiver first (`PushNotifier.wait_for_sync` makes the watch wait
  for its delivery); then one `exists` message per change, numbers increasing per channel.
- Deliveries run on a few background threads (one message of a channel at a time), so a change
  never blocks its caller. 500/502/503/504 and connection errors are retried with exponential
  backoff (`retry_attempts`, `retry_initial_s`); other statuses are final, as with Google.
- A channel stops delivering once stopped, at its granted expiration (the stand-in's clock), or
  when expired early (`expire_channel`, `expire_channels`).
- `PushFaults` drops, duplicates, delays or reorders `exists` messages (the `sync` message is
  never faulted), keeps sending after stop, and refuses the next watch requests.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
import time
from base64 import urlsafe_b64encode
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.sandbox.standin.calendar import Calendar, calendar_error
from shared.sandbox.standin.push_faults import PushFaults
from shared.sandbox.standin.push_wire import (
    RETRY_STATUSES,
    SUCCESS_STATUSES,
    Channel,
    Delivery,
    invalid_watch,
    post_notification,
)
from shared.sandbox.standin.web import Response, json_response

__all__ = ["DEFAULT_MAX_TTL_S", "Channel", "Delivery", "PushFaults", "PushNotifier"]

DEFAULT_MAX_TTL_S = 604800  # Google's maximum (and default) for Calendar event channels
_NOT_SUPPORTED = "Push notifications are not supported by this resource."


@dataclass
class _Message:
    channel: Channel
    state: str
    number: int
    changed_at: float
    generation: int = 0  # a message queued before `reset()` logs nothing after it
    attempt: int = 1
    done: threading.Event | None = None


class PushNotifier:
    """Watch channels of the stand-in's calendars and their notification deliveries."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        max_ttl_s: int = DEFAULT_MAX_TTL_S,
        retry_attempts: int = 4,
        retry_initial_s: float = 0.05,
        delivery_timeout_s: float = 5.0,
        workers: int = 4,
        seed: int = 0,
    ) -> None:
        self.max_ttl_s = max_ttl_s
        self.retry_attempts = retry_attempts
        self.retry_initial_s = retry_initial_s
        self.delivery_timeout_s = delivery_timeout_s
        self.wait_for_sync = False
        self.faults = PushFaults(seed)
        self._clock = clock
        self._workers = workers
        self._salt = secrets.token_bytes(8)
        self._cond = threading.Condition()
        self._channels: dict[str, Channel] = {}
        self._log: list[Delivery] = []
        self._counters: Counter[str] = Counter()
        self._queue: list[tuple[float, int, _Message]] = []
        self._held: list[_Message] = []
        self._busy: set[str] = set()
        self._in_flight = 0
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._generation = 0

    # --- the Python API -------------------------------------------------------------------------

    def resource_id(self, email: str) -> str:
        """The opaque id of `email`'s events collection (stable for this stand-in)."""
        digest = hashlib.sha256(self._salt + email.strip().lower().encode()).digest()
        return urlsafe_b64encode(digest[:18]).decode("ascii")

    def channels(self, email: str | None = None) -> list[Channel]:
        """Copies of the live channels (of `email`'s calendar, or all)."""
        with self._cond:
            return [
                replace(c)
                for c in self._channels.values()
                if (email is None or c.email == email.strip().lower()) and self._live(c)
            ]

    def expire_channel(self, channel_id: str) -> None:
        """The channel stops delivering now, while its client still trusts its expiration."""
        with self._cond:
            self._channels[channel_id].expired_early = True

    def expire_channels(self, email: str) -> int:
        """Expire every channel of `email`'s calendar early; how many were live."""
        with self._cond:
            live = [c for c in self._channels.values() if c.email == email.strip().lower() and self._live(c)]
            for channel in live:
                channel.expired_early = True
            return len(live)

    def deliveries(self) -> list[Delivery]:
        """The delivery log, one entry per attempt, in the order attempted."""
        with self._cond:
            return list(self._log)

    def counters(self) -> dict[str, int]:
        """`notifications` (messages created), `attempts`, `delivered`, `failed`, `retries`,
        `dropped`, `duplicated`, `suppressed` (channel no longer live when its turn came)."""
        with self._cond:
            names = ("notifications", "attempts", "delivered", "failed", "retries", "dropped")
            return {name: self._counters[name] for name in (*names, "duplicated", "suppressed")}

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued or under way (messages held by a pending reorder
        fault do not count); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def reset(self) -> None:
        """No channels, deliveries, counters or faults, `wait_for_sync` off; queued messages are
        discarded (settings such as `max_ttl_s` stay)."""
        with self._cond:
            self._generation += 1
            self._channels.clear()
            self._log.clear()
            self._counters.clear()
            self._queue.clear()
            self._held.clear()
            self._cond.notify_all()
        self.faults.clear()
        self.wait_for_sync = False

    def close(self) -> None:
        """Stop the worker threads (they start again on the next message)."""
        with self._cond:
            self._closing = True
            threads, self._threads = self._threads, []
            self._cond.notify_all()
        for thread in threads:
            thread.join(timeout=self.delivery_timeout_s + 1)
        with self._cond:
            self._closing = False

    # --- HTTP: watch and stop -------------------------------------------------------------------

    def watch(self, email: str, body: Any, resource_uri: str) -> Response:
        """events.watch on `email`'s calendar: the Channel resource, or Google's 400."""
        email = email.strip().lower()
        if self.faults.take_refusal():
            return calendar_error(400, "pushNotSupportedForRequestedResource", _NOT_SUPPORTED)
        refusal = invalid_watch(body)
        if refusal is not None:
            return refusal
        now = self._clock().astimezone(UTC)
        lifetime_ms = self._lifetime_ms(body, now)
        if isinstance(lifetime_ms, Response):
            return lifetime_ms
        now_ms = int(now.timestamp() * 1000)
        with self._cond:
            existing = self._channels.get(body["id"])
            if existing is not None and self._live(existing):
                return calendar_error(400, "channelIdNotUnique", f"Channel id {body['id']} not unique")
            channel = Channel(
                id=body["id"],
                email=email,
                resource_id=self.resource_id(email),
                resource_uri=resource_uri,
                address=body["address"],
                token=None if body.get("token") is None else str(body["token"]),
                expiration=datetime.fromtimestamp((now_ms + lifetime_ms) / 1000, UTC),
                last_number=1,
            )
            self._channels[channel.id] = channel
            sync = _Message(channel, "sync", 1, time.monotonic(), self._generation, done=threading.Event())
            self._counters["notifications"] += 1
            self._enqueue(sync, time.monotonic())
        if self.wait_for_sync and sync.done is not None:
            sync.done.wait(self._message_budget_s())
        return json_response(200, channel.resource())

    def stop_channel(self, email: str, body: Any) -> Response:
        """channels.stop: 204 with no body, or 404 for a channel this account cannot see."""
        if not isinstance(body, dict) or not body.get("id") or not body.get("resourceId"):
            missing = "id" if not isinstance(body, dict) or not body.get("id") else "resourceId"
            return calendar_error(400, "required", f"Required parameter: {missing}")
        with self._cond:
            channel = self._channels.get(str(body["id"]))
            if (
                channel is None
                or channel.stopped
                or channel.email != email.strip().lower()
                or channel.resource_id != body["resourceId"]
            ):
                return calendar_error(404, "notFound", f"Channel '{body['id']}' not found for project")
            channel.stopped = True
        return Response(204)

    def _lifetime_ms(self, body: dict[str, Any], now: datetime) -> int | Response:
        """Granted lifetime: the requested ttl or expiration, capped by `max_ttl_s`."""
        wanted: list[float] = []
        try:
            ttl = (body.get("params") or {}).get("ttl")
            if ttl is not None:
                wanted.append(float(ttl) * 1000)
            if body.get("expiration") is not None:
                wanted.append(float(body["expiration"]) - now.timestamp() * 1000)
        except (TypeError, ValueError, AttributeError):
            return calendar_error(400, "invalid", "Invalid channel expiration or ttl.")
        if any(ms <= 0 for ms in wanted):
            return calendar_error(400, "invalid", "Channel expiration must lie in the future.")
        return int(min([*wanted, self.max_ttl_s * 1000]))

    # --- notifying ------------------------------------------------------------------------------

    def calendar_changed(self, calendar: Calendar) -> None:
        """Queue one `exists` message for every live channel on `calendar` (never blocks on
        a delivery)."""
        changed_at = time.monotonic()
        with self._cond:
            for channel in self._channels.values():
                if channel.email == calendar.email and self._sending(channel):
                    channel.last_number += 1
                    self._counters["notifications"] += 1
                    self._apply_faults(
                        _Message(channel, "exists", channel.last_number, changed_at, self._generation)
                    )

    def _apply_faults(self, message: _Message) -> None:
        plan = self.faults.plan()
        if plan.drop:
            self._counters["dropped"] += 1
            return
        copies = [message] + [replace(message) for _ in range(plan.copies - 1)]
        self._counters["duplicated"] += plan.copies - 1
        if plan.hold:
            self._held.extend(copies)
            if plan.release is not None:
                held, self._held = self._held, []
                if plan.release == "shuffle":
                    self.faults.rng.shuffle(held)
                else:
                    held.reverse()
                for item in held:
                    self._enqueue(item, time.monotonic() + plan.delay_s)
            return
        for item in copies:
            self._enqueue(item, time.monotonic() + plan.delay_s)

    def _live(self, channel: Channel) -> bool:
        return not (channel.stopped or channel.expired_early or channel.expiration <= self._clock())

    def _sending(self, channel: Channel) -> bool:
        """Live, or stopped while the keep-sending-after-stop fault is on."""
        if channel.expired_early or channel.expiration <= self._clock():
            return False
        return not channel.stopped or self.faults.keep_sending_after_stop

    def _message_budget_s(self) -> float:
        backoff = sum(self.retry_initial_s * 2.0**i for i in range(self.retry_attempts))
        return backoff + self.retry_attempts * self.delivery_timeout_s

    # --- the workers (called with self._cond held unless said otherwise) -----------------------

    def _enqueue(self, message: _Message, due: float) -> None:
        self._queue.append((due, next(self._seq), message))
        if len(self._threads) < self._workers:
            thread = threading.Thread(target=self._work, daemon=True, name="standin-push")
            self._threads.append(thread)
            thread.start()
        self._cond.notify_all()

    def _next_due(self) -> tuple[_Message | None, float]:
        """The earliest due message of a channel not being delivered to, or how long to wait."""
        now, wait = time.monotonic(), 0.5
        ready = [e for e in self._queue if e[2].channel.id not in self._busy]
        due = [e for e in ready if e[0] <= now]
        if not due:
            return None, min([wait, *(e[0] - now for e in ready)])
        entry = min(due, key=lambda e: (e[0], e[1]))
        self._queue.remove(entry)
        return entry[2], 0.0

    def _work(self) -> None:
        while True:
            with self._cond:
                message, wait = self._next_due()
                while message is None:
                    if self._closing:
                        return
                    self._cond.wait(wait)
                    message, wait = self._next_due()
                self._busy.add(message.channel.id)
                self._in_flight += 1
            try:
                self._attempt(message)  # without the lock: a slow receiver blocks only itself
            finally:
                with self._cond:
                    self._busy.discard(message.channel.id)
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _attempt(self, message: _Message) -> None:
        """One delivery attempt (lock not held), then log, retry or finish."""
        with self._cond:
            sending = self._sending(message.channel)
            if not sending:
                self._counters["suppressed"] += 1
        if not sending:
            return _finish(message)
        sent_at = time.monotonic()
        status, error = post_notification(
            message.channel, message.state, message.number, self.delivery_timeout_s
        )
        with self._cond:
            if message.generation != self._generation:
                return _finish(message)
            self._log.append(
                Delivery(
                    channel_id=message.channel.id,
                    state=message.state,
                    number=message.number,
                    attempt=message.attempt,
                    status=status,
                    error=error,
                    sent_at=sent_at,
                    changed_at=message.changed_at,
                )
            )
            self._counters["attempts"] += 1
            if status in SUCCESS_STATUSES:
                self._counters["delivered"] += 1
            elif (status is None or status in RETRY_STATUSES) and message.attempt < self.retry_attempts:
                self._counters["retries"] += 1
                backoff = self.retry_initial_s * 2.0 ** (message.attempt - 1)
                message.attempt += 1
                self._enqueue(message, time.monotonic() + backoff)
                return None
            else:
                self._counters["failed"] += 1
        return _finish(message)


def _finish(message: _Message) -> None:
    if message.done is not None:
        message.done.set()
