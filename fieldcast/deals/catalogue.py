"""The attribute catalogue: which deal attributes an organisation uses, and the one way their
values are written.

Every stored set of attribute values (a deal's `attributes`, a video's `deal_attributes`) and
every filter on them goes through `Catalogue.normalise`, so that one value is spelled one way
wherever it is stored and JSONB containment (`@>`) finds it:

- a single choice or a text: a string, a choice in the catalogue's own spelling (matched in
  any case, runs of spaces as one);
- a multiple choice: a list of such strings, sorted, without duplicates (a lone value is a
  list of one);
- a number: a JSON number ("50,000", "$1.2M" and "50k" are read as numbers too);
- a date: "YYYY-MM-DD".

Names are catalogue names (`ATTRIBUTE_NAME_PATTERN`): a name as people write it ("Deal size")
is read as its slug (`deal_size`).

An organisation's catalogue is lenient unless it is strict (`organisations.catalogue_strict`):
an unknown name then joins the catalogue as a text attribute, and a value a closed choice list
lacks joins the list. A strict catalogue refuses both (422 `unknown_attribute`,
`attribute_value_not_allowed`); a value of the wrong type (a word for a number) is refused
either way (422 `attribute_type_mismatch`). An open choice (`choices_open`: competitors,
products) takes any value in both modes, and learns it, so that it is spelled one way.

`band_label` names the band a number falls in, for facets and recommendations.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.errors import ErrorCode, InvalidInput
from fieldcast.models.accounts import Organisation
from fieldcast.models.deals import ATTRIBUTE_NAME_PATTERN, AttributeDefinition, AttributeType
from fieldcast.policy import Principal, authorize

NAME_RE = re.compile(ATTRIBUTE_NAME_PATTERN)
# Limits of what one object carries, and of one catalogue.
MAX_ATTRIBUTES = 20  # names on one deal or video
MAX_VALUES = 50  # values of one multiple choice
MAX_VALUE = 200  # characters of one value
MAX_DEFINITIONS = 200  # attributes of one organisation
MAX_CHOICES = 1000  # values of one choice list
MAX_BANDS = 20
MAX_LABEL = 120
MAX_NUMBER = Decimal(10) ** 15


@dataclass(frozen=True)
class DefaultAttribute:
    name: str
    label: str
    type: AttributeType
    choices: tuple[str, ...] = ()
    bands: tuple[dict[str, Any], ...] = ()
    choices_open: bool = False


# What every organisation starts with. Competitors and products are open lists: the
# organisation's own, learned as they come.
DEFAULTS: tuple[DefaultAttribute, ...] = (
    DefaultAttribute(
        "stage",
        "Stage",
        AttributeType.SINGLE_CHOICE,
        (
            "prospecting",
            "discovery",
            "qualification",
            "demo",
            "proposal",
            "negotiation",
            "closed",
        ),
    ),
    DefaultAttribute(
        "industry",
        "Industry",
        AttributeType.SINGLE_CHOICE,
        (
            "software",
            "financial services",
            "banking",
            "insurance",
            "healthcare",
            "life sciences",
            "retail",
            "consumer goods",
            "manufacturing",
            "energy",
            "telecommunications",
            "media",
            "transportation",
            "professional services",
            "public sector",
            "education",
            "real estate",
            "hospitality",
        ),
    ),
    DefaultAttribute(
        "region",
        "Region",
        AttributeType.SINGLE_CHOICE,
        ("north america", "latin america", "europe", "middle east", "africa", "asia pacific"),
    ),
    DefaultAttribute(
        "competitors", "Competitors", AttributeType.MULTIPLE_CHOICE, choices_open=True
    ),
    DefaultAttribute("products", "Products", AttributeType.MULTIPLE_CHOICE, choices_open=True),
    DefaultAttribute(
        "deal_size",
        "Deal size",
        AttributeType.NUMBER,
        bands=(
            {"label": "<10k", "max": 10_000},
            {"label": "10k-50k", "min": 10_000, "max": 50_000},
            {"label": "50k-250k", "min": 50_000, "max": 250_000},
            {"label": "250k+", "min": 250_000},
        ),
    ),
    DefaultAttribute("outcome", "Outcome", AttributeType.SINGLE_CHOICE, ("open", "won", "lost")),
)


def default_rows(org_id: uuid.UUID) -> list[dict[str, Any]]:
    """The default catalogue of an organisation, as rows of `attribute_definitions`."""
    return [
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "name": d.name,
            "label": d.label,
            "type": d.type,
            "choices": list(d.choices),
            "choices_open": d.choices_open,
            "bands": [dict(b) for b in d.bands],
            "position": position,
        }
        for position, d in enumerate(DEFAULTS)
    ]


def create_defaults(session: Session, org_id: uuid.UUID) -> None:
    """Give a new organisation the default catalogue (names it has already are kept)."""
    session.execute(
        insert(AttributeDefinition)
        .values(default_rows(org_id))
        .on_conflict_do_nothing(index_elements=["org_id", "name"])
    )


# -- names ----------------------------------------------------------------------------------


def slug(name: str) -> str:
    """The catalogue name for a name as people write it: "Deal size" -> "deal_size",
    "3rd party" -> "a_3rd_party". Empty when nothing of it is a letter or digit."""
    text = re.sub(r"[^a-z0-9]+", "_", " ".join(str(name).split()).casefold()).strip("_")
    if not text:
        return ""
    if not text[0].isalpha() or not text.isascii():
        text = "a_" + text
    text = re.sub(r"[^a-z0-9_]", "", text)
    return text[:63].rstrip("_")


def label_of(name: str) -> str:
    """A label for a name that joins the catalogue on its own: "deal_stage_2" -> "Deal stage 2"."""
    words = name.replace("_", " ").strip()
    return (words[:1].upper() + words[1:])[:MAX_LABEL]


# -- values ---------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A short value as text, spaces collapsed; None when it is not text or a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


_SCALE = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([kmb])?$")


def parse_number(value: Any) -> int | float | None:
    """A number, or numeric-looking text ("50,000", "$ 1.2M", "50k", "€80 000"); None
    otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
    elif isinstance(value, str):
        text = re.sub(r"[\s,_$€£¥]", "", value).casefold()
        match = _NUMBER.match(text)
        if not match:
            return None
        try:
            number = Decimal(text.rstrip("kmb")) * _SCALE.get(match.group(3) or "", 1)
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite() or abs(number) >= MAX_NUMBER:
        return None
    return int(number) if number == number.to_integral_value() else float(number)


