"""Every Cloud Function entry point of calsync (names are a contract, SPEC).

Each one is short: decode the request or event -> get dependencies from `shared.bootstrap` ->
call one service -> map the outcome to an HTTP status or an acknowledgement. A returned value
acknowledges; a raised exception answers 500 and makes Pub/Sub redeliver.
"""

import functions_framework

# --- schedule_sync: Cloud Scheduler -> one sync job per due member over Pub/Sub (SPEC §4) -------


@functions_framework.http
def schedule_sync(request):  # type: ignore[no-untyped-def]
    """Fan out sync jobs. Cloud Scheduler calls it (POST, or GET); answers `{"published": N}`,
    or 503 when Firestore or Pub/Sub failed (the next scheduler run tries again)."""
    import time

    from shared import bootstrap
    from shared.adapters.clock import SystemClock
    from shared.errors import TransientError
    from shared.logs import get_logger
    from shared.services.schedule import schedule_sync as fan_out

    if request.method not in ("GET", "POST"):
        return {"error": "method not allowed"}, 405, {"Allow": "GET, POST"}
    log = get_logger(function="schedule_sync")
    started = time.monotonic()
    try:
        result = fan_out(bootstrap.member_store(), bootstrap.job_publisher(), SystemClock().now())
    except TransientError as error:
        log.error(
            "fan-out failed; the next scheduler run retries",
            error_kind=type(error).__name__,
            error=str(error),
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )
        return {"error": "temporarily unavailable, retry later"}, 503
    log.info("fan-out done", **result, elapsed_ms=round((time.monotonic() - started) * 1000))
    return result, 200


# --- OAuth: oauth_connect, oauth_callback, oauth_disconnect (SPEC §5; shared.services.connect) --


def _oauth_respond(page):  # type: ignore[no-untyped-def]
    import flask

    response = flask.Response(page.body, status=page.status, content_type=page.content_type)
    response.headers.update(page.headers)
    return response


def _oauth_run(function: str, action):  # type: ignore[no-untyped-def]
    """Run one use case; every error becomes a small page (4xx: nothing changed; 5xx logged)."""
    from shared import bootstrap
    from shared.errors import CalsyncError, InvalidInput, NotFound
    from shared.logs import get_logger
    from shared.services import connect_pages

    log = get_logger(function=function)
    try:
        return _oauth_respond(action(bootstrap.connect_service()))
    except (InvalidInput, NotFound) as error:
        log.warning("request refused", error_kind=type(error).__name__, reason=getattr(error, "kind", None))
        return _oauth_respond(connect_pages.page_for_error(error))
    except CalsyncError as error:
        log.error("request failed", error_kind=type(error).__name__, error=str(error))
        return _oauth_respond(connect_pages.page_for_error(error))
    except Exception as error:
        log.exception("unexpected error", error_kind=type(error).__name__)
        return _oauth_respond(connect_pages.page_for_error(error))


@functions_framework.http
def oauth_connect(request):  # type: ignore[no-untyped-def]
    """GET with a signed connect link -> 302 to Google's consent (4xx page for a bad link)."""
    from shared.services import connect_pages

    if request.method != "GET":
        return _oauth_respond(connect_pages.method_not_allowed("GET"))
    params = request.args.to_dict()
    return _oauth_run("oauth_connect", lambda service: connect_pages.redirect(service.start_connect(params)))


@functions_framework.http
def oauth_callback(request):  # type: ignore[no-untyped-def]
    """GET from Google's redirect (`state` + `code`, or `error`) -> result page, or a 302 to
    `CALSYNC_RETURN_URL` once connected."""
    from shared import bootstrap
    from shared.services import connect_pages

    if request.method != "GET":
        return _oauth_respond(connect_pages.method_not_allowed("GET"))
    params = request.args.to_dict()
    return _oauth_run(
        "oauth_callback",
        lambda service: connect_pages.callback_page(
            service.complete_connect(params), bootstrap.config().return_url
        ),
    )


