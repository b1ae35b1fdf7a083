"""Builds the real adapters lazily, once per function instance (or CLI process).

Nothing here runs at import time: each factory builds its client on first call and caches it,
so an entry point pays only for the clients it uses. Google SDK modules are imported inside the
factories for the same reason (cold start). Tests call `reset()` after changing the environment.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from shared import config as config_module
from shared import logs
from shared.config import Config
from shared.services import ports

_Factory = TypeVar("_Factory", bound="functools._lru_cache_wrapper[Any]")

if TYPE_CHECKING:  # SDKs and services are imported where they are built (cold start)
    from google.cloud import firestore, pubsub_v1, secretmanager  # type: ignore[attr-defined]

    from shared.services.channels import ChannelDeps, PushSettings
    from shared.services.connect import ConnectService
    from shared.services.exclusions import ExclusionDeps
    from shared.services.notifications import NotificationDeps
    from shared.services.rematch import RematchDeps
    from shared.services.report import ReportDeps
    from shared.services.sync import SyncDeps, SyncSettings
    from shared.services.worker import WorkerDeps


@functools.cache
def config() -> Config:
    """The process configuration (validated, nothing required yet: callers ask for what they need).
    Its secrets are registered with the log redaction."""
    return _with_secrets_redacted(config_module.load_config())


def require(*names: str) -> Config:
    """The configuration, raising one ConfigError that lists every missing value in `names`."""
    return _with_secrets_redacted(config_module.load_config(require=names))


def _with_secrets_redacted(settings: Config) -> Config:
    logs.register_secret(settings.oauth_client_secret)
    logs.register_secret(settings.link_signing_key)
    logs.register_secret(settings.channel_token_key)
    return settings


@functools.cache
def firestore_client() -> firestore.Client:
    from google.cloud import firestore

    return firestore.Client(project=require("project").project)


@functools.cache
def publisher_client() -> pubsub_v1.PublisherClient:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    return pubsub_v1.PublisherClient()


@functools.cache
def secret_manager_client() -> secretmanager.SecretManagerServiceClient:
    """Secret Manager over REST; against `CALSYNC_SECRET_MANAGER_ENDPOINT` with anonymous
    credentials when that is set (local sandbox and tests)."""
    from google.cloud import secretmanager

    endpoint = config().secret_manager_endpoint
    if endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return secretmanager.SecretManagerServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=endpoint.rstrip("/")),
        )
    return secretmanager.SecretManagerServiceClient(transport="rest")


_FACTORIES: list[functools._lru_cache_wrapper[Any]] = [
    config,
    firestore_client,
    publisher_client,
    secret_manager_client,
]


def register(factory: _Factory) -> _Factory:
    """Decorator for further cached factories, so `reset()` clears them too."""
    _FACTORIES.append(factory)
    return factory


def reset() -> None:
    """Forget every cached client (tests, after changing the environment)."""
    for factory in _FACTORIES:
        factory.cache_clear()


# --- Firestore stores (shared.adapters.firestore) ---------------------------------------


@register
@functools.cache
def directory_store() -> ports.DirectoryAdminStore:
    """The directory: matching reads, re-matching, `calsync import`."""
    from shared.adapters.firestore import FirestoreDirectoryStore

    return FirestoreDirectoryStore(firestore_client())


@register
@functools.cache
def member_store() -> ports.MemberStore:
    """Members: connection, sync state, lease, due members, listings."""
    from shared.adapters.firestore import FirestoreMemberStore

    return FirestoreMemberStore(firestore_client())


@register
@functools.cache
def meeting_store() -> ports.MeetingAdminStore:
    """Meetings and interactions: plans, index queries, listings."""
    from shared.adapters.firestore import FirestoreMeetingStore

    return FirestoreMeetingStore(firestore_client())


@register
@functools.cache
def report_store() -> ports.ReportStore:
    """The operator report's bounded reads (aggregation counts, recent meetings)."""
    from shared.adapters.firestore import FirestoreReportStore

    return FirestoreReportStore(firestore_client())


@register
@functools.cache
def job_publisher() -> ports.JobPublisher:
    """`JobPublisher` on `CALSYNC_SYNC_TOPIC`; creates the topic when missing against the emulator."""
    from shared.adapters.pubsub import PubSubJobPublisher

    settings = require("project")
    return PubSubJobPublisher(
        publisher_client(),
        str(settings.project),
        settings.sync_topic,
        create_topic=bool(settings.pubsub_emulator_host),
    )


# --- Connecting calendars (shared.services.connect) -------------------------------------------


@register
@functools.cache
def token_vault() -> ports.TokenVault:
    """`TokenVault`: refresh tokens in Secret Manager, one secret per member."""
    from shared.adapters.secrets import SecretManagerTokenVault

    return SecretManagerTokenVault(secret_manager_client(), str(require("project").project))


@register
@functools.cache
def oauth_state_store() -> ports.OAuthStateStore:
    """Pending OAuth consents (`oauthStates/{sha256(state)}`)."""
    from shared.adapters.firestore import FirestoreOAuthStateStore

    return FirestoreOAuthStateStore(firestore_client())