def parse_date(value: Any) -> str | None:
    """ "YYYY-MM-DD" of a date, or of the date part of an ISO date-time; None otherwise."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return date.fromisoformat(text[:10]).isoformat() if len(text) >= 10 else None
    except ValueError:
        return None


def band_label(bands: Sequence[Mapping[str, Any]], value: Any) -> str | None:
    """The label of the first band a number falls in (`min` included, `max` excluded), or
    None: for search facets ("deal size 50k-250k") and recommendations."""
    number = parse_number(value)
    if number is None:
        return None
    for band in bands:
        low, high = band.get("min"), band.get("max")
        if (low is None or number >= low) and (high is None or number < high):
            return str(band["label"])
    return None


def check_bands(bands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Bands as stored: each a label with `min` and/or `max`, `min` below `max`, labels
    unique."""
    cleaned: list[dict[str, Any]] = []
    labels: set[str] = set()
    for band in bands:
        label = _text(band.get("label"))
        if not label or len(label) > MAX_LABEL or label.casefold() in labels:
            raise InvalidInput(errors={"bands": ["Each band has its own label."]})
        labels.add(label.casefold())
        entry: dict[str, Any] = {"label": label}
        for end in ("min", "max"):
            if band.get(end) is not None:
                number = parse_number(band[end])
                if number is None:
                    raise InvalidInput(errors={"bands": [f"{label}: {end} is a number."]})
                entry[end] = number
        if "min" not in entry and "max" not in entry:
            raise InvalidInput(errors={"bands": [f"{label}: give min, max or both."]})
        if "min" in entry and "max" in entry and entry["min"] >= entry["max"]:
            raise InvalidInput(errors={"bands": [f"{label}: min is below max."]})
        cleaned.append(entry)
    return cleaned


# -- the catalogue --------------------------------------------------------------------------


@dataclass
class _Problem:
    name: str
    code: ErrorCode
    message: str


