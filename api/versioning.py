"""The API's version policy in code: the oldest app versions it still answers (426 below them)
and the `Deprecation` / `Sunset` headers of operations on their way out.

Policy (README, "API versions"): the path carries the major version (/api/v1); within v1 changes
are additive only; an operation or field to be removed is first marked deprecated, with
`Deprecation` (RFC 9745) and `Sunset` (RFC 8594) headers at least `MIN_NOTICE_MONTHS` months
before it goes.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from email.utils import format_datetime
from typing import Any, TypeVar

from flask import Response, after_this_request, json, request
from flask_smorest import Blueprint as BaseBlueprint

from api.problems import PROBLEM_CONTENT_TYPE, problem_body
from fieldcast import versions
from fieldcast.errors import ErrorCode
from fieldcast.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

APP_VERSION_HEADER = "X-App-Version"
APP_PLATFORM_HEADER = "X-App-Platform"
MIN_NOTICE_MONTHS = 6


# -- minimum app versions --------------------------------------------------------------------


def _minimum(settings: Settings, platform: str) -> tuple[versions.AppVersion | None, str | None]:
    if platform == "ios":
        return settings.min_app_version_ios, settings.app_store_url_ios
    if platform == "android":
        return settings.min_app_version_android, settings.app_store_url_android
    return None, None  # the web app is always the current one; scripts send no platform


def check_app_version(settings: Settings) -> Response | None:
    """`before_request` for /api/: an app older than its platform's minimum gets 426 with the
    minimum and where to upgrade, on every operation (logging in included), before anything
    else is looked at. Requests without the headers (the web app, scripts, integrations) pass."""
    if request.method == "OPTIONS" or not request.path.startswith("/api/"):
        return None
    platform = request.headers.get(APP_PLATFORM_HEADER, "").strip().lower()
    minimum, upgrade_url = _minimum(settings, platform)
    sent = request.headers.get(APP_VERSION_HEADER)
    if minimum is None or sent is None:
        return None
    version = versions.parse(sent)
    if version is None:
        body = problem_body(
            400,
            ErrorCode.INVALID_APP_VERSION,
            detail=f"{APP_VERSION_HEADER} must be a version such as 2.4.1.",
        )
        return Response(json.dumps(body), status=400, mimetype=PROBLEM_CONTENT_TYPE)
    if version >= minimum:
        return None
    body = problem_body(
        426,
        ErrorCode.APP_VERSION_UNSUPPORTED,
        title="Upgrade Required",
        detail=f"This version of the app ({version}) is no longer supported; update to "
        f"{minimum} or later.",
    )
    body.update(platform=platform, minimum_version=str(minimum))
    if upgrade_url:
        body["upgrade_url"] = upgrade_url
    return Response(json.dumps(body), status=426, mimetype=PROBLEM_CONTENT_TYPE)


# -- deprecated operations -------------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def deprecated(*, since: date, sunset: date, link: str | None = None) -> Callable[[F], F]:
    """Mark an operation deprecated from `since` and removed after `sunset`.

    Its answers carry `Deprecation: @<epoch seconds>` (RFC 9745), `Sunset: <HTTP-date>`
    (RFC 8594) and, with `link`, `Link: <link>; rel="deprecation"`; the OpenAPI document marks
    it `deprecated`. A sunset closer than the policy's notice is refused when the module loads.
    """
    if sunset < _add_months(since, MIN_NOTICE_MONTHS):
        raise ValueError(
            f"a deprecated operation keeps working at least {MIN_NOTICE_MONTHS} months: "
            f"sunset {sunset} is too soon after {since}"
        )
    since_at = datetime.combine(since, time(), tzinfo=UTC)
    sunset_at = datetime.combine(sunset, time(), tzinfo=UTC)
    headers = {
        "Deprecation": f"@{int(since_at.timestamp())}",
        "Sunset": format_datetime(sunset_at, usegmt=True),
    }
    if link:
        headers["Link"] = f'<{link}>; rel="deprecation"; type="text/html"'

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            @after_this_request
            def add_headers(response: Response) -> Response:
                for name, value in headers.items():
                    if name == "Link" and response.headers.get("Link"):
                        response.headers["Link"] += ", " + value
                    else:
                        response.headers[name] = value
                return response

            return func(*args, **kwargs)

        extensions = {"x-deprecated-since": since.isoformat(), "x-sunset": sunset.isoformat()}
        documented: F = BaseBlueprint.doc(deprecated=True, **extensions)(wrapper)
        return documented

    return decorator
