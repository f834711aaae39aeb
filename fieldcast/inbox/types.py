"""Every kind of inbox item and push, by the type string clients switch on.

A type is written here before anything sends it: `notify` refuses a type that is not listed,
and the preferences API offers exactly these for muting. The values are part of the API
(inbox items, push data, muted types), so a value never changes once released.
"""

from __future__ import annotations

import enum


class NotificationType(enum.StrEnum):
    SHARE_RECEIVED = "share.received"  # someone shared a video with you
    VIDEO_PLAYABLE = "video.playable"  # your upload can be watched
    VIDEO_FAILED = "video.failed"  # your upload could not be processed
    COMMENT_MENTION = "comment.mention"  # someone mentioned you in a comment
    COMMENT_REPLY = "comment.reply"  # someone replied in a thread you are in
    COMMENT_NEW = "comment.new"  # someone commented on your video
    QUESTION_ANSWER = "question.answer"  # someone answered your question
    ANSWER_ACCEPTED = "answer.accepted"  # the asker accepted your answer
    CONTENT_HIDDEN = "content.hidden"  # an admin hid your video or comment, and says why
    SEARCH_MATCHES = "search.matches"  # new videos or moments match a search you follow
    ASSIGNMENT_RECEIVED = "assignment.received"  # something was assigned to you
    ASSIGNMENT_DUE = "assignment.due"  # an assignment of yours is due soon
    ASSIGNMENT_OVERDUE = "assignment.overdue"  # an assignment of yours is past its due date
    ASSIGNMENT_DIGEST = "assignment.digest"  # your people's overdue assignments, weekly
    ASSIGNMENT_ANSWERED = "assignment.answered"  # your request about an assignment was answered
    ASSIGNMENT_REQUESTED = "assignment.requested"  # someone declines or asks for more time