@dataclass
class Catalogue:
    """An organisation's catalogue, loaded once for many values (a bulk sync of thousands of
    deals reads it once and writes what joined it once, in `save`)."""

    org_id: uuid.UUID
    strict: bool
    definitions: dict[str, AttributeDefinition]
    # What lenient normalising added: new text attributes, values new to closed choice lists.
    new_names: dict[str, str] = field(default_factory=dict)  # name -> label
    new_choices: dict[str, list[str]] = field(default_factory=dict)
    _spelling: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, org_id: uuid.UUID) -> Catalogue:
        strict = session.scalar(
            select(Organisation.catalogue_strict).where(Organisation.id == org_id)
        )
        rows = session.scalars(
            select(AttributeDefinition)
            .where(AttributeDefinition.org_id == org_id)
            .order_by(AttributeDefinition.position, AttributeDefinition.name)
        )
        return cls(org_id, bool(strict), {row.name: row for row in rows})

    def type_of(self, name: str) -> AttributeType:
        definition = self.definitions.get(name)
        return definition.type if definition is not None else AttributeType.TEXT

    def bands_of(self, name: str) -> list[dict[str, Any]]:
        definition = self.definitions.get(name)
        return list(definition.bands) if definition is not None else []

    def _choices(self, name: str) -> dict[str, str]:
        """casefolded value -> the catalogue's spelling, for a choice attribute."""
        if name not in self._spelling:
            definition = self.definitions.get(name)
            known = list(definition.choices) if definition is not None else []
            self._spelling[name] = {c.casefold(): c for c in known}
        return self._spelling[name]

    def normalise(
        self, values: Mapping[str, Any], *, field: str = "attributes", learn: bool = True
    ) -> dict[str, Any]:
        """`values` as stored (see the module's docstring), or 422 naming each attribute at
        fault under `field`, with the code of the first.

        `learn=False` (a filter, not a value being stored): nothing joins the catalogue and
        nothing unknown is refused; an unknown name or value simply matches nothing.
        A value of null leaves the attribute out.
        """
        if not isinstance(values, Mapping):
            raise InvalidInput(
                code=ErrorCode.ATTRIBUTE_TYPE_MISMATCH,
                errors={field: ["An object of attribute names to values."]},
            )
        if len(values) > MAX_ATTRIBUTES:
            raise InvalidInput(errors={field: [f"At most {MAX_ATTRIBUTES} attributes."]})
        cleaned: dict[str, Any] = {}
        problems: list[_Problem] = []
        for raw_name, raw_value in values.items():
            name = slug(raw_name)
            if not name:
                problems.append(
                    _Problem(str(raw_name)[:64], ErrorCode.VALIDATION_FAILED, "Not a name.")
                )
                continue
            if raw_value is None:
                continue
            if name not in self.definitions and name not in self.new_names:
                if self.strict and learn:
                    problems.append(
                        _Problem(
                            name,
                            ErrorCode.UNKNOWN_ATTRIBUTE,
                            "Not an attribute of the catalogue (GET /api/v1/attributes).",
                        )
                    )
                    continue
                if learn:
                    if len(self.definitions) + len(self.new_names) >= MAX_DEFINITIONS:
                        problems.append(
                            _Problem(
                                name,
                                ErrorCode.UNKNOWN_ATTRIBUTE,
                                f"The catalogue holds {MAX_DEFINITIONS} attributes already.",
                            )
                        )
                        continue
                    self.new_names[name] = label_of(name)
            try:
                value = self._value(name, raw_value, learn=learn)
            except _Refused as refused:
                problems.append(_Problem(name, refused.code, refused.message))
                continue
            if name in cleaned and cleaned[name] != value:
                problems.append(
                    _Problem(name, ErrorCode.VALIDATION_FAILED, "Given twice, differently.")
                )
                continue
            cleaned[name] = value
        if problems:
            raise InvalidInput(
                f"Attribute {problems[0].name!r}: {problems[0].message}",
                code=problems[0].code,
                errors={field: {p.name: [f"{p.code}: {p.message}"] for p in problems}},
            )
        return cleaned

    def _value(self, name: str, value: Any, *, learn: bool) -> Any:
        kind = self.type_of(name)
        if kind is AttributeType.NUMBER:
            number = parse_number(value)
            if number is None:
                raise _Refused(ErrorCode.ATTRIBUTE_TYPE_MISMATCH, "A number.")
            return number
        if kind is AttributeType.DATE:
            day = parse_date(value)
            if day is None:
                raise _Refused(ErrorCode.ATTRIBUTE_TYPE_MISMATCH, "A date, YYYY-MM-DD.")
            return day
        if kind is AttributeType.MULTIPLE_CHOICE:
            items = value if isinstance(value, list) else [value]
            if len(items) > MAX_VALUES:
                raise _Refused(ErrorCode.VALIDATION_FAILED, f"At most {MAX_VALUES} values.")
            chosen = {self._choice(name, item, learn=learn) for item in items}
            by_case = {c.casefold(): c for c in sorted(chosen)}
            return sorted(by_case.values(), key=lambda c: (c.casefold(), c))
        if kind is AttributeType.SINGLE_CHOICE:
            return self._choice(name, value, learn=learn)
        text = _text(value)
        if text is None:
            raise _Refused(ErrorCode.ATTRIBUTE_TYPE_MISMATCH, "Text.")
        if not text or len(text) > MAX_VALUE:
            raise _Refused(ErrorCode.VALIDATION_FAILED, f"1-{MAX_VALUE} characters.")
        return text

    def _choice(self, name: str, value: Any, *, learn: bool) -> str:
        text = _text(value)
        if text is None:
            raise _Refused(ErrorCode.ATTRIBUTE_TYPE_MISMATCH, "A choice is text.")
        if not text or len(text) > MAX_VALUE:
            raise _Refused(ErrorCode.VALIDATION_FAILED, f"1-{MAX_VALUE} characters.")
        spelling = self._choices(name)
        known = spelling.get(text.casefold())
        if known is not None:
            return known
        if not learn:
            return text
        definition = self.definitions.get(name)
        is_open = definition is None or definition.choices_open
        if self.strict and not is_open:
            raise _Refused(
                ErrorCode.ATTRIBUTE_VALUE_NOT_ALLOWED,
                f"{text!r} is not one of its choices.",
            )
        if len(spelling) >= MAX_CHOICES:
            raise _Refused(
                ErrorCode.ATTRIBUTE_VALUE_NOT_ALLOWED,
                f"Its list holds {MAX_CHOICES} choices already.",
            )
        spelling[text.casefold()] = text
        self.new_choices.setdefault(name, []).append(text)
        return text

    def save(self, session: Session) -> None:
        """Write what lenient normalising added to the catalogue: new names as text
        attributes, new values at the end of their choice lists. Safe beside another request
        doing the same (a name made twice is made once, a value appended twice once)."""
        if self.new_names:
            last = session.scalar(
                select(func.max(AttributeDefinition.position)).where(
                    AttributeDefinition.org_id == self.org_id
                )
            )
            start = last + 1 if last is not None else 0
            session.execute(
                insert(AttributeDefinition)
                .values(
                    [
                        {
                            "id": uuid.uuid4(),
                            "org_id": self.org_id,
                            "name": name,
                            "label": label,
                            "type": AttributeType.TEXT,
                            "choices": [],
                            "choices_open": False,
                            "bands": [],
                            "position": start + offset,
                        }
                        for offset, (name, label) in enumerate(self.new_names.items())
                    ]
                )
                .on_conflict_do_nothing(index_elements=["org_id", "name"])
            )
        for name, added in self.new_choices.items():
            for value in added:
                session.execute(
                    update(AttributeDefinition)
                    .where(
                        AttributeDefinition.org_id == self.org_id,
                        AttributeDefinition.name == name,
                        ~AttributeDefinition.choices.contains([value]),
                    )
                    .values(
                        choices=AttributeDefinition.choices.op("||")(func.jsonb_build_array(value)),
                        updated_at=func.now(),
                    )
                )
        if self.new_names or self.new_choices:
            session.flush()
            # What was written is the catalogue now: read it again when next needed.
            for definition in self.definitions.values():
                session.expire(definition)
        self.new_names.clear()
        self.new_choices.clear()


