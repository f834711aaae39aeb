"""Collections of videos and clips, and what is featured."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.resources.clips import (
    ClipSchema,
    CollectionRefSchema,
    present_clips,
    present_collections,
)
from api.runtime import db_session
from api.schemas import attributes
from fieldcast import policy
from fieldcast.curation import collections, features
from fieldcast.models.curation import (
    Collection,
    CollectionItem,
    CollectionVisibility,
    Feature,
)

blp = Blueprint(
    "collections",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Collections: videos and clips in order, each with an optional note. A clip is a "
        "range of a video (`start_ms`..`end_ms`); a video may be in a collection as many "
        "clips as you like. Make a clip from numbers, from a comment's range (`comment_id`) "
        "or around a moment (`at_ms`) in one call. Enablement, managers and admins create "
        "collections; the owner adds editors. A collection is `private` (its owner, editors "
        "and admins), for `teams` (with their sub-teams) or for the `organisation`; "
        f"publishing it lets that audience see it and its videos, unpublishing takes that "
        f"away. At most {collections.MAX_ITEMS} items. Items whose video was removed or is "
        "not yours to see are listed as `available: false`. Featured: curators put videos, "
        "clips and collections forward for the organisation or a team."
    ),
)

_ms = ma.validate.Range(min=0, max=2**31 - 1)
_IDS = ma.validate.Length(max=collections.MAX_TEAMS)


class CollectionCreateSchema(Schema):
    title = String(required=True, min_length=1, column=Collection.title)
    description = String(load_default="", column=Collection.description)
    visibility = ma.fields.Enum(
        CollectionVisibility, by_value=True, load_default=CollectionVisibility.PRIVATE
    )
    team_ids = ma.fields.List(ma.fields.UUID(), load_default=list, validate=_IDS)
    editor_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=list,
        validate=ma.validate.Length(max=collections.MAX_EDITORS),
    )
    cover_video_id = ma.fields.UUID(load_default=None, allow_none=True)


class CollectionUpdateSchema(PatchSchema):
    title = String(min_length=1, column=Collection.title)
    description = String(column=Collection.description)
    visibility = ma.fields.Enum(CollectionVisibility, by_value=True)
    team_ids = ma.fields.List(ma.fields.UUID(), validate=_IDS)
    editor_ids = ma.fields.List(
        ma.fields.UUID(),
        validate=ma.validate.Length(max=collections.MAX_EDITORS),
        metadata={"description": "Replaces the editors (the owner and admins only)"},
    )
    cover_video_id = ma.fields.UUID(allow_none=True)


class CollectionSummarySchema(Schema):
    id = ma.fields.UUID()
    owner_id = ma.fields.UUID()
    title = ma.fields.String()
    description = ma.fields.String()
    visibility = ma.fields.Enum(CollectionVisibility, by_value=True)
    published_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class CollectionItemSchema(ClipSchema):
    id = ma.fields.UUID()
    position = ma.fields.Integer()
    note = ma.fields.String()
    comment_id = ma.fields.UUID(allow_none=True, metadata={"description": "Made from it"})
    added_by = ma.fields.UUID(allow_none=True)
    created_at = ma.fields.DateTime()


class CollectionSchema(CollectionSummarySchema):
    team_ids = ma.fields.List(ma.fields.UUID())
    editor_ids = ma.fields.List(ma.fields.UUID())
    cover = ma.fields.Nested(ClipSchema, allow_none=True)
    can_edit = ma.fields.Boolean()
    items = ma.fields.List(ma.fields.Nested(CollectionItemSchema))


class ItemInputSchema(Schema):
    video_id = ma.fields.UUID(load_default=None)
    start_ms = ma.fields.Integer(load_default=None, validate=_ms)
    end_ms = ma.fields.Integer(load_default=None, validate=_ms)
    at_ms = ma.fields.Integer(
        load_default=None,
        validate=_ms,
        metadata={"description": "A moment: the clip starts a little before it"},
    )
    comment_id = ma.fields.UUID(
        load_default=None, metadata={"description": "A clip of the comment's range or moment"}
    )
    note = String(load_default="", column=CollectionItem.note)


class ItemsAddSchema(Schema):
    items = ma.fields.List(
        ma.fields.Nested(ItemInputSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=collections.MAX_ITEMS),
    )
    after_item_id = ma.fields.UUID(
        load_default=None, metadata={"description": "Insert after this item (default: at the end)"}
    )
    at_start = ma.fields.Boolean(load_default=False)


class ItemsAddedSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(CollectionItemSchema))


class ItemUpdateSchema(PatchSchema):
    note = String(column=CollectionItem.note)
    start_ms = ma.fields.Integer(allow_none=True, validate=_ms)
    end_ms = ma.fields.Integer(allow_none=True, validate=_ms)


class ItemsMoveSchema(Schema):
    item_ids = ma.fields.List(
        ma.fields.UUID(),
        required=True,
        validate=ma.validate.Length(min=1, max=collections.MAX_ITEMS),
        metadata={"description": "The run of items to move, in the order they take"},
    )
    after_item_id = ma.fields.UUID(
        required=True,
        allow_none=True,
        metadata={"description": "Put them after this item; null: at the start"},
    )


def present_items(items: list[CollectionItem]) -> list[dict[str, Any]]:
    clips = present_clips([(i.video_id, i.start_ms, i.end_ms) for i in items])
    return [
        {
            **clip,
            "id": item.id,
            "position": item.position,
            "note": item.note,
            "comment_id": item.comment_id,
            "added_by": item.added_by,
            "created_at": item.created_at,
        }
        for item, clip in zip(items, clips, strict=True)
    ]


def _present(collection: Collection) -> dict[str, Any]:
    session, principal = db_session(), current_principal()
    items = collections.items_of(session, collection)
    cover_id = collection.cover_video_id or (items[0].video_id if items else None)
    return {
        **attributes(collection, CollectionSummarySchema),
        "team_ids": collections.teams_of(session, collection),
        "editor_ids": collections.editors_of(session, collection),
        "cover": present_clips([(cover_id, None, None)])[0] if cover_id else None,
        "can_edit": policy.collections.editable(session, principal, collection),
        "items": present_items(items),
    }


class CollectionArgsSchema(PageArgsSchema):
    mine = ma.fields.Boolean(
        load_default=False, metadata={"description": "Only those you own or edit"}
    )


@blp.route("/collections")
class Collections(MethodView):
    @blp.arguments(CollectionArgsSchema, location="query")
    @blp.response(200, page_schema(CollectionSummarySchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Collections you may see: yours, those you edit, those published for you, and those
        assigned to you"""
        principal = current_principal()
        stmt = policy.collections.select(principal)
        if args.pop("mine"):
            stmt = stmt.where(
                (Collection.owner_id == principal.user_id)
                | Collection.id.in_(policy.CollectionPolicy._edited(principal))
            )
        page: Page[Collection] = paginate(
            db_session(), stmt, order_by=[Collection.id], args=args, descending=True
        )
        return {
            "items": [attributes(c, CollectionSummarySchema) for c in page.items],
            "next_cursor": page.next_cursor,
        }

    @blp.arguments(CollectionCreateSchema)
    @blp.response(201, CollectionSchema)
    @blp.problems(403, 404, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a collection (enablement, managers, admins)"""
        made = collections.create_collection(db_session(), current_principal(), **body)
        return _present(made)


@blp.route("/collections/<uuid:collection_id>")
class CollectionById(MethodView):
    @blp.response(200, CollectionSchema)
    @blp.problems(404)
    def get(self, collection_id: uuid.UUID) -> dict[str, Any]:
        """A collection with its items in order"""
        return _present(policy.load_collection(db_session(), current_principal(), collection_id))

    @blp.arguments(CollectionUpdateSchema)
    @blp.response(200, CollectionSchema)
    @blp.problems(403, 404, 409, 422)
    def patch(self, body: dict[str, Any], collection_id: uuid.UUID) -> dict[str, Any]:
        """Change a collection (its owner, editors, admins)"""
        team_ids = body.pop("team_ids", None)
        editor_ids = body.pop("editor_ids", None)
        found = collections.update_collection(
            db_session(),
            current_principal(),
            collection_id,
            changes=body,
            team_ids=team_ids,
            editor_ids=editor_ids,
        )
        return _present(found)

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, collection_id: uuid.UUID) -> None:
        """Delete a collection (its owner, admins): what it granted goes with it"""
        collections.delete_collection(db_session(), current_principal(), collection_id)


@blp.route("/collections/<uuid:collection_id>/publish")
class CollectionPublish(MethodView):
    @blp.response(200, CollectionSchema)
    @blp.problems(403, 404, 409)
    def post(self, collection_id: uuid.UUID) -> dict[str, Any]:
        """Publish: its audience sees it and its videos"""
        return _present(collections.publish(db_session(), current_principal(), collection_id))


@blp.route("/collections/<uuid:collection_id>/unpublish")
class CollectionUnpublish(MethodView):
    @blp.response(200, CollectionSchema)
    @blp.problems(403, 404)
    def post(self, collection_id: uuid.UUID) -> dict[str, Any]:
        """Unpublish: only its owner, editors and admins see it again"""
        return _present(collections.unpublish(db_session(), current_principal(), collection_id))


@blp.route("/collections/<uuid:collection_id>/items")
class CollectionItems(MethodView):
    @blp.arguments(ItemsAddSchema)
    @blp.response(201, ItemsAddedSchema)
    @blp.problems(403, 404, 409, 422)
    def post(self, body: dict[str, Any], collection_id: uuid.UUID) -> dict[str, Any]:
        """Add videos and clips (at the end, at the start, or after an item)

        The people it is assigned to are counted again by a worker about 30 seconds after a
        change of its items (added, removed, or given another range)."""
        made = collections.add_items(
            db_session(),
            current_principal(),
            collection_id,
            [collections.ItemInput(**item) for item in body["items"]],
            after_item_id=body["after_item_id"],
            at_start=body["at_start"],
        )
        return {"items": present_items(made)}


@blp.route("/collections/<uuid:collection_id>/items/move")
class CollectionItemsMove(MethodView):
    @blp.arguments(ItemsMoveSchema)
    @blp.response(200, ItemsAddedSchema)
    @blp.problems(403, 404, 422)
    def post(self, body: dict[str, Any], collection_id: uuid.UUID) -> dict[str, Any]:
        """Move a run of items to after another (or to the start); returns the new order"""
        order = collections.move_items(
            db_session(),
            current_principal(),
            collection_id,
            body["item_ids"],
            after_item_id=body["after_item_id"],
        )
        return {"items": present_items(order)}


@blp.route("/collections/<uuid:collection_id>/items/<uuid:item_id>")
class CollectionItemById(MethodView):
    @blp.arguments(ItemUpdateSchema)
    @blp.response(200, CollectionItemSchema)
    @blp.problems(403, 404, 422)
    def patch(
        self, body: dict[str, Any], collection_id: uuid.UUID, item_id: uuid.UUID
    ) -> dict[str, Any]:
        """Change an item's note or range (both null: the whole video)"""
        item = collections.update_item(
            db_session(), current_principal(), collection_id, item_id, body
        )
        return present_items([item])[0]

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, collection_id: uuid.UUID, item_id: uuid.UUID) -> None:
        """Remove an item"""
        collections.remove_item(db_session(), current_principal(), collection_id, item_id)


