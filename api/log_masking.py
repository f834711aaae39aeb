"""What request logs leave out: the secrets that travel in URLs.

An upload URL's last path segment works without a token (a capability for background
transfers), a playback URL's `g`/`sig` query parameters play the video for a day, an email's
link carries its invitation or password-reset `token`, and a sign-in returns with a one-time
`code` (from the identity provider to the API, from the API to the app). Whoever
reads a log must not be able to use what it holds, so every request log (the API's own JSON
log, gunicorn's access log) passes paths and request lines through `mask_secrets`.
"""

from __future__ import annotations

import re

_UPLOAD_SECRET = re.compile(r"(/api/v1/uploads/[^/?#\s\"]+/)[^/?#\s\"]+")
_SIGNED_PARAMETER = re.compile(r"([?&](?:g|sig|token|code)=)[^&#\s\"]+")


def mask_secrets(text: str) -> str:
    """A path, URL or request line with every such secret replaced by `<secret>`."""
    return _SIGNED_PARAMETER.sub(r"\1<secret>", _UPLOAD_SECRET.sub(r"\1<secret>", text))
