"""Deals kept in step with a CRM: upserted one at a time or thousands at once, keyed by
(source, external_id), read as `fieldcast.policy.DealPolicy` allows.

A sync names the whole deal each time (a PUT): fields it leaves out are cleared. The deal's
`attributes` are its catalogue values now, normalised by `fieldcast.deals.catalogue`; the
service writes `stage`, `outcome` and `amount` into them as `stage`, `outcome` and
`deal_size`, so one JSON carries everything search compares with a video's snapshot.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.db import uuid7
from fieldcast.deals.catalogue import Catalogue
from fieldcast.errors import DomainError, ErrorCode, InvalidInput, NotFound
from fieldcast.models.accounts import Team, User
from fieldcast.models.deals import Deal, DealOutcome
from fieldcast.policy import Principal, authorize
from fieldcast.policy import deals as deal_policy

log = logging.getLogger(__name__)

# Deals one bulk request syncs.
MAX_BULK = 5000
# Rows per INSERT ... ON CONFLICT: 17 parameters a row stay far below PostgreSQL's 65,535.
_CHUNK = 1000


@dataclass(frozen=True)
class ItemError:
    """Why one deal of a bulk sync was not written."""

    index: int
    source: str
    external_id: str
    code: ErrorCode
    detail: str
    errors: dict[str, Any] | None = None


@dataclass(frozen=True)
class Synced:
    index: int
    deal_id: uuid.UUID
    created: bool


@dataclass(frozen=True)
class SyncResult:
    synced: list[Synced]
    errors: list[ItemError]


class _Owners:
    """The people and teams a batch names, each kind looked up in one query."""

    def __init__(self, session: Session, org_id: uuid.UUID, items: Sequence[Mapping[str, Any]]):
        ids = {i["owner_id"] for i in items if i.get("owner_id")}
        emails = {i["owner_email"].strip().lower() for i in items if i.get("owner_email")}
        externals = {i["owner_external_id"] for i in items if i.get("owner_external_id")}
        self.by_id: dict[uuid.UUID, uuid.UUID] = {}
        self.by_email: dict[str, uuid.UUID] = {}
        self.by_external: dict[str, uuid.UUID] = {}
        if ids or emails or externals:
            rows = session.execute(
                select(User.id, User.email, User.external_id).where(
                    User.org_id == org_id,
                    User.is_active.is_(True),
                    User.deleted_at.is_(None),
                    or_(
                        User.id.in_(ids),
                        func.lower(User.email).in_(emails),
                        User.external_id.in_(externals),
                    ),
                )
            )
            for user_id, email, external_id in rows:
                self.by_id[user_id] = user_id
                self.by_email[email.lower()] = user_id
                if external_id:
                    self.by_external[external_id] = user_id
        team_ids = {i["team_id"] for i in items if i.get("team_id")}
        team_externals = {i["team_external_id"] for i in items if i.get("team_external_id")}
        self.teams: dict[uuid.UUID, uuid.UUID] = {}
        self.teams_external: dict[str, uuid.UUID] = {}
        if team_ids or team_externals:
            for team_id, external_id in session.execute(
                select(Team.id, Team.external_id).where(
                    Team.org_id == org_id,
                    or_(Team.id.in_(team_ids), Team.external_id.in_(team_externals)),
                )
            ):
                self.teams[team_id] = team_id
                if external_id:
                    self.teams_external[external_id] = team_id

    def owner(self, item: Mapping[str, Any]) -> uuid.UUID:
        given = [k for k in ("owner_id", "owner_email", "owner_external_id") if item.get(k)]
        if len(given) != 1:
            raise InvalidInput(
                "Name the deal's owner once: owner_id, owner_email or owner_external_id.",
                errors={
                    "owner_id": ["Give exactly one of owner_id, owner_email, owner_external_id."]
                },
            )
        key = given[0]
        found = {
            "owner_id": lambda v: self.by_id.get(v),
            "owner_email": lambda v: self.by_email.get(v.strip().lower()),
            "owner_external_id": lambda v: self.by_external.get(v),
        }[key](item[key])
        if found is None:
            raise InvalidInput(
                "The deal's owner is no active person of the organisation.",
                code=ErrorCode.DEAL_OWNER_UNKNOWN,
                errors={key: ["No active person of the organisation."]},
            )
        return found

    def team(self, item: Mapping[str, Any]) -> uuid.UUID | None:
        if item.get("team_id") and item.get("team_external_id"):
            raise InvalidInput(errors={"team_id": ["Give team_id or team_external_id, not both."]})
        if item.get("team_id"):
            found = self.teams.get(item["team_id"])
            key = "team_id"
        elif item.get("team_external_id"):
            found = self.teams_external.get(item["team_external_id"])
            key = "team_external_id"
        else:
            return None
        if found is None:
            raise InvalidInput(errors={key: ["No team of the organisation."]})
        return found


def _clean_key(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit:
        raise InvalidInput(errors={field: [f"1-{limit} characters."]})
    return text


def _row(
    catalogue: Catalogue, owners: _Owners, org_id: uuid.UUID, item: Mapping[str, Any]
) -> dict[str, Any]:
    """One deal as a row to upsert, every value checked and normalised."""
    name = " ".join(str(item.get("name") or "").split())
    if not name:
        raise InvalidInput(errors={"name": ["Give the deal's name."]})
    owner_id = owners.owner(item)
    team_id = owners.team(item)
    outcome = DealOutcome(item.get("outcome") or DealOutcome.OPEN)
    amount = item.get("amount")
    if amount is not None:
        # Stored to the cent (NUMERIC(18, 2)).
        amount = Decimal(str(amount)).quantize(Decimal("0.01"))
    currency = item.get("currency")
    if currency is not None:
        currency = currency.strip().upper()
    if amount is not None and currency is None:
        raise InvalidInput(errors={"currency": ["An amount comes with its currency."]})
    values = dict(item.get("attributes") or {})
    # The deal's own fields are its attributes too; they win over the same names in
    # `attributes`. A strict catalogue without one of these names leaves it out.
    derived: dict[str, Any] = {"outcome": outcome.value}
    if item.get("stage") is not None:
        derived["stage"] = item["stage"]
    if amount is not None:
        derived["deal_size"] = amount
    for key, value in derived.items():
        if catalogue.strict and key not in catalogue.definitions:
            continue
        for given in [k for k in values if k != key and k.strip().lower() == key]:
            del values[given]
        values[key] = value
    attributes = catalogue.normalise(values, field="attributes")
    stage = attributes.get("stage", item.get("stage"))
    return {
        "id": uuid7(),
        "org_id": org_id,
        "source": item["source"],
        "external_id": item["external_id"],
        "name": name,
        "account": " ".join(str(item.get("account") or "").split()),
        "owner_id": owner_id,
        "team_id": team_id,
        "stage": stage if isinstance(stage, str) else None,
        "amount": amount,
        "currency": currency,
        "close_date": item.get("close_date"),
        "outcome": outcome,
        "attributes": attributes,
    }


def _upsert(session: Session, rows: list[dict[str, Any]]) -> list[tuple[uuid.UUID, str, bool]]:
    """INSERT ... ON CONFLICT (org_id, source, external_id) DO UPDATE, a chunk at a time;
    (id, source + NUL + external_id, created) of each row."""
    found: list[tuple[uuid.UUID, str, bool]] = []
    for start in range(0, len(rows), _CHUNK):
        stmt = insert(Deal).values(
            [
                {**row, "closed_at": func.now() if row["outcome"] is not DealOutcome.OPEN else None}
                for row in rows[start : start + _CHUNK]
            ]
        )
        new = stmt.excluded
        upsert = stmt.on_conflict_do_update(
            index_elements=["org_id", "source", "external_id"],
            set_={
                "name": new.name,
                "account": new.account,
                "owner_id": new.owner_id,
                "team_id": new.team_id,
                "stage": new.stage,
                "amount": new.amount,
                "currency": new.currency,
                "close_date": new.close_date,
                "outcome": new.outcome,
                # Closed when first seen won or lost; open again, it is not closed.
                "closed_at": case(
                    (new.outcome == DealOutcome.OPEN.value, None),
                    (Deal.closed_at.is_not(None), Deal.closed_at),
                    else_=func.now(),
                ),
                "attributes": new.attributes,
                "updated_at": func.now(),
            },
        ).returning(
            Deal.id,
            Deal.source,
            Deal.external_id,
            # A row the statement inserted has no deleting transaction yet.
            (literal_column("xmax") == 0).label("created"),
        )
        for deal_id, source, external_id, created in session.execute(upsert):
            found.append((deal_id, f"{source}\0{external_id}", bool(created)))
    return found


def sync_deals(
    session: Session, principal: Principal, items: Sequence[Mapping[str, Any] | DomainError]
) -> SyncResult:
    """Upsert many deals at once (the CRM's bulk sync): each item is checked on its own, and
    one at fault is reported (`errors`) without holding back the others (an item given as an
    error was refused by the caller's own checks already). Owners and teams are
    looked up once for the batch, the catalogue is read once and what joined it written once,
    and the deals are written by a few set-based statements."""
    authorize(principal, "deal.write")
    if len(items) > MAX_BULK:
        raise InvalidInput(errors={"items": [f"At most {MAX_BULK} deals a request."]})
    catalogue = Catalogue.load(session, principal.org_id)
    owners = _Owners(session, principal.org_id, [i for i in items if isinstance(i, Mapping)])
    rows: list[dict[str, Any]] = []
    indexes: list[int] = []
    errors: list[ItemError] = []
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(items):
        if isinstance(item, DomainError):
            errors.append(ItemError(index, "", "", item.code, item.detail, item.errors))
            continue
        source, external_id = str(item.get("source", "")), str(item.get("external_id", ""))
        try:
            source = _clean_key(source, "source", 64)
            external_id = _clean_key(external_id, "external_id", 255)
            if (source, external_id) in seen:
                raise InvalidInput(
                    "This deal is in the batch already; only its first entry is written.",
                    errors={"external_id": ["Given twice in this batch."]},
                )
            seen.add((source, external_id))
            rows.append(
                _row(
                    catalogue,
                    owners,
                    principal.org_id,
                    {**item, "source": source, "external_id": external_id},
                )
            )
            indexes.append(index)
        except DomainError as exc:
            errors.append(ItemError(index, source, external_id, exc.code, exc.detail, exc.errors))
    catalogue.save(session)
    written = _upsert(session, rows)
    by_key = {key: (deal_id, created) for deal_id, key, created in written}
    synced = []
    for index, row in zip(indexes, rows, strict=True):
        deal_id, created = by_key[f"{row['source']}\0{row['external_id']}"]
        synced.append(Synced(index, deal_id, created))
    log.info(
        "deals synced by %s: %d written, %d refused", principal.user_id, len(synced), len(errors)
    )
    return SyncResult(synced, errors)


def upsert_deal(
    session: Session,
    principal: Principal,
    source: str,
    external_id: str,
    data: Mapping[str, Any],
) -> tuple[Deal, bool]:
    """Create or replace one deal by its CRM key; (the deal, whether it is new). An item at
    fault is the request's 422."""
    authorize(principal, "deal.write")
    source = _clean_key(source, "source", 64)
    external_id = _clean_key(external_id, "external_id", 255)
    catalogue = Catalogue.load(session, principal.org_id)
    item = {**data, "source": source, "external_id": external_id}
    row = _row(catalogue, _Owners(session, principal.org_id, [item]), principal.org_id, item)
    catalogue.save(session)
    ((deal_id, _, created),) = _upsert(session, [row])
    deal = session.get(Deal, deal_id, populate_existing=True)
    assert deal is not None
    return deal, created


def by_source(session: Session, principal: Principal, source: str, external_id: str) -> Deal | None:
    return session.scalar(
        select(Deal).where(
            Deal.org_id == principal.org_id,
            Deal.source == source,
            Deal.external_id == external_id,
        )
    )


def delete_deal(session: Session, principal: Principal, source: str, external_id: str) -> None:
    """Delete a deal the CRM deleted. Videos and comments that named it keep their snapshot
    of its attributes and no longer name it."""
    authorize(principal, "deal.write")
    deal = by_source(session, principal, source, external_id)
    if deal is None:
        raise NotFound(f"No deal {external_id!r} from {source!r}.")
    session.delete(deal)
    session.flush()


# -- reading --------------------------------------------------------------------------------


def listed(
    principal: Principal,
    *,
    owner_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    outcomes: Iterable[DealOutcome] = (),
) -> Select[Any]:
    """The deals the principal sees, filtered."""
    authorize(principal, "deal.list")
    stmt = deal_policy.select(principal)
    if owner_id is not None:
        stmt = stmt.where(Deal.owner_id == owner_id)
    if team_id is not None:
        stmt = stmt.where(Deal.team_id == team_id)
    outcomes = list(outcomes)
    if outcomes:
        stmt = stmt.where(Deal.outcome.in_(outcomes))
    return stmt


def my_deals(principal: Principal) -> Select[Any]:
    """The principal's open deals ("my deals"), served by `ix_deals_owner_id_open`."""
    return listed(principal, owner_id=principal.user_id, outcomes=[DealOutcome.OPEN])


def readable(
    session: Session, principal: Principal, ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, Deal]:
    """Of these deals (those a page of videos or comments names), the ones the principal
    sees, in one query."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {
        deal.id: deal
        for deal in session.scalars(deal_policy.select(principal).where(Deal.id.in_(wanted)))
    }


def snapshot(deal: Deal, explicit: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a video about the deal keeps: the deal's attributes now, with the values given
    for the video itself (already normalised) over them."""
    return {**deal.attributes, **(explicit or {})}
