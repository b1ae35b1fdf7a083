"""One sync job, as `sync_worker` runs it: the sync, then what push notifications need after it
(README.md#push-notifications).

    [resync job: a short pause first, so a burst of changes is listed once]
    sync_member -> synced: one more (resync) job when notifications came while it ran;
                           the channel created, renewed, replaced or stopped (services.channels)
                -> needs_reauth: the channel's lookup entry deleted (its token cannot stop it)

Raises what `sync_member` raises (the retry contract), and TransientError when the follow-up job
cannot be published: the job is then redelivered, which is that same re-sync.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shared.domain import push
from shared.domain.push import SyncFacts
from shared.services.channels import ChannelDeps, ChannelRetirer, maintain_channel
from shared.services.ports import JobPublisher, JobReason, SyncJob
from shared.services.sync import SyncDeps, SyncOutcome, SyncSettings, SyncSummary, sync_member

# How long a resync job waits before it lists: the notifications of a burst trail the changes
# (Google sends them one by one), and those arriving meanwhile join this job (push.claim:
# PENDING) instead of asking for yet another round. Only follow-ups wait; a first change is
# listed at once.
RESYNC_PAUSE_S = 3.0
_PUSH_JOBS = (JobReason.PUSH, JobReason.RESYNC)


@dataclass(frozen=True)
class WorkerDeps:
    sync: SyncDeps
    channels: ChannelDeps
    publisher: JobPublisher
    resync_pause_s: float = RESYNC_PAUSE_S


def run_sync_job(deps: WorkerDeps, job: SyncJob, settings: SyncSettings) -> SyncSummary:
    """Sync the job's member, then look after its push channel."""
    if job.reason is JobReason.RESYNC:
        time.sleep(deps.resync_pause_s)
    summary = sync_member(
        deps.sync, job.tenant_id, job.member_id, settings=settings, push_job=job.reason in _PUSH_JOBS
    )
    if summary.outcome is SyncOutcome.SYNCED:
        resync = summary.resync_requested
        if summary.final_state is not None:
            facts = SyncFacts(
                previous_sync_at=summary.initial_state.last_sync_at if summary.initial_state else None,
                changes_found=summary.events_seen > 0,
                backstop=job.reason is JobReason.SCHEDULED,
            )
            change = maintain_channel(deps.channels, job.tenant_id, job.member_id, summary.final_state, facts)
            summary.channel = str(change.outcome)
            resync = resync or change.resync_requested
        if resync:
            summary.resync_requested = True
            _queue_resync(deps, job)
    elif summary.outcome is SyncOutcome.NEEDS_REAUTH and summary.initial_state is not None:
        ChannelRetirer(deps.channels.channels, None).retire(summary.initial_state, None)
    return summary


def _queue_resync(deps: WorkerDeps, job: SyncJob) -> None:
    """Publish the one more round; the claim passed to it when the lease was released."""
    members = deps.sync.members
    try:
        deps.publisher.publish([SyncJob(job.tenant_id, job.member_id, JobReason.RESYNC)])
    except Exception:
        members.update_calendar(job.tenant_id, job.member_id, push.push_claim_released())
        raise
