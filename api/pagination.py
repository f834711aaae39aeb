"""Cursor (keyset) pagination for every list.

A page is `{"items": [...], "next_cursor": "..." | null}`. The cursor is opaque to clients: it
encodes the sort key of the last item, so pages stay stable while rows are added, and the
database seeks with an index instead of counting an OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar

import marshmallow as ma
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.extensions import Schema
from api.fields import String, is_storable
from api.runtime import context
from fieldcast.errors import ErrorCode, InvalidInput

T = TypeVar("T")


class PageArgsSchema(Schema):
    limit = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=1, max=500),
        metadata={"description": "Items per page (the server caps it)"},
    )
    cursor = String(
        load_default=None,
        max_length=1024,
        metadata={"description": "`next_cursor` from the previous page"},
    )


@cache
def page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The page envelope for one item schema (one class per item schema, for the spec)."""
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(
        name,
        (Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(
                allow_none=True,
                required=True,
                metadata={"description": "Pass as `cursor` for the next page; null on the last"},
            ),
        },
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def _encode(values: Sequence[Any]) -> str:
    raw = json.dumps(
        [
            v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v
            for v in values
        ]
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, columns: Sequence[InstrumentedAttribute[Any]]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(columns):
            raise ValueError("shape")
        decoded: list[Any] = []
        for column, value in zip(columns, values, strict=True):
            python_type = column.type.python_type
            if python_type is datetime:
                decoded.append(datetime.fromisoformat(value))
            elif python_type is uuid.UUID:
                decoded.append(uuid.UUID(value))
            elif python_type in (int, str, bool):
                # JSON's true and false are ints to Python: an integer key takes no boolean.
                if not isinstance(value, python_type) or (
                    python_type is int and isinstance(value, bool)
                ):
                    raise ValueError("type")
                if isinstance(value, str) and not is_storable(value):
                    raise ValueError("text the database cannot compare")
                decoded.append(value)
            else:
                decoded.append(python_type(value))
        return decoded
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, NotImplementedError):
        raise InvalidInput(
            "The cursor is not valid; start again without one.",
            code=ErrorCode.INVALID_CURSOR,
            errors={"cursor": ["Not a cursor from this list."]},
        ) from None


def paginate(
    session: Session,
    stmt: Select[Any],
    *,
    order_by: Sequence[InstrumentedAttribute[Any]],
    args: dict[str, Any],
    key: Callable[[T], Sequence[Any]] | None = None,
    descending: bool = False,
) -> Page[T]:
    """Run `stmt` one page at a time, ordered by `order_by` (a unique key)."""
    limits = context().settings.limits
    limit = min(args.get("limit") or limits.page_size_default, limits.page_size_max)
    cursor = args.get("cursor")
    if cursor:
        after = _decode(cursor, order_by)
        position = tuple_(*order_by)
        stmt = stmt.where(position < tuple_(*after) if descending else position > tuple_(*after))
    ordering = [column.desc() for column in order_by] if descending else list(order_by)
    rows: list[T] = list(session.execute(stmt.order_by(*ordering).limit(limit + 1)).scalars())
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        values = key(last) if key else [getattr(last, col.key) for col in order_by]
        next_cursor = _encode(values)
    return Page(rows, next_cursor)


def offset_of(cursor: str | None, *, below: int) -> int:
    """The position an offset cursor (`offset_cursor`) names: 0 without one; a cursor that
    is not one, or names `below` or more, is refused (422 `invalid_cursor`)."""
    if cursor is None:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        offset = -1
    if not 0 <= offset < below:
        raise InvalidInput(
            "The cursor is not valid; start again without one.",
            code=ErrorCode.INVALID_CURSOR,
            errors={"cursor": ["Not a cursor of this list."]},
        )
    return offset


def offset_cursor(offset: int) -> str:
    """A cursor for the results from `offset` on, of a list ranked anew at each request."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")
