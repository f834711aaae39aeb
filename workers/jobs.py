"""RQ job entry points. Each is a thin call into a service; the work lives in the domain.

Each job is one unit of work: the service it calls opens `Database.unit_of_work()` and commits
once at its end (an outbox task commits with its row's status in `outbox.execute`). Batch jobs
commit each item they handled (`EarlyCommit.BATCH_ITEM`); see `fieldcast.db.EarlyCommit`.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta

from fieldcast.accounts import maintenance as accounts_maintenance
from fieldcast.idempotency import services as idempotency
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.sharing import fanout
from fieldcast.sync import tombstones
from fieldcast.xapi import delivery as xapi_delivery
from workers.context import get_context

log = logging.getLogger(__name__)

# Modules whose import registers outbox tasks; the worker imports them at start.
TASK_MODULES: tuple[str, ...] = (
    "fieldcast.accounts.emails",
    "fieldcast.attachments.text",
    "fieldcast.conversation.notify",
    "fieldcast.inbox.services",
    "fieldcast.inbox.delivery",
    "fieldcast.sharing.fanout",
    "fieldcast.integrations.webhooks",
    "fieldcast.search.indexing",
    "fieldcast.videos.processing",
    "fieldcast.transcripts.transcribe",
    "fieldcast.programs.assignments",
    "fieldcast.programs.reminders",
    "fieldcast.xapi.delivery",
)


def import_task_modules(
    modules: Sequence[str] = TASK_MODULES, *, registry: outbox.TaskRegistry | None = None
) -> None:
    """Import the modules that register outbox task handlers, then make sure every task the
    product records (`TaskName`) has one: a worker missing a handler stops at start, naming
    the task, instead of failing each such job for good when it arrives."""
    for module in modules:
        importlib.import_module(module)
    registry = registry if registry is not None else outbox.tasks
    missing = [name.value for name in TaskName if name.value not in registry.tasks]
    if missing:
        raise SystemExit(
            f"the worker cannot start: no handler is registered for the outbox task(s) "
            f"{', '.join(missing)}; add the module that registers them to "
            "workers.jobs.TASK_MODULES"
        )


def run_outbox_job(job_id: str) -> str | None:
    ctx = get_context()
    lease = timedelta(seconds=ctx.settings.outbox_lease_s)
    status = outbox.execute(ctx.db, uuid.UUID(job_id), lease=lease)
    return status.value if status else None


def relay_outbox() -> dict[str, int]:
    ctx = get_context()
    report = outbox.relay(ctx.db, ctx.dispatcher)
    return {"expired": report.expired, "requeued": report.requeued}


def prune_records() -> dict[str, int]:
    ctx = get_context()
    return {
        "outbox": outbox.prune(ctx.db, older_than=timedelta(days=7)),
        "idempotency_keys": idempotency.prune(ctx.db),
        "credentials": accounts_maintenance.prune_credentials(ctx.db),
        "share_audiences": fanout.prune_audiences(ctx.db),
        "sync_tombstones": tombstones.prune(ctx.db, days=ctx.settings.sync_tombstone_days),
        "xapi_statements": xapi_delivery.prune(ctx.db),
    }


def send_push_summaries() -> dict[str, int]:
    from fieldcast.inbox import coalescing

    ctx = get_context()
    window_s = ctx.settings.comment_push_window_s
    return {"windows": coalescing.send_summaries(ctx.db, window_s=window_s)}


def sweep_search() -> dict[str, int]:
    from fieldcast.search import indexing

    return {"documents": indexing.sweep(get_context().db)}


def refresh_search_engagement() -> dict[str, int]:
    from fieldcast.search import indexing

    return {"asked": indexing.refresh_engagement(get_context().db, older_than=timedelta(hours=1))}


def run_saved_searches() -> dict[str, int]:
    from fieldcast.search import saved

    return {"told": saved.run_round(get_context().db)}


def deliver_xapi() -> dict[str, int]:
    return {"scheduled": xapi_delivery.schedule(get_context().db)}


def terminate_idle_views() -> dict[str, int]:
    from fieldcast.xapi import recording

    return {"terminated": recording.terminate_idle(get_context().db)}


def remind_assignments() -> dict[str, int]:
    from fieldcast.programs import reminders

    return reminders.remind(get_context().db)


def send_learning_digests() -> dict[str, int]:
    from fieldcast.programs import reminders

    return reminders.digest(get_context().db)


def run_assignment_rounds() -> dict[str, int]:
    from fieldcast.programs import rules

    return {"rounds": rules.run_rounds(get_context().db)}


def expire_uploads() -> dict[str, int]:
    from fieldcast.uploads import services as uploads

    ctx = get_context()
    return uploads.expire(ctx.db, ctx.storage)


def settle_playable_videos() -> dict[str, int]:
    from fieldcast.videos import processing

    return {"settled": processing.settle_playable(get_context().db)}


def compute_top_clips() -> dict[str, int]:
    from fieldcast.curation import top

    return top.compute_all(get_context().db)


def refresh_video_insights() -> dict[str, int]:
    from fieldcast.insights import videos as insights

    return insights.refresh_stale(get_context().db)


def apply_retention() -> dict[str, int]:
    from fieldcast.retention import services as retention

    ctx = get_context()
    grace = timedelta(seconds=ctx.settings.video_purge_grace_s)
    return retention.apply(ctx.db, ctx.storage, default_grace=grace)


def purge_deleted_videos() -> dict[str, int]:
    from fieldcast.videos import purge

    ctx = get_context()
    return purge.purge_deleted(ctx.db, ctx.storage)
