"""Every environment variable calsync reads (README.md#configuration), read and validated in one place.

`load_config()` reads the environment once and reports *all* missing or malformed values in a
single `ConfigError`. Each entry point asks only for what it needs (`require=`), so a worker
does not fail for want of the public OAuth URLs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from shared.errors import ConfigError

DEFAULT_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
DEFAULT_REVOKE_URI = "https://oauth2.googleapis.com/revoke"
DEFAULT_CALENDAR_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
DEFAULT_SYNC_TOPIC = "calsync-sync-jobs"
# Event-driven functions time out at 9 minutes: stop listing well before, continue in a new job.
DEFAULT_SYNC_BUDGET_S = "420"
DEFAULT_CHANNEL_TTL_S = "604800"  # a week: what Google grants a Calendar channel at most
DEFAULT_BACKSTOP_INTERVAL_S = "21600"  # with a push channel, still synced every 6 hours
_MAX_INTERVAL_S = 30 * 24 * 3600


@dataclass(frozen=True)
class Config:
    """The validated configuration. Optional values are `None` when unset."""

    project: str | None
    firestore_emulator_host: str | None
    pubsub_emulator_host: str | None
    oauth_client_id: str | None
    oauth_client_secret: str | None
    oauth_redirect_uri: str | None
    connect_url: str | None
    disconnect_url: str | None
    return_url: str | None
    oauth_auth_uri: str
    oauth_token_uri: str
    oauth_revoke_uri: str
    calendar_endpoint: str
    secret_manager_endpoint: str | None
    sync_topic: str
    link_signing_key: str | None
    sync_budget: str  # seconds a worker lists before continuing in a follow-up job
    notification_url: str | None  # public URL of calendar_notification: push on when set
    channel_token_key: str | None
    channel_ttl: str
    backstop_interval: str

    @property
    def sync_budget_s(self) -> float:
        return float(self.sync_budget)

    @property
    def channel_ttl_s(self) -> int:
        return int(self.channel_ttl)

    @property
    def backstop_interval_s(self) -> int:
        return int(self.backstop_interval)

    def channel_key(self) -> bytes:
        """The key of push channel tokens: `CALSYNC_CHANNEL_TOKEN_KEY`, or else one derived from
        the link signing key for this purpose alone. Raises ConfigError when neither is set."""
        if self.channel_token_key:
            return self.channel_token_key.encode()
        if not self.link_signing_key:
            raise ConfigError(
                "CALSYNC_CHANNEL_TOKEN_KEY or CALSYNC_LINK_SIGNING_KEY is required here but not set"
            )
        from shared.domain.keys import KeyPurpose, derive_key

        return derive_key(self.link_signing_key, KeyPurpose.CHANNEL_TOKEN)

    def __repr__(self) -> str:  # never print secrets by accident
        shown = {
            f.name: ("<set>" if f.name in _SECRET_FIELDS and getattr(self, f.name) else getattr(self, f.name))
            for f in fields(self)
        }
        return f"Config({shown})"

    # Typed accessors for required values: they exist after `load_config(require=...)`.
    def required(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise ConfigError(f"{_ENV_NAMES[name]} is required here but not set")
        return str(value)


# field name -> (environment variable, default, kind)
_SPEC: dict[str, tuple[str, str | None, str]] = {
    "project": ("GOOGLE_CLOUD_PROJECT", None, "id"),
    "firestore_emulator_host": ("FIRESTORE_EMULATOR_HOST", None, "hostport"),
    "pubsub_emulator_host": ("PUBSUB_EMULATOR_HOST", None, "hostport"),
    "oauth_client_id": ("CALSYNC_OAUTH_CLIENT_ID", None, "text"),
    "oauth_client_secret": ("CALSYNC_OAUTH_CLIENT_SECRET", None, "text"),
    "oauth_redirect_uri": ("CALSYNC_OAUTH_REDIRECT_URI", None, "url"),
    "connect_url": ("CALSYNC_CONNECT_URL", None, "url"),
    "disconnect_url": ("CALSYNC_DISCONNECT_URL", None, "url"),
    "return_url": ("CALSYNC_RETURN_URL", None, "url"),
    "oauth_auth_uri": ("CALSYNC_OAUTH_AUTH_URI", DEFAULT_AUTH_URI, "url"),
    "oauth_token_uri": ("CALSYNC_OAUTH_TOKEN_URI", DEFAULT_TOKEN_URI, "url"),
    "oauth_revoke_uri": ("CALSYNC_OAUTH_REVOKE_URI", DEFAULT_REVOKE_URI, "url"),
    "calendar_endpoint": ("CALSYNC_CALENDAR_ENDPOINT", DEFAULT_CALENDAR_ENDPOINT, "url"),
    "secret_manager_endpoint": ("CALSYNC_SECRET_MANAGER_ENDPOINT", None, "url"),
    "sync_topic": ("CALSYNC_SYNC_TOPIC", DEFAULT_SYNC_TOPIC, "id"),
    "link_signing_key": ("CALSYNC_LINK_SIGNING_KEY", None, "key"),
    "sync_budget": ("CALSYNC_SYNC_BUDGET_S", DEFAULT_SYNC_BUDGET_S, "seconds"),
    "notification_url": ("CALSYNC_NOTIFICATION_URL", None, "url"),
    "channel_token_key": ("CALSYNC_CHANNEL_TOKEN_KEY", None, "key"),
    "channel_ttl": ("CALSYNC_CHANNEL_TTL_S", DEFAULT_CHANNEL_TTL_S, "interval"),
    "backstop_interval": ("CALSYNC_BACKSTOP_INTERVAL_S", DEFAULT_BACKSTOP_INTERVAL_S, "interval"),
}
_ENV_NAMES = {name: env for name, (env, _, _) in _SPEC.items()}
_SECRET_FIELDS = frozenset({"oauth_client_secret", "link_signing_key", "channel_token_key"})
_MIN_SIGNING_KEY_BYTES = 16

# What each kind of caller needs. The CLI asks per subcommand. The OAuth client secret only
# where a code is exchanged or a token refreshed (oauth_callback, sync_worker): building the
# consent URL needs the client id, revoking needs only the token (README.md#security).
WORKER = ("project", "oauth_client_id", "oauth_client_secret")
# calendar_notification: the channel key (or the link key it is derived from) is checked when used.
NOTIFICATION = ("project",)
OAUTH = (
    "project",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_redirect_uri",
    "link_signing_key",
)
OAUTH_CONNECT = ("project", "oauth_client_id", "oauth_redirect_uri", "link_signing_key")
OAUTH_DISCONNECT = ("project", "link_signing_key")
# Per OAuth entry point (functions/main.py); infra/functions.tf injects the secrets to match.
OAUTH_ENTRY_POINTS = {
    "oauth_connect": OAUTH_CONNECT,
    "oauth_callback": OAUTH,
    "oauth_disconnect": OAUTH_DISCONNECT,
}


def load_config(require: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the environment.

    Raises `ConfigError` listing every missing required value and every malformed value.
    """
    env = os.environ if environ is None else environ
    values: dict[str, str | None] = {}
    problems: list[str] = []
    for name, (var, default, kind) in _SPEC.items():
        raw = env.get(var, "").strip()
        value = raw or default
        if raw:
            problem = _check(kind, raw)
            if problem:
                problems.append(f"{var} {problem}")
        values[name] = value
    for name in require:
        if name not in _SPEC:
            raise KeyError(name)
        if not values[name]:
            problems.append(f"{_ENV_NAMES[name]} is required but not set")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return Config(**values)  # type: ignore[arg-type]


def _check(kind: str, raw: str) -> str | None:
    if kind == "url":
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"must be an http(s) URL, got {raw!r}"
    elif kind == "hostport":
        host, _, port = raw.rpartition(":")
        if not host or not port.isdigit():
            return f"must be HOST:PORT, got {raw!r}"
    elif kind == "id":
        if any(c.isspace() or c == "/" for c in raw):
            return f"must be a plain identifier, got {raw!r}"
    elif kind == "seconds":
        try:
            seconds = float(raw)
        except ValueError:
            return f"must be a number of seconds, got {raw!r}"
        if not 0 < seconds <= 3600:
            return f"must be between 0 and 3600 seconds, got {raw!r}"
    elif kind == "interval":
        if not raw.isdigit() or not 60 <= int(raw) <= _MAX_INTERVAL_S:
            return f"must be a whole number of seconds from 60 to {_MAX_INTERVAL_S}, got {raw!r}"
    elif kind == "key" and len(raw.encode()) < _MIN_SIGNING_KEY_BYTES:
        return f"must be at least {_MIN_SIGNING_KEY_BYTES} bytes long"
    return None
