"""Assignments, my learning, my people's learning, requests, and the rules that assign."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import (
    Page,
    PageArgsSchema,
    offset_cursor,
    offset_of,
    page_schema,
    paginate,
)
from api.resources.clips import (
    ClipSchema,
    CollectionRefSchema,
    present_clips,
    present_collections,
)
from api.runtime import db_session
from api.schemas import attributes
from fieldcast.accounts import services as accounts
from fieldcast.db import utcnow
from fieldcast.models.accounts import Organisation, Role
from fieldcast.models.inbox import Notification
from fieldcast.models.programs import (
    Assignee,
    AssigneeState,
    Assignment,
    AssignmentRequest,
    AssignmentRule,
    RequestKind,
    RequestReason,
)
from fieldcast.programs import assignments, requests, rules

blp = Blueprint(
    "assignments",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Assign a video, a clip or a collection to people, teams (with their sub-teams) and "
        "lists, with a due date, a completion threshold (else the organisation's) and a "
        "message (enablement, managers, admins). The request returns at once; workers give "
        "each person their row, an inbox item and a push, and the assignment lets them see "
        "what it assigns while it stands. A person's state is `not_started`, `in_progress`, "
        "`completed` or `excused`, and `overdue` when open past their due date; progress "
        "follows what they play (views). Reminders go a day before the due date and once "
        "overdue; managers get a weekly digest of their people's overdue items. A person "
        "may decline or ask for more time, with a reason; the assigner, an admin or their "
        "manager answers. Rules assign to whoever joins a team or takes a role, and again "
        "on a schedule (`every_months`), each round an assignment of its own."
    ),
)

_ms = ma.validate.Range(min=0, max=2**31 - 1)
_pct = ma.validate.Range(min=1, max=100)
_STATES = ["open", "overdue", *(s.value for s in AssigneeState), "all"]
# A page of someone's learning, by due date; at most the whole list a person has.
LEARNING_PAGE = 50
LEARNING_PAGE_MAX = 200


class SubjectFields(Schema):
    video_id = ma.fields.UUID(load_default=None)
    start_ms = ma.fields.Integer(load_default=None, validate=_ms)
    end_ms = ma.fields.Integer(load_default=None, validate=_ms)
    collection_id = ma.fields.UUID(load_default=None)


class AssignmentCreateSchema(SubjectFields):
    user_ids = ma.fields.List(
        ma.fields.UUID(), load_default=list, validate=ma.validate.Length(max=assignments.MAX_USERS)
    )
    team_ids = ma.fields.List(
        ma.fields.UUID(), load_default=list, validate=ma.validate.Length(max=assignments.MAX_TEAMS)
    )
    list_ids = ma.fields.List(
        ma.fields.UUID(), load_default=list, validate=ma.validate.Length(max=assignments.MAX_LISTS)
    )
    due_at = ma.fields.AwareDateTime(load_default=None)
    threshold_pct = ma.fields.Integer(
        load_default=None,
        validate=_pct,
        metadata={"description": "The share played that completes it; null: the organisation's"},
    )
    message = String(load_default="", column=Assignment.message)


class StateCountsSchema(Schema):
    not_started = ma.fields.Integer()
    in_progress = ma.fields.Integer()
    completed = ma.fields.Integer()
    excused = ma.fields.Integer()
    overdue = ma.fields.Integer(metadata={"description": "Among the open ones"})


class ReasonCountsSchema(Schema):
    no_time = ma.fields.Integer()
    not_relevant = ma.fields.Integer()
    already_know = ma.fields.Integer()
    technical_problem = ma.fields.Integer()
    other = ma.fields.Integer()


class RequestReasonsSchema(Schema):
    decline = ma.fields.Nested(ReasonCountsSchema)
    more_time = ma.fields.Nested(ReasonCountsSchema)


class AssignmentSchema(Schema):
    id = ma.fields.UUID()
    assigned_by = ma.fields.UUID(allow_none=True)
    clip = ma.fields.Nested(ClipSchema, allow_none=True, metadata={"description": "A video's"})
    collection = ma.fields.Nested(CollectionRefSchema, allow_none=True)
    message = ma.fields.String()
    due_at = ma.fields.DateTime(allow_none=True)
    threshold_pct = ma.fields.Integer(allow_none=True)
    audience = ma.fields.Dict(metadata={"description": "What was named: user, team, list ids"})
    person_count = ma.fields.Integer()
    rule_id = ma.fields.UUID(allow_none=True)
    round = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    published_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When its people were reached"}
    )
    withdrawn_at = ma.fields.DateTime(allow_none=True)
    counts = ma.fields.Nested(StateCountsSchema, allow_none=True)
    reasons = ma.fields.Nested(RequestReasonsSchema, allow_none=True)


class LearningItemSchema(Schema):
    assignment_id = ma.fields.UUID()
    title = ma.fields.String()
    message = ma.fields.String()
    assigned_by = ma.fields.UUID(allow_none=True)
    clip = ma.fields.Nested(ClipSchema, allow_none=True)
    collection = ma.fields.Nested(CollectionRefSchema, allow_none=True)
    due_at = ma.fields.DateTime(allow_none=True, metadata={"description": "This person's"})
    state = ma.fields.Enum(AssigneeState, by_value=True)
    overdue = ma.fields.Boolean()
    progress = ma.fields.Float(metadata={"description": "0 to 1, of what it assigns"})
    played_ms = ma.fields.Integer()
    total_ms = ma.fields.Integer()
    threshold_pct = ma.fields.Integer(metadata={"description": "What completes it"})
    assigned_at = ma.fields.DateTime()
    notified_at = ma.fields.DateTime(allow_none=True)
    started_at = ma.fields.DateTime(allow_none=True)
    completed_at = ma.fields.DateTime(allow_none=True)
    excused_at = ma.fields.DateTime(allow_none=True)


class LearningSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(LearningItemSchema))
    next_cursor = ma.fields.String(
        allow_none=True, metadata={"description": "The next page's `cursor`; null: the last"}
    )


class LearningPersonSchema(LearningItemSchema):
    user_id = ma.fields.UUID()
    display_name = ma.fields.String()


class TeamLearningSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(LearningPersonSchema))


class LearningArgsSchema(Schema):
    state = String(
        max_length=16,
        load_default="open",
        validate=ma.validate.OneOf(_STATES),
        metadata={"description": "`open` (not started or in progress), `overdue`, a state, `all`"},
    )
    limit = ma.fields.Integer(
        load_default=LEARNING_PAGE, validate=ma.validate.Range(min=1, max=LEARNING_PAGE_MAX)
    )
    cursor = String(load_default=None, max_length=40)


class AssigneePageArgsSchema(PageArgsSchema):
    state = String(max_length=16, load_default=None, validate=ma.validate.OneOf(_STATES))


def _subject(body: dict[str, Any]) -> assignments.Subject:
    """The video, clip or collection a body names (`SubjectFields`), taken out of it."""
    return assignments.Subject(
        video_id=body.pop("video_id"),
        start_ms=body.pop("start_ms"),
        end_ms=body.pop("end_ms"),
        collection_id=body.pop("collection_id"),
    )


def _state(value: str | None) -> str | None:
    return None if value == "all" else value


def _subjects(
    found: Sequence[Assignment], *, assigned: bool = False
) -> dict[uuid.UUID, dict[str, Any]]:
    """Each assignment's `clip` or `collection`, in a fixed number of queries. `assigned`:
    they stand for the principal (their own learning)."""
    videos = [a for a in found if a.video_id is not None]
    clips = present_clips(
        [(a.video_id, a.start_ms, a.end_ms) for a in videos if a.video_id], assigned=assigned
    )
    by_id: dict[uuid.UUID, dict[str, Any]] = {
        a.id: {"clip": clip, "collection": None} for a, clip in zip(videos, clips, strict=True)
    }
    shown = present_collections(
        {a.collection_id for a in found if a.collection_id is not None}, assigned=assigned
    )
    for a in found:
        if a.collection_id is not None:
            by_id[a.id] = {"clip": None, "collection": shown[a.collection_id]}
    return by_id


def _present(found: Sequence[Assignment], *, detail: bool = False) -> list[dict[str, Any]]:
    session = db_session()
    subjects = _subjects(found)
    return [
        {
            **attributes(a, AssignmentSchema, exclude=("clip", "collection", "counts", "reasons")),
            **subjects[a.id],
            "counts": assignments.counts(session, a) if detail else None,
            "reasons": requests.reasons(session, a) if detail else None,
        }
        for a in found
    ]


def _learning(
    rows: Sequence[tuple[Assignee, Assignment]], *, own: bool = False
) -> list[dict[str, Any]]:
    """The rows presented; `own`: the principal's own standing assignments (what they grant
    them is theirs to see, `policy.videos.among_assigned`)."""
    session, principal = db_session(), current_principal()
    found = list({a.id: a for _, a in rows}.values())
    subjects = _subjects(found, assigned=own)
    org_threshold = session.scalar(
        select(Organisation.completion_threshold_pct).where(Organisation.id == principal.org_id)
    )
    now = utcnow()
    out = []
    for person, a in rows:
        subject = subjects[a.id]
        clip, shown = subject["clip"], subject["collection"]
        if clip is not None and clip["available"]:
            title = clip["video"]["title"]
        elif shown is not None and shown["available"]:
            title = shown["title"]
        else:
            title = ""
        out.append(
            {
                **attributes(
                    person,
                    LearningItemSchema,
                    exclude=(
                        "title",
                        "message",
                        "assigned_by",
                        "clip",
                        "collection",
                        "overdue",
                        "progress",
                        "threshold_pct",
                    ),
                ),
                "title": title,
                "message": a.message,
                "assigned_by": a.assigned_by,
                **subject,
                "overdue": person.state in assignments.OPEN_STATES
                and person.due_at is not None
                and person.due_at < now,
                "progress": round(min(1.0, person.played_ms / person.total_ms), 4)
                if person.total_ms
                else 0.0,
                "threshold_pct": a.threshold_pct or org_threshold or 100,
            }
        )
    return out


@blp.route("/assignments")
class Assignments(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(AssignmentSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The assignments you made (all of the organisation's, for admins), newest first"""
        page: Page[Assignment] = paginate(
            db_session(),
            assignments.assigned_by(current_principal()),
            order_by=[Assignment.id],
            args=args,
            descending=True,
        )
        return {"items": _present(page.items), "next_cursor": page.next_cursor}

    @blp.arguments(AssignmentCreateSchema)
    @blp.response(201, AssignmentSchema)
    @blp.problems(403, 404, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Assign a video, a clip or a collection (enablement, managers, admins)"""
        subject = _subject(body)
        made = assignments.assign(db_session(), current_principal(), subject, **body)
        return _present([made], detail=True)[0]


@blp.route("/assignments/<uuid:assignment_id>")
class AssignmentById(MethodView):
    @blp.response(200, AssignmentSchema)
    @blp.problems(404)
    def get(self, assignment_id: uuid.UUID) -> dict[str, Any]:
        """An assignment with its people's states and the reasons given (its assigner, admins)"""
        found = assignments.load_assignment(
            db_session(), current_principal(), assignment_id, "assignment.manage"
        )
        return _present([found], detail=True)[0]


@blp.route("/assignments/<uuid:assignment_id>/withdraw")
class AssignmentWithdraw(MethodView):
    @blp.response(200, AssignmentSchema)
    @blp.problems(404)
    def post(self, assignment_id: uuid.UUID) -> dict[str, Any]:
        """Withdraw it: no more reminders, and it no longer grants what it assigned"""
        found = assignments.withdraw(db_session(), current_principal(), assignment_id)
        return _present([found], detail=True)[0]


@blp.route("/assignments/<uuid:assignment_id>/people")
class AssignmentPeople(MethodView):
    @blp.arguments(AssigneePageArgsSchema, location="query")
    @blp.response(200, page_schema(LearningPersonSchema))
    @blp.problems(404)
    def get(self, args: dict[str, Any], assignment_id: uuid.UUID) -> dict[str, Any]:
        """Its people, each with their state and progress"""
        session, principal = db_session(), current_principal()
        found = assignments.load_assignment(session, principal, assignment_id, "assignment.manage")
        state = _state(args.pop("state"))
        page: Page[Assignee] = paginate(
            session, assignments.people(found, state=state), order_by=[Assignee.user_id], args=args
        )
        return {
            "items": _with_people([(p, found) for p in page.items]),
            "next_cursor": page.next_cursor,
        }


def _with_people(rows: Sequence[tuple[Assignee, Assignment]]) -> list[dict[str, Any]]:
    session, principal = db_session(), current_principal()
    names = accounts.users_by_id(session, principal.org_id, [p.user_id for p, _ in rows])
    return [
        {
            **item,
            "user_id": person.user_id,
            "display_name": names[person.user_id].display_name if person.user_id in names else "",
        }
        for item, (person, _) in zip(_learning(rows), rows, strict=True)
    ]


def _learning_page(user_id: uuid.UUID, args: dict[str, Any]) -> dict[str, Any]:
    offset = offset_of(args["cursor"], below=assignments.MAX_LEARNING)
    limit = min(args["limit"], assignments.MAX_LEARNING - offset)
    rows = assignments.learning_of(
        db_session(),
        current_principal(),
        user_id,
        state=_state(args["state"]),
        limit=limit + 1,
        offset=offset,
    )
    more = len(rows) > limit and offset + limit < assignments.MAX_LEARNING
    return {
        "items": _learning(rows[:limit], own=user_id == current_principal().user_id),
        "next_cursor": offset_cursor(offset + limit) if more else None,
    }


@blp.route("/me/learning")
class MyLearning(MethodView):
    @blp.arguments(LearningArgsSchema, location="query")
    @blp.response(200, LearningSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """What you must do, by due date (none last), with your progress"""
        return _learning_page(current_principal().user_id, args)


@blp.route("/users/<uuid:user_id>/learning")
class PersonLearning(MethodView):
    @blp.arguments(LearningArgsSchema, location="query")
    @blp.response(200, LearningSchema)
    @blp.problems(403, 404)
    def get(self, args: dict[str, Any], user_id: uuid.UUID) -> dict[str, Any]:
        """A person's assignments (themselves, their managers up the line, admins)"""
        return _learning_page(user_id, args)


class TeamLearningArgsSchema(Schema):
    state = String(max_length=16, load_default="overdue", validate=ma.validate.OneOf(_STATES))


@blp.route("/me/team-learning")
class MyTeamLearning(MethodView):
    @blp.arguments(TeamLearningArgsSchema, location="query")
    @blp.response(200, TeamLearningSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your people's assignments (everyone below you), overdue ones by default"""
        stmt = assignments.team_learning(current_principal(), state=_state(args["state"]))
        rows = db_session().execute(
            stmt.order_by(Assignee.due_at.asc().nulls_last(), Assignee.user_id).limit(
                assignments.MAX_LEARNING
            )
        )
        return {"items": _with_people([(row[0], row[1]) for row in rows])}


# -- requests -------------------------------------------------------------------------------------


class RequestCreateSchema(Schema):
    kind = ma.fields.Enum(RequestKind, by_value=True, required=True)
    reason = ma.fields.Enum(RequestReason, by_value=True, required=True)
    text = String(load_default="", column=AssignmentRequest.text)
    wanted_due_at = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "For more time: the date you ask for"}
    )


class AssignmentRequestSchema(Schema):
    id = ma.fields.UUID()
    assignment_id = ma.fields.UUID()
    user_id = ma.fields.UUID()
    kind = ma.fields.Enum(RequestKind, by_value=True)
    reason = ma.fields.Enum(RequestReason, by_value=True)
    text = ma.fields.String()
    wanted_due_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    decided_at = ma.fields.DateTime(allow_none=True)
    decided_by = ma.fields.UUID(allow_none=True)
    granted = ma.fields.Boolean(allow_none=True)


class RequestDecisionSchema(Schema):
    granted = ma.fields.Boolean(required=True)
    due_at = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "For more time: another date than asked"}
    )
    note = String(load_default="", column=Notification.body)


