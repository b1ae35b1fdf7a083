"""One local HTTP server standing in for the Google services that have no emulator: OAuth 2.0,
Calendar API v3 (including push notifications: `events.watch`, `channels.stop`, and a notifier
with fault switches in `standin.push`) and Secret Manager v1 (REST), speaking their real wire
formats so that the production client libraries (google-auth, google-auth-oauthlib,
googleapiclient, google-cloud-secret-manager) run against it unchanged.

    with GoogleStandIn() as standin:
        standin.load_calendar_file("anna@northwind-cs.com", "calendars/m-anna.json", now=clock())
        token = standin.issue_refresh_token("anna@northwind-cs.com")
        ... point CALSYNC_OAUTH_*_URI, CALSYNC_CALENDAR_ENDPOINT and
            CALSYNC_SECRET_MANAGER_ENDPOINT at standin.token_uri etc. ...

Run standalone: `python -m shared.sandbox.google_standin --port 8765 --calendar EMAIL=FILE`.
It binds 127.0.0.1 only and serves from a background thread of the caller's process.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import quote, unquote

from shared.sandbox.standin import sample
from shared.sandbox.standin.calendar import CALENDAR_SCOPES, Calendar, calendar_error
from shared.sandbox.standin.oauth import Consent, OAuthService, oauth_fault_response
from shared.sandbox.standin.push import PushNotifier
from shared.sandbox.standin.secretmanager import SecretStore, secretmanager_fault_response
from shared.sandbox.standin.web import (
    Faults,
    Request,
    RequestLog,
    Response,
    StandInHTTPServer,
    html_response,
    json_response,
    sleep,
)

__all__ = ["SAMPLE_ANCHOR", "SAMPLE_DIR", "Calendar", "Consent", "Faults", "GoogleStandIn", "RequestLog"]

SAMPLE_ANCHOR = sample.SAMPLE_ANCHOR
SAMPLE_DIR = sample.SAMPLE_DIR
AUTH_PATH = "/o/oauth2/v2/auth"
TOKEN_PATH = "/token"
REVOKE_PATH = "/revoke"
CALENDAR_PREFIX = "/calendar/v3/"
SECRET_MANAGER_PREFIX = "/v1/projects/"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GoogleStandIn:
    """OAuth + Calendar v3 + Secret Manager v1 on one loopback port. See the module docstring.

    `clock` (UTC-aware) drives token expiry and event `updated` stamps; `redirect_uris=None`
    accepts any loopback (`http://127.0.0.1…`/`localhost`) redirect URI.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        client_id: str = "calsync-local-client",
        client_secret: str = "calsync-local-secret",  # noqa: S107 - the sandbox client
        redirect_uris: Iterable[str] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        access_token_ttl_s: int = 3599,
    ) -> None:
        self._port = port
        self._clock = clock
        self._lock = threading.RLock()
        self._server: StandInHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Sync/page tokens carry this key: tokens of another stand-in are not ours, while a
        # stop()/start() of this one keeps them valid.
        self._token_key = secrets.token_hex(4)
        self._calendars: dict[str, Calendar] = {}
        self.oauth = OAuthService(client_id, client_secret, redirect_uris, clock, access_token_ttl_s)
        self.secrets = SecretStore(clock)
        self.faults = Faults()
        self.requests = RequestLog()
        self.push = PushNotifier(clock)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> GoogleStandIn:
        with self._lock:
            if self._server is not None:
                return self
            self._server = StandInHTTPServer("127.0.0.1", self._port, self._dispatch)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name="google-standin",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if thread is not None:
            thread.join(timeout=5)
        self.push.close()

    def __enter__(self) -> GoogleStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to a fresh stand-in on the same port: no calendars, secrets, tokens, faults or
        logged requests, watch channels or deliveries, default consent. For a server shared by
        several tests."""
        with self._lock:
            self._calendars.clear()
        self.push.reset()
        self.oauth.reset()
        self.secrets.clear()
        self.faults.clear()
        self.requests.clear()

    # --- URLs -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_uri(self) -> str:
        return self.base_url + AUTH_PATH

    @property
    def token_uri(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def revoke_uri(self) -> str:
        return self.base_url + REVOKE_PATH

    @property
    def calendar_endpoint(self) -> str:
        return self.base_url + CALENDAR_PREFIX

    @property
    def secret_manager_endpoint(self) -> str:
        return self.base_url

    # --- OAuth ----------------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self.oauth.client_id

    @property
    def client_secret(self) -> str:
        return self.oauth.client_secret

    @property
    def consent(self) -> Consent:
        return self.oauth.consent

    def issue_refresh_token(self, email: str, scopes: Iterable[str] | None = None) -> str:
        """A live refresh token for `email` (default scopes: openid, email, calendar.events.readonly)."""
        return self.oauth.issue_refresh_token(email, scopes)

    def revoke_refresh_token(self, token: str) -> None:
        """Revoke as the user would in their Google account: later use answers invalid_grant."""
        self.oauth.revoke_refresh_token(token)

    def expire_access_tokens(self) -> None:
        """Expire every access token issued so far (clients get 401 and refresh)."""
        self.oauth.expire_access_tokens()

    # --- Calendar -------------------------------------------------------------------------------

    def calendar(self, email: str) -> Calendar:
        """The primary calendar of a Google account (created empty, time zone UTC, on first use)."""
        key = email.strip().lower()
        with self._lock:
            if key not in self._calendars:
                self._calendars[key] = Calendar(key, self._clock)
                self._calendars[key].on_change = self.push.calendar_changed
            return self._calendars[key]

    def load_calendar_file(self, email: str, path: str | Path, now: datetime | None = None) -> Calendar:
        """Load an events.list-shaped JSON file into `email`'s calendar (its `timeZone` too).
        With `now`, times are shifted by whole weeks from `SAMPLE_ANCHOR` to sit around `now`."""
        data = sample.read_calendar_file(path)
        weeks = sample.weeks_between(SAMPLE_ANCHOR, now) if now is not None else 0
        data = sample.shift_calendar(data, weeks, email.strip().lower())
        calendar = self.calendar(email)
        if data.get("timeZone"):
            calendar.time_zone = str(data["timeZone"])
        calendar.load_events(data["items"])
        return calendar

    # --- dispatch -------------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> tuple[str, Response]:
        service = _service_of(request.path)
        self.requests.append(service or "unknown", request.method, request.path)
        if service is None:
            return "unknown", html_response(404, "Not Found", f"The stand-in does not serve {request.path}")
        fault = self.faults.take(service)
        if fault is not None:
            sleep(fault.delay_s)
            if fault.status is not None:
                return service, _fault_response(service, fault.status, fault.reason)
        try:
            return service, self._serve(service, request)
        except Exception as exc:  # noqa: BLE001 - a stand-in bug must answer 500, not hang the client
            if service == "calendar":
                return service, calendar_error(500, message=f"stand-in error: {type(exc).__name__}: {exc}")
            return service, json_response(
                500, {"error": {"code": 500, "message": f"stand-in error: {exc}", "status": "INTERNAL"}}
            )

    def _serve(self, service: str, request: Request) -> Response:
        if service == "auth":
            return self.oauth.authorize(request)
        if service == "token":
            return self.oauth.token(request)
        if service == "revoke":
            return self.oauth.revoke(request)
        if service == "secretmanager":
            return self.secrets.handle(request)
        return self._serve_calendar(request)

    def _serve_calendar(self, request: Request) -> Response:
        grant = self.oauth.access_grant(request.headers.get("authorization"))
        if grant is None:
            return calendar_error(401)
        if not CALENDAR_SCOPES.intersection(grant.scopes):
            return calendar_error(
                403, "insufficientPermissions", "Request had insufficient authentication scopes."
            )
        parts = [unquote(p) for p in request.path[len(CALENDAR_PREFIX) :].strip("/").split("/")]
        if request.method == "POST" and (parts == ["channels", "stop"] or parts[2:] == ["events", "watch"]):
            return self._serve_push(grant.email, parts, request)
        if request.method != "GET":
            return calendar_error(405, "methodNotAllowed", "The stand-in serves read-only calls.")
        calendar = self.calendar(grant.email)
        if len(parts) < 2 or parts[0] != "calendars" or parts[1] not in ("primary", grant.email):
            return calendar_error(404, "notFound", "Not Found")
        if len(parts) == 2:
            return json_response(200, calendar.calendar_resource())
        if len(parts) == 3 and parts[2] == "events":
            return calendar.list_events(request, self._token_key)
        if len(parts) == 4 and parts[2] == "events":
            event = calendar.get_event(parts[3])
            return json_response(200, event) if event else calendar_error(404, "notFound", "Not Found")
        return calendar_error(404, "notFound", "Not Found")

    def _serve_push(self, email: str, parts: list[str], request: Request) -> Response:
        """events.watch (`calendars/<primary|own address>/events/watch`) and channels.stop."""
        if parts[0] == "channels":
            return self.push.stop_channel(email, _json_body(request))
        if len(parts) != 4 or parts[0] != "calendars" or parts[1] not in ("primary", email):
            return calendar_error(404, "notFound", "Not Found")
        self.calendar(email)  # the watched calendar exists (empty) from now on
        uri = f"{self.calendar_endpoint}calendars/{quote(parts[1], safe='')}/events?alt=json"
        return self.push.watch(email, _json_body(request), uri)


def _json_body(request: Request) -> Any:
    """The JSON body, or None when it is not JSON (the watch and stop calls answer 400)."""
    try:
        return request.json()
    except ValueError:
        return None


def _service_of(path: str) -> str | None:
    if path == AUTH_PATH:
        return "auth"
    if path == TOKEN_PATH:
        return "token"
    if path == REVOKE_PATH:
        return "revoke"
    if path.startswith(CALENDAR_PREFIX):
        return "calendar"
    if path.startswith(SECRET_MANAGER_PREFIX):
        return "secretmanager"
    return None


def _fault_response(service: str, status: int, reason: str | None) -> Response:
    if service == "calendar":
        return calendar_error(status, reason)
    if service == "secretmanager":
        return secretmanager_fault_response(status, reason)
    return oauth_fault_response(service, status, reason)


# --- standalone -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.sandbox.google_standin",
        description="Serve the local Google stand-in (OAuth, Calendar v3, Secret Manager) until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--calendar",
        action="append",
        default=[],
        metavar="EMAIL=FILE",
        help="load an events.list-shaped JSON file as EMAIL's primary calendar (repeatable)",
    )
    parser.add_argument("--no-shift", action="store_true", help="keep the files' absolute times")
    parser.add_argument(
        "--default-email",
        default=None,
        help="account that consents when the auth request has no login_hint (default: first --calendar)",
    )
    parser.add_argument(
        "--consent",
        choices=("grant", "deny", "grant_without_calendar"),
        default="grant",
        help="what the auto-consenting user does",
    )
    parser.add_argument("--client-id", default="calsync-local-client")
    parser.add_argument("--client-secret", default="calsync-local-secret")
    parser.add_argument("--redirect-uri", action="append", default=None, help="registered redirect URI")
    args = parser.parse_args(argv)

    standin = GoogleStandIn(
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=args.redirect_uri,
    )
    loads: list[tuple[str, str]] = []
    for spec in args.calendar:
        email, sep, path = spec.partition("=")
        if not sep or not email or not path:
            parser.error(f"--calendar expects EMAIL=FILE, got {spec!r}")
        loads.append((email, path))
    default_email = args.default_email or (loads[0][0] if loads else None)
    if default_email:
        standin.consent.default_email = default_email
    standin.consent.mode = args.consent
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with standin:
        now = None if args.no_shift else _utc_now()
        for email, path in loads:
            calendar = standin.load_calendar_file(email, path, now=now)
            print(f"calendar {email}: {len(calendar.events)} events from {path}")
        urls: dict[str, Any] = {
            "base_url": standin.base_url,
            "auth_uri": standin.auth_uri,
            "token_uri": standin.token_uri,
            "revoke_uri": standin.revoke_uri,
            "calendar_endpoint": standin.calendar_endpoint,
            "secret_manager_endpoint": standin.secret_manager_endpoint,
            "client_id": standin.client_id,
            "consent": f"{standin.consent.mode} as {standin.consent.default_email} (unless login_hint)",
        }
        for name, value in urls.items():
            print(f"{name}: {value}")
        print("serving; Ctrl-C or SIGTERM stops", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
