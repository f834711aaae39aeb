"""Settings, read from the environment once, typed, and validated at start.

Every process (API, worker, scheduler, CLI) builds one `Settings` with `Settings.from_env()`.
A missing or malformed value raises `SettingsError` naming the variable, so a bad deployment
stops at start instead of failing on the first request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fieldcast import versions
from fieldcast.versions import AppVersion
from media.limits import (
    H264_MAX_FRAME_PIXELS,
    H264_MAX_FRAME_SIDE,
    H264_MAX_PIXEL_RATE,
    MAX_FRAME_PIXELS,
    MAX_FRAME_SIDE,
    MAX_PIXEL_RATE,
    MIN_FRAME_SIDE,
)
from media.transcription import ENGINES as TRANSCRIPTION_ENGINES
from notifications.credentials import CredentialsError
from notifications.credentials import service_account_info as read_service_account

# What a browser needs to ask FCM for a registration token (Firebase's "web app" settings and
# the project's Web Push certificate's public key): public values, no secret among them.
FCM_WEB_CONFIG_KEYS = ("apiKey", "appId", "messagingSenderId", "projectId", "vapidKey")


def _fcm_web_config(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    try:
        given = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"FCM_WEB_CONFIG is not JSON: {exc}") from None
    if not isinstance(given, dict):
        raise SettingsError("FCM_WEB_CONFIG must be a JSON object")
    missing = [key for key in FCM_WEB_CONFIG_KEYS if not isinstance(given.get(key), str)]
    extra = sorted(set(given) - set(FCM_WEB_CONFIG_KEYS))
    if missing or extra:
        raise SettingsError(
            f"FCM_WEB_CONFIG needs the strings {', '.join(FCM_WEB_CONFIG_KEYS)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(extra)}" if extra else "")
        )
    if any(not re.fullmatch(r"[A-Za-z0-9:_.\-]{1,200}", given[key]) for key in FCM_WEB_CONFIG_KEYS):
        raise SettingsError("FCM_WEB_CONFIG values are short tokens of letters, digits and :_.-")
    return {key: given[key] for key in FCM_WEB_CONFIG_KEYS}


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


# argon2 needs 8 KiB per lane; passwords are hashed on 4 lanes.
PASSWORD_HASH_MIN_MEMORY_KIB = 32


def _int(
    env: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int = 0,
    maximum: int | None = None,
) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be a boolean (true/false), got {raw!r}")


def _str(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    return raw.strip()


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = _str(env, name)
    if raw is None:
        return ()
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` spellings and pick the psycopg 3 driver."""
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql"}:
        return "postgresql+psycopg" + url[len(parsed.scheme) :]
    if parsed.scheme == "postgresql+psycopg":
        return url
    raise SettingsError(f"DATABASE_URL must be a postgresql:// URL, got scheme {parsed.scheme!r}")


X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
)


