"""Text input the database can store: bounded by the column it lands in, and free of the
characters PostgreSQL refuses (NUL, and lone surrogates, which have no UTF-8 form)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from sqlalchemy import ARRAY, Column
from sqlalchemy.orm import InstrumentedAttribute
from werkzeug.routing import PathConverter, UnicodeConverter, ValidationError

REFUSED_MESSAGE = "Contains a character that cannot be stored (NUL or an unpaired surrogate)."
_REFUSED = re.compile("[\x00\ud800-\udfff]")


def is_storable(value: str) -> bool:
    return _REFUSED.search(value) is None


def first_unstorable(data: Any) -> bool:
    """Whether any string anywhere in `data` (keys, values, items) cannot be stored.

    Walks without recursion: a body may nest as deep as the JSON parser allows."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not is_storable(item):
                return True
        elif isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def json_type_errors(schema: ma.Schema, data: Any) -> dict[str, Any]:
    """Where a JSON body gives a value of another JSON type than the field's: marshmallow
    reads `0` as false, `2.5` as the integer 2 and `"3.5"` as a number, as a query string
    needs, but a JSON body says what it means. The field's own errors are the field's."""
    if not isinstance(data, Mapping):
        return {}
    errors: dict[str, Any] = {}
    for name, field in schema.fields.items():
        key = field.data_key or name
        if field.dump_only or key not in data:
            continue
        problem = _json_type_problem(field, data[key])
        if problem:
            errors[key] = problem
    return errors


def _json_type_problem(field: ma.fields.Field, value: Any) -> Any:
    if value is None:
        return None  # whether null is allowed is the field's to say
    if isinstance(field, ma.fields.Boolean):
        return None if isinstance(value, bool) else ["Not a boolean."]
    if isinstance(field, ma.fields.Integer):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return None if whole and not isinstance(value, bool) else ["Not an integer."]
    if isinstance(field, ma.fields.Float):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else ["Not a number."]
    if isinstance(field, ma.fields.Nested) and isinstance(field.schema, ma.Schema):
        if field.many:
            if not isinstance(value, list):
                return None
            inner = {i: json_type_errors(field.schema, v) for i, v in enumerate(value)}
            return {i: e for i, e in inner.items() if e} or None
        return json_type_errors(field.schema, value) or None
    if isinstance(field, ma.fields.List) and isinstance(value, list):
        items = {i: _json_type_problem(field.inner, v) for i, v in enumerate(value)}
        return {i: e for i, e in items.items() if e} or None
    return None


def column_limit(attribute: InstrumentedAttribute[Any] | Column[Any]) -> int:
    """The most characters a column holds: its VARCHAR length, a VARCHAR array's item length,
    or, for TEXT, the `max_length` its `info` documents (every input has a limit)."""
    column = attribute if isinstance(attribute, Column) else attribute.property.columns[0]
    column_type = column.type.item_type if isinstance(column.type, ARRAY) else column.type
    length = getattr(column_type, "length", None) or column.info.get("max_length")
    if not length:
        raise TypeError(f"{column} has no length: give its info a max_length")
    return int(length)


class String(ma.fields.String):
    """A string input with a maximum length, taken from `column` (the column the value is
    stored in) or given as `max_length` for input that is never stored as such. NUL and lone
    surrogates are refused once for the whole input, by the base `Schema`'s pre-load check."""

    def __init__(
        self,
        *,
        column: InstrumentedAttribute[Any] | None = None,
        max_length: int | None = None,
        min_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        if column is not None:
            limit = column_limit(column)
            if max_length is not None and max_length > limit:
                raise ValueError(f"max_length {max_length} exceeds {column}'s {limit}")
            max_length = limit if max_length is None else max_length
        if max_length is None and not kwargs.get("dump_only"):
            raise TypeError("a string input needs a column or a max_length")
        validators = kwargs.pop("validate", None)
        validators = [validators] if callable(validators) else list(validators or [])
        if max_length is not None or min_length is not None:
            validators.append(ma.validate.Length(min=min_length, max=max_length))
        super().__init__(validate=validators, **kwargs)
        self.column = column
        self.max_length = max_length


class Email(String, ma.fields.Email):
    """An email address, bounded like `String`."""


class _Storable:
    """Path parts that cannot be stored match no route: 404, not a database error."""

    def to_python(self, value: str) -> Any:
        if not is_storable(value):
            raise ValidationError()
        return value


class StorableUnicodeConverter(_Storable, UnicodeConverter):
    """`<name>` parts."""


class StorablePathConverter(_Storable, PathConverter):
    """`<path:name>` parts."""


def install_converters(url_map: Any) -> None:
    """Before any route is added: rules bind their converters when they are registered."""
    url_map.converters.update(
        default=StorableUnicodeConverter,
        string=StorableUnicodeConverter,
        path=StorablePathConverter,
    )
