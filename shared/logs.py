"""Structured logging: JSON lines on stdout with `severity` and `message`, as Cloud Logging
reads them. Configured on first use, not at import time.

Redaction, as a last line of defence (code must not log credentials in the first place), runs on
every line just before it is rendered, through nested mappings and sequences and the rendered
traceback:
- by name: a field whose name suggests a credential (`token`, `secret`, `password`, `verifier`,
  `authorization`, `credential`, `cookie`, exact `state`/`code`/`sig`/`jwt`/`key`, `*_key`, …);
- by shape: text that looks like a Google refresh token (`1//…`), access token (`ya29.…`),
  authorization code (`4/…`), a JWT, an `Authorization` header value, a PEM private key, or a
  `code=`/`state=`/`sig=`/`…token=`/`client_secret=` URL parameter;
- by value: the configured secrets themselves (`register_secret`: the OAuth client secret and the
  link signing key), wherever they appear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_SENSITIVE_KEY_PARTS = ("token", "secret", "password", "verifier", "authorization", "credential", "cookie")
_SENSITIVE_KEYS = frozenset({"code", "state", "sig", "signature", "jwt", "key", "assertion", "private_key"})
_SENSITIVE_KEY_SUFFIXES = ("_key", "_code", "_sig", "_jwt")
_SAFE_KEYS = frozenset({"status_code", "http_status", "error_code", "tenant_key", "meeting_key"})
_REDACTED = "[redacted]"
_SECRET_SHAPES = re.compile(
    r"1//[0-9A-Za-z_\-]{8,}"  # Google refresh token
    r"|ya29\.[0-9A-Za-z_.\-]+"  # Google access token
    r"|\b4/[0-9A-Za-z_\-]{8,}"  # Google authorization code
    r"|eyJ[0-9A-Za-z_\-]{4,}\.[0-9A-Za-z_\-]{4,}\.[0-9A-Za-z_\-]*"  # a JWT (id_token)
    r"|(?i:bearer|basic)\s+[0-9A-Za-z_.~+/=\-]{8,}"  # an Authorization header value
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    re.DOTALL,
)
_SECRET_PARAMETERS = re.compile(
    r"(?i)\b(code|state|sig|token|access_token|refresh_token|id_token|client_secret|code_verifier)"
    r"(=|%3D)[^&\s\"',;)]+"
)
_MIN_REGISTERED_SECRET = 8  # shorter values would redact ordinary words
_registered_secrets: set[str] = set()
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


def register_secret(value: str | None) -> None:
    """Redact this exact value wherever it appears in a log line (configured secrets)."""
    if value and len(value) >= _MIN_REGISTERED_SECRET:
        _registered_secrets.add(value)


def is_sensitive_key(key: str) -> bool:
    lowered = key.lower()
    if lowered in _SAFE_KEYS:
        return False
    return (
        lowered in _SENSITIVE_KEYS
        or lowered.endswith(_SENSITIVE_KEY_SUFFIXES)
        or any(part in lowered for part in _SENSITIVE_KEY_PARTS)
    )


def redact_text(text: str) -> str:
    """`text` with every credential-shaped part and registered secret replaced."""
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    text = _SECRET_PARAMETERS.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)
    return _SECRET_SHAPES.sub(_REDACTED, text)


def redact_value(value: Any) -> Any:
    """A log field's value, redacted by name (nested keys) and by shape (text), recursively.
    Other objects are rendered with `repr` first, so their text is redacted too."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {
            k: _REDACTED if isinstance(k, str) and is_sensitive_key(k) else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return redact_text(repr(value))


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = _REDACTED if is_sensitive_key(key) else redact_value(event[key])
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