@blp.route("/assignments/<uuid:assignment_id>/requests")
class AssignmentRequests(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(AssignmentRequestSchema))
    @blp.problems(404)
    def get(self, args: dict[str, Any], assignment_id: uuid.UUID) -> dict[str, Any]:
        """The requests its people made (its assigner, admins)"""
        session = db_session()
        found = assignments.load_assignment(
            session, current_principal(), assignment_id, "assignment.manage"
        )
        page: Page[AssignmentRequest] = paginate(
            session, requests.of_assignment(found), order_by=[AssignmentRequest.id], args=args
        )
        return {
            "items": [attributes(r, AssignmentRequestSchema) for r in page.items],
            "next_cursor": page.next_cursor,
        }

    @blp.arguments(RequestCreateSchema)
    @blp.response(201, AssignmentRequestSchema)
    @blp.problems(404, 409, 422)
    def post(self, body: dict[str, Any], assignment_id: uuid.UUID) -> dict[str, Any]:
        """Decline, or ask for more time, with a reason (people it is assigned to)

        Its assigner is told (inbox item and push `assignment.requested`, with `kind` and
        `reason`); they, an admin or the person's manager answer it."""
        made = requests.make(db_session(), current_principal(), assignment_id, **body)
        return attributes(made, AssignmentRequestSchema)