@register
@functools.cache
def oauth_client() -> ports.OAuthProvider:
    """The OAuth web client (consent URL, code exchange, revoke). Requires `config.OAUTH`."""
    from shared.adapters.oauth import GoogleOAuthClient

    settings = require(*config_module.OAUTH)
    return GoogleOAuthClient(
        client_id=settings.required("oauth_client_id"),
        client_secret=settings.required("oauth_client_secret"),
        redirect_uri=settings.required("oauth_redirect_uri"),
        auth_uri=settings.oauth_auth_uri,
        token_uri=settings.oauth_token_uri,
        revoke_uri=settings.oauth_revoke_uri,
    )


@register
@functools.cache
def consent_client() -> ports.OAuthProvider:
    """An OAuth client good for consent URLs (and revoking): `oauth_connect`, no client secret."""
    from shared.adapters.oauth import GoogleOAuthClient

    settings = require(*config_module.OAUTH_CONNECT)
    return GoogleOAuthClient(
        client_id=settings.required("oauth_client_id"),
        client_secret="",
        redirect_uri=settings.required("oauth_redirect_uri"),
        auth_uri=settings.oauth_auth_uri,
        token_uri=settings.oauth_token_uri,
        revoke_uri=settings.oauth_revoke_uri,
    )


@register
@functools.cache
def revoke_client() -> ports.OAuthProvider:
    """An OAuth client good for revoking only (`oauth_disconnect`, the CLI): revocation sends
    the token alone, so it needs no client secret and none is read."""
    from shared.adapters.oauth import GoogleOAuthClient

    settings = config()
    return GoogleOAuthClient(
        client_id=settings.oauth_client_id or "",
        client_secret="",
        redirect_uri=settings.oauth_redirect_uri or "",
        auth_uri=settings.oauth_auth_uri,
        token_uri=settings.oauth_token_uri,
        revoke_uri=settings.oauth_revoke_uri,
    )


_OAUTH_CLIENTS = {
    "oauth_connect": consent_client,
    "oauth_callback": oauth_client,
    "oauth_disconnect": revoke_client,
}


def connect_service(entry_point: str | None = None, *, full_oauth: bool = True) -> ConnectService:
    """`ConnectService` over the real adapters. `entry_point` (an OAuth function's name) requires
    exactly what that function uses (`config.OAUTH_ENTRY_POINTS`: only the callback needs the
    client secret). Without it, `full_oauth=True` requires all of `config.OAUTH` at once, and
    `full_oauth=False` (the CLI) only the project: each subcommand asks for the rest."""
    from shared.adapters.clock import SystemClock
    from shared.services.connect import ConnectService

    if entry_point is not None:
        settings = require(*config_module.OAUTH_ENTRY_POINTS[entry_point])
        oauth = _OAUTH_CLIENTS[entry_point]()
    elif full_oauth:
        settings, oauth = require(*config_module.OAUTH), oauth_client()
    else:
        settings, oauth = require("project"), revoke_client()
    from shared.services.channels import ChannelRetirer

    # Stopping a channel needs an access token, so the client secret: without it (an entry point
    # not given it) the channel's lookup entry is still deleted and it expires by itself.
    stopper = calendar_channels() if config().oauth_client_secret else None
    return ConnectService(
        channels=ChannelRetirer(channel_store(), stopper),
        members=member_store(),
        tenants=directory_store(),
        states=oauth_state_store(),
        vault=token_vault(),
        oauth=oauth,
        jobs=job_publisher(),
        clock=SystemClock(),
        link_key=settings.link_signing_key or "",
    )


# --- Syncing calendars (shared.services.sync) ---------------------------------------------------


@register
@functools.cache
def calendar_source() -> ports.CalendarSource:
    """`CalendarSource` over the Calendar API (or the stand-in at CALSYNC_CALENDAR_ENDPOINT)."""
    from shared.adapters.calendar import GoogleCalendarSource

    settings = require(*config_module.WORKER)
    return GoogleCalendarSource(
        endpoint=settings.calendar_endpoint,
        token_uri=settings.oauth_token_uri,
        client_id=settings.required("oauth_client_id"),
        client_secret=settings.required("oauth_client_secret"),
    )


def sync_deps(*, continuations: bool = True) -> SyncDeps:
    """`SyncDeps` over the real adapters. `continuations=False` (the CLI) keeps listing in-process
    instead of publishing a follow-up job when the time budget is spent."""
    from shared.adapters.clock import SystemClock
    from shared.services.sync import SyncDeps

    return SyncDeps(
        directory=directory_store(),
        members=member_store(),
        meetings=meeting_store(),
        vault=token_vault(),
        calendar=calendar_source(),
        clock=SystemClock(),
        publisher=_PublisherOnFirstUse() if continuations else None,
    )


