"""The BI export: the organisation's facts as CSV or Parquet, streamed, incremental by cursor."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.runtime import context, db_session
from fieldcast.exports import streams
from fieldcast.exports.cursor import MAX_CURSOR_LENGTH
from fieldcast.exports.facts import FACTS
from fieldcast.exports.streams import ExportFormat

NEXT_CURSOR_HEADER = "X-Next-Cursor"

_FACT_LIST = "\n".join(
    f"- `{fact.name}` ({', '.join(f'`{name}`' for name in fact.key)}): {fact.description}"
    for fact in FACTS.values()
)

blp = Blueprint(
    "exports",
    __name__,
    url_prefix="/api/v1/exports",
    description=(
        "The organisation's facts for a BI tool or a data warehouse (admins, or an API token "
        "acting as one), as CSV or Parquet, streamed: a million rows leave without the "
        "server holding them.\n\n"
        "**Incremental.** Every answer carries `X-Next-Cursor`. Pass it back as `cursor` to "
        "get only the rows added or changed since that export (a row changed after it was "
        "exported comes again, whole). A change is never missed, even by a transaction that "
        "committed late; a row may come twice: keep the latest copy of each row by its key. "
        "Removed rows (a reaction taken back, a membership ended, a purged video's views) do "
        "not appear in an incremental export: export without a cursor now and then to "
        "reconcile. The cursor never expires; one of another fact is refused (422 "
        "`invalid_cursor`).\n\n"
        f"**Facts** (key in brackets; see docs/bi.md for every column):\n{_FACT_LIST}\n\n"
        "No secret is exported (no password or token hash); an erased person is exported "
        'as "Former member" with no email, a deleted or hidden comment without its body.'
    ),
)


class ExportArgsSchema(Schema):
    format = ma.fields.Enum(
        ExportFormat,
        by_value=True,
        load_default=ExportFormat.CSV,
        metadata={"description": "`csv` (text/csv) or `parquet` (application/vnd.apache.parquet)"},
    )
    cursor = String(
        max_length=MAX_CURSOR_LENGTH,
        load_default=None,
        metadata={"description": "`X-Next-Cursor` of an earlier export of this fact"},
    )


_BYTES = {"type": "string", "format": "binary"}
_HEADERS = {
    NEXT_CURSOR_HEADER: {
        "description": "Pass it as `cursor` to export what is added or changed from now on",
        "schema": {"type": "string"},
    },
    "Content-Disposition": {
        "description": '`attachment; filename="<fact>-<UTC time>.<csv|parquet>"`',
        "schema": {"type": "string"},
    },
}
_CSV = (
    'CSV, UTF-8, with a header row: NULL is an empty field, an empty text `""`; times UTC '
    "as `2026-12-03T08:10:00.000000Z`; booleans `true` / `false`; a cell typed by people "
    "that a spreadsheet would run as a formula starts with `'`"
)
_PARQUET = (
    "Parquet (snappy), one row group per 16,384 rows; ids as strings, times as UTC "
    "microsecond timestamps, integers int64"
)


@blp.route(f"/<any({', '.join(FACTS)}):fact>")
class FactExport(MethodView):
    @blp.arguments(ExportArgsSchema, location="query")
    @blp.response(200, _BYTES, content_type="text/csv", description=_CSV, headers=_HEADERS)
    @blp.alt_response(
        200,
        schema=_BYTES,
        content_type="application/vnd.apache.parquet",
        description=_PARQUET,
        headers=_HEADERS,
        success=True,
    )
    @blp.problems(403, 404, 422)
    def get(self, args: dict[str, Any], fact: str) -> Response:
        """Export a fact of the organisation as CSV or Parquet, streamed (admins)

        Without `cursor`, every row; with it, the rows added or changed since the export
        that handed it out. The next cursor is in `X-Next-Cursor`."""
        secret = context().settings.secret_key
        assert secret is not None  # required at start (create_app)
        export = streams.export(
            db_session(),
            current_principal(),
            fact,
            args["format"],
            cursor=args["cursor"],
            secret=secret,
            open_session=context().db.sessionmaker,
        )
        return Response(
            export.chunks,
            mimetype=export.media_type,
            headers={
                NEXT_CURSOR_HEADER: export.next_cursor,
                "Content-Disposition": f'attachment; filename="{export.filename}"',
                "Cache-Control": "no-store",
            },
        )
