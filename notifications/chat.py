"""Chat webhooks as a transport: which URLs a webhook may be, and one POST of a message to one.

Slack and Microsoft Teams incoming webhooks take a JSON message by HTTP POST. This module knows
the URLs they may have (https, on an allowed host, on the default port: an admin cannot aim the
workers at internal addresses) and how to post: no redirects followed, bounded timeouts, and an
answer classified as done, worth trying again (429, 5xx, timeouts) or refused for good.

A webhook URL is a credential: whoever holds it can post to the channel. Nothing here puts it in
an error or a log line; errors name the caller's label and the host, and the exceptions of
`requests`, whose text does contain the URL, are not chained.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from notifications.headers import retry_after_seconds

MAX_URL = 2048
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
# A remote asking for more than this is treated as asking for this: the job stays alive.
MAX_RETRY_AFTER_S = 3600.0
# http and non-default ports are accepted for these only, and only when listed explicitly.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


class UrlRefused(ValueError):
    """A URL no webhook may have. `reason` says which rule it breaks: `invalid`, `not_https`,
    `host_not_allowed` or `kind_mismatch`; the message says it to the person who typed it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class WebhookUnavailable(Exception):
    """The chat service did not take the post, and trying again later may succeed."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WebhookRejected(Exception):
    """The chat service refused the post for good (a 4xx other than 429, a redirect)."""


# -- URLs --------------------------------------------------------------------------------------


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` is one of `patterns`: an exact host, or `*.domain` for any subdomain of
    `domain` (not `domain` itself)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def is_slack_host(host: str) -> bool:
    return host == "slack.com" or host.endswith(".slack.com")


def check_url(url: str, *, slack: bool, allowed_hosts: Sequence[str]) -> str:
    """The URL, stripped, if a Slack (`slack`) or Teams webhook may point at it; else
    UrlRefused.

    https only, on a host of `allowed_hosts`, on the default port. http (and another port) is
    accepted only for loopback hosts listed explicitly, for local testing. A Slack URL must be
    a Slack webhook's and a Teams URL a Teams webhook's.
    """
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise UrlRefused("invalid", f"Webhook URLs are 1-{MAX_URL} characters.")
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        raise UrlRefused("invalid", "Paste the URL exactly as the chat service shows it.")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        raise UrlRefused("invalid", "This is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not host:
        raise UrlRefused("invalid", "Webhook URLs start with https:// and a host.")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("invalid", "Webhook URLs carry no user name or password.")
    local = host in LOOPBACK_HOSTS and host in allowed_hosts
    if scheme != "https" and not local:
        raise UrlRefused("not_https", "Webhook URLs start with https://.")
    if not host_allowed(host, allowed_hosts):
        raise UrlRefused(
            "host_not_allowed",
            f"{host} is not a Slack or Microsoft Teams webhook host "
            f"(allowed: {', '.join(allowed_hosts)}).",
        )
    if port not in (None, 443) and not local:
        raise UrlRefused("invalid", "Webhook URLs use the default https port.")
    is_slack = is_slack_host(host)
    if not local and slack != is_slack:
        expected = "slack" if is_slack else "teams"
        raise UrlRefused(
            "kind_mismatch", f"This is a {expected} webhook URL; send kind `{expected}`."
        )
    return url


def masked(url: str) -> str:
    """What may be shown of a webhook URL: its scheme, host and last 4 characters."""
    try:
        parts = urlsplit(url)
        default = {"https": 443, "http": 80}.get(parts.scheme)
        port = f":{parts.port}" if parts.port not in (None, default) else ""
    except ValueError:
        return "…"
    return f"{parts.scheme}://{parts.hostname or ''}{port}/…{url[-4:]}"


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


# -- posting -----------------------------------------------------------------------------------


def _retry_after(response: requests.Response) -> float | None:
    """The remote's Retry-After in seconds, capped."""
    seconds = retry_after_seconds(response.headers.get("Retry-After"))
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER_S)


def _secrets_of(url: str) -> list[str]:
    """The parts of a webhook URL that must not appear in an error: the URL, its path and
    query, and every path segment or query value long enough to be a token."""
    parts = urlsplit(url)
    pieces = [url, parts.path, parts.query]
    pieces += [segment for segment in parts.path.split("/") if len(segment) >= 8]
    pieces += [value for _, value in parse_qsl(parts.query) if len(value) >= 8]
    return sorted({p for p in pieces if p}, key=len, reverse=True)


def _excerpt(response: requests.Response, url: str) -> str:
    """The start of the remote's answer (Slack says why: `channel_not_found`), without any
    piece of the URL."""
    try:
        text = " ".join(response.text[:300].split())[:200]
    except Exception:
        return ""
    for secret in _secrets_of(url):
        text = text.replace(secret, "…")
    return f" ({text})" if text else ""


_HINTS = {
    400: "the chat service refused the message",
    401: "the webhook no longer accepts posts",
    403: "the webhook no longer accepts posts (a disabled app or an archived channel)",
    404: "the channel or its webhook is gone; an admin should replace the webhook",
    410: "the channel or its webhook is gone; an admin should replace the webhook",
}


def post(url: str, message: dict[str, Any], *, label: str) -> None:
    """POST `message` to a webhook URL. Returns on 2xx; raises WebhookUnavailable when trying
    again may succeed (429, 5xx, timeouts, connection errors) and WebhookRejected otherwise.

    Errors start with `label` and the host (`webhook <id> (hooks.slack.com)`), never the URL.
    """
    where = f"{label} ({host_of(url)})"
    try:
        response = requests.post(
            url,
            json=message,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            allow_redirects=False,
            headers={"User-Agent": "Fieldcast"},
        )
    except requests.Timeout:
        raise WebhookUnavailable(f"{where} timed out") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        raise WebhookUnavailable(f"{where}: the connection failed") from None
    except (requests.RequestException, ValueError) as exc:
        raise WebhookRejected(f"{where}: the request failed ({type(exc).__name__})") from None
    with response:
        status = response.status_code
        if 200 <= status < 300:
            return
        answer = f"{where} answered {status}{_excerpt(response, url)}"
        if status == 429 or status >= 500:
            raise WebhookUnavailable(answer, retry_after=_retry_after(response))
        if 300 <= status < 400:
            raise WebhookRejected(f"{answer}: redirects are not followed")
        raise WebhookRejected(f"{answer}: {_HINTS.get(status, 'the chat service refused it')}")
