"""One sync job, as `sync_worker` runs it: the sync, then what push notifications need after it
(README.md#push-notifications).

    sync_member -> synced: one more push job when a notification came while it ran;
                           the channel created, renewed, replaced or stopped (services.channels),
                           and one more push job when a notification came meanwhile
                -> needs_reauth: the channel's lookup entry deleted (its token cannot stop it)

Raises what `sync_member` raises (the retry contract), and TransientError when the follow-up job
cannot be published: the job is then redelivered, which is that same re-sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.push import SyncFacts
from shared.services.channels import ChannelDeps, ChannelRetirer, maintain_channel
from shared.services.ports import JobPublisher, JobReason, SyncJob
from shared.services.sync import SyncDeps, SyncOutcome, SyncSettings, SyncSummary, sync_member


@dataclass(frozen=True)
class WorkerDeps:
    sync: SyncDeps
    channels: ChannelDeps
    publisher: JobPublisher


def run_sync_job(deps: WorkerDeps, job: SyncJob, settings: SyncSettings) -> SyncSummary:
    """Sync the job's member, then look after its push channel."""
    summary = sync_member(
        deps.sync, job.tenant_id, job.member_id, settings=settings, push_job=job.reason is JobReason.PUSH
    )
    if summary.outcome is SyncOutcome.SYNCED:
        if summary.resync_requested:
            deps.publisher.publish([SyncJob(job.tenant_id, job.member_id, JobReason.PUSH)])
        if summary.final_state is not None:
            facts = SyncFacts(
                previous_sync_at=summary.initial_state.last_sync_at if summary.initial_state else None,
                changes_found=summary.events_seen > 0,
                backstop=job.reason is JobReason.SCHEDULED,
            )
            summary.channel = maintain_channel(
                deps.channels,
                job.tenant_id,
                job.member_id,
                summary.final_state,
                facts,
                publisher=deps.publisher,
            )
    elif summary.outcome is SyncOutcome.NEEDS_REAUTH and summary.initial_state is not None:
        ChannelRetirer(deps.channels.channels, None).retire(summary.initial_state, None)
    return summary
