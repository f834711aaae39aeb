"""SCIM filters (RFC 7644 §3.4.2.2) as SQL predicates on the product's tables.

scim2-models parses and checks a filter (`ScimFilter.ast`); this module walks its tree with a
`FilterVisitor` and emits one SQLAlchemy predicate, so that a search counts and pages in the
database, never in Python.

Each attribute the product keeps maps to a column. scim2-models refuses an attribute the
schemas do not declare; one that does not apply to a resource type (a Group's `members` asked
of Users, in a search at the root) is absent, so a comparison on it matches nothing (`ne`
everything, as RFC 7644 has `ne` hold for an absent value) and `pr` is false. Every leaf is
written so that it is never NULL: `not` then means what SCIM means by it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim2_models import InvalidFilterException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from fieldcast.directory.resources import ENTERPRISE_URN
from fieldcast.models.accounts import Team, TeamMembership, User

CORE_USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"

Key = tuple[str, str | None]


@dataclass(frozen=True)
class Column:
    """A SCIM attribute as the SQL expression that holds it, and how it compares."""

    expression: Any
    kind: type = str
    case_exact: bool = False


def _id_text(column: Any) -> Any:
    return cast(column, String)


# (attribute, sub-attribute) in lower case -> column, for the core schema of each resource.
USER_COLUMNS: dict[Key, Column] = {
    ("id", None): Column(_id_text(User.id), case_exact=False),
    ("username", None): Column(func.coalesce(User.user_name, User.email)),
    ("externalid", None): Column(User.external_id, case_exact=True),
    ("displayname", None): Column(User.display_name),
    ("name", "givenname"): Column(User.given_name),
    ("name", "familyname"): Column(User.family_name),
    ("emails", None): Column(User.email),
    ("emails", "value"): Column(User.email),
    ("emails", "type"): Column(literal("work", String)),
    ("active", None): Column(User.is_active, kind=bool),
    ("meta", "created"): Column(User.created_at, kind=datetime),
    ("meta", "lastmodified"): Column(User.updated_at, kind=datetime),
    ("meta", "resourcetype"): Column(literal("User", String)),
}
ENTERPRISE_COLUMNS: dict[Key, Column] = {
    ("employeenumber", None): Column(User.employee_number),
    ("department", None): Column(User.department),
    ("manager", None): Column(_id_text(User.manager_id)),
    ("manager", "value"): Column(_id_text(User.manager_id)),
}
GROUP_COLUMNS: dict[Key, Column] = {
    ("id", None): Column(_id_text(Team.id)),
    ("externalid", None): Column(Team.external_id, case_exact=True),
    ("displayname", None): Column(Team.name),
    ("meta", "created"): Column(Team.created_at, kind=datetime),
    ("meta", "lastmodified"): Column(Team.updated_at, kind=datetime),
    ("meta", "resourcetype"): Column(literal("Group", String)),
}
# Inside `members[...]`, and for `members.value`: one membership row of the team.
MEMBER_COLUMNS: dict[Key, Column] = {
    ("value", None): Column(_id_text(TeamMembership.user_id)),
    ("type", None): Column(literal("User", String)),
}


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compare(column: Column, op: CompareOperator, value: Any) -> ColumnElement[bool]:
    """One comparison, never NULL."""
    expression = column.expression
    present = expression.is_not(None)
    if column.kind is bool:
        if not isinstance(value, bool) or op not in (CompareOperator.eq, CompareOperator.ne):
            return true() if op == CompareOperator.ne else false()
        equal = and_(present, expression == value)
        return not_(equal) if op == CompareOperator.ne else equal
    if column.kind is datetime:
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidFilterException(detail=f"{value!r} is not a date and time") from None
        comparisons: dict[CompareOperator, Callable[[], Any]] = {
            CompareOperator.eq: lambda: expression == when,
            CompareOperator.gt: lambda: expression > when,
            CompareOperator.ge: lambda: expression >= when,
            CompareOperator.lt: lambda: expression < when,
            CompareOperator.le: lambda: expression <= when,
        }
        if op == CompareOperator.ne:
            return not_(and_(present, expression == when))
        if op not in comparisons:
            raise InvalidFilterException(detail=f"{op.value} does not apply to dates")
        return and_(present, comparisons[op]())
    # Strings: compared case-insensitively unless the attribute is caseExact.
    if not isinstance(value, str):
        return true() if op == CompareOperator.ne else false()
    if not column.case_exact:
        expression, value = func.lower(expression), value.lower()
    pattern = _escape_like(value)
    string_comparisons: dict[CompareOperator, Callable[[], Any]] = {
        CompareOperator.eq: lambda: expression == value,
        CompareOperator.co: lambda: expression.like(f"%{pattern}%", escape="\\"),
        CompareOperator.sw: lambda: expression.like(f"{pattern}%", escape="\\"),
        CompareOperator.ew: lambda: expression.like(f"%{pattern}", escape="\\"),
        CompareOperator.gt: lambda: expression > value,
        CompareOperator.ge: lambda: expression >= value,
        CompareOperator.lt: lambda: expression < value,
        CompareOperator.le: lambda: expression <= value,
    }
    if op == CompareOperator.ne:
        return not_(and_(present, expression == value))
    return and_(present, string_comparisons[op]())


def _present(column: Column) -> ColumnElement[bool]:
    expression = column.expression
    if column.kind is str:
        return and_(expression.is_not(None), expression != "")
    return expression.is_not(None)


def _absent(op: CompareOperator | None) -> ColumnElement[bool]:
    """What a comparison on an attribute the product does not keep evaluates to."""
    return true() if op == CompareOperator.ne else false()


class _SqlFilter(FilterVisitor[ColumnElement[bool]]):
    def __init__(
        self,
        columns: Mapping[Key, Column],
        extension_columns: Mapping[Key, Column],
        core_urn: str,
        multi: Mapping[str, Callable[[FilterNode | None, Comparison | None], Any]],
    ) -> None:
        self.columns = columns
        self.extension_columns = extension_columns
        self.core_urn = core_urn.lower()
        # Multi-valued attributes kept in rows of their own (a team's members): given a
        # `[filter]` or a comparison on `attr.value`, the predicate over those rows.
        self.multi = multi

    def column(self, path: AttrPath) -> Column | None:
        attr = path.attr.lower()
        sub = path.sub_attr.lower() if path.sub_attr else None
        uri = (path.uri or "").lower()
        if uri in ("", self.core_urn) and (attr, sub) in self.columns:
            return self.columns[(attr, sub)]
        if uri in ("", ENTERPRISE_URN.lower()):
            return self.extension_columns.get((attr, sub))
        return None

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        attr = node.attr_path.attr.lower()
        if attr in self.multi and not node.attr_path.uri:
            return self.multi[attr](None, node)
        column = self.column(node.attr_path)
        if column is None:
            return _absent(node.op)
        return _compare(column, node.op, node.value)

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        attr = node.attr_path.attr.lower()
        if attr in self.multi and not node.attr_path.uri:
            return self.multi[attr](None, None)
        column = self.column(node.attr_path)
        return false() if column is None else _present(column)

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        attr = node.attr_path.attr.lower()
        if attr in self.multi:
            return self.multi[attr](node.val_filter, None)
        # A single-valued attribute seen as a list of one (a person's email): the filter's
        # sub-attributes are the attribute's own.
        uri = node.attr_path.uri
        prefixed: dict[Key, Column] = {
            (sub_attr, None): column
            for (head, sub_attr), column in {**self.columns, **self.extension_columns}.items()
            if head == attr and sub_attr is not None
        }
        if not prefixed:
            return false()
        inner = _SqlFilter(prefixed, {}, uri or self.core_urn, {})
        return inner.visit(node.val_filter)


def _members(val_filter: FilterNode | None, comparison: Comparison | None) -> ColumnElement[bool]:
    """A team's members: `members[value eq "id"]`, `members eq "id"`, `members pr`."""
    condition: ColumnElement[bool] = true()
    if val_filter is not None:
        condition = _SqlFilter(MEMBER_COLUMNS, {}, CORE_GROUP_URN, {}).visit(val_filter)
    elif comparison is not None:
        sub = (comparison.attr_path.sub_attr or "value").lower()
        column = MEMBER_COLUMNS.get((sub, None))
        if column is None:
            return _absent(comparison.op)
        if comparison.op == CompareOperator.ne:
            return not_(
                _members(
                    None, Comparison(comparison.attr_path, CompareOperator.eq, comparison.value)
                )
            )
        condition = _compare(column, comparison.op, comparison.value)
    return exists(
        select(TeamMembership.user_id).where(
            TeamMembership.org_id == Team.org_id,
            TeamMembership.team_id == Team.id,
            condition,
        )
    )


def user_predicate(node: FilterNode) -> ColumnElement[bool]:
    """The SQL predicate on `users` of a filter on Users."""
    return _SqlFilter(USER_COLUMNS, ENTERPRISE_COLUMNS, CORE_USER_URN, {}).visit(node)


def group_predicate(node: FilterNode) -> ColumnElement[bool]:
    """The SQL predicate on `teams` of a filter on Groups."""
    return _SqlFilter(GROUP_COLUMNS, {}, CORE_GROUP_URN, {"members": _members}).visit(node)
