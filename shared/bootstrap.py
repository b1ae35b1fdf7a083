"""Builds the real adapters lazily, once per function instance (or CLI process).

Nothing here runs at import time: each factory builds its client on first call and caches it,
so an entry point pays only for the clients it uses. Google SDK modules are imported inside the
factories for the same reason (cold start). Tests call `reset()` after changing the environment.
"""

from __future__ import annotations

import functools
from typing import Any

from shared import config as config_module
from shared.config import Config


@functools.cache
def config() -> Config:
    """The process configuration (validated, nothing required yet: callers ask for what they need)."""
    return config_module.load_config()


def require(*names: str) -> Config:
    """The configuration, raising one ConfigError that lists every missing value in `names`."""
    return config_module.load_config(require=names)


@functools.cache
def firestore_client() -> Any:
    from google.cloud import firestore

    return firestore.Client(project=require("project").project)


@functools.cache
def publisher_client() -> Any:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    return pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1000, max_latency=0.05),
    )


@functools.cache
def secret_manager_client() -> Any:
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


_FACTORIES: list[Any] = [config, firestore_client, publisher_client, secret_manager_client]


def register(factory: Any) -> Any:
    """Decorator for further cached factories, so `reset()` clears them too."""
    _FACTORIES.append(factory)
    return factory


def reset() -> None:
    """Forget every cached client (tests, after changing the environment)."""
    for factory in _FACTORIES:
        factory.cache_clear()


# --- Firestore stores (shared.adapters.firestore_store) ---------------------------------------


@register
@functools.cache
def directory_store() -> Any:
    """`DirectoryStore` (+ the directory reads and writes of `calsync import`)."""
    from shared.adapters.firestore_store import FirestoreDirectoryStore

    return FirestoreDirectoryStore(firestore_client())


@register
@functools.cache
def member_store() -> Any:
    """`MemberStore` (+ `list_members` for `calsync status`)."""
    from shared.adapters.firestore_store import FirestoreMemberStore

    return FirestoreMemberStore(firestore_client())


@register
@functools.cache
def meeting_store() -> Any:
    """`MeetingStore` (+ `list_interactions` for `calsync interactions`)."""
    from shared.adapters.firestore_store import FirestoreMeetingStore

    return FirestoreMeetingStore(firestore_client())