class RequestListArgsSchema(PageArgsSchema):
    pending = ma.fields.Boolean(
        load_default=True, metadata={"description": "Only those waiting for an answer"}
    )


@blp.route("/assignment-requests")
class AssignmentRequestList(MethodView):
    @blp.arguments(RequestListArgsSchema, location="query")
    @blp.response(200, page_schema(AssignmentRequestSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Requests you may answer (of your assignments, of your people; all, for admins) and
        your own, the waiting ones by default, oldest first"""
        stmt = requests.answerable(current_principal(), pending=args.pop("pending"))
        page: Page[AssignmentRequest] = paginate(
            db_session(), stmt, order_by=[AssignmentRequest.id], args=args
        )
        return {
            "items": [attributes(r, AssignmentRequestSchema) for r in page.items],
            "next_cursor": page.next_cursor,
        }


@blp.route("/assignment-requests/<uuid:request_id>/decision")
class AssignmentRequestDecision(MethodView):
    @blp.arguments(RequestDecisionSchema)
    @blp.response(200, AssignmentRequestSchema)
    @blp.problems(404, 409, 422)
    def post(self, body: dict[str, Any], request_id: uuid.UUID) -> dict[str, Any]:
        """Answer a request (the assigner, an admin, the person's manager)"""
        decided = requests.decide(db_session(), current_principal(), request_id, **body)
        return attributes(decided, AssignmentRequestSchema)


class ReasonsArgsSchema(Schema):
    since = ma.fields.AwareDateTime(load_default=None)


class OrganisationReasonsSchema(Schema):
    by_kind = ma.fields.Nested(RequestReasonsSchema)
    other_texts = ma.fields.List(
        ma.fields.String(), metadata={"description": "The newest texts given for `other`"}
    )


@blp.route("/learning/reasons")
class LearningReasons(MethodView):
    @blp.arguments(ReasonsArgsSchema, location="query")
    @blp.response(200, OrganisationReasonsSchema)
    @blp.problems(403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Why people decline or ask for more time, across the organisation (admins)"""
        return requests.organisation_reasons(db_session(), current_principal(), args["since"])


# -- rules ----------------------------------------------------------------------------------------


class RuleCreateSchema(SubjectFields):
    name = String(required=True, min_length=1, column=AssignmentRule.name)
    team_id = ma.fields.UUID(load_default=None)
    role = ma.fields.Enum(Role, by_value=True, load_default=None)
    due_days = ma.fields.Integer(load_default=7, validate=ma.validate.Range(min=1, max=365))
    threshold_pct = ma.fields.Integer(load_default=None, validate=_pct)
    message = String(load_default="", column=AssignmentRule.message)
    every_months = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=1, max=60),
        metadata={"description": "Again to everyone it covers, every so many months"},
    )
    first_round_at = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "The first round (default: now)"}
    )


class RuleUpdateSchema(PatchSchema):
    name = String(min_length=1, column=AssignmentRule.name)
    due_days = ma.fields.Integer(validate=ma.validate.Range(min=1, max=365))
    threshold_pct = ma.fields.Integer(allow_none=True, validate=_pct)
    message = String(column=AssignmentRule.message)
    every_months = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(min=1, max=60))
    next_round_at = ma.fields.AwareDateTime(allow_none=True)
    active = ma.fields.Boolean()


class AssignmentRuleSchema(Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()
    created_by = ma.fields.UUID(allow_none=True)
    team_id = ma.fields.UUID(allow_none=True)
    role = ma.fields.Enum(Role, by_value=True, allow_none=True)
    video_id = ma.fields.UUID(allow_none=True)
    start_ms = ma.fields.Integer(allow_none=True)
    end_ms = ma.fields.Integer(allow_none=True)
    collection_id = ma.fields.UUID(allow_none=True)
    message = ma.fields.String()
    due_days = ma.fields.Integer()
    threshold_pct = ma.fields.Integer(allow_none=True)
    every_months = ma.fields.Integer(allow_none=True)
    next_round_at = ma.fields.DateTime(allow_none=True)
    rounds = ma.fields.Integer()
    active = ma.fields.Boolean()
    created_at = ma.fields.DateTime()


@blp.route("/assignment-rules")
class AssignmentRules(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(AssignmentRuleSchema))
    @blp.problems(403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The organisation's rules (enablement, managers, admins)"""
        page: Page[AssignmentRule] = paginate(
            db_session(),
            rules.rules_of(current_principal()),
            order_by=[AssignmentRule.id],
            args=args,
        )
        return {
            "items": [attributes(r, AssignmentRuleSchema) for r in page.items],
            "next_cursor": page.next_cursor,
        }

    @blp.arguments(RuleCreateSchema)
    @blp.response(201, AssignmentRuleSchema)
    @blp.problems(403, 404, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make a rule: for a team or a role, once on joining, or every so many months"""
        subject = _subject(body)
        made = rules.create_rule(db_session(), current_principal(), subject=subject, **body)
        return attributes(made, AssignmentRuleSchema)


@blp.route("/assignment-rules/<uuid:rule_id>")
class AssignmentRuleById(MethodView):
    @blp.response(200, AssignmentRuleSchema)
    @blp.problems(403, 404)
    def get(self, rule_id: uuid.UUID) -> dict[str, Any]:
        """A rule"""
        return attributes(
            rules.load_rule(db_session(), current_principal(), rule_id), AssignmentRuleSchema
        )

    @blp.arguments(RuleUpdateSchema)
    @blp.response(200, AssignmentRuleSchema)
    @blp.problems(403, 404, 422)
    def patch(self, body: dict[str, Any], rule_id: uuid.UUID) -> dict[str, Any]:
        """Change a rule (what it assigned stays as it was)"""
        found = rules.update_rule(db_session(), current_principal(), rule_id, body)
        return attributes(found, AssignmentRuleSchema)

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, rule_id: uuid.UUID) -> None:
        """Delete a rule (its assignments stay)"""
        rules.delete_rule(db_session(), current_principal(), rule_id)
