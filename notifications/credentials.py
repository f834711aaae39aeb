"""The FCM service account, read the same way by the settings check and the sender."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class CredentialsError(ValueError):
    """FCM_CREDENTIALS is not a readable service-account JSON."""


def service_account_info(credentials: str) -> dict[str, Any]:
    """A service-account JSON given inline or as a path, read and checked."""
    try:
        text = (
            credentials if credentials.lstrip().startswith("{") else Path(credentials).read_text()
        )
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"FCM_CREDENTIALS is not a readable service-account JSON: {exc}"
        ) from None
    if not isinstance(data, dict) or data.get("type") != "service_account":
        raise CredentialsError(
            "FCM_CREDENTIALS must be a service-account JSON (type: service_account)"
        )
    return data
