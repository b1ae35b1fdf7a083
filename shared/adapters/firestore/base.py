"""What every Firestore store shares: collection names, query limits, error translation."""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from google.api_core import exceptions as gexc

from shared.domain.directory_keys import ACCOUNTS as ACCOUNTS  # one name for each collection
from shared.domain.directory_keys import USERS as USERS
from shared.errors import TransientError

T = TypeVar("T")

TENANTS = "tenants"
MEMBERS = "members"
MEETINGS = "meetings"
INTERACTIONS = "interactions"

IN_QUERY_LIMIT = 30  # Firestore: at most 30 values for `in` / `array-contains-any`
LOOKUP_CONCURRENCY = 8  # directory queries in flight at once (the client is thread-safe)
GET_ALL_CHUNK = 300  # document references per BatchGetDocuments call
MAX_WRITES_PER_COMMIT = 500  # Firestore's limit of writes in one commit (the emulator does not enforce it)

_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.Aborted,
    gexc.ResourceExhausted,
    gexc.Unknown,
    gexc.GatewayTimeout,
    gexc.RetryError,
)
CONFLICT = (gexc.FailedPrecondition, gexc.Conflict, gexc.NotFound)  # Conflict covers AlreadyExists


def bounded(timeout_s: float | None) -> dict[str, Any]:
    """Keyword arguments that bound one SDK call, retries included, to `timeout_s` (the SDK's
    default retry goes on for minutes); none when None."""
    if timeout_s is None:
        return {}
    from google.api_core import retry as retries

    retry = retries.Retry(predicate=retries.if_transient_error, maximum=timeout_s / 4, timeout=timeout_s)
    return {"retry": retry, "timeout": timeout_s}


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn SDK errors of reads and plain writes into our kinds (TransientError)."""
    try:
        yield
    except _TRANSIENT as error:
        raise TransientError(f"Firestore unavailable while {what}: {type(error).__name__}") from error


def stream_all(queries: Sequence[Any]) -> list[list[Any]]:
    """The snapshots of each query, in order, with up to LOOKUP_CONCURRENCY queries in flight:
    a sync chunk needs dozens of directory queries, each mostly a wait for one round trip."""
    if len(queries) <= 1:
        return [list(query.stream()) for query in queries]
    workers = min(LOOKUP_CONCURRENCY, len(queries))
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="calsync-lookup"
    ) as pool:
        return list(pool.map(lambda query: list(query.stream()), queries))


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def relative_path(document_name: str) -> str:
    """`projects/p/databases/d/documents/tenants/t/members/m` -> `tenants/t/members/m`."""
    return document_name.split("/documents/", 1)[1]
