"""The exported facts: for each, its table, its key and its columns.

A column is an SQL expression over the fact's table and a kind, which says how it is written
(CSV text, Parquet type). Secrets are never a column: no password or token hash; an erased
person's email (a placeholder) and a deleted or hidden comment's body are exported empty.
The `bi` schema's views (migration 0031) have the same columns in the same order
(tests/test_exports.py holds them to it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    UUID = "uuid"
    TEXT = "text"  # typed by people: a spreadsheet must not run it as a formula
    CODE = "code"  # a value the product chose (a state, a role, a handle, a range)
    INT = "int"
    BOOL = "bool"
    TIME = "time"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    sql: str = ""  # the expression; empty: the table's column of the same name

    @property
    def expression(self) -> str:
        return self.sql or self.name


@dataclass(frozen=True)
class Fact:
    name: str
    table: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


U, T, C, N, B, TS = Kind.UUID, Kind.TEXT, Kind.CODE, Kind.INT, Kind.BOOL, Kind.TIME


def _cols(*specs: tuple[str, Kind] | tuple[str, Kind, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


FACTS: dict[str, Fact] = {
    fact.name: fact
    for fact in (
        Fact(
            "people",
            "users",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("display_name", T),
                ("handle", C),
                ("email", T, "CASE WHEN deleted_at IS NULL THEN email END"),
                ("role", C),
                ("manager_id", U),
                ("is_active", B),
                ("external_id", T),
                # From the organisation's directory (SCIM), as it gave them.
                ("department", T, "CASE WHEN deleted_at IS NULL THEN department END"),
                ("employee_number", T, "CASE WHEN deleted_at IS NULL THEN employee_number END"),
                ("time_zone", C),
                ("last_login_at", TS),
                ("created_at", TS),
                ("updated_at", TS),
                ("deprovisioned_at", TS),
                ("deleted_at", TS),
            ),
            "Everyone of the organisation, erased people included (`deleted_at` set, named "
            '"Former member", no email, department or employee number).',
        ),
        Fact(
            "teams",
            "teams",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("name", T),
                ("handle", C),
                ("description", T),
                ("parent_id", U),
                ("external_id", T),
                ("created_at", TS),
                ("updated_at", TS),
            ),
            "Teams, with their parent team.",
        ),
        Fact(
            "team_members",
            "team_memberships",
            ("team_id", "user_id"),
            _cols(
                ("team_id", U),
                ("user_id", U),
                ("org_id", U),
                ("role", C),
                ("created_at", TS),
            ),
            "Who is in which team (directly), as `member` or `lead`.",
        ),
        Fact(
            "videos",
            "videos",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("owner_id", U),
                ("title", T),
                ("kind", C),
                ("status", C),
                ("duration_ms", N),
                ("deal_id", U),
                ("answers_video_id", U),
                ("created_at", TS),
                ("updated_at", TS),
                ("playable_at", TS),
                ("ready_at", TS),
                ("archived_at", TS),
                ("deleted_at", TS),
            ),
            "Videos, to name what the other facts are about.",
        ),
        Fact(
            "views",
            "views",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("video_id", U),
                ("user_id", U),
                ("session_id", U),
                ("start_ms", N),
                ("end_ms", N),
                ("played", C, "played::text"),
                ("played_ms", N),
                ("position_ms", N),
                ("reports", N),
                ("started_at", TS),
                ("last_reported_at", TS),
                ("completed_at", TS),
                ("device_started_at", TS),
                ("device_last_at", TS),
                ("device_completed_at", TS),
            ),
            "One sitting with a video or clip: the played segments (`played`, milliseconds as "
            "`{[start,end),...}`), position, and when it completed.",
        ),
        Fact(
            "progress",
            "video_progress",
            ("user_id", "video_id"),
            _cols(
                ("user_id", U),
                ("video_id", U),
                ("org_id", U),
                ("played", C, "played::text"),
                ("played_ms", N),
                ("duration_ms", N),
                ("first_played_at", TS),
                ("completed_at", TS),
                ("updated_at", TS),
            ),
            "A person's progress on a video over all their views.",
        ),
        Fact(
            "assignments",
            "assignments",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("assigned_by", U),
                ("video_id", U),
                ("start_ms", N),
                ("end_ms", N),
                ("collection_id", U),
                ("message", T),
                ("due_at", TS),
                ("threshold_pct", N),
                ("person_count", N),
                ("rule_id", U),
                ("round", N),
                ("created_at", TS),
                ("published_at", TS),
                ("withdrawn_at", TS),
            ),
            "What was assigned (a video, clip or collection), by whom, due when.",
        ),
        Fact(
            "assignees",
            "assignees",
            ("assignment_id", "user_id"),
            _cols(
                ("assignment_id", U),
                ("user_id", U),
                ("org_id", U),
                ("state", C),
                ("due_at", TS),
                ("played_ms", N),
                ("total_ms", N),
                ("assigned_at", TS),
                ("notified_at", TS),
                ("started_at", TS),
                ("completed_at", TS),
                ("excused_at", TS),
                ("excused_by", U),
            ),
            "Each person's part in an assignment: state (`not_started`, `in_progress`, "
            "`completed`, `excused`; overdue is `due_at` past and neither completed nor "
            "excused) and when each step happened.",
        ),
        Fact(
            "shares",
            "shares",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("video_id", U),
                ("sender_id", U),
                ("message", T),
                ("recipient_count", N),
                ("created_at", TS),
                ("released_at", TS),
                ("recalled_at", TS),
            ),
            "Shares of a video by its sender.",
        ),
        Fact(
            "share_recipients",
            "share_recipients",
            ("share_id", "user_id"),
            _cols(
                ("share_id", U),
                ("user_id", U),
                ("org_id", U),
                ("video_id", U),
                ("state", C),
                ("failure_reason", C),
                ("queued_at", TS),
                ("sent_at", TS),
                ("delivered_at", TS),
                ("opened_at", TS),
                ("watched_at", TS),
                ("failed_at", TS),
            ),
            "Each person a share reached and how far it got: `queued`, `sent`, `delivered`, "
            "`opened`, `watched` or `failed`.",
        ),
        Fact(
            "comments",
            "comments",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("video_id", U),
                ("author_id", U),
                ("parent_id", U),
                ("deal_id", U),
                ("at_ms", N),
                ("end_ms", N),
                ("body", T, "CASE WHEN deleted_at IS NULL AND hidden_at IS NULL THEN body END"),
                ("reply_count", N),
                ("like_count", N),
                ("created_at", TS),
                ("updated_at", TS),
                ("edited_at", TS),
                ("deleted_at", TS),
                ("resolved_at", TS),
                ("hidden_at", TS),
            ),
            "Comments and replies at the timeline; a deleted or hidden one has no body.",
        ),
        Fact(
            "reactions",
            "reactions",
            ("id",),
            _cols(
                ("id", U),
                ("org_id", U),
                ("video_id", U),
                ("user_id", U),
                ("emoji", T),
                ("at_ms", N),
                ("created_at", TS),
            ),
            "Emoji reactions at a point of a video's timeline.",
        ),
    )
}
