"""The Api, Blueprint and Schema base classes, subclassed once for the whole API."""

from __future__ import annotations

import functools
import http
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask_smorest import Api as BaseApi
from flask_smorest import Blueprint as BaseBlueprint
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from api.fields import REFUSED_MESSAGE, first_unstorable, json_type_errors
from api.problems import PROBLEM_CONTENT_TYPE, ProblemSchema, from_http_exception
from fieldcast.errors import ErrorCode, InvalidInput
from fieldcast.idempotency import services as idempotency

F = TypeVar("F", bound=Callable[..., Any])

PUBLIC_ATTR = "_fieldcast_public"

IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A client-generated unique key (for example a UUID) per logical operation. "
        "Retrying a POST with the same key and body replays the first response instead of "
        "acting twice (header `Idempotent-Replayed: true`). Keys are kept for 24 hours."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_KEY_LENGTH},
}


SERVICE_UNAVAILABLE_DOC = {
    "description": (
        "PostgreSQL or Redis is unavailable for a moment (code `service_unavailable`): wait "
        "`Retry-After` seconds and retry the same request."
    ),
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


class Schema(ma.Schema):
    """Base schema: unknown fields are errors, so typos in a client surface at once; text the
    database cannot store is refused wherever it sits (body, query, form, keys of objects,
    items of lists)."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load
    def refuse_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, Mapping):
            errors = {
                str(name): [REFUSED_MESSAGE]
                for name in data
                if first_unstorable(name) or first_unstorable(data[name])
            }
            if errors:
                raise ma.ValidationError(errors)
        return data


@functools.cache
def _instance_of(schema: type[ma.Schema]) -> ma.Schema:
    return schema()


class ArgumentsParser(FlaskParser):
    """webargs' parser, where JSON nested deeper than the parser can follow is an invalid body
    (400) instead of an unexpected error, and a JSON body's values have the JSON types the
    document gives them (`json_type_errors`, 422)."""

    def pre_load(self, location_data: Any, *, schema: ma.Schema, req: Any, location: str) -> Any:
        if location == "json":
            errors = json_type_errors(schema, location_data)
            if errors:
                raise ma.ValidationError(errors)
        return super().pre_load(location_data, schema=schema, req=req, location=location)

    def _get_schema(self, argmap: Any, req: Any) -> ma.Schema:
        # A schema class is made into an instance once, not on every request: loading keeps
        # no state on the instance.
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            return _instance_of(argmap)
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: Any) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            error = json.JSONDecodeError("nested too deeply", "", 0)
            return self._handle_invalid_json_error(error, req)


EMPTY_PATCH = "The request names no field to change."


class PatchSchema(Schema):
    """A partial update: every field is optional, but a body that names none is refused
    (422 `empty_patch`) rather than answered as if something changed."""

    @ma.validates_schema
    def names_a_field(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise InvalidInput(EMPTY_PATCH, code=ErrorCode.EMPTY_PATCH)


class _Converter(OpenAPIConverter):
    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema: dict[str, Any] = super().schema2jsonschema(schema)
        if isinstance(schema, PatchSchema):
            jsonschema["minProperties"] = 1
        # Rules across fields that the code enforces, written for the document too.
        jsonschema.update(getattr(schema, "openapi_extra", {}))
        return jsonschema

    def field2property(self, field: ma.fields.Field) -> dict[str, Any]:
        ret: dict[str, Any] = super().field2property(field)
        # Under OpenAPI 3.0 apispec documents a nullable nested object as "that object, or
        # any object at all", so fields the nested schema requires would read as optional.
        # Only null is meant.
        for option in ret.get("anyOf", []):
            if option == {"type": "object", "nullable": True}:
                option["enum"] = [None]
        return ret


class _MarshmallowPlugin(MarshmallowPlugin):
    Converter = _Converter


class Api(BaseApi):
    """flask-smorest's Api, where a blueprint's operations are written into the OpenAPI
    document when the document is first read (`/openapi.json`, `/docs`, a test), not when the
    blueprint is registered: documenting every operation is most of what making an app costs,
    and an API process that never serves the document never pays for it."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = "DEFAULT_ERROR"

    def __init__(self, app: Any = None, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        self._undocumented: list[tuple[Any, str, Any]] = []
        self._documenting = threading.RLock()
        self._busy = False
        spec_kwargs = {"marshmallow_plugin": _MarshmallowPlugin(), **(spec_kwargs or {})}
        super().__init__(app, spec_kwargs=spec_kwargs)

    @property
    def spec(self) -> Any:
        if self._undocumented:
            # Another thread reading meanwhile waits for the whole document; the documenting
            # itself (which may read `spec`) gets it as it stands.
            with self._documenting:
                if not self._busy:
                    self._busy = True
                    try:
                        while self._undocumented:
                            blueprint, name, parameters = self._undocumented[0]
                            blueprint.register_views_in_doc(
                                self, self._app, self._spec, name=name, parameters=parameters
                            )
                            self._spec.tag({"name": name, "description": blueprint.description})
                            self._undocumented.pop(0)
                    finally:
                        self._busy = False
        return self._spec

    @spec.setter
    def spec(self, value: Any) -> None:
        self._spec = value

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        """Route the blueprint now; document it when the document is read."""
        name = options.get("name", blp.name)
        self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
        self._app.register_blueprint(blp, **options)
        self._undocumented.append((blp, name, parameters))

    def handle_http_exception(self, error: HTTPException) -> Any:
        return from_http_exception(error)

    def _register_responses(self) -> None:
        # Same as flask-smorest's, with the problem+json media type on every error response.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if status == 503:
                response.update(SERVICE_UNAVAILABLE_DOC)
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default: dict[str, Any] = {
            "description": "Default error response",
            "schema": self.ERROR_SCHEMA,
        }
        prepare_response(default, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


class Blueprint(BaseBlueprint):
    """Adds the project's conventions to every operation's documentation:
    401 on authenticated operations, 422 where there is input, the Idempotency-Key header (and
    the 409 and 422 it can give) on authenticated POSTs, 503 when a dependency is down."""

    ARGUMENTS_PARSER = ArgumentsParser()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_conventions_doc)

    @staticmethod
    def _prepare_conventions_doc(
        doc: dict[str, Any], doc_info: dict[str, Any], *, method: str, **kwargs: Any
    ) -> dict[str, Any]:
        manual = doc_info.get("manual_doc", {})
        is_public = manual.get("security") == []
        responses = doc.setdefault("responses", {})
        if not is_public:
            responses.setdefault("401", "UNAUTHORIZED")
        # Any operation can meet an outage of PostgreSQL or Redis.
        responses.setdefault("503", "SERVICE_UNAVAILABLE")
        if doc_info.get("arguments"):
            responses.setdefault("422", http.HTTPStatus(422).name)
        if method == "post" and not is_public:
            doc.setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)
            responses.setdefault("409", "CONFLICT")
            # A malformed Idempotency-Key is refused on every POST.
            responses.setdefault("422", http.HTTPStatus(422).name)
        return doc

    def _store_endpoint_docs(
        self, endpoint: str, obj: Any, parameters: Any, tags: Any, **options: Any
    ) -> None:
        """Give every operation a stable `operationId` (unless it names one): the HTTP method
        and the view's name, `getVideoById`, `postShareRecall`. Client generators (Swift,
        Kotlin, Python) name their methods after it; without one they make names of the path."""
        super()._store_endpoint_docs(endpoint, obj, parameters, tags, **options)
        name = obj.__name__
        view = name if isinstance(obj, type) else "".join(p.title() for p in name.split("_"))
        for method, doc in self._docs[endpoint].items():
            if method == "parameters" or not isinstance(doc, dict):
                continue
            manual = doc.setdefault("manual_doc", {})
            manual.setdefault("operationId", f"{method}{view}")

    def problems(self, *statuses: int) -> Callable[[F], F]:
        """Document the error responses an operation can give, beyond the automatic ones."""

        def decorator(func: F) -> F:
            for status in statuses:
                func = self.alt_response(status, response=http.HTTPStatus(status).name)(func)
            return func

        return decorator


def public(func: F) -> F:
    """Mark an operation as reachable without a bearer token."""
    func = BaseBlueprint.doc(security=[])(func)
    setattr(func, PUBLIC_ATTR, True)
    return func