@dataclass(frozen=True)
class Limits:
    """Bounds on what clients may send."""

    max_upload_bytes: int = 2 * 1024**3
    max_duration_s: int = 600
    # Pictures the renditions can carry (see media.limits): 4K at 60 fps by default.
    max_frame_pixels: int = MAX_FRAME_PIXELS
    max_frame_side: int = MAX_FRAME_SIDE
    max_pixel_rate: int = MAX_PIXEL_RATE
    max_request_bytes: int = 1024**2
    max_attachment_bytes: int = 100 * 1024**2
    page_size_default: int = 50
    page_size_max: int = 200


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    redis_url: str | None
    storage_url: str
    secret_key: str | None
    data_dir: Path
    public_base_url: str = "http://127.0.0.1:8000"
    # Where links for people point (universal links / app links); PUBLIC_BASE_URL by default.
    app_link_base: str = "http://127.0.0.1:8000"
    s3_endpoint_url: str | None = None
    fcm_credentials: str | None = None
    fcm_project_id: str | None = None
    # The Firebase web app's public configuration (apiKey, appId, messagingSenderId, projectId)
    # and the VAPID public key, from FCM_WEB_CONFIG: browsers get an FCM token with them.
    fcm_web_config: dict[str, str] | None = None
    fcm_endpoint: str = "https://fcm.googleapis.com"
    ffmpeg_binary: str | None = None
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # A browser session (cookie) ends after this long unused, and this long after login at most.
    browser_session_idle_s: int = 7 * 24 * 3600
    browser_session_max_s: int = 30 * 24 * 3600
    # The oldest app versions the API still answers (unset: no minimum), and where to upgrade.
    min_app_version_ios: AppVersion | None = None
    min_app_version_android: AppVersion | None = None
    app_store_url_ios: str | None = None
    app_store_url_android: str | None = None
    login_attempts_per_window: int = 10
    login_window_s: int = 900
    # argon2id's cost for passwords: passes and memory (KiB) per hash. A hash made at other
    # costs still verifies, and is made again at these at its next login.
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65_536
    idempotency_ttl_s: int = 24 * 3600
    cors_origins: tuple[str, ...] = ()
    metrics_token: str | None = None
    trusted_proxy_hops: int = 0
    log_level: str = "INFO"
    log_json: bool = True
    upload_expiry_s: int = 24 * 3600
    outbox_lease_s: int = 60
    playback_url_ttl_s: int = 900
    # How long the URLs handed to a viewer play (a paused player, a resumed download).
    playback_grant_ttl_s: int = 24 * 3600
    # How long an access decision for a viewer's playback is reused: the revocation bound.
    playback_revocation_s: int = 30
    # How long a deleted video can be restored before a worker purges its media and its row.
    video_purge_grace_s: int = 7 * 24 * 3600
    # How long removals are remembered for delta sync; an older sync token answers 410.
    sync_tombstone_days: int = 30
    # How long a push's receipt token (marking it delivered / opened without a bearer token)
    # stays good after the push is sent.
    receipt_token_ttl_s: int = 7 * 24 * 3600
    # The language of pushes to devices that registered no locale (BCP 47).
    default_locale: str = "en"
    media_work_dir: Path | None = None
    media_preset: str = "veryfast"
    # Where team webhooks may point: exact hosts or `*.domain` (any subdomain of it). http is
    # accepted only for loopback hosts listed explicitly, for local testing.
    webhook_allowed_hosts: tuple[str, ...] = (
        "hooks.slack.com",
        "*.webhook.office.com",
        "*.logic.azure.com",
        "*.powerplatform.com",
    )
    # Email: SMTP when SMTP_URL is set, otherwise .eml files in `<data dir>/outbox-mail` and a
    # log line (the embedded default), so invitations and resets work without a mail server.
    smtp_url: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: int = 30
    email_from: str = "Fieldcast <no-reply@localhost>"
    invitation_ttl_s: int = 7 * 24 * 3600
    password_reset_ttl_s: int = 3600
    # Reset emails asked for one address per hour (an address of the network: ten times that).
    password_resets_per_hour: int = 5
    # Comments (replies included) and reactions one person may post per minute.
    comments_per_minute: int = 30
    reactions_per_minute: int = 120
    # Viewing reports one person may send a minute (each report of a batch counts): a player
    # reports every few seconds, and an app back online sends what it kept in batches.
    view_reports_per_minute: int = 600
    # A person pushed about a video's conversation gets further pushes about it within this
    # long folded into one summary push at its end (each event still makes its inbox item).
    comment_push_window_s: int = 60
    # Speech to text of ready videos: the engine (`pocketsphinx`, whose model ships in its wheel;
    # `faster-whisper`, with a model directory the operator provides; `off`), the language
    # spoken, and how many seconds of a video's sound are transcribed at most.
    transcription_engine: str = "pocketsphinx"
    transcription_model_dir: Path | None = None
    transcription_language: str = "en"
    transcription_max_s: int = 900
    # Where a sign-in with the organisation's identity provider may return to the app: exact
    # redirect URIs (an app's custom scheme or universal link); the web app's by default.
    oidc_redirect_uris: tuple[str, ...] = ("http://127.0.0.1:8000/app/",)
    # Whether an identity provider may be reached over plain http on a loopback address (a
    # provider run locally, for trying the flow); https everywhere else.
    oidc_allow_http_loopback: bool = False
    # An organisation's media jobs of each kind (first playable, ladder) queued or running at
    # once; the rest wait their turn, so one organisation's bulk upload never holds up
    # another's first playable rendition for longer than this many jobs.
    media_jobs_per_organisation: int = 2
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(_str(env, "FIELDCAST_DATA_DIR") or "var").resolve()

        database_url = _str(env, "DATABASE_URL")
        if database_url is not None:
            database_url = normalise_database_url(database_url)

        redis_url = _str(env, "REDIS_URL")
        if redis_url is not None and urlparse(redis_url).scheme not in {
            "redis",
            "rediss",
            "unix",
        }:
            raise SettingsError(
                f"REDIS_URL must be a redis://, rediss:// or unix:// URL: {redis_url!r}"
            )

        storage_url = _str(env, "STORAGE_URL") or (data_dir / "media").as_uri()
        scheme = urlparse(storage_url).scheme
        if scheme not in {"file", "s3"}:
            raise SettingsError(
                "STORAGE_URL must be file:///absolute/path or s3://bucket/prefix, "
                f"got {storage_url!r}"
            )
        if scheme == "s3" and not urlparse(storage_url).netloc:
            raise SettingsError(f"STORAGE_URL names no bucket: {storage_url!r}")

        secret_key = _str(env, "SECRET_KEY")
        if secret_key is not None and len(secret_key) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters long")

        fcm_credentials = _str(env, "FCM_CREDENTIALS") or _str(
            env, "GOOGLE_APPLICATION_CREDENTIALS"
        )
        fcm_project_id = _str(env, "FCM_PROJECT_ID")
        if fcm_credentials is not None:
            fcm_project_id = fcm_project_id or _project_id_from_credentials(fcm_credentials)

        fcm_web_config = _fcm_web_config(_str(env, "FCM_WEB_CONFIG"))

        log_level = (_str(env, "LOG_LEVEL") or "INFO").upper()

        playback_url_ttl_s = _int(env, "PLAYBACK_URL_TTL_S", 900, minimum=30)
        playback_grant_ttl_s = _int(
            env, "PLAYBACK_GRANT_TTL_S", 24 * 3600, minimum=300, maximum=30 * 24 * 3600
        )
        if playback_grant_ttl_s < playback_url_ttl_s:
            raise SettingsError(
                "PLAYBACK_GRANT_TTL_S must be at least PLAYBACK_URL_TTL_S "
                f"({playback_grant_ttl_s} < {playback_url_ttl_s})"
            )
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise SettingsError(f"LOG_LEVEL must be a logging level name, got {log_level!r}")

        limits = Limits(
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", Limits.max_upload_bytes, minimum=1),
            max_duration_s=_int(env, "MAX_DURATION_S", Limits.max_duration_s, minimum=1),
            max_frame_pixels=_int(
                env,
                "MAX_FRAME_PIXELS",
                Limits.max_frame_pixels,
                minimum=MIN_FRAME_SIDE**2,
                maximum=H264_MAX_FRAME_PIXELS,
            ),
            max_frame_side=_int(
                env,
                "MAX_FRAME_SIDE",
                Limits.max_frame_side,
                minimum=MIN_FRAME_SIDE,
                maximum=H264_MAX_FRAME_SIDE,
            ),
            max_pixel_rate=_int(
                env,
                "MAX_PIXEL_RATE",
                Limits.max_pixel_rate,
                minimum=MIN_FRAME_SIDE**2,
                maximum=H264_MAX_PIXEL_RATE,
            ),
            max_request_bytes=_int(
                env, "MAX_REQUEST_BYTES", Limits.max_request_bytes, minimum=1024
            ),
            max_attachment_bytes=_int(
                env, "MAX_ATTACHMENT_BYTES", Limits.max_attachment_bytes, minimum=1
            ),
            page_size_default=_int(env, "PAGE_SIZE_DEFAULT", Limits.page_size_default, minimum=1),
            page_size_max=_int(env, "PAGE_SIZE_MAX", Limits.page_size_max, minimum=1),
        )
        if limits.page_size_default > limits.page_size_max:
            raise SettingsError("PAGE_SIZE_DEFAULT must not exceed PAGE_SIZE_MAX")

        work_dir = _str(env, "MEDIA_WORK_DIR")
        media_preset = _str(env, "MEDIA_PRESET") or "veryfast"
        if media_preset not in X264_PRESETS:
            raise SettingsError(
                f"MEDIA_PRESET must be one of {', '.join(X264_PRESETS)}, got {media_preset!r}"
            )

        webhook_allowed_hosts = (
            tuple(pattern.lower().rstrip(".") for pattern in _list(env, "WEBHOOK_ALLOWED_HOSTS"))
            or cls.webhook_allowed_hosts
        )
        for pattern in webhook_allowed_hosts:
            if not re.fullmatch(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?", pattern):
                raise SettingsError(
                    "WEBHOOK_ALLOWED_HOSTS lists hosts (hooks.slack.com) or *.domain patterns, "
                    f"got {pattern!r}"
                )

        public_base_url = (_str(env, "PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
        for name, value in (
            ("PUBLIC_BASE_URL", public_base_url),
            ("APP_LINK_BASE", _str(env, "APP_LINK_BASE") or public_base_url),
        ):
            parsed = urlparse(value)
            if parsed.scheme not in {"http", "https"} or not parsed.netloc:
                raise SettingsError(f"{name} must be an http(s):// URL, got {value!r}")

        browser_session_idle_s = _int(env, "BROWSER_SESSION_IDLE_S", 7 * 24 * 3600, minimum=60)
        browser_session_max_s = _int(env, "BROWSER_SESSION_MAX_S", 30 * 24 * 3600, minimum=60)
        if browser_session_idle_s > browser_session_max_s:
            raise SettingsError("BROWSER_SESSION_IDLE_S must not exceed BROWSER_SESSION_MAX_S")
        min_versions: dict[str, AppVersion | None] = {}
        for name in ("MIN_APP_VERSION_IOS", "MIN_APP_VERSION_ANDROID"):
            text = _str(env, name)
            min_versions[name] = versions.parse(text) if text is not None else None
            if text is not None and min_versions[name] is None:
                raise SettingsError(f"{name} must be a version such as 2.4.0, got {text!r}")
        store_urls: dict[str, str | None] = {}
        for name in ("APP_STORE_URL_IOS", "APP_STORE_URL_ANDROID"):
            store_urls[name] = _str(env, name)
            parsed = urlparse(store_urls[name] or "")
            if store_urls[name] is not None and (
                parsed.scheme not in {"http", "https"} or not parsed.netloc
            ):
                raise SettingsError(f"{name} must be an http(s):// URL, got {store_urls[name]!r}")
        default_locale = _str(env, "DEFAULT_LOCALE") or "en"
        if not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*", default_locale):
            raise SettingsError(
                f"DEFAULT_LOCALE must be a BCP 47 language tag (en, de-DE), got {default_locale!r}"
            )
        smtp_url = _str(env, "SMTP_URL")
        if smtp_url is not None:
            parsed_smtp = urlparse(smtp_url)
            if parsed_smtp.scheme not in {"smtp", "smtps"} or not parsed_smtp.hostname:
                raise SettingsError(
                    "SMTP_URL must be smtp://user:password@host:port or smtps://..., "
                    f"got scheme {parsed_smtp.scheme!r}"
                )
            try:
                parsed_smtp.port  # noqa: B018 - raises on a port that is not a number
            except ValueError:
                raise SettingsError("SMTP_URL has a port that is not a number") from None
        smtp_starttls = _bool(env, "SMTP_STARTTLS", False)
        if smtp_starttls and smtp_url is not None and smtp_url.startswith("smtps:"):
            raise SettingsError("SMTP_STARTTLS applies to smtp:// URLs; smtps:// is TLS already")
        email_from = _str(env, "EMAIL_FROM") or cls.email_from
        if "@" not in email_from or any(c in email_from for c in "\r\n"):
            raise SettingsError(f"EMAIL_FROM must be an address, got {email_from!r}")

        transcription_engine = (_str(env, "TRANSCRIPTION_ENGINE") or "pocketsphinx").lower()
        if transcription_engine not in TRANSCRIPTION_ENGINES:
            raise SettingsError(
                f"TRANSCRIPTION_ENGINE must be one of {', '.join(TRANSCRIPTION_ENGINES)}, "
                f"got {transcription_engine!r}"
            )
        model_dir = _str(env, "TRANSCRIPTION_MODEL_DIR")
        transcription_model_dir = Path(model_dir).resolve() if model_dir else None
        if transcription_engine == "faster-whisper" and (
            transcription_model_dir is None or not transcription_model_dir.is_dir()
        ):
            raise SettingsError(
                "TRANSCRIPTION_ENGINE=faster-whisper needs TRANSCRIPTION_MODEL_DIR, the directory "
                f"of a converted Whisper model, got {model_dir!r}"
            )
        transcription_language = (_str(env, "TRANSCRIPTION_LANGUAGE") or "en").lower()
        if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", transcription_language):
            raise SettingsError(
                "TRANSCRIPTION_LANGUAGE must be a language code (en, de), "
                f"got {transcription_language!r}"
            )
        if transcription_engine == "pocketsphinx" and transcription_language.split("-")[0] != "en":
            raise SettingsError(
                "TRANSCRIPTION_LANGUAGE: pocketsphinx transcribes English only; "
                "use TRANSCRIPTION_ENGINE=faster-whisper for other languages"
            )

        oidc_redirect_uris = _list(env, "OIDC_REDIRECT_URIS") or (f"{public_base_url}/app/",)
        for uri in oidc_redirect_uris:
            parsed = urlparse(uri)
            if (
                not parsed.scheme
                or "#" in uri
                or (parsed.scheme in {"http", "https"} and not parsed.netloc)
            ):
                raise SettingsError(
                    "OIDC_REDIRECT_URIS lists absolute URIs without a fragment (https://..., "
                    f"com.example.app:/signed-in), got {uri!r}"
                )

        return cls(
            database_url=database_url,
            redis_url=redis_url,
            storage_url=storage_url,
            secret_key=secret_key,
            data_dir=data_dir,
            public_base_url=public_base_url,
            app_link_base=(_str(env, "APP_LINK_BASE") or public_base_url).rstrip("/"),
            s3_endpoint_url=_str(env, "S3_ENDPOINT_URL"),
            fcm_credentials=fcm_credentials,
            fcm_project_id=fcm_project_id,
            fcm_web_config=fcm_web_config,
            fcm_endpoint=(_str(env, "FCM_ENDPOINT") or "https://fcm.googleapis.com").rstrip("/"),
            ffmpeg_binary=_str(env, "FFMPEG_BINARY"),
            access_token_ttl_s=_int(env, "ACCESS_TOKEN_TTL_S", 900, minimum=30),
            refresh_token_ttl_s=_int(env, "REFRESH_TOKEN_TTL_S", 30 * 24 * 3600, minimum=60),
            browser_session_idle_s=browser_session_idle_s,
            browser_session_max_s=browser_session_max_s,
            min_app_version_ios=min_versions["MIN_APP_VERSION_IOS"],
            min_app_version_android=min_versions["MIN_APP_VERSION_ANDROID"],
            app_store_url_ios=store_urls["APP_STORE_URL_IOS"],
            app_store_url_android=store_urls["APP_STORE_URL_ANDROID"],
            login_attempts_per_window=_int(env, "LOGIN_ATTEMPTS_PER_WINDOW", 10, minimum=1),
            login_window_s=_int(env, "LOGIN_WINDOW_S", 900, minimum=1),
            password_hash_time_cost=_int(env, "PASSWORD_HASH_TIME_COST", 3, minimum=1),
            password_hash_memory_kib=_int(
                env, "PASSWORD_HASH_MEMORY_KIB", 65_536, minimum=PASSWORD_HASH_MIN_MEMORY_KIB
            ),
            idempotency_ttl_s=_int(env, "IDEMPOTENCY_TTL_S", 24 * 3600, minimum=60),
            cors_origins=_list(env, "CORS_ORIGINS"),
            metrics_token=_str(env, "METRICS_TOKEN"),
            trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 0),
            log_level=log_level,
            log_json=_bool(env, "LOG_JSON", True),
            upload_expiry_s=_int(env, "UPLOAD_EXPIRY_S", 24 * 3600, minimum=60),
            outbox_lease_s=_int(env, "OUTBOX_LEASE_S", 60, minimum=2),
            playback_url_ttl_s=playback_url_ttl_s,
            playback_grant_ttl_s=playback_grant_ttl_s,
            playback_revocation_s=_int(env, "PLAYBACK_REVOCATION_S", 30, maximum=300),
            video_purge_grace_s=_int(
                env, "VIDEO_PURGE_GRACE_S", 7 * 24 * 3600, minimum=0, maximum=365 * 24 * 3600
            ),
            sync_tombstone_days=_int(env, "SYNC_TOMBSTONE_DAYS", 30, minimum=1, maximum=3650),
            receipt_token_ttl_s=_int(
                env, "RECEIPT_TOKEN_TTL_S", 7 * 24 * 3600, minimum=60, maximum=90 * 24 * 3600
            ),
            default_locale=default_locale,
            media_work_dir=Path(work_dir).resolve() if work_dir else None,
            media_preset=media_preset,
            webhook_allowed_hosts=webhook_allowed_hosts,
            smtp_url=smtp_url,
            smtp_starttls=smtp_starttls,
            smtp_timeout_s=_int(env, "SMTP_TIMEOUT_S", 30, minimum=1, maximum=600),
            email_from=email_from,
            invitation_ttl_s=_int(env, "INVITATION_TTL_S", 7 * 24 * 3600, minimum=300),
            password_reset_ttl_s=_int(env, "PASSWORD_RESET_TTL_S", 3600, minimum=300),
            password_resets_per_hour=_int(env, "PASSWORD_RESETS_PER_HOUR", 5, minimum=1),
            comments_per_minute=_int(env, "COMMENTS_PER_MINUTE", 30, minimum=1),
            reactions_per_minute=_int(env, "REACTIONS_PER_MINUTE", 120, minimum=1),
            view_reports_per_minute=_int(env, "VIEW_REPORTS_PER_MINUTE", 600, minimum=1),
            comment_push_window_s=_int(env, "COMMENT_PUSH_WINDOW_S", 60, minimum=0, maximum=3600),
            transcription_engine=transcription_engine,
            transcription_model_dir=transcription_model_dir,
            transcription_language=transcription_language,
            transcription_max_s=_int(env, "TRANSCRIPTION_MAX_S", 900, minimum=1, maximum=4 * 3600),
            oidc_redirect_uris=oidc_redirect_uris,
            oidc_allow_http_loopback=_bool(env, "OIDC_ALLOW_HTTP_LOOPBACK", False),
            media_jobs_per_organisation=_int(
                env, "MEDIA_JOBS_PER_ORGANISATION", 2, minimum=1, maximum=10_000
            ),
            limits=limits,
        )

    def require(self, *names: str) -> None:
        """Fail fast when a process that needs external services starts without them."""
        missing = [name for name in names if getattr(self, name.lower()) in (None, "")]
        if missing:
            raise SettingsError(
                "missing required settings: "
                + ", ".join(missing)
                + " (run `fieldcast serve` for the embedded default instead)"
            )


def _project_id_from_credentials(credentials: str) -> str | None:
    """Read `project_id` from a service-account JSON given inline or as a path."""
    project_id = service_account_info(credentials).get("project_id")
    return str(project_id) if project_id else None


def service_account_info(credentials: str) -> dict[str, Any]:
    """A service-account JSON given inline or as a path, read and checked at start."""
    try:
        return read_service_account(credentials)
    except CredentialsError as exc:
        raise SettingsError(str(exc)) from None
