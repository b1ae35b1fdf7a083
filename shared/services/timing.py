"""How long a use case took, for its summary."""

from __future__ import annotations

import time
from typing import Protocol, TypeVar


class _Timed(Protocol):
    duration_ms: int


S = TypeVar("S", bound=_Timed)


def finished(summary: S, started: float) -> S:
    """`summary` with its duration set: the milliseconds since `started` (`time.monotonic()`)."""
    summary.duration_ms = int((time.monotonic() - started) * 1000)
    return summary
