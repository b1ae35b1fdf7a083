"""Sync jobs over Pub/Sub: a `JobPublisher` on google-cloud-pubsub.

The publisher client batches messages itself (batch settings in `shared.bootstrap`); `publish`
hands every job to it without waiting, then waits for all the futures at once, so publishing
100,000 jobs costs a few hundred batched RPCs, not 100,000 round trips.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterable
from typing import Any

from google.api_core import exceptions as gexc

from shared.errors import TransientError
from shared.logs import get_logger
from shared.services.jobs import encode_job
from shared.services.ports import SyncJob

DEFAULT_CONFIRM_TIMEOUT_S = 120.0


class PubSubJobPublisher:
    """Implements `JobPublisher` (shared.services.ports).

    `create_topic=True` (only against the emulator, SPEC §6) creates the topic on first use,
    tolerating one that already exists; in Google Cloud the topic exists beforehand (Terraform)."""

    def __init__(
        self,
        client: Any,
        project: str,
        topic: str,
        *,
        create_topic: bool = False,
        confirm_timeout_s: float = DEFAULT_CONFIRM_TIMEOUT_S,
    ) -> None:
        self._client = client
        self._topic_path: str = client.topic_path(project, topic)
        self._create_topic = create_topic
        self._topic_ready = not create_topic
        self._lock = threading.Lock()
        self._confirm_timeout_s = confirm_timeout_s

    @property
    def topic_path(self) -> str:
        return self._topic_path

    def _ensure_topic(self) -> None:
        with self._lock:
            if self._topic_ready:
                return
            try:
                self._client.create_topic(name=self._topic_path)
            except gexc.AlreadyExists:
                pass
            except gexc.GoogleAPICallError as error:
                raise TransientError(f"could not create the sync topic ({type(error).__name__})") from error
            self._topic_ready = True

    def publish(self, jobs: Iterable[SyncJob]) -> int:
        """Publish every job, then wait until each publish is confirmed; returns how many.
        Raises TransientError if any publish failed or was not confirmed in time (some jobs
        may then have been published: a retry publishes them again, which is harmless)."""
        self._ensure_topic()
        futures: list[concurrent.futures.Future[str]] = []
        try:
            for job in jobs:
                futures.append(self._client.publish(self._topic_path, encode_job(job)))
        except (gexc.GoogleAPICallError, RuntimeError, ValueError) as error:
            raise TransientError(f"publishing sync jobs failed ({type(error).__name__})") from error
        done, not_done = concurrent.futures.wait(futures, timeout=self._confirm_timeout_s)
        failed = [f for f in done if f.exception() is not None]
        if failed or not_done:
            first = failed[0].exception() if failed else None
            get_logger().error(
                "sync jobs not published",
                topic=self._topic_path,
                total=len(futures),
                failed=len(failed),
                unconfirmed=len(not_done),
                first_error=type(first).__name__ if first else None,
            )
            raise TransientError(
                f"{len(failed) + len(not_done)} of {len(futures)} sync jobs were not published"
            ) from first
        return len(futures)
