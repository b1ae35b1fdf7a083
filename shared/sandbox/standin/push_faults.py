"""Fault switches of the stand-in's push notifier (shared.sandbox.standin.push)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """What happens to one `exists` message."""

    drop: bool = False
    copies: int = 1
    delay_s: float = 0.0
    hold: bool = False
    release: str | None = None  # "reverse" or "shuffle" once the last held message arrives


class PushFaults:
    """Fault switches of the notifier. Probabilistic faults draw from `rng`
    (`random.Random(seed)`), so a soak run reproduces with the same seed."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.rng = random.Random(seed)
        self.keep_sending_after_stop = False
        self.clear()

    def seed(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._drop_next = self._duplicate_next = self._delay_next = 0
            self._hold_left = self._refuse_next = 0
            self._drop_p = self._duplicate_p = self._delay_s = 0.0
            self._shuffle = False
            self.keep_sending_after_stop = False

    def drop(self, count: int = 1) -> None:
        """The next `count` `exists` messages are never sent (their numbers are used up)."""
        with self._lock:
            self._drop_next += count

    def drop_randomly(self, probability: float) -> None:
        """Each `exists` message is lost with `probability` (until `clear()`)."""
        with self._lock:
            self._drop_p = float(probability)

    def duplicate(self, count: int = 1) -> None:
        """The next `count` `exists` messages are delivered twice (same number)."""
        with self._lock:
            self._duplicate_next += count

    def duplicate_randomly(self, probability: float) -> None:
        """Each `exists` message is delivered twice with `probability` (until `clear()`)."""
        with self._lock:
            self._duplicate_p = float(probability)

    def delay(self, seconds: float, count: int = 1) -> None:
        """The next `count` `exists` messages are sent `seconds` late (others overtake them)."""
        with self._lock:
            self._delay_s, self._delay_next = float(seconds), count

    def reorder(self, count: int, *, shuffle: bool = False) -> None:
        """Hold the next `count` `exists` messages, then send them in reverse (or shuffled)
        order, numbers kept as assigned."""
        with self._lock:
            self._hold_left, self._shuffle = count, shuffle

    def refuse_watch(self, count: int = 1) -> None:
        """The next `count` watch requests answer 400 pushNotSupportedForRequestedResource."""
        with self._lock:
            self._refuse_next += count

    def take_refusal(self) -> bool:
        with self._lock:
            if self._refuse_next <= 0:
                return False
            self._refuse_next -= 1
            return True

    def plan(self) -> Plan:
        """What happens to the next `exists` message."""
        with self._lock:
            if self._drop_next > 0 or (self._drop_p and self.rng.random() < self._drop_p):
                self._drop_next = max(0, self._drop_next - 1)
                return Plan(drop=True)
            copies = 1
            if self._duplicate_next > 0 or (self._duplicate_p and self.rng.random() < self._duplicate_p):
                self._duplicate_next, copies = max(0, self._duplicate_next - 1), 2
            delay_s = 0.0
            if self._delay_next > 0:
                self._delay_next, delay_s = self._delay_next - 1, self._delay_s
            if self._hold_left <= 0:
                return Plan(copies=copies, delay_s=delay_s)
            self._hold_left -= 1
            release = None if self._hold_left else ("shuffle" if self._shuffle else "reverse")
            return Plan(copies=copies, delay_s=delay_s, hold=True, release=release)
