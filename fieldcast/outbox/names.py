"""Every outbox task the product records, by the name stored in `outbox_jobs.task`.

A name is listed here before any code records or registers it; the module that registers its
handler is imported by the worker at start (`workers.jobs.TASK_MODULES`), and the worker
refuses to start when a listed task has no handler, instead of failing each such job later.
Names are stored in the database, so a released name never changes.
"""

from __future__ import annotations

import enum


class TaskName(enum.StrEnum):
    VIDEO_PROCESS = "video.process"  # probe and make the first playable rendition
    VIDEO_LADDER = "video.ladder"  # the rest of the ladder, poster, storyboard, MP4
    VIDEO_TRANSCRIBE = "video.transcribe"  # the speech of a ready video as timed segments
    ATTACHMENTS_EXTRACT_TEXT = "attachments.extract_text"  # the text of an attached document
    NOTIFICATIONS_PUSH = "notifications.push"  # push one inbox item to the user's devices
    SHARES_FAN_OUT = "shares.fan_out"  # resolve a share's audience into slices
    SHARES_SEND_SLICE = "shares.send_slice"  # inbox items and pushes for one slice
    WEBHOOKS_POST = "webhooks.post"  # post a share's card to a team's chat webhook
    # Inbox items and pushes for the people a comment concerns (mentioned, in its thread, the
    # video's author).
    CONVERSATION_NOTIFY = "conversation.notify"
    # Emails; each task writes its message from the row it names, so no link is stored.
    ACCOUNTS_INVITATION_EMAIL = "accounts.invitation_email"  # an invitation to join
    ACCOUNTS_PASSWORD_RESET_EMAIL = "accounts.password_reset_email"  # noqa: S105 - a reset link
    # Build a video's search document from its texts (title, comments, transcript, ...).
    SEARCH_INDEX = "search.index"
    # Stem an organisation's comments again in its new search language, a batch at a time.
    SEARCH_RESTEM = "search.restem"
    # Make each person's row of an assignment from its audience, then one push job per slice.
    ASSIGNMENTS_FAN_OUT = "assignments.fan_out"
    ASSIGNMENTS_SEND_SLICE = "assignments.send_slice"  # inbox items and pushes for one slice
    # Work out the people's progress again for the assignments holding a video or collection
    # that changed (or following the organisation's threshold).
    ASSIGNMENTS_RECOUNT = "assignments.recount"
    # A manager's weekly email of their people's overdue assignments.
    ASSIGNMENTS_DIGEST_EMAIL = "assignments.digest_email"
    # Send an organisation's unsent xAPI statements to its LRS, in batches.
    XAPI_DELIVER = "xapi.deliver"
