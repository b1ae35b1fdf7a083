"""Counting Firestore operations for real, at the client's RPC layer.

`FirestoreOps.attach(client)` wraps the methods of the client's generated API object
(`client._firestore_api`), the single place every SDK call goes through, and counts what
Firestore bills:

- BatchGetDocuments: one read per document asked for (found or missing);
- RunQuery: one read per document returned (and the query itself in `queries`);
- RunAggregationQuery: one read per call;
- Commit / BatchWrite: one write per write in the request (a transaction's commit too).

BeginTransaction and Rollback are counted apart (`transactions`), as they are no document ops.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


def _field(request: Any, name: str) -> Any:
    if request is None:
        return None
    if isinstance(request, dict):
        return request.get(name)
    return getattr(request, name, None)


@dataclass
class FirestoreOps:
    reads: int = 0
    writes: int = 0
    queries: int = 0
    transactions: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _patched: list[tuple[Any, str]] = field(default_factory=list, repr=False)

    @property
    def ops(self) -> int:
        return self.reads + self.writes

    def reset(self) -> None:
        with self._lock:
            self.reads = self.writes = self.queries = self.transactions = 0
            self.calls = {}

    def as_dict(self) -> dict[str, Any]:
        return {
            "reads": self.reads,
            "writes": self.writes,
            "queries": self.queries,
            "calls": dict(self.calls),
        }

    def _add(self, method: str, reads: int = 0, writes: int = 0, queries: int = 0, tx: int = 0) -> None:
        with self._lock:
            self.reads += reads
            self.writes += writes
            self.queries += queries
            self.transactions += tx
            self.calls[method] = self.calls.get(method, 0) + 1

    def attach(self, client: Any) -> FirestoreOps:
        api = client._firestore_api  # builds the generated client if needed

        def wrap(name: str, counter: Any) -> None:
            original = getattr(api, name)

            def counted(*args: Any, **kwargs: Any) -> Any:
                return counter(original, *args, **kwargs)

            setattr(api, name, counted)
            self._patched.append((api, name))

        def batch_get(original: Any, *args: Any, **kwargs: Any) -> Any:
            documents = _field(kwargs.get("request"), "documents") or []
            self._add("BatchGetDocuments", reads=len(documents))
            return original(*args, **kwargs)

        def run_query(original: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            self._add("RunQuery", queries=1)
            responses = original(*args, **kwargs)

            def counting() -> Iterator[Any]:
                for response in responses:
                    if response._pb.HasField("document"):
                        self._add("RunQuery.document", reads=1)
                    yield response

            return counting()

        def aggregation(original: Any, *args: Any, **kwargs: Any) -> Any:
            self._add("RunAggregationQuery", reads=1, queries=1)
            return original(*args, **kwargs)

        def commit(original: Any, *args: Any, **kwargs: Any) -> Any:
            writes = _field(kwargs.get("request"), "writes") or []
            self._add("Commit", writes=len(writes))
            return original(*args, **kwargs)

        def batch_write(original: Any, *args: Any, **kwargs: Any) -> Any:
            writes = _field(kwargs.get("request"), "writes") or []
            self._add("BatchWrite", writes=len(writes))
            return original(*args, **kwargs)

        def transaction(name: str) -> Any:
            def counter(original: Any, *args: Any, **kwargs: Any) -> Any:
                self._add(name, tx=1)
                return original(*args, **kwargs)

            return counter

        wrap("batch_get_documents", batch_get)
        wrap("run_query", run_query)
        wrap("run_aggregation_query", aggregation)
        wrap("commit", commit)
        wrap("batch_write", batch_write)
        wrap("begin_transaction", transaction("BeginTransaction"))
        wrap("rollback", transaction("Rollback"))
        return self

    def detach(self) -> None:
        for api, name in self._patched:
            with contextlib.suppress(AttributeError):
                delattr(api, name)
        self._patched.clear()
