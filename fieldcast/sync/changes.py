"""Where a client's copy stands (`SyncPoint`) and which rows changed since (`changed_since`).

Every synced row carries two marks set by a trigger on each insert and update (migration 0013):
`change_seq`, the next value of one sequence, and `change_xid`, the writing transaction's id.
A sequence alone would lose changes: a transaction may draw value 100, a second draw 101 and
commit, a client sync and remember 101, and only then the first commit, its 100 forever below
the client's mark. So a point also holds the database snapshot it was taken in: a row is new
to the client when its sequence value is above the point's, or when its transaction was not
yet committed in that snapshot (in flight, or begun later). Both conditions are cheap index
range or equality scans, and a row is at worst sent twice, never missed.

The point is taken before the listing it goes with is read, so everything the listing missed
is after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, text
from sqlalchemy.orm import Session

# In-flight transactions a point lists one by one; beyond that it keeps only the oldest, and
# anything from it on is sent again (a longer answer, never a missed change).
MAX_IN_FLIGHT = 16


@dataclass(frozen=True)
class SyncPoint:
    seq: int  # the sequence's last value handed out
    xmin: int  # the oldest transaction in flight
    xmax: int  # the first transaction not begun yet
    in_flight: tuple[int, ...] | None  # None: too many to list; everything from xmin is late
    own: int | None  # the taking transaction: its own writes are in the listing
    issued_at: int  # unix seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "s": self.seq,
            "m": self.xmin,
            "x": self.xmax,
            "p": list(self.in_flight) if self.in_flight is not None else None,
            "o": self.own,
            "t": self.issued_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncPoint:
        in_flight = data["p"]
        if in_flight is not None and not isinstance(in_flight, list):
            raise ValueError("in_flight")
        values = [data["s"], data["m"], data["x"], data["t"], *(in_flight or [])]
        if data["o"] is not None:
            values.append(data["o"])
        if not all(type(v) is int and 0 <= v < 2**63 for v in values):
            raise ValueError("not a point")
        return cls(
            seq=data["s"],
            xmin=data["m"],
            xmax=data["x"],
            in_flight=tuple(in_flight) if in_flight is not None else None,
            own=data["o"],
            issued_at=data["t"],
        )


_TAKE = text(
    """
    SELECT pg_snapshot_xmin(s)::text::bigint AS xmin,
           pg_snapshot_xmax(s)::text::bigint AS xmax,
           ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x LIMIT :cap) AS in_flight,
           (SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
              FROM sync_change_seq) AS seq,
           pg_current_xact_id_if_assigned()::text::bigint AS own
      FROM pg_current_snapshot() AS s
    """
)


def take(session: Session) -> SyncPoint:
    """The point a listing read next starts from (call it before reading the listing)."""
    row = session.execute(_TAKE, {"cap": MAX_IN_FLIGHT + 1}).one()
    in_flight = tuple(sorted(row.in_flight))
    return SyncPoint(
        seq=int(row.seq),
        xmin=int(row.xmin),
        xmax=int(row.xmax),
        in_flight=in_flight if len(in_flight) <= MAX_IN_FLIGHT else None,
        own=int(row.own) if row.own is not None else None,
        issued_at=int(time.time()),
    )


def changed_since(point: SyncPoint, model: Any) -> ColumnElement[bool]:
    """Rows of `model` (a synced model: `change_seq`, `change_xid`) written after `point`."""
    seq, xid = model.change_seq, model.change_xid
    if point.in_flight is None:
        late: ColumnElement[bool] = xid >= point.xmin
    else:
        late = xid >= point.xmax
        if point.in_flight:
            late = or_(late, xid.in_(point.in_flight))
    if point.own is not None:
        # The taking transaction's writes before the point were in its listing; those after
        # it have higher sequence values.
        late = and_(late, xid != point.own)
    return or_(seq > point.seq, late)
