"""The query language of search, read into a PostgreSQL `tsquery`.

    pricing objection        both words (in any part of the video's texts)
    "pricing objection"      the phrase, words in this order
    acme -globex             acme, and not globex
    acme or globex           either (binds tighter than "and": `a b or c` is a and (b or c))
    pric                     the last word is also a prefix while typing (`pric` finds pricing)

Words are stemmed in the organisation's language and accents and case are ignored, on both
sides. Only letters, digits and a few joiners of a word reach PostgreSQL, each quoted, so no
input changes the query's structure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_QUERY = 200
MAX_TERMS = 16
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# What may stay in a word: letters, digits, and joiners PostgreSQL's parser reads inside words.
_NOT_WORD = re.compile(r"[^\w\s\-.@+]|_")
_LETTER = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False
    prefix: bool = False
    negated: bool = False

    def tsquery(self) -> str:
        quoted = "'" + self.text.replace("'", "''") + "'"
        if self.prefix:
            quoted += ":*"
        return ("!" if self.negated else "") + quoted


@dataclass(frozen=True)
class Query:
    """`groups` are ANDed, the terms of a group ORed."""

    groups: tuple[tuple[Term, ...], ...] = ()
    raw: str = ""
    words: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.groups

    @property
    def negative_only(self) -> bool:
        return all(t.negated for g in self.groups for t in g)

    def tsquery(self) -> str:
        """The whole query, for matching."""
        parts = []
        for group in self.groups:
            terms = [t.tsquery() for t in group]
            parts.append(terms[0] if len(terms) == 1 else "( " + " | ".join(terms) + " )")
        return " & ".join(parts)

    def any_tsquery(self) -> str:
        """Any positive term: which parts of a found video speak of the query (its reasons)."""
        terms = [t.tsquery() for g in self.groups for t in g if not t.negated]
        return " | ".join(terms)


def _clean(text: str) -> str:
    """The words of a term; empty when it holds no letter or digit."""
    cleaned = " ".join(_NOT_WORD.sub(" ", text).split())
    return cleaned if _LETTER.search(cleaned) else ""


def parse(raw: str, *, prefix: bool = True) -> Query:
    """Read a query; `prefix` makes its last word a prefix when the input does not end with a
    space (as the person types). Never fails: what is not a word is left out."""
    raw = raw[:MAX_QUERY]
    groups: list[list[Term]] = []
    join_next = False
    tokens = list(_TOKEN.finditer(raw))
    for index, token in enumerate(tokens):
        negated_phrase, phrase, word = token.group(1), token.group(2), token.group(3)
        if word is not None and word.lower() in {"or", "|"}:
            join_next = bool(groups)
            continue
        if phrase is not None:
            term = Term(_clean(phrase), phrase=True, negated=bool(negated_phrase))
        else:
            negated = word.startswith("-") and len(word) > 1
            text = _clean(word[1:] if negated else word)
            last = (
                index == len(tokens) - 1 and not raw[token.end() :].strip(" ") and raw[-1:] != " "
            )
            term = Term(
                text, prefix=prefix and last and not negated and " " not in text, negated=negated
            )
        if not term.text:
            join_next = False
            continue
        if join_next and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
        if sum(len(g) for g in groups) >= MAX_TERMS:
            break
    words = tuple(
        t.text for g in groups for t in g if not t.negated and not t.phrase and len(t.text) >= 3
    )
    return Query(tuple(tuple(g) for g in groups), raw=raw.strip(), words=words)
