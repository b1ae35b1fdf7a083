"""Structured logging: JSON lines on stdout with `severity` and `message`, as Cloud Logging
reads them. Configured on first use, not at import time.

Any field whose name suggests a credential is redacted before rendering, as a last line of
defence: code must not log tokens in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SENSITIVE_KEY_PARTS = ("token", "secret", "password", "verifier", "code", "authorization")
_SAFE_KEYS = frozenset({"status_code", "http_status", "error_code"})
_REDACTED = "[redacted]"
_configured: tuple[str, str] | None = None  # (level, stream) of the current configuration


class _StandardStream:
    """Writes to whatever `sys.stdout`/`sys.stderr` is at the moment of each line, so that a
    swapped stream (pytest's capture, a CLI redirect) never leaves logging on a closed file."""

    def __init__(self, name: str) -> None:
        self._name = name

    def write(self, text: str) -> int:
        return int(getattr(sys, self._name).write(text))

    def flush(self) -> None:
        getattr(sys, self._name).flush()


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if lowered not in _SAFE_KEYS and any(part in lowered for part in _SENSITIVE_KEY_PARTS):
            event[key] = _REDACTED
    return event


def _severity(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["severity"] = {"warn": "WARNING", "exception": "ERROR"}.get(method, method.upper())
    return event


def configure(level: str = "INFO", stream: str = "stdout") -> None:
    """Set up JSON-line logging for the process: `level` and up, to the standard `stream`
    ("stdout" for Cloud Functions, "stderr" for the CLI, whose stdout is its output)."""
    global _configured
    if stream not in ("stdout", "stderr"):
        raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
    if _configured == (level, stream):
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _severity,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.processors.format_exc_info,
            _redact,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(_StandardStream(stream)),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    _configured = (level, stream)


def get_logger(**context: Any) -> Any:
    """A bound structlog logger; configures logging (INFO, stdout) if nothing did yet."""
    if _configured is None:
        configure()
    return structlog.get_logger().bind(**context)