class _PublisherOnFirstUse:
    """The job publisher, built when first used: only a sync that spends its time budget
    publishes, so most worker instances never pay for the Pub/Sub client (cold start)."""

    def publish(self, jobs: Iterable[ports.SyncJob]) -> int:
        return job_publisher().publish(jobs)


# --- Re-matching after directory changes (shared.services.rematch) ------------------------------


def rematch_deps() -> RematchDeps:
    """`RematchDeps` over the real adapters (Firestore only)."""
    from shared.adapters.clock import SystemClock
    from shared.services.rematch import RematchDeps

    return RematchDeps(directory=directory_store(), meetings=meeting_store(), clock=SystemClock())


def exclusion_deps() -> ExclusionDeps:
    """`ExclusionDeps` over the real adapters (Firestore only)."""
    from shared.services.exclusions import ExclusionDeps

    return ExclusionDeps(rematch=rematch_deps(), exclusions=directory_store(), members=member_store())


# --- The operator report (shared.services.report) ----------------------------------------------


def report_deps() -> ReportDeps:
    """`ReportDeps` over the real adapters (Firestore only)."""
    from shared.adapters.clock import SystemClock
    from shared.services.report import ReportDeps

    return ReportDeps(
        directory=directory_store(), members=member_store(), reports=report_store(), clock=SystemClock()
    )


# --- Push notifications (shared.services.channels, shared.services.notifications) ---------------


@register
@functools.cache
def channel_store() -> ports.ChannelStore:
    """The lookup from push channel id to member (`channels/{id}`)."""
    from shared.adapters.firestore import FirestoreChannelStore

    return FirestoreChannelStore(firestore_client())


def calendar_channels() -> ports.CalendarChannels:
    """`events.watch` / `channels.stop`: the Calendar adapter of the sync."""
    from shared.adapters.calendar import GoogleCalendarSource

    source = calendar_source()
    assert isinstance(source, GoogleCalendarSource)
    return source


def push_settings() -> PushSettings:
    """Push on when `CALSYNC_NOTIFICATION_URL` is set; the token key is needed only then."""
    from shared.services.channels import PushSettings

    settings = config()
    return PushSettings(
        notification_url=settings.notification_url,
        token_key=settings.channel_key() if settings.notification_url else b"",
        ttl_s=settings.channel_ttl_s,
        backstop_interval_s=settings.backstop_interval_s,
    )


def sync_settings() -> SyncSettings:
    """The worker's sync settings: its time budget, and the backstop interval when push is on."""
    from shared.services.sync import SyncSettings

    settings = config()
    backstop = float(settings.backstop_interval_s) if settings.notification_url else None
    return SyncSettings(budget_s=settings.sync_budget_s, backstop_interval_s=backstop)


def channel_deps() -> ChannelDeps:
    from shared.adapters.clock import SystemClock
    from shared.services.channels import ChannelDeps

    return ChannelDeps(
        members=member_store(),
        channels=channel_store(),
        calendar=calendar_channels(),
        vault=token_vault(),
        clock=SystemClock(),
        settings=push_settings(),
    )


def worker_deps() -> WorkerDeps:
    """What `sync_worker` needs: the sync, the channels, the publisher of follow-up jobs."""
    from shared.services.worker import WorkerDeps

    return WorkerDeps(sync=sync_deps(), channels=channel_deps(), publisher=_PublisherOnFirstUse())


# `calendar_notification` runs for at most 30 s (infra/functions.tf): its publish gives up well
# before, so it answers 503 and releases the claim instead of being cut off with the claim pending.
NOTIFICATION_REQUEST_TIMEOUT_S = 10.0


@register
@functools.cache
def notification_publisher() -> ports.JobPublisher:
    """`JobPublisher` on `CALSYNC_SYNC_TOPIC` for `calendar_notification`: as `job_publisher`,
    with every publish bounded by `NOTIFICATION_REQUEST_TIMEOUT_S`."""
    from shared.adapters.pubsub import PubSubJobPublisher

    settings = require("project")
    return PubSubJobPublisher(
        publisher_client(),
        str(settings.project),
        settings.sync_topic,
        create_topic=bool(settings.pubsub_emulator_host),
        request_timeout_s=NOTIFICATION_REQUEST_TIMEOUT_S,
    )


def notification_deps() -> NotificationDeps:
    """What `calendar_notification` needs (no OAuth secret, no token vault)."""
    from shared.adapters.clock import SystemClock
    from shared.adapters.firestore import FirestoreChannelStore, FirestoreMemberStore
    from shared.services.notifications import NotificationDeps

    settings = require(*config_module.NOTIFICATION)
    # Every call bounded (retries included) so that the function answers 503 within its own
    # timeout when Firestore or Pub/Sub does not answer, and Google sends the notification again.
    bound = NOTIFICATION_REQUEST_TIMEOUT_S
    return NotificationDeps(
        channels=FirestoreChannelStore(firestore_client(), request_timeout_s=bound),
        members=FirestoreMemberStore(firestore_client(), request_timeout_s=bound),
        publisher=notification_publisher(),
        clock=SystemClock(),
        token_key=settings.channel_key(),
    )
