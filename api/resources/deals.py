"""Deals and the attribute catalogue: what a CRM keeps in step, and the attributes deals and
videos carry."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import Email, String, json_type_errors
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.runtime import db_session
from api.schemas import attributes
from fieldcast import policy
from fieldcast.deals import catalogue, deals
from fieldcast.errors import InvalidInput, NotFound
from fieldcast.models.accounts import Team, User
from fieldcast.models.deals import AttributeDefinition, AttributeType, Deal, DealOutcome

# The longest attribute name a client may send (it is read as its slug, at most 63).
MAX_NAME = 64

attributes_blp = Blueprint(
    "attributes",
    __name__,
    url_prefix="/api/v1/attributes",
    description=(
        "The organisation's attribute catalogue: the deal attributes (stage, industry, region, "
        "competitors, products, deal size, outcome, and the organisation's own) that deals and "
        "videos carry, their types and allowed values. Every member reads it; admins keep it. "
        "A lenient catalogue (the default) learns unknown names (as text) and values; a strict "
        "one refuses them (422 `unknown_attribute`, `attribute_value_not_allowed`)."
    ),
)
blp = Blueprint(
    "deals",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Deals kept in step with a CRM by admins and integrations (API tokens), keyed by "
        "`source` and `external_id`. A deal is read by its owner, its team, the owner's "
        "managers, enablement and admins. Videos and comments name the deal they are about."
    ),
)

ATTRIBUTE_VALUES = ma.fields.Dict(
    keys=String(min_length=1, max_length=MAX_NAME),
    values=ma.fields.Raw(allow_none=True),
    metadata={
        "description": "Catalogue values by name, e.g. "
        '{"industry": "retail", "competitors": ["Acme"], "deal_size": 48000}',
        "example": {"industry": "retail", "competitors": ["Acme"]},
    },
)


# -- the catalogue --------------------------------------------------------------------------


class BandSchema(Schema):
    label = String(required=True, min_length=1, max_length=catalogue.MAX_LABEL)
    min = ma.fields.Float(
        allow_none=True, load_default=None, metadata={"description": "Included; none: open"}
    )
    max = ma.fields.Float(
        allow_none=True, load_default=None, metadata={"description": "Excluded; none: open"}
    )


class AttributeSchema(Schema):
    name = ma.fields.String(dump_only=True, metadata={"example": "stage"})
    label = String(required=True, min_length=1, column=AttributeDefinition.label)
    type = ma.fields.Enum(AttributeType, by_value=True, required=True)
    choices = ma.fields.List(
        String(min_length=1, max_length=catalogue.MAX_VALUE),
        load_default=list,
        validate=ma.validate.Length(max=catalogue.MAX_CHOICES),
        metadata={"description": "A choice's allowed values, in order"},
    )
    choices_open = ma.fields.Boolean(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "An open choice (competitors, products) takes any value, strict "
            "catalogue or not, and learns it into `choices`. Left out: open when `choices` "
            "is empty"
        },
    )
    bands = ma.fields.List(
        ma.fields.Nested(BandSchema),
        load_default=list,
        validate=ma.validate.Length(max=catalogue.MAX_BANDS),
        metadata={"description": "A number's named ranges, e.g. deal size `10k-50k`"},
    )
    position = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Range(min=0, max=10_000),
        metadata={"description": "Where it is listed; left out: last (new) or where it was"},
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class CatalogueSchema(Schema):
    strict = ma.fields.Boolean(
        metadata={
            "description": "Refuse attribute names and choice values the catalogue lacks "
            "(422); false: they join it"
        }
    )
    items = ma.fields.List(ma.fields.Nested(AttributeSchema))


class CatalogueSettingsSchema(Schema):
    strict = ma.fields.Boolean(required=True)


def _present_catalogue() -> dict[str, Any]:
    session, principal = db_session(), current_principal()
    policy.authorize(principal, "attribute.read")
    loaded = catalogue.Catalogue.load(session, principal.org_id)
    return {
        "strict": loaded.strict,
        "items": [attributes(d, AttributeSchema) for d in loaded.definitions.values()],
    }


@attributes_blp.route("")
class Attributes(MethodView):
    @attributes_blp.etag
    @attributes_blp.response(200, CatalogueSchema)
    def get(self) -> dict[str, Any]:
        """The attribute catalogue (every member)"""
        return _present_catalogue()

    @attributes_blp.arguments(CatalogueSettingsSchema)
    @attributes_blp.response(200, CatalogueSchema)
    @attributes_blp.problems(403)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make the catalogue strict or lenient (admins)

        Strict: deals and videos naming an attribute or a choice the catalogue lacks are
        refused (422 `unknown_attribute`, `attribute_value_not_allowed`). Values stored before
        stay as they are.
        """
        catalogue.set_strict(db_session(), current_principal(), body["strict"])
        return _present_catalogue()


