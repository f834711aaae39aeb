"""What each kind of push says, in the language of the phone it goes to.

Every notification type has a title and a body, each with a stable localization key and its
arguments in a fixed order. A push carries both forms:

- the keys and arguments (`title_loc_key` / `title_loc_args` / `body_loc_key` / `body_loc_args`
  on Android, `title-loc-key` / `title-loc-args` / `loc-key` / `loc-args` on APNs), which the
  app turns into text from its own string resources, in the phone's current language;
- the text already worded by the server in the device's registered locale (`title`, `body`),
  shown when the app has no string for the key (an older app, a new type).

The server's texts come from gettext catalogues, one per language, under
`fieldcast/locales/<lang>/LC_MESSAGES/push.po` (English is the source language: its texts are
the message ids). Each message's context (`msgctxt`) is its localization key, so translators and
app developers see the same name. The catalogues are compiled with Babel when a process first
words a push; nothing is built at install time. See the README for the extract / update
commands.

A body the sender wrote (a share's note, a comment's excerpt) is the person's own words: it is
sent as it is, with no body key.
"""

from __future__ import annotations

import functools
import io
import string
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from fieldcast.inbox.types import NotificationType

DOMAIN = "push"
SOURCE_LANGUAGE = "en"

# What a push carries of long texts (a lock screen shows a few lines; the inbox keeps them
# whole). With the title and body both in `notification` and `aps.alert`, and each arg in the
# Android and the APNs loc args, a push stays well inside FCM's and APNs' 4 KB in any script.
TITLE_LIMIT = 150
BODY_LIMIT = 240
ARG_LIMIT = 100


def N_(key: str, english: str) -> tuple[str, str]:  # noqa: N802 - gettext's marker name
    """Marks a message for extraction (`pybabel extract -k N_:1c,2`): its key and its English."""
    return key, english


@dataclass(frozen=True)
class Text:
    key: str  # the localization key, the same in the app's string resources
    english: str  # with {named} placeholders
    args: tuple[str, ...] = ()  # the placeholders, in the order of the loc args

    @classmethod
    def of(cls, marked: tuple[str, str], *args: str) -> Text:
        key, english = marked
        return cls(key, english, args)


@dataclass(frozen=True)
class Wording:
    title: Text
    body: Text
    # The arg that, when the item has it, is the body as the person wrote it.
    own_body: str | None = None


