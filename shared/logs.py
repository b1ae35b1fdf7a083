"""Structured logging: JSON lines on stdout with `severity` and `message`, as Cloud Logging
reads them. Configured on first use, not at import time.

Any field whose name suggests a credential is redacted before rendering, as a last line of
defence: code must not log tokens in the first place.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import structlog

_SENSITIVE_KEY_PARTS = ("token", "secret", "password", "verifier", "code", "authorization")
_SAFE_KEYS = frozenset({"status_code", "http_status", "error_code"})
_REDACTED = "[redacted]"
_configured = False


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if lowered not in _SAFE_KEYS and any(part in lowered for part in _SENSITIVE_KEY_PARTS):
            event[key] = _REDACTED
    return event


def _severity(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["severity"] = {"warn": "WARNING", "exception": "ERROR"}.get(method, method.upper())
    return event


def configure(level: str = "INFO", stream: Any = None) -> None:
    """Set up JSON-line logging once per process (idempotent). Lines go to `stream`, or to
    whatever `sys.stdout` is when each logger is made (the CLI passes stderr)."""
    global _configured
    if _configured and stream is None:
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
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(**context: Any) -> Any:
    """A bound structlog logger; configures logging on first call."""
    configure()
    return structlog.get_logger().bind(**context)