class _Refused(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalise(
    session: Session,
    org_id: uuid.UUID,
    values: Mapping[str, Any],
    *,
    field: str = "attributes",
) -> dict[str, Any]:
    """Attribute values as stored, for one object: the catalogue's normalising, and what it
    learned (lenient catalogues) written at once."""
    catalogue = Catalogue.load(session, org_id)
    cleaned = catalogue.normalise(values, field=field)
    catalogue.save(session)
    return cleaned


def band_of(session: Session, org_id: uuid.UUID, name: str, value: Any) -> str | None:
    """`band_label` of an organisation's number attribute `name` (None for another type)."""
    definition = session.scalar(
        select(AttributeDefinition).where(
            AttributeDefinition.org_id == org_id, AttributeDefinition.name == name
        )
    )
    if definition is None or definition.type is not AttributeType.NUMBER:
        return None
    return band_label(definition.bands, value)


# -- editing the catalogue ------------------------------------------------------------------


def definitions(session: Session, org_id: uuid.UUID) -> list[AttributeDefinition]:
    return list(Catalogue.load(session, org_id).definitions.values())


def put_definition(
    session: Session,
    principal: Principal,
    name: str,
    *,
    label: str,
    type: AttributeType,
    choices: Iterable[Any] = (),
    choices_open: bool | None = None,
    bands: Sequence[Mapping[str, Any]] = (),
    position: int | None = None,
) -> tuple[AttributeDefinition, bool]:
    """Create or replace one definition; (it, whether it is new). Values stored already are
    kept as they are: changing a type or dropping a choice rewrites no deal or video."""
    authorize(principal, "attribute.write")
    org_id = principal.org_id
    if not NAME_RE.match(name):
        raise InvalidInput(
            errors={"name": ["Lower-case letters, digits and underscores, from a letter."]}
        )
    clean_label = " ".join(label.split())
    if not clean_label:
        raise InvalidInput(errors={"label": ["Give a label."]})
    seen: dict[str, str] = {}
    if type in (AttributeType.SINGLE_CHOICE, AttributeType.MULTIPLE_CHOICE):
        for choice in choices:
            text = _text(choice)
            if not text or len(text) > MAX_VALUE:
                raise InvalidInput(errors={"choices": [f"Choices are 1-{MAX_VALUE} characters."]})
            if text.casefold() in seen:
                raise InvalidInput(errors={"choices": [f"{text!r} is listed twice."]})
            seen[text.casefold()] = text
        if len(seen) > MAX_CHOICES:
            raise InvalidInput(errors={"choices": [f"At most {MAX_CHOICES} choices."]})
    elif list(choices):
        raise InvalidInput(errors={"choices": ["Only a choice attribute has choices."]})
    if bands and type is not AttributeType.NUMBER:
        raise InvalidInput(errors={"bands": ["Only a number has bands."]})
    clean_bands = check_bands(bands)
    definition = session.scalar(
        select(AttributeDefinition)
        .where(AttributeDefinition.org_id == org_id, AttributeDefinition.name == name)
        .with_for_update()
    )
    created = definition is None
    if definition is None:
        count = session.scalar(select(func.count()).where(AttributeDefinition.org_id == org_id))
        if (count or 0) >= MAX_DEFINITIONS:
            raise InvalidInput(errors={"name": [f"At most {MAX_DEFINITIONS} attributes."]})
        last = session.scalar(
            select(func.max(AttributeDefinition.position)).where(
                AttributeDefinition.org_id == org_id
            )
        )
        definition = AttributeDefinition(
            org_id=org_id, name=name, position=(last + 1 if last is not None else 0)
        )
        session.add(definition)
    definition.label = clean_label
    definition.type = type
    definition.choices = list(seen.values())
    # A choice given no values is open unless said otherwise.
    is_choice = type in (AttributeType.SINGLE_CHOICE, AttributeType.MULTIPLE_CHOICE)
    definition.choices_open = is_choice and (not seen if choices_open is None else choices_open)
    definition.bands = clean_bands
    if position is not None:
        definition.position = position
    session.flush()
    return definition, created


def delete_definition(session: Session, principal: Principal, name: str) -> bool:
    """Remove one definition; whether there was one. Values stored under the name stay on
    deals and videos (a snapshot is history); a lenient catalogue takes the name back, as
    text, the next time a value comes with it, and a strict one refuses it from now on."""
    authorize(principal, "attribute.write")
    org_id = principal.org_id
    definition = session.scalar(
        select(AttributeDefinition).where(
            AttributeDefinition.org_id == org_id, AttributeDefinition.name == name
        )
    )
    if definition is None:
        return False
    session.delete(definition)
    session.flush()
    return True


def set_strict(session: Session, principal: Principal, strict: bool) -> Organisation:
    """Make the catalogue strict (unknown names and values refused) or lenient again."""
    authorize(principal, "attribute.write")
    org = session.get(Organisation, principal.org_id)
    assert org is not None
    org.catalogue_strict = strict
    session.flush()
    return org