WORDINGS: dict[NotificationType, Wording] = {
    NotificationType.SHARE_RECEIVED: Wording(
        Text.of(N_("share_received_title", "{sender} shared “{video}”"), "sender", "video"),
        Text.of(N_("share_received_body", "Tap to watch.")),
        own_body="note",
    ),
    NotificationType.VIDEO_PLAYABLE: Wording(
        Text.of(N_("video_playable_title", "“{video}” is ready to watch"), "video"),
        Text.of(N_("video_playable_body", "Share it with your team.")),
    ),
    NotificationType.VIDEO_FAILED: Wording(
        Text.of(N_("video_failed_title", "“{video}” could not be processed"), "video"),
        Text.of(N_("video_failed_body", "Open it to see why.")),
    ),
    NotificationType.COMMENT_MENTION: Wording(
        Text.of(
            N_("comment_mention_title", "{author} mentioned you on “{video}”"), "author", "video"
        ),
        Text.of(N_("comment_mention_body", "Tap to read the comment.")),
        own_body="excerpt",
    ),
    NotificationType.COMMENT_REPLY: Wording(
        Text.of(
            N_("comment_reply_title", "{author} replied to you on “{video}”"), "author", "video"
        ),
        Text.of(N_("comment_reply_body", "Tap to read the reply.")),
        own_body="excerpt",
    ),
    NotificationType.COMMENT_NEW: Wording(
        Text.of(N_("comment_new_title", "{author} commented on “{video}”"), "author", "video"),
        Text.of(N_("comment_new_body", "Tap to read the comment.")),
        own_body="excerpt",
    ),
    NotificationType.QUESTION_ANSWER: Wording(
        Text.of(
            N_("question_answer_title", "{author} answered your question “{video}”"),
            "author",
            "video",
        ),
        Text.of(N_("question_answer_body", "Tap to see the answer.")),
        own_body="excerpt",
    ),
    NotificationType.ANSWER_ACCEPTED: Wording(
        Text.of(
            N_("answer_accepted_title", "{author} accepted your answer on “{video}”"),
            "author",
            "video",
        ),
        Text.of(N_("answer_accepted_body", "Thanks for helping out.")),
    ),
    NotificationType.SEARCH_MATCHES: Wording(
        Text.of(N_("search_matches_title", "New for “{search}”"), "search"),
        Text.of(
            N_("search_matches_body", "Videos and moments you have not seen yet: {count}"),
            "count",
        ),
    ),
    # The assigner's message is the body, as they wrote it.
    NotificationType.ASSIGNMENT_RECEIVED: Wording(
        Text.of(
            N_("assignment_received_title", "{assigner} assigned you “{title}”"),
            "assigner",
            "title",
        ),
        Text.of(N_("assignment_received_body", "Due {due}. Tap to start."), "due"),
        own_body="note",
    ),
    NotificationType.ASSIGNMENT_DUE: Wording(
        Text.of(N_("assignment_due_title", "“{title}” is due {due}"), "title", "due"),
        Text.of(
            N_("assignment_due_body", "You are {progress} of the way. Tap to go on."), "progress"
        ),
    ),
    NotificationType.ASSIGNMENT_OVERDUE: Wording(
        Text.of(N_("assignment_overdue_title", "“{title}” is overdue"), "title"),
        Text.of(N_("assignment_overdue_body", "It was due {due}. Tap to go on."), "due"),
    ),
    NotificationType.ASSIGNMENT_DIGEST: Wording(
        Text.of(N_("assignment_digest_title", "Overdue in your team this week: {count}"), "count"),
        Text.of(N_("assignment_digest_body", "From {people}."), "people"),
    ),
    NotificationType.ASSIGNMENT_ANSWERED: Wording(
        Text.of(
            N_("assignment_answered_title", "Your request about “{title}” was answered"),
            "title",
        ),
        Text.of(N_("assignment_answered_body", "Tap to see the answer.")),
        own_body="note",
    ),
    # To the assigner; the person's own words, if any, are the body.
    NotificationType.ASSIGNMENT_REQUESTED: Wording(
        Text.of(
            N_("assignment_requested_title", "{person} asks about “{title}”"), "person", "title"
        ),
        Text.of(N_("assignment_requested_body", "Tap to see why and answer.")),
        own_body="text",
    ),
    # The admin's reason is the body, as they wrote it; the worded body only stands in for
    # an item without one.
    NotificationType.CONTENT_HIDDEN: Wording(
        Text.of(N_("content_hidden_title", "Your post on “{video}” was hidden"), "video"),
        Text.of(N_("content_hidden_body", "An admin hid it after a report.")),
        own_body="reason",
    ),
}

# The push that stands for several about one video's conversation within a short window
# (`conversation.notify`): never an inbox item of its own, each event has its own.
SUMMARY = Wording(
    Text.of(N_("comment_summary_title", "{count} new comments on “{video}”"), "count", "video"),
    Text.of(N_("comment_summary_body", "From {people}."), "people"),
)


@dataclass(frozen=True)
class Worded:
    """One notification worded for one language, with the keys the app may word it by."""

    title: str
    body: str
    title_loc_key: str | None = None
    title_loc_args: tuple[str, ...] = ()
    body_loc_key: str | None = None
    body_loc_args: tuple[str, ...] = ()


def word(type: str, args: Mapping[str, str], language: str, *, title: str, body: str) -> Worded:
    """The notification of this type with these args, in `language` (one of `languages()`).

    An item without the args its wording needs (made before the type had one) keeps its
    stored `title` and `body`, and has no keys."""
    wording = _wording(type, args)
    if wording is None:
        return Worded(title=clip(title, TITLE_LIMIT), body=clip(body, BODY_LIMIT))
    return _worded(wording, args, language)


