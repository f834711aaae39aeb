"""Every URL the product hands out about itself, built from configuration only.

Links are never built from the incoming request's Host header: behind a proxy, or when a
client sends a forged Host, that would hand out URLs to somewhere else. The API's own URLs
(uploads, playback, downloads, receipts) start with `PUBLIC_BASE_URL`; links meant for a
person (push deep links, chat cards, emails) start with `APP_LINK_BASE`, the address the
iOS and Android apps claim as universal links / app links (by default `PUBLIC_BASE_URL`).
Storage and CDN URLs come from the storage's own configuration, not from here.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from fieldcast.settings import Settings


def api_url(settings: Settings, path: str) -> str:
    """An absolute URL of this API: `path` starts with '/' (and may carry a query)."""
    if not path.startswith("/"):
        raise ValueError(f"an API path starts with '/': {path!r}")
    return settings.public_base_url + path


def app_link(settings: Settings, path: str, **query: str | None) -> str:
    """A link a person opens: the app when installed (universal link / app link), else the
    web. `query` values of None are left out."""
    if not path.startswith("/"):
        raise ValueError(f"an app link path starts with '/': {path!r}")
    params = {key: value for key, value in query.items() if value is not None}
    return settings.app_link_base + path + (f"?{urlencode(params)}" if params else "")


def video_link(
    settings: Settings,
    video_id: uuid.UUID,
    *,
    share_id: uuid.UUID | None = None,
    comment_id: uuid.UUID | None = None,
    at_ms: int | None = None,
    end_ms: int | None = None,
) -> str:
    """Where a person lands to watch a video (from a push, a chat card or an email); for a
    comment, the comment to show and the moment to open the player at; for a clip, its range
    (`t` to `end`, milliseconds), which the player keeps to."""
    return app_link(
        settings,
        f"/videos/{video_id}",
        share=str(share_id) if share_id else None,
        comment=str(comment_id) if comment_id else None,
        t=str(at_ms) if at_ms is not None else None,
        end=str(end_ms) if end_ms is not None else None,
    )