@attributes_blp.route("/<string:name>")
class AttributeByName(MethodView):
    @attributes_blp.arguments(AttributeSchema)
    @attributes_blp.response(200, AttributeSchema)
    @attributes_blp.alt_response(201, schema=AttributeSchema, description="Created")
    @attributes_blp.problems(403, 404)
    def put(self, body: dict[str, Any], name: str) -> Any:
        """Create or replace one attribute (admins)

        `name` is lower-case letters, digits and underscores, from a letter. Values stored
        already are kept as they are (changing a type or dropping a choice rewrites nothing).
        """
        if len(name) > MAX_NAME:
            raise NotFound(f"No attribute {name[:MAX_NAME]!r}.")
        bands = [{k: v for k, v in band.items() if v is not None} for band in body.pop("bands")]
        definition, created = catalogue.put_definition(
            db_session(), current_principal(), name, bands=bands, **body
        )
        return attributes(definition, AttributeSchema), 201 if created else 200

    @attributes_blp.response(204)
    @attributes_blp.problems(403, 404)
    def delete(self, name: str) -> None:
        """Remove one attribute (admins)

        Values stored under it stay on deals and videos. A lenient catalogue takes the name
        back, as text, the next time a value comes with it; a strict one refuses it.
        """
        if not catalogue.delete_definition(db_session(), current_principal(), name):
            raise NotFound(f"No attribute {name[:MAX_NAME]!r}.")


# -- deals ----------------------------------------------------------------------------------


class DealSummarySchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(dump_only=True)
    account = ma.fields.String(dump_only=True)
    stage = ma.fields.String(dump_only=True, allow_none=True)
    outcome = ma.fields.Enum(DealOutcome, by_value=True, dump_only=True)


def deal_summary(deal: Deal) -> dict[str, Any]:
    return attributes(deal, DealSummarySchema)


class DealSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    source = ma.fields.String(dump_only=True, metadata={"example": "salesforce"})
    external_id = ma.fields.String(dump_only=True)
    name = ma.fields.String(dump_only=True)
    account = ma.fields.String(dump_only=True)
    owner_id = ma.fields.UUID(dump_only=True)
    team_id = ma.fields.UUID(dump_only=True, allow_none=True)
    stage = ma.fields.String(dump_only=True, allow_none=True)
    amount = ma.fields.Float(dump_only=True, allow_none=True)
    currency = ma.fields.String(dump_only=True, allow_none=True)
    close_date = ma.fields.Date(dump_only=True, allow_none=True)
    outcome = ma.fields.Enum(DealOutcome, by_value=True, dump_only=True)
    closed_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    attributes = ma.fields.Dict(
        dump_only=True,
        metadata={
            "description": "The deal's catalogue values now, `stage`, `outcome` and "
            "`deal_size` (the amount) among them"
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class DealWriteSchema(Schema):
    name = String(required=True, min_length=1, column=Deal.name)
    account = String(load_default="", column=Deal.account)
    owner_id = ma.fields.UUID(
        load_default=None, metadata={"description": "The owner, by id (or owner_email, ...)"}
    )
    owner_email = Email(load_default=None, column=User.email)
    owner_external_id = String(
        load_default=None,
        column=User.external_id,
        metadata={"description": "The owner's `external_id` (as provisioned)"},
    )
    team_id = ma.fields.UUID(load_default=None, allow_none=True)
    team_external_id = String(load_default=None, allow_none=True, column=Team.external_id)
    stage = String(load_default=None, allow_none=True, min_length=1, column=Deal.stage)
    amount = ma.fields.Float(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Range(min=0, max=10**15, max_inclusive=False),
        metadata={"description": "In `currency`; written to attributes as `deal_size`"},
    )
    currency = String(
        load_default=None,
        allow_none=True,
        column=Deal.currency,
        validate=ma.validate.Regexp(r"^[A-Za-z]{3}$"),
        metadata={"description": "ISO 4217, e.g. EUR"},
    )
    close_date = ma.fields.Date(load_default=None, allow_none=True)
    outcome = ma.fields.Enum(DealOutcome, by_value=True, load_default=DealOutcome.OPEN)
    attributes = ATTRIBUTE_VALUES


class BulkDealSchema(DealWriteSchema):
    source = String(required=True, min_length=1, column=Deal.source)
    external_id = String(required=True, min_length=1, column=Deal.external_id)


class _EachItem(ma.fields.List):
    """A list of objects whose fields are checked one by one: an item at fault is reported in
    the answer (`errors`), the others are synced. So the document types an item as an object,
    not as the deal it should be: one that is not even an object refuses the whole body."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[Any]:
        if not ma.utils.is_collection(value):
            raise ma.ValidationError("Not a list.")
        not_objects = {
            i: ["Not an object."] for i, item in enumerate(value) if not isinstance(item, dict)
        }
        if not_objects:
            raise ma.ValidationError(not_objects)
        schema = BulkDealSchema()
        items: list[Any] = []
        for item in value:
            # Typed as the API types every JSON body (api.fields.json_type_errors).
            wrong_types = json_type_errors(schema, item)
            if wrong_types:
                items.append(InvalidInput(errors=wrong_types))
                continue
            try:
                items.append(schema.load(item))
            except ma.ValidationError as exc:
                items.append(InvalidInput(errors=exc.normalized_messages()))
        return items


class BulkSchema(Schema):
    items = _EachItem(
        ma.fields.Dict(
            metadata={
                "description": "A deal as `PUT /deals/by-source/{source}/{external_id}` takes "
                "it, with its `source` and `external_id`"
            }
        ),
        required=True,
        validate=ma.validate.Length(min=1, max=deals.MAX_BULK),
        metadata={"description": f"At most {deals.MAX_BULK} deals; one at fault is in `errors`"},
    )


class SyncedSchema(Schema):
    index = ma.fields.Integer(metadata={"description": "Its place in `items`"})
    id = ma.fields.UUID()
    created = ma.fields.Boolean()


class ItemErrorSchema(Schema):
    index = ma.fields.Integer()
    source = ma.fields.String()
    external_id = ma.fields.String()
    code = ma.fields.String(metadata={"description": "As a problem's `code`"})
    detail = ma.fields.String()
    errors = ma.fields.Dict(allow_none=True)


class BulkResultSchema(Schema):
    synced = ma.fields.List(ma.fields.Nested(SyncedSchema))
    errors = ma.fields.List(ma.fields.Nested(ItemErrorSchema))


class DealListArgsSchema(PageArgsSchema):
    owner_id = ma.fields.UUID(load_default=None)
    team_id = ma.fields.UUID(load_default=None)
    outcome = ma.fields.List(
        ma.fields.Enum(DealOutcome, by_value=True),
        load_default=list,
        validate=ma.validate.Length(max=len(DealOutcome)),
        metadata={"description": "Only deals with one of these outcomes (repeat it)"},
    )


def _page(page: Page[Deal]) -> dict[str, Any]:
    return {
        "items": [attributes(d, DealSchema) for d in page.items],
        "next_cursor": page.next_cursor,
    }


@blp.route("/deals")
class Deals(MethodView):
    @blp.etag
    @blp.arguments(DealListArgsSchema, location="query")
    @blp.response(200, page_schema(DealSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The deals you may see, newest first, by owner, team or outcome"""
        stmt = deals.listed(
            current_principal(),
            owner_id=args.pop("owner_id"),
            team_id=args.pop("team_id"),
            outcomes=args.pop("outcome"),
        )
        page: Page[Deal] = paginate(
            db_session(), stmt, order_by=[Deal.id], args=args, descending=True
        )
        return _page(page)


@blp.route("/me/deals")
class MyDeals(MethodView):
    @blp.etag
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(DealSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My deals: the open deals you own, newest first"""
        page: Page[Deal] = paginate(
            db_session(),
            deals.my_deals(current_principal()),
            order_by=[Deal.id],
            args=args,
            descending=True,
        )
        return _page(page)


@blp.route("/deals/<uuid:deal_id>")
class DealById(MethodView):
    @blp.etag
    @blp.response(200, DealSchema)
    @blp.problems(404)
    def get(self, deal_id: uuid.UUID) -> dict[str, Any]:
        """Read a deal"""
        return attributes(policy.load_deal(db_session(), current_principal(), deal_id), DealSchema)


@blp.route("/deals/by-source/<string:source>/<string:external_id>")
class DealBySource(MethodView):
    @blp.arguments(DealWriteSchema)
    @blp.response(200, DealSchema)
    @blp.alt_response(201, schema=DealSchema, description="Created")
    @blp.problems(403, 404)
    def put(self, body: dict[str, Any], source: str, external_id: str) -> Any:
        """Create or replace a deal from the CRM (admins, integrations)

        The whole deal each time: fields left out are cleared. The owner is named by
        `owner_id`, `owner_email` or `owner_external_id`; one who is no active person of the
        organisation is refused (422 `deal_owner_unknown`). `stage`, `outcome` and `amount`
        are written to `attributes` as `stage`, `outcome` and `deal_size`.
        """
        deal, created = deals.upsert_deal(
            db_session(), current_principal(), source, external_id, body
        )
        return attributes(deal, DealSchema), 201 if created else 200

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, source: str, external_id: str) -> None:
        """Delete a deal the CRM deleted (admins, integrations)

        Videos and comments about it no longer name it; videos keep their snapshot of its
        attributes.
        """
        deals.delete_deal(db_session(), current_principal(), source, external_id)


@blp.route("/deals/bulk")
class DealsBulk(MethodView):
    @blp.arguments(BulkSchema)
    @blp.response(200, BulkResultSchema)
    @blp.problems(403)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Sync many deals at once (admins, integrations)

        Each item as in `PUT /deals/by-source/{source}/{external_id}`, with its `source` and
        `external_id`. Items at fault are listed in `errors` (with their `index`, `code` and
        field `errors`) and the others are synced. Retry safely with `Idempotency-Key`.
        """
        result = deals.sync_deals(db_session(), current_principal(), body["items"])
        return {
            "synced": [
                {"index": s.index, "id": s.deal_id, "created": s.created} for s in result.synced
            ],
            "errors": [
                {
                    "index": e.index,
                    "source": e.source,
                    "external_id": e.external_id,
                    "code": e.code.value,
                    "detail": e.detail,
                    "errors": e.errors,
                }
                for e in result.errors
            ],
        }
