"""Exporting a fact: the cursor of the next export first, then its rows as a stream of bytes.

Nothing of the export is held whole. CSV is written by PostgreSQL itself (`COPY ... TO STDOUT`)
and passed on in chunks of about `CHUNK_BYTES`: no Python value per cell. Parquet reads the
rows through a server-side cursor, `FETCH_ROWS` at a time (a thread fetches the next batch
while this one is converted), turns each batch into Arrow column arrays at once, and writes a
row group of `ROW_GROUP_ROWS` to a spool that is emptied after each: the process holds one
row group's columns and three small batches of rows, whatever the number of rows.

The next cursor is known before the first byte (the point is taken before the rows are read;
see fieldcast/exports/cursor.py), so it travels in a response header, also for Parquet, whose
bytes cannot carry a trailer a reader would see.

CSV: UTF-8, a header row, `,`-separated, RFC 4180 quoting, `\\n` line ends; NULL is an empty
field and an empty string `""`; times are UTC as `2026-12-03T08:10:00.000000Z`; booleans
`true` / `false`; a cell typed by people that a spreadsheet would run as a formula (starting
with `=`, `+`, `-`, `@`, a tab or a carriage return) starts with `'` (Parquet keeps the text
as it is).
"""

from __future__ import annotations

import enum
import queue
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg.types.numeric import Int8BinaryLoader
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.errors import NotFound
from fieldcast.exports import cursor as cursors
from fieldcast.exports.facts import FACTS, Column, Fact, Kind
from fieldcast.policy import Principal, authorize
from fieldcast.sync.changes import SyncPoint, take

CHUNK_BYTES = 64 * 1024
FETCH_ROWS = 2_048
ROW_GROUP_ROWS = 16_384


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        if self is ExportFormat.CSV:
            return "text/csv"
        return "application/vnd.apache.parquet"


@dataclass(frozen=True)
class Export:
    """An export ready to stream: its name, media type, the next export's cursor, and its
    bytes, read from the database as they are consumed."""

    fact: Fact
    format: ExportFormat
    next_cursor: str
    filename: str
    chunks: Iterator[bytes] = field(repr=False)

    @property
    def media_type(self) -> str:
        return self.format.media_type


def export(
    session: Session,
    principal: Principal,
    fact_name: str,
    fmt: ExportFormat,
    *,
    cursor: str | None,
    secret: str,
    open_session: Callable[[], Session],
) -> Export:
    """An export of one fact of the principal's organisation (admins): every row, or with
    `cursor` the rows added or changed since the export that handed it out.

    The point the next cursor holds is taken in `session` (the request's). The chunks read
    the rows, as they are consumed, in a session of their own from `open_session`, which
    they end when done or closed: the stream outlives the request's session, and reading
    in a later snapshot than the point's sends a row twice at worst, never misses one."""
    authorize(principal, "bi.export")
    fact = FACTS.get(fact_name)
    if fact is None:
        raise NotFound()
    since = cursors.read(secret, cursor, principal.org_id, fact.name) if cursor else None
    point = take(session)
    sql, params = _query(fact, fmt, principal.org_id, since)
    write = _csv if fmt is ExportFormat.CSV else _parquet
    chunks = _reading(open_session, lambda reader: write(reader, fact, sql, params))
    return Export(
        fact=fact,
        format=fmt,
        next_cursor=cursors.issue(secret, principal.org_id, fact.name, point),
        filename=f"{fact.name}-{utcnow():%Y%m%dT%H%M%SZ}.{fmt.value}",
        chunks=chunks,
    )


# -- the query -----------------------------------------------------------------------------------

_FORMULA_STARTS = "('=', '+', '-', '@', chr(9), chr(13))"


