"""Every Cloud Function entry point of calsync (their names are a deployment contract).

Each one is short: decode the request or event -> get dependencies from `shared.bootstrap` ->
call one service -> map the outcome to an HTTP status or an acknowledgement. A returned value
acknowledges; a raised exception answers 500 and makes Pub/Sub or Eventarc redeliver.

Imported at module level: everything that loads no Google SDK (the services, the domain, errors
and logging; pure Python, so a function pays some tens of milliseconds for the services of the
others). The SDK clients are imported and built on first use by `shared.bootstrap`, and the one
adapter that loads protobuf at import time is imported inside the one function that uses it.
tests/unit/test_bundle.py checks that no Google client library loads at import time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent
from flask.typing import ResponseReturnValue

from shared import bootstrap
from shared.adapters.clock import SystemClock
from shared.domain.links import LinkPurpose
from shared.errors import CalsyncError, InvalidInput, NotFound, TransientError
from shared.logs import get_logger
from shared.services import connect_pages
from shared.services.connect import ConnectService
from shared.services.connect_pages import Page
from shared.services.jobs import job_from_push_message, push_message
from shared.services.notifications import NOTIFICATION_HEADERS, NotificationOutcome, handle_notification
from shared.services.rematch import rematch_directory_change
from shared.services.schedule import schedule_sync as fan_out
from shared.services.worker import run_sync_job

# --- schedule_sync: Cloud Scheduler -> one sync job per due member over Pub/Sub -----------------


@functions_framework.http
def schedule_sync(request: flask.Request) -> ResponseReturnValue:
    """Fan out sync jobs. Cloud Scheduler calls it (POST, or GET); answers `{"published": N}`,
    or 503 when Firestore or Pub/Sub failed (the next scheduler run tries again)."""
    if request.method not in ("GET", "POST"):
        return {"error": "method not allowed"}, 405, {"Allow": "GET, POST"}
    log = get_logger(function="schedule_sync")
    started = time.monotonic()
    try:
        result = fan_out(bootstrap.member_store(), bootstrap.job_publisher(), SystemClock().now())
    except TransientError as error:
        failed = {"error_kind": type(error).__name__, "error": str(error), "elapsed_ms": _ms_since(started)}
        log.error("fan-out failed; the next scheduler run retries", **failed)
        return {"error": "temporarily unavailable, retry later"}, 503
    log.info("fan-out done", **result, elapsed_ms=_ms_since(started))
    return result, 200


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


# --- calendar_notification: Google Calendar push -> one pending sync job per member -------------

_REFUSED = (NotificationOutcome.BAD_REQUEST, NotificationOutcome.FORGED, NotificationOutcome.UNAVAILABLE)


@functions_framework.http
def calendar_notification(request: flask.Request) -> ResponseReturnValue:
    """Public: Google POSTs a notification (headers only) when a watched calendar changes. It is
    authenticated by its channel token; the status says what Google should do
    (README.md#push-notifications)."""
    if request.method != "POST":
        return "", 405, {"Allow": "POST"}
    headers = {name: request.headers.get(name, "") for name in NOTIFICATION_HEADERS}
    result = handle_notification(bootstrap.notification_deps(), headers)
    fields = {k: v for k, v in vars(result).items() if v is not None} | {"status": result.status}
    log = get_logger(function="calendar_notification")
    (log.warning if result.outcome in _REFUSED else log.info)("notification answered", **fields)
    return "", result.status


# --- OAuth: oauth_connect, oauth_callback, oauth_disconnect (shared.services.connect) ----------


@functions_framework.http
def oauth_connect(request: flask.Request) -> ResponseReturnValue:
    """GET with a signed connect link -> 302 to Google's consent (4xx page for a bad link)."""
    if request.method != "GET":
        return _respond(connect_pages.method_not_allowed("GET"))
    params = request.args.to_dict()
    return _oauth_run("oauth_connect", lambda service: connect_pages.redirect(service.start_connect(params)))


@functions_framework.http
def oauth_callback(request: flask.Request) -> ResponseReturnValue:
    """GET from Google's redirect (`state` + `code`, or `error`) -> result page, or a 302 to
    `CALSYNC_RETURN_URL` once connected."""
    if request.method != "GET":
        return _respond(connect_pages.method_not_allowed("GET"))
    params = request.args.to_dict()
    return _oauth_run(
        "oauth_callback",
        lambda service: connect_pages.callback_page(
            service.complete_connect(params), bootstrap.config().return_url
        ),
    )


@functions_framework.http
def oauth_disconnect(request: flask.Request) -> ResponseReturnValue:
    """GET with a signed disconnect link -> a confirmation page only (mail scanners prefetch
    links); its button POSTs the same query string back, and that POST disconnects."""
    params = request.args.to_dict()
    if request.method == "GET":
        query = request.query_string.decode("utf-8", "replace")
        return _oauth_run("oauth_disconnect", lambda service: _confirm_disconnect(service, params, query))
    if request.method == "POST":
        return _oauth_run("oauth_disconnect", lambda service: _disconnect(service, params))
    return _respond(connect_pages.method_not_allowed("GET, POST"))


def _confirm_disconnect(service: ConnectService, params: dict[str, str], query: str) -> Page:
    """The confirmation page of a valid disconnect link; changes nothing."""
    _, member = service.verify_link(LinkPurpose.DISCONNECT, params)
    return connect_pages.disconnect_confirmation(query, member.name)


def _disconnect(service: ConnectService, params: dict[str, str]) -> Page:
    claims, _ = service.verify_link(LinkPurpose.DISCONNECT, params)
    service.disconnect(claims.tenant_id, claims.member_id)
    return connect_pages.disconnected()


def _oauth_run(function: str, action: Callable[[ConnectService], Page]) -> flask.Response:
    """Run one use case; every error becomes a small page (4xx: nothing changed; 5xx logged)."""
    log = get_logger(function=function)
    try:
        return _respond(action(bootstrap.connect_service(function)))
    except (InvalidInput, NotFound) as error:
        log.warning("request refused", error_kind=type(error).__name__, reason=getattr(error, "kind", None))
        return _respond(connect_pages.page_for_error(error))
    except CalsyncError as error:
        log.error("request failed", error_kind=type(error).__name__, error=str(error))
        return _respond(connect_pages.page_for_error(error))
    except Exception as error:
        log.exception("unexpected error", error_kind=type(error).__name__)
        return _respond(connect_pages.page_for_error(error))


def _respond(page: Page) -> flask.Response:
    response = flask.Response(page.body, status=page.status, content_type=page.content_type)
    response.headers.update(page.headers)
    return response


# --- the event-driven functions: acknowledge, or have the event redelivered ---------------------


@dataclass(frozen=True)
class _DeliveryLogs:
    """What an event-driven function logs when it ends a delivery early."""

    rejected: str  # InvalidInput: the message or event is malformed
    unknown: str  # NotFound: it names a tenant or member that does not exist
    retrying: str  # TransientError: it is redelivered


class _Delivery:
    """One Pub/Sub or Eventarc delivery: its logger, and the one rule that ends it.

    InvalidInput and NotFound are acknowledged with an error log: the event is malformed or
    names something that does not exist, and redelivering it cannot help. TransientError is
    logged as a warning and raised, so the event is redelivered (and, after the subscription's
    maximum attempts, dead-lettered). Any other exception propagates unlogged, and is redelivered.
    """

    def __init__(self, log: Any, logs: _DeliveryLogs) -> None:
        self.log = log
        self._logs = logs

    def bind(self, **fields: Any) -> None:
        """Add `fields` to every later log line of this delivery."""
        self.log = self.log.bind(**fields)

    @contextmanager
    def acknowledge_or_redeliver(self) -> Iterator[None]:
        try:
            yield
        except InvalidInput as error:
            self.log.error(self._logs.rejected, error=str(error))
        except NotFound as error:
            self.log.error(self._logs.unknown, error=str(error))
        except TransientError as error:
            self.log.warning(self._logs.retrying, error=str(error))
            raise


# --- sync_worker: one member's calendar -> interactions (shared.services.sync) ------------------

_SYNC_JOB = _DeliveryLogs(
    rejected="sync job rejected (acknowledged, not retried)",
    unknown="sync job names an unknown tenant or member (acknowledged)",
    retrying="sync failed; Pub/Sub will redeliver",
)


@functions_framework.cloud_event
def sync_worker(cloud_event: CloudEvent) -> None:
    """Sync one member for a Pub/Sub job. Returning acknowledges (synced, continued, busy,
    needs_reauth, bad or unknown job); raising makes Pub/Sub redeliver (transient failures,
    which end in the dead-letter topic after the subscription's maximum attempts)."""
    message = push_message(cloud_event.data)
    delivery = _Delivery(get_logger(function="sync_worker", message_id=message.get("messageId")), _SYNC_JOB)
    with delivery.acknowledge_or_redeliver():
        job = job_from_push_message(message)
        delivery.bind(tenant_id=job.tenant_id, member_id=job.member_id, reason=job.reason)
        summary = run_sync_job(bootstrap.worker_deps(), job, bootstrap.sync_settings())
        healthy = summary.outcome in ("synced", "continued", "busy")
        (delivery.log.info if healthy else delivery.log.warning)("sync finished", **summary.as_log_fields())


# --- directory_changed: a user or account written -> re-match the meetings it concerns ----------

_DIRECTORY_EVENT = _DeliveryLogs(
    rejected="directory event rejected (acknowledged, not retried)",
    unknown="directory event names an unknown tenant (acknowledged)",
    retrying="re-match failed; the event will be redelivered",
)


@functions_framework.cloud_event
def directory_changed(cloud_event: CloudEvent) -> None:
    """Eventarc Firestore trigger on `tenants/{t}/users/{u}` and `tenants/{t}/accounts/{a}`.
    Returning acknowledges (re-matched, nothing to do, malformed event, unknown tenant); raising
    makes Eventarc redeliver (Firestore unavailable, write contention): the re-match is
    idempotent and reads the directory as it is now, not the event's payload."""
    # Imported here: it loads protobuf and Google's event types (~0.2 s), which only this needs.
    from shared.adapters.firestore.document_events import directory_change_from_event

    log = get_logger(function="directory_changed", event_id=cloud_event.get("id"))
    delivery = _Delivery(log, _DIRECTORY_EVENT)
    with delivery.acknowledge_or_redeliver():
        change = directory_change_from_event(cloud_event.get_attributes(), cloud_event.data)
        delivery.bind(tenant_id=change.tenant_id, document=f"{change.collection}/{change.document_id}")
        summary = rematch_directory_change(bootstrap.rematch_deps(), change)
        delivery.log.info("re-match finished", **summary.as_log_fields())
