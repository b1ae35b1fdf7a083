"""Sync jobs over Pub/Sub: a `JobPublisher` on google-cloud-pubsub.

`publish` packs the messages into publish requests of up to 1,000 messages itself and sends
them concurrently through the generated API method the publisher client extends (the GAPIC
`PublisherClient.publish`, retried on the errors its default retry retries, but for at most
`request_timeout_s` in all: the default retry goes on for 600 s), each request a future; then
it waits for every future. The client's own
per-message batching costs ~90 µs of Python per message (a future, a lock and a proto-plus
wrapper each), which is most of a 100,000-member fan-out; this costs ~1 µs per message.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterable
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry as retries
from google.pubsub_v1.services.publisher.client import PublisherClient as GapicPublisherClient
from google.pubsub_v1.types import PublishRequest, PubsubMessage

from shared.errors import TransientError
from shared.logs import get_logger
from shared.services.jobs import encode_job
from shared.services.ports import SyncJob

MAX_MESSAGES_PER_REQUEST = 1000  # Pub/Sub's limit per publish request (and 10 MB)
DEFAULT_CONCURRENCY = 8  # publish requests in flight
DEFAULT_REQUEST_TIMEOUT_S = 60.0
# What the GAPIC default retry of `publish` retries (google.pubsub_v1 transports/base.py).
_RETRYABLE = (
    gexc.Aborted,
    gexc.Cancelled,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.ServiceUnavailable,
    gexc.Unknown,
)


class PubSubJobPublisher:
    """Implements `JobPublisher` (shared.services.ports).

    `create_topic=True` (only against the emulator, README.md#configuration) creates the topic on first use,
    tolerating one that already exists; in Google Cloud the topic exists beforehand (Terraform)."""

    def __init__(
        self,
        client: Any,
        project: str,
        topic: str,
        *,
        create_topic: bool = False,
        batch_size: int = MAX_MESSAGES_PER_REQUEST,
        concurrency: int = DEFAULT_CONCURRENCY,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        if not 1 <= batch_size <= MAX_MESSAGES_PER_REQUEST:
            raise ValueError(f"batch_size must be between 1 and {MAX_MESSAGES_PER_REQUEST}")
        self._client = client
        self._topic_path: str = client.topic_path(project, topic)
        self._topic_ready = not create_topic
        self._lock = threading.Lock()
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._request_timeout_s = request_timeout_s
        # Bounds every request with its retries (an unreachable Pub/Sub fails in this time, not
        # after the default retry's 600 s, past any caller's own timeout).
        self._retry = retries.Retry(
            predicate=retries.if_exception_type(*_RETRYABLE),
            initial=0.1,
            maximum=min(60.0, request_timeout_s),
            multiplier=4,
            timeout=request_timeout_s,
        )
        self._message_pb = PubsubMessage.pb()
        self._request_pb = PublishRequest.pb()

    @property
    def topic_path(self) -> str:
        return self._topic_path

    def _ensure_topic(self) -> None:
        with self._lock:
            if self._topic_ready:
                return
            try:
                self._client.create_topic(
                    name=self._topic_path, retry=self._retry, timeout=self._request_timeout_s
                )
            except gexc.AlreadyExists:
                pass
            except gexc.GoogleAPIError as error:  # RetryError too (retries ran out of time)
                raise TransientError(f"could not create the sync topic ({type(error).__name__})") from error
            self._topic_ready = True

    def _send(self, payloads: list[bytes]) -> int:
        request = self._request_pb(
            topic=self._topic_path, messages=[self._message_pb(data=data) for data in payloads]
        )
        # the generated RPC method, which `pubsub_v1.PublisherClient.publish` overrides with batching
        response = GapicPublisherClient.publish(
            self._client, request=request, retry=self._retry, timeout=self._request_timeout_s
        )
        if len(response.message_ids) != len(payloads):
            raise RuntimeError(f"Pub/Sub confirmed {len(response.message_ids)} of {len(payloads)} messages")
        return len(payloads)

    def publish(self, jobs: Iterable[SyncJob]) -> int:
        """Publish every job, then wait until each publish request is confirmed; returns how
        many jobs were published. Raises TransientError if any request failed (after the
        client's retries); the others may have been published, and publishing them again on
        the next run is harmless (the worker's lease and idempotent writes absorb duplicates).
        Raises TransientError too when reading `jobs` fails with it (Firestore paging)."""
        self._ensure_topic()
        futures: list[concurrent.futures.Future[int]] = []
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=self._concurrency, thread_name_prefix="calsync-publish"
        ) as executor:
            batch: list[bytes] = []
            for job in jobs:
                batch.append(encode_job(job))
                if len(batch) == self._batch_size:
                    futures.append(executor.submit(self._send, batch))
                    batch = []
            if batch:
                futures.append(executor.submit(self._send, batch))
            concurrent.futures.wait(futures)
        published = 0
        errors: list[BaseException] = []
        for future in futures:
            error = future.exception()
            if error is None:
                published += future.result()
            else:
                errors.append(error)
        if errors:
            get_logger().error(
                "sync jobs not published",
                topic=self._topic_path,
                published=published,
                failed_requests=len(errors),
                first_error=type(errors[0]).__name__,
            )
            raise TransientError(
                f"{len(errors)} of {len(futures)} publish requests failed ({published} jobs published)"
            ) from errors[0]
        return published