def _csv_expression(column: Column) -> str:
    sql = column.expression
    if column.kind is Kind.TIME:
        return f"""to_char(({sql}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
    if column.kind is Kind.BOOL:
        return f"({sql})::text"
    if column.kind is Kind.TEXT:
        return f"CASE WHEN left({sql}, 1) IN {_FORMULA_STARTS} THEN '''' || ({sql}) ELSE {sql} END"
    return sql


def _parquet_expression(column: Column) -> str:
    # UUIDs as their text: what BI tools read, and PostgreSQL writes it faster than Python.
    return f"({column.expression})::text" if column.kind is Kind.UUID else column.expression


def _query(
    fact: Fact, fmt: ExportFormat, org_id: uuid.UUID, since: SyncPoint | None
) -> tuple[str, dict[str, Any]]:
    render = _csv_expression if fmt is ExportFormat.CSV else _parquet_expression
    select_list = ", ".join(f'{render(column)} AS "{column.name}"' for column in fact.columns)
    # Names and expressions come from the fact definitions, never from a request.
    sql = f"SELECT {select_list} FROM {fact.table} WHERE org_id = %(export_org_id)s"  # noqa: S608
    params: dict[str, Any] = {"export_org_id": org_id}
    if since is not None:
        changed, changed_params = cursors.changed_sql(since)
        sql += f" AND ({changed})"
        params.update(changed_params)
    return sql, params


def _dbapi_connection(session: Session) -> Any:
    return session.connection().connection.dbapi_connection


def _reading(
    open_session: Callable[[], Session], write: Callable[[Session], Iterator[bytes]]
) -> Iterator[bytes]:
    """The chunks `write` makes, in a session opened at the first chunk and ended (rolled
    back: it only read) after the last, or when the client goes away mid-stream."""
    session = open_session()
    try:
        yield from write(session)
    finally:
        try:
            session.rollback()
        finally:
            session.close()


# -- CSV -----------------------------------------------------------------------------------------


def _csv(session: Session, fact: Fact, sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    """PostgreSQL writes the CSV; the rows (one message each) are passed on in chunks."""
    with (
        _dbapi_connection(session).cursor() as cur,
        cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)", params) as copy,
    ):
        chunk = bytearray()
        for data in copy:
            chunk += data
            if len(chunk) >= CHUNK_BYTES:
                yield bytes(chunk)
                chunk.clear()
        if chunk:
            yield bytes(chunk)


# -- Parquet -------------------------------------------------------------------------------------

_ARROW_TYPES = {
    Kind.UUID: pa.string(),
    Kind.TEXT: pa.string(),
    Kind.CODE: pa.string(),
    Kind.INT: pa.int64(),
    Kind.BOOL: pa.bool_(),
    Kind.TIME: pa.timestamp("us", tz="UTC"),
}


def arrow_schema(fact: Fact) -> pa.Schema:
    return pa.schema([pa.field(column.name, _ARROW_TYPES[column.kind]) for column in fact.columns])


class _Spool:
    """A write-only file the Parquet writer writes to, emptied by the stream after each row
    group: it holds one row group's bytes at most."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


# PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC.
_POSTGRES_EPOCH_US = 946_684_800_000_000


def _array(values: tuple[Any, ...], column: Column) -> pa.Array:
    if column.kind is Kind.TIME:
        micros = pc.add(pa.array(values, type=pa.int64()), _POSTGRES_EPOCH_US)
        return micros.cast(_ARROW_TYPES[Kind.TIME])
    return pa.array(values, type=_ARROW_TYPES[column.kind])


def _prefetched(cur: Any, size: int) -> Generator[list[tuple[Any, ...]], None, None]:
    """The cursor's rows `size` at a time, the next batch fetched by a thread while the caller
    converts this one: PostgreSQL makes rows while Python writes Parquet, instead of each
    waiting for the other. At most three batches exist at once (converted, queued, fetched).
    """
    batches: queue.Queue[list[tuple[Any, ...]] | BaseException] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                rows = cur.fetchmany(size)
                batches.put(rows)
                if not rows:
                    return
        except BaseException as error:  # handed to the reader, which raises it
            batches.put(error)

    fetcher = threading.Thread(target=fetch, name="bi-export-fetch", daemon=True)
    fetcher.start()
    try:
        while True:
            batch = batches.get()
            if isinstance(batch, BaseException):
                raise batch
            if not batch:
                return
            yield batch
    finally:
        # The reader stopped (done, failed, or the client went away): let the fetcher finish
        # its FETCH and go, before the cursor and its connection are closed.
        stop.set()
        while fetcher.is_alive():
            try:
                batches.get_nowait()
            except queue.Empty:
                fetcher.join(0.05)


def _parquet(session: Session, fact: Fact, sql: str, params: dict[str, Any]) -> Iterator[bytes]:
    """The rows through a server-side cursor, `FETCH_ROWS` at a time, each batch made Arrow
    columns at once (a few hundred bytes a row instead of a Python object a value), written
    as one row group every `ROW_GROUP_ROWS`."""
    schema = arrow_schema(fact)
    spool = _Spool()
    writer = pq.ParquetWriter(
        spool,
        schema,
        compression="snappy",
        # A key's values are all different: a dictionary of them only costs time.
        use_dictionary=[name for name in fact.column_names if name not in fact.key],
    )
    try:
        # A named cursor is a server-side one: PostgreSQL keeps the result, we FETCH batches.
        with _dbapi_connection(session).cursor(name="bi_export", binary=True) as cur:
            # Times read as the integers PostgreSQL sends, in C: no datetime object per value.
            cur.adapters.register_loader("timestamptz", Int8BinaryLoader)
            cur.execute(sql, params)
            group: list[pa.RecordBatch] = []
            held = 0
            # Closed before the cursor is, even when the client goes away: the fetching thread
            # is done with the cursor first.
            with closing(_prefetched(cur, FETCH_ROWS)) as batches:
                for rows in batches:
                    columns = list(zip(*rows, strict=True))
                    del rows
                    arrays = [
                        _array(values, column)
                        for values, column in zip(columns, fact.columns, strict=True)
                    ]
                    del columns
                    group.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
                    held += group[-1].num_rows
                    if held >= ROW_GROUP_ROWS:
                        writer.write_table(pa.Table.from_batches(group), row_group_size=held)
                        group, held = [], 0
                        if data := spool.drain():
                            yield data
            if group:
                writer.write_table(pa.Table.from_batches(group), row_group_size=held)
    finally:
        writer.close()
    yield spool.drain()