def word_summary(args: Mapping[str, str], language: str) -> Worded:
    """The summary push (`SUMMARY`) with `count`, `video` and `people`, in `language`."""
    return _worded(SUMMARY, args, language)


def _worded(wording: Wording, args: Mapping[str, str], language: str) -> Worded:
    translations = catalogue(language)
    short = {name: clip(str(value), ARG_LIMIT) for name, value in args.items()}
    own = str(args.get(wording.own_body, "")) if wording.own_body else ""
    return Worded(
        title=clip(_render(translations, wording.title, short), TITLE_LIMIT),
        body=clip(own or _render(translations, wording.body, short), BODY_LIMIT),
        title_loc_key=wording.title.key,
        title_loc_args=tuple(short[name] for name in wording.title.args),
        body_loc_key=None if own else wording.body.key,
        body_loc_args=() if own else tuple(short[name] for name in wording.body.args),
    )


def clip(text: str, limit: int) -> str:
    """The text, or as much of it as fits in `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def english(type: NotificationType, args: Mapping[str, str]) -> tuple[str, str]:
    """The title and body of an inbox item, as stored (whole: the inbox shows them as they are);
    empty without the args the type's wording needs."""
    wording = _wording(type, args)
    if wording is None:
        return "", ""
    source = NullTranslations()
    own = str(args.get(wording.own_body, "")) if wording.own_body else ""
    return _render(source, wording.title, args), own or _render(source, wording.body, args)


def _wording(type: str, args: Mapping[str, str]) -> Wording | None:
    """The type's wording, if the args have what its title needs."""
    wording = WORDINGS.get(NotificationType(type)) if type in _TYPE_VALUES else None
    if wording is None or any(name not in args for name in wording.title.args):
        return None
    return wording


_TYPE_VALUES = frozenset(kind.value for kind in NotificationType)


def _render(translations: NullTranslations, text: Text, args: Mapping[str, str]) -> str:
    template = str(translations.pgettext(text.key, text.english))
    return _FORMATTER.vformat(template, (), _Args(args))


class _Args(dict[str, str]):
    """A placeholder a translation names but the wording lacks is left empty, never an error."""

    def __missing__(self, key: str) -> str:
        return ""


class _Formatter(string.Formatter):
    def get_value(self, key: int | str, args: object, kwargs: Mapping[str, str]) -> str:
        # Names only: an index or an attribute in a catalogue must not reach into objects.
        return kwargs[key] if isinstance(key, str) else ""

    def get_field(self, field_name: str, args: object, kwargs: Mapping[str, str]) -> object:
        return self.get_value(field_name.split(".", 1)[0].split("[", 1)[0], args, kwargs), None

    def format_field(self, value: object, format_spec: str) -> str:
        return str(value)


_FORMATTER = _Formatter()


# -- catalogues -----------------------------------------------------------------------------------


def _locales() -> resources.abc.Traversable:
    return resources.files("fieldcast") / "locales"


@functools.cache
def languages() -> frozenset[str]:
    """The languages pushes can be worded in: English and each shipped catalogue's."""
    shipped = {
        entry.name
        for entry in _locales().iterdir()
        if entry.is_dir() and (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    }
    return frozenset({SOURCE_LANGUAGE, *shipped})


@functools.cache
def catalogue(language: str) -> NullTranslations:
    """The compiled catalogue of a language; English is the messages themselves."""
    source = _locales() / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == SOURCE_LANGUAGE or not source.is_file():
        return NullTranslations()
    with source.open("rb") as po:
        parsed = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, parsed)  # fuzzy entries are left out, as `pybabel compile` does
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def language_for(locale: str | None, default: str) -> str:
    """The language to word a push in for a device's BCP 47 locale (`de-AT` → `de`): the
    device's, else the deployment's DEFAULT_LOCALE, else English."""
    available = languages()
    for tag in (locale, default):
        if not tag:
            continue
        language = tag.replace("_", "-").split("-", 1)[0].lower()
        if language in available:
            return language
    return SOURCE_LANGUAGE
