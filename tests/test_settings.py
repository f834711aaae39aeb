"""Configuration is read once and fails fast with a message naming the variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fieldcast.settings import Settings, SettingsError


def test_defaults_point_at_the_data_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"FIELDCAST_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None
    assert settings.storage_url == (tmp_path / "media").as_uri()
    assert settings.fcm_endpoint == "https://fcm.googleapis.com"


def test_push_receipts_and_language_have_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.receipt_token_ttl_s == 7 * 24 * 3600
    assert settings.default_locale == "en"
    chosen = Settings.from_env({"RECEIPT_TOKEN_TTL_S": "3600", "DEFAULT_LOCALE": "de-DE"})
    assert (chosen.receipt_token_ttl_s, chosen.default_locale) == (3600, "de-DE")


def test_database_url_spellings_select_psycopg() -> None:
    for given in ("postgres://u@h/db", "postgresql://u@h/db"):
        assert Settings.from_env({"DATABASE_URL": given}).database_url == (
            "postgresql+psycopg://u@h/db"
        )


WEB_CONFIG = {
    "apiKey": "AIzaSyExampleExampleExampleExample00",
    "appId": "1:1234567890:web:abcdef0123456789",
    "messagingSenderId": "1234567890",
    "projectId": "acme-app",
    "vapidKey": "BExampleVapidPublicKey_-0123456789",
}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"STORAGE_URL": "ftp://x"}, "STORAGE_URL"),
        ({"STORAGE_URL": "s3://"}, "bucket"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
        ({"MAX_UPLOAD_BYTES": "0"}, "MAX_UPLOAD_BYTES"),
        ({"MAX_FRAME_PIXELS": "lots"}, "MAX_FRAME_PIXELS"),
        ({"MAX_FRAME_PIXELS": str(8192 * 8192)}, "MAX_FRAME_PIXELS"),  # past H.264 itself
        ({"MAX_FRAME_SIDE": "8"}, "MAX_FRAME_SIDE"),
        ({"MAX_FRAME_SIDE": "16384"}, "MAX_FRAME_SIDE"),
        ({"MAX_PIXEL_RATE": "0"}, "MAX_PIXEL_RATE"),
        ({"LOG_JSON": "maybe"}, "LOG_JSON"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"FCM_CREDENTIALS": "/does/not/exist.json"}, "FCM_CREDENTIALS"),
        ({"RECEIPT_TOKEN_TTL_S": "10"}, "RECEIPT_TOKEN_TTL_S"),
        ({"RECEIPT_TOKEN_TTL_S": str(365 * 24 * 3600)}, "RECEIPT_TOKEN_TTL_S"),
        ({"DEFAULT_LOCALE": "German"}, "DEFAULT_LOCALE"),
        ({"TRANSCRIPTION_ENGINE": "whisper.cpp"}, "TRANSCRIPTION_ENGINE"),
        ({"TRANSCRIPTION_ENGINE": "faster-whisper"}, "TRANSCRIPTION_MODEL_DIR"),
        ({"TRANSCRIPTION_LANGUAGE": "de"}, "English only"),
        ({"TRANSCRIPTION_MAX_S": "0"}, "TRANSCRIPTION_MAX_S"),
        ({"FCM_WEB_CONFIG": "{not json"}, "FCM_WEB_CONFIG is not JSON"),
        ({"FCM_WEB_CONFIG": '["apiKey"]'}, "FCM_WEB_CONFIG must be a JSON object"),
        ({"FCM_WEB_CONFIG": '{"apiKey": "k"}'}, "missing appId, messagingSenderId"),
        ({"FCM_WEB_CONFIG": json.dumps({**WEB_CONFIG, "secret": "x"})}, "unknown secret"),
        ({"FCM_WEB_CONFIG": json.dumps({**WEB_CONFIG, "appId": "<script>"})}, "short tokens"),
    ],
)
def test_bad_values_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_web_push_settings_are_the_firebase_web_apps_public_ones() -> None:
    assert Settings.from_env({}).fcm_web_config is None
    settings = Settings.from_env({"FCM_WEB_CONFIG": json.dumps(WEB_CONFIG)})
    assert settings.fcm_web_config == WEB_CONFIG


def test_fcm_project_comes_from_the_service_account(tmp_path: Path) -> None:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "acme-app"}))
    settings = Settings.from_env({"GOOGLE_APPLICATION_CREDENTIALS": str(path)})
    assert settings.fcm_credentials == str(path)
    assert settings.fcm_project_id == "acme-app"


def test_require_names_what_is_missing() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL, SECRET_KEY"):
        Settings.from_env({"REDIS_URL": "redis://x"}).require(
            "DATABASE_URL", "REDIS_URL", "SECRET_KEY"
        )


def test_media_limits_default_to_4k_at_60_fps_and_can_be_set() -> None:
    limits = Settings.from_env({}).limits
    assert 3840 * 2160 <= limits.max_frame_pixels < 8192 * 8192
    assert limits.max_frame_side == 4096
    assert limits.max_pixel_rate >= 3840 * 2160 * 60
    custom = Settings.from_env(
        {"MAX_FRAME_PIXELS": "2073600", "MAX_FRAME_SIDE": "1920", "MAX_PIXEL_RATE": "62208000"}
    ).limits
    assert (custom.max_frame_pixels, custom.max_frame_side, custom.max_pixel_rate) == (
        1920 * 1080,
        1920,
        1920 * 1080 * 30,
    )


def test_playback_grants_outlive_media_urls_and_revocation_is_bounded() -> None:
    settings = Settings.from_env({})
    assert (settings.playback_grant_ttl_s, settings.playback_revocation_s) == (86400, 30)
    set_ = Settings.from_env({"PLAYBACK_GRANT_TTL_S": "7200", "PLAYBACK_REVOCATION_S": "0"})
    assert (set_.playback_grant_ttl_s, set_.playback_revocation_s) == (7200, 0)
    for env, message in [
        ({"PLAYBACK_GRANT_TTL_S": "600", "PLAYBACK_URL_TTL_S": "900"}, "PLAYBACK_GRANT_TTL_S"),
        ({"PLAYBACK_GRANT_TTL_S": "60"}, "PLAYBACK_GRANT_TTL_S"),
        ({"PLAYBACK_REVOCATION_S": "301"}, "PLAYBACK_REVOCATION_S"),
        ({"PLAYBACK_REVOCATION_S": "-1"}, "PLAYBACK_REVOCATION_S"),
    ]:
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env)


def test_transcription_defaults_to_pocketsphinx_in_english_and_can_be_changed(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({})
    assert (settings.transcription_engine, settings.transcription_language) == (
        "pocketsphinx",
        "en",
    )
    assert (settings.transcription_max_s, settings.transcription_model_dir) == (900, None)
    chosen = Settings.from_env(
        {
            "TRANSCRIPTION_ENGINE": "faster-whisper",
            "TRANSCRIPTION_MODEL_DIR": str(tmp_path),
            "TRANSCRIPTION_LANGUAGE": "de",
            "TRANSCRIPTION_MAX_S": "300",
        }
    )
    assert (chosen.transcription_engine, chosen.transcription_model_dir) == (
        "faster-whisper",
        tmp_path.resolve(),
    )
    assert (chosen.transcription_language, chosen.transcription_max_s) == ("de", 300)
    assert Settings.from_env({"TRANSCRIPTION_ENGINE": "off"}).transcription_engine == "off"
