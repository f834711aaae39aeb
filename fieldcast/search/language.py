"""The languages search stems words in, one per organisation, with a plain fallback.

Each has a PostgreSQL text search configuration made by migration 0025: `fieldcast_<code>`,
the built-in stemmer of that language behind `unaccent`, so "Café" finds "cafe". An
organisation whose language has no stemmer here searches with `fieldcast_simple`: words
match as written, case and accents aside.
"""

from __future__ import annotations

CONFIG_PREFIX = "fieldcast_"
LANGUAGES: dict[str, str] = {
    "da": "Danish",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "it": "Italian",
    "nl": "Dutch",
    "no": "Norwegian",
    "pt": "Portuguese",
    "sv": "Swedish",
}
FALLBACK = "simple"


def config_for(language: str | None) -> str:
    """The text search configuration of a language code ("en", "pt-BR", ...)."""
    code = (language or "").split("-")[0].lower()
    return CONFIG_PREFIX + (code if code in LANGUAGES else FALLBACK)