# -- featured -------------------------------------------------------------------------------------


class FeatureCreateSchema(Schema):
    team_id = ma.fields.UUID(
        load_default=None, metadata={"description": "For a team; null: the organisation"}
    )
    video_id = ma.fields.UUID(load_default=None)
    start_ms = ma.fields.Integer(load_default=None, validate=_ms)
    end_ms = ma.fields.Integer(load_default=None, validate=_ms)
    collection_id = ma.fields.UUID(load_default=None)
    note = String(load_default="", column=Feature.note)


class FeatureSchema(Schema):
    id = ma.fields.UUID()
    team_id = ma.fields.UUID(allow_none=True)
    note = ma.fields.String()
    featured_by = ma.fields.UUID(allow_none=True)
    created_at = ma.fields.DateTime()
    clip = ma.fields.Nested(ClipSchema, allow_none=True, metadata={"description": "A video's"})
    collection = ma.fields.Nested(CollectionRefSchema, allow_none=True)


class FeaturedSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(FeatureSchema))


class FeaturedArgsSchema(Schema):
    team_id = ma.fields.UUID(load_default=None)


def _present_features(found: list[Feature]) -> list[dict[str, Any]]:
    videos = [f for f in found if f.video_id is not None]
    clips = dict(
        zip(
            [f.id for f in videos],
            present_clips([(f.video_id, f.start_ms, f.end_ms) for f in videos if f.video_id]),
            strict=True,
        )
    )
    shown = present_collections({f.collection_id for f in found if f.collection_id})
    out = []
    for f in found:
        collection = shown[f.collection_id] if f.collection_id is not None else None
        out.append(
            {
                **attributes(f, FeatureSchema, exclude=("clip", "collection")),
                "clip": clips.get(f.id),
                "collection": collection,
            }
        )
    return out


@blp.route("/featured")
class Featured(MethodView):
    @blp.arguments(FeaturedArgsSchema, location="query")
    @blp.response(200, FeaturedSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """What is featured for you: for the organisation and your teams (or for one team)"""
        found = features.featured_for(db_session(), current_principal(), team_id=args["team_id"])
        return {"items": _present_features(found)}

    @blp.arguments(FeatureCreateSchema)
    @blp.response(201, FeatureSchema)
    @blp.problems(403, 404, 409, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Feature a video, a clip or a collection (enablement, managers, admins)"""
        made = features.feature(db_session(), current_principal(), **body)
        return _present_features([made])[0]


@blp.route("/featured/<uuid:feature_id>")
class FeatureById(MethodView):
    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, feature_id: uuid.UUID) -> None:
        """Stop featuring it"""
        features.unfeature(db_session(), current_principal(), feature_id)
