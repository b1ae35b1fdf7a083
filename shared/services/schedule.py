"""The fan-out (README.md#sync-semantics): one sync job per connected, due member of every tenant.
A member with a push channel is due at the backstop interval and when its channel is to be
renewed (README.md#push-notifications); one without, at every run.

`schedule_sync` pages through the due members (one cursor-paged collection-group query) and
publishes while it pages; the publisher batches messages and waits until every publish is
confirmed. Before a group of members is published, their next sync time is moved forward (one
write each, batched): see `schedule_sync`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from shared.services.ports import DueMember, JobPublisher, JobReason, MemberStore, SyncJob

# Members per query page. Large on purpose: the cost of a page is one streamed RunQuery; the
# Firestore emulator re-sorts the whole collection group for every page, so small pages make a
# 100,000-member fan-out take minutes there (measured: 1,000 -> ~340 s, 50,000 -> ~13 s).
DEFAULT_PAGE_SIZE = 50_000
# Due members held and published together: big enough for many publish requests in flight.
PUBLISH_GROUP = 10_000
# How long a published member is left alone when its job neither runs nor ends (a job lost or
# stuck in Pub/Sub): longer than a few scheduler runs, shorter than the failure backoff's cap.
QUEUED_HOLD = timedelta(hours=1)


def schedule_sync(
    members: MemberStore, publisher: JobPublisher, now: datetime, page_size: int = DEFAULT_PAGE_SIZE
) -> dict[str, int]:
    """Publish one `scheduled` job per member due at `now`; returns `{"published": N}`.

    Each group of due members is first held (their next sync time moved to `now + QUEUED_HOLD`),
    then published: a member whose job waits in Pub/Sub (workers down, a backlog) is not
    published again by the next runs, so a backlog never amplifies itself. The job's end sets the
    next sync time again (success: due at the next run; failure: backed off), and a job lost
    altogether is published again once the hold has passed. Holding first means a job always
    ends after its hold was written, never before.

    Raises TransientError when Firestore is unavailable or any publish failed: the caller
    answers 5xx and Cloud Scheduler tries again at its next run (members already held wait for
    their hold to pass). A member published twice is harmless: the worker's lease and
    idempotent writes absorb it."""

    def jobs() -> Iterator[SyncJob]:
        for group in _groups(members.due_members(now, page_size), PUBLISH_GROUP):
            members.hold_members([(due.tenant_id, due.member_id) for due in group], now + QUEUED_HOLD)
            yield from (SyncJob(due.tenant_id, due.member_id, _reason(due)) for due in group)

    return {"published": publisher.publish(jobs())}


def _reason(due: DueMember) -> JobReason:
    """A member whose push channel nears its expiry gets a `renew` job (the worker syncs it and
    replaces the channel); the others, polled or backstopped, a `scheduled` one."""
    return JobReason.RENEW if due.renew else JobReason.SCHEDULED


def _groups(items: Iterable[DueMember], size: int) -> Iterator[list[DueMember]]:
    iterator = iter(items)
    while group := list(itertools.islice(iterator, size)):
        yield group