@functions_framework.http
def oauth_disconnect(request):  # type: ignore[no-untyped-def]
    """GET with a signed disconnect link -> a confirmation page only (mail scanners prefetch
    links); its button POSTs the same query string back, and that POST disconnects."""
    from shared.domain.links import LinkPurpose
    from shared.services import connect_pages

    params = request.args.to_dict()
    if request.method == "GET":
        query = request.query_string.decode("utf-8", "replace")

        def confirm(service):  # type: ignore[no-untyped-def]
            _, member = service.verify_link(LinkPurpose.DISCONNECT, params)
            return connect_pages.disconnect_confirmation(query, member.name)

        return _oauth_run("oauth_disconnect", confirm)
    if request.method == "POST":

        def disconnect(service):  # type: ignore[no-untyped-def]
            claims, _ = service.verify_link(LinkPurpose.DISCONNECT, params)
            service.disconnect(claims.tenant_id, claims.member_id)
            return connect_pages.disconnected()

        return _oauth_run("oauth_disconnect", disconnect)
    return _oauth_respond(connect_pages.method_not_allowed("GET, POST"))


# --- sync_worker: one member's calendar -> interactions (SPEC §4; shared.services.sync) ---------


@functions_framework.cloud_event
def sync_worker(cloud_event):  # type: ignore[no-untyped-def]
    """Sync one member for a Pub/Sub job. Returning acknowledges (synced, continued, busy,
    needs_reauth, bad or unknown job); raising makes Pub/Sub redeliver (transient failures,
    which end in the dead-letter topic after the subscription's maximum attempts)."""
    from shared import bootstrap
    from shared.errors import InvalidInput, NotFound, TransientError
    from shared.logs import get_logger
    from shared.services.jobs import decode_job
    from shared.services.sync import SyncSettings, sync_member

    message = (cloud_event.data or {}).get("message") or {}
    log = get_logger(function="sync_worker", message_id=message.get("messageId"))
    try:
        job = decode_job(_message_data(message))
    except InvalidInput as error:
        log.error("sync job rejected (acknowledged, not retried)", error=str(error))
        return
    log = log.bind(tenant_id=job.tenant_id, member_id=job.member_id, reason=job.reason)
    settings = SyncSettings(budget_s=bootstrap.config().sync_budget_s)
    try:
        summary = sync_member(bootstrap.sync_deps(), job.tenant_id, job.member_id, settings=settings)
    except NotFound as error:
        log.error("sync job names an unknown tenant or member (acknowledged)", error=str(error))
        return
    except TransientError as error:
        log.warning("sync failed; Pub/Sub will redeliver", error=str(error))
        raise
    severity = log.info if summary.outcome in ("synced", "continued", "busy") else log.warning
    severity("sync finished", **summary.as_log_fields())


def _message_data(message):  # type: ignore[no-untyped-def]
    """The job bytes of a Pub/Sub push message (base64 in `data`); InvalidInput if unreadable."""
    import base64
    import binascii

    from shared.errors import InvalidInput

    data = message.get("data")
    if not isinstance(data, str):
        raise InvalidInput("Pub/Sub message has no data")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("Pub/Sub message data is not base64") from None


# --- directory_changed: a user or account written -> re-match the meetings it concerns ----------


@functions_framework.cloud_event
def directory_changed(cloud_event):  # type: ignore[no-untyped-def]
    """Eventarc Firestore trigger on `tenants/{t}/users/{u}` and `tenants/{t}/accounts/{a}`
    (SPEC §2, last paragraph). Returning acknowledges (re-matched, nothing to do, malformed event,
    unknown tenant); raising makes Eventarc redeliver (Firestore unavailable, write contention):
    the re-match is idempotent and reads the directory as it is now, not the event's payload."""
    from shared import bootstrap
    from shared.adapters.firestore_events import directory_change_from_event
    from shared.errors import InvalidInput, NotFound, TransientError
    from shared.logs import get_logger
    from shared.services.rematch import rematch_directory_change

    log = get_logger(function="directory_changed", event_id=cloud_event.get("id"))
    try:
        change = directory_change_from_event(cloud_event.get_attributes(), cloud_event.data)
    except InvalidInput as error:
        log.error("directory event rejected (acknowledged, not retried)", error=str(error))
        return
    log = log.bind(tenant_id=change.tenant_id, document=f"{change.collection}/{change.document_id}")
    try:
        summary = rematch_directory_change(bootstrap.rematch_deps(), change)
    except NotFound as error:
        log.error("directory event names an unknown tenant (acknowledged)", error=str(error))
        return
    except TransientError as error:
        log.warning("re-match failed; the event will be redelivered", error=str(error))
        raise
    log.info("re-match finished", **summary.as_log_fields())
