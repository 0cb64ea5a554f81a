"""The rule layer: each rule is a regex over one sentence and a handler that makes facts.

``extract_facts`` / ``extract_conversation`` run every rule over a message's sentences."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sleep.extraction.context import (
    _PRONOUN_GENDER,
    _USER,
    ExtractionContext,
    _Found,
    _Handler,
    _Subject,
)
from sleep.extraction.patterns import (
    _rx,
)
from sleep.extraction.text import (
    _HEDGE_RE,
    _article,
    _clean_value,
    _conj,
    _is_job,
    _is_person_or_pet,
    _is_question,
    _leading_name,
    _relation_noun,
    _sentence,
    _strip_discourse,
    _union,
    _valid_name,
    _void_start,
    normalise,
    split_sentences,
)
from sleep.extraction.vocabulary import (
    _DEMONYMS,
    _INSTRUMENTS,
    _LANGUAGES,
    _MONTHS,
    _PAST_ADJ,
    _PLURALS,
    PERSON_RELATIONS,
    PET_RELATIONS,
)
from sleep.types import Fact

log = logging.getLogger(__name__)

_STATEMENTS: dict[str, tuple[str, str]] = {
    "name": ("Your name is {v}.", "{s}'s name is {v}."),
    "lives_in": ("You live in {v}.", "{s} lives in {v}."),
    # not "You used to live in ...": sharing "You live in" with lives_in, the small model
    # mixed up the current and the former city (paper's lesson: relations, not associations)
    "previous_city": ("Before your move, your home was {v}.", "Before moving, {s}'s home was {v}."),
    "hometown": ("You are from {v}.", "{s} is from {v}."),
    "birthplace": ("You were born in {v}.", "{s} was born in {v}."),
    "job": ("You are {a} {v}.", "{s} is {a} {v}."),
    "previous_job": ("You used to work as {a} {v}.", "{s} used to work as {a} {v}."),
    "employer": ("You work at {v}.", "{s} works at {v}."),
    "field": ("You work in {v}.", "{s} works in {v}."),
    "studied": ("You studied {v}.", "{s} studied {v}."),
    "studied_at": ("You studied at {v}.", "{s} studied at {v}."),
    "teaches": ("You teach {v}.", "{s} teaches {v}."),
    "likes": ("You love {v}.", "{s} loves {v}."),
    "dislikes": ("You hate {v}.", "{s} hates {v}."),
    "allergy": ("You are allergic to {v}.", "{s} is allergic to {v}."),
    "speaks": ("You speak {v}.", "{s} speaks {v}."),
    "learning": ("You are learning {v}.", "{s} is learning {v}."),
    "instrument": ("You play the {v}.", "{s} plays the {v}."),
    "plays": ("You play {v}.", "{s} plays {v}."),
    "hobby": ("Your hobby is {v}.", "{s}'s hobby is {v}."),
    "birth_year": ("You were born in {v}.", "{s} was born in {v}."),
    "birthday": ("Your birthday is {v}.", "{s}'s birthday is {v}."),
    "age": ("You are {v} years old.", "{s} is {v} years old."),
    "nationality": ("You are {v}.", "{s} is {v}."),
    "diet": ("You are {v}.", "{s} is {v}."),
    "drives": ("You drive {a} {v}.", "{s} drives {a} {v}."),
    "description": ("You are {a} {v}.", "{s} is {a} {v}."),
}


def _make_fact(
    subj: _Subject,
    relation: str,
    value: str,
    ids: list[int],
    statement: str | None = None,
) -> Fact:
    if statement is None:
        statement = _default_statement(subj, relation, value)
    statement = _sentence(statement)
    if value not in statement:  # a statement must carry the value verbatim (tests rely on it)
        statement = _sentence(_default_statement(subj, relation, value))
    return Fact(subj.key, relation, value, statement, list(ids), "pattern")


def _default_statement(subj: _Subject, relation: str, value: str) -> str:
    if relation.startswith(("favourite ", "favorite ")):
        return f"{subj.poss} {relation} is {value}."
    if relation in _STATEMENTS:
        you, third = _STATEMENTS[relation]
        return (you if subj.user else third).format(s=subj.key, v=value, a=_article(value))
    be = "was" if relation.split()[0] in _PAST_ADJ else "is"
    called = "" if relation in PERSON_RELATIONS else " called"
    return f"{subj.poss} {relation} {be}{called} {value}."


# --------------------------------------------------------------------------------------------
# Rules: each is a regex over one sentence and a handler that turns a match into facts
# --------------------------------------------------------------------------------------------


@dataclass
class _Rule:
    name: str
    regex: re.Pattern[str]
    handler: _Handler


def _subject(
    m: re.Match[str], ctx: ExtractionContext, allow_we: bool = False, topic: bool = True
) -> _Subject | None:
    raw = m.group("subj")
    lower = raw.lower()
    if lower == "i" or (allow_we and lower == "we") or raw.split()[-1] == "I":
        return _USER  # "Sadly I ..." reaches here as a capitalised run ending in "I"
    if lower in ("we", "they"):
        return None  # plural subjects are too ambiguous to attribute
    if lower in ("he", "she"):
        name = ctx.resolve(_PRONOUN_GENDER[lower])
        return _Subject(name, False) if name else None
    name = _valid_name(raw)
    if not name:
        return None
    if name == ctx.user_name:
        return _USER  # "Maya is ..." from Maya herself
    return _Subject(ctx.mention(name, topic=topic), False)


def _possessor(m: re.Match[str], ctx: ExtractionContext) -> _Subject | None:
    raw = m.group("poss")
    lower = raw.lower()
    if lower in ("my", "our"):
        return _USER
    if lower in _PRONOUN_GENDER:
        name = ctx.resolve(_PRONOUN_GENDER[lower])
        return _Subject(name, False) if name else None
    name = _valid_name(m.group("pname") or "")
    if not name:
        return None
    if name == ctx.user_name:
        return _USER
    return _Subject(ctx.mention(name, topic=True), False)


def _span(m: re.Match[str], group: str, value: str) -> tuple[int, int]:
    start = m.start(group)
    offset = m.group(group).find(value)
    start += max(offset, 0)
    return (start, start + len(value))


def _found(m: re.Match[str], group: str, fact: Fact) -> _Found:
    return _Found(fact, _span(m, group, fact.value))


def _sentence_initial_unknown(m: re.Match[str], ctx: ExtractionContext) -> bool:
    """A lone capitalised word opening the sentence may be a common noun ("Music is a ...")."""
    raw = m.group("subj")
    return m.start("subj") == 0 and len(raw.split()) == 1 and ctx.lookup(raw) is None


# -- where the user lives, lived and comes from ------------------------------------------------


def _h_moved(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx, allow_we=True)
    if subj is None:
        return []
    found = []
    groups = m.groupdict()
    to = _clean_value(groups.get("to") or "", "place")
    if to and to.lower() not in ("here", "there", "town", "the city"):
        found.append(_found(m, "to", _make_fact(subj, "lives_in", to, ids)))
    origin = _clean_value(groups.get("frm") or "", "place")
    if origin:
        found.append(_found(m, "frm", _make_fact(subj, "previous_city", origin, ids)))
    return found


def _place_handler(relation: str, verb: str | None = None, allow_we: bool = True) -> _Handler:
    """Handler for "<subject> <verb> <place>" rules; ``verb`` restates how the user said it."""

    def handler(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
        subj = _subject(m, ctx, allow_we=allow_we)
        value = _clean_value(m.group("v"), "place")
        if subj is None or not value or _void_start(value):
            return []
        statement = None
        if verb:
            prep = (m.groupdict().get("prep") or "in").lower()
            statement = f"{subj.name} {_conj(verb, subj.user)} {prep} {value}."
        return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]

    return handler


# -- names and people ----------------------------------------------------------------------------


def _h_my_name(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    name = _valid_name(m.group("v"))
    if not name:
        return []
    ctx.user_name = name
    statement = "You like to be called {v}." if "call" in m.group(0).lower() else None
    statement = statement.format(v=name) if statement else None
    return [_found(m, "v", _make_fact(_USER, "name", name, ids, statement))]


def _h_i_am_name(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    raw = m.group("v")
    first = raw.split()[0]
    if first in _DEMONYMS:
        return [_found(m, "v", _make_fact(_USER, "nationality", first, ids))]
    name = _valid_name(raw)
    if not name or name != raw or first.lower() in _LANGUAGES:
        return []
    ctx.user_name = name
    return [_found(m, "v", _make_fact(_USER, "name", name, ids))]


def _h_his_name(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    name = _valid_name(m.group("v"))
    if name:
        gender = _PRONOUN_GENDER.get(m.group("pp").lower())
        ctx.mention(name, gender=gender, topic=True)
    return []  # it introduces a person; the facts about them come from later sentences


def _relation_fact(
    owner: _Subject,
    relation: str,
    value: str,
    ids: list[int],
    ctx: ExtractionContext,
    statement: str | None = None,
) -> Fact | None:
    """A "<owner>'s <relation> is <value>" fact; people and pets must have a real name."""
    if _is_person_or_pet(relation):
        names = [_valid_name(n) for n in re.split(r",\s*|\s+and\s+", value)]
        names = [_leading_name(value)] if len(names) == 1 else names
        if not all(names) or ctx.user_name in names or owner.key in names:
            return None
        for name in names:
            ctx.mention(name, gender=PERSON_RELATIONS.get(relation))
        value = value if len(names) > 1 else names[0]
    return _make_fact(owner, relation, value, ids, statement)


def _rel_key(m: re.Match[str]) -> str:
    noun = _relation_noun(m.group("rel"))
    adj = (m.groupdict().get("adj") or "").strip().lower()
    return f"best {noun}" if adj == "best" and noun == "friend" else noun


def _h_rel_is(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    if owner is None:
        return []
    relation = _rel_key(m)
    value = m.group("v") if " and " in m.group("v") else _clean_value(m.group("v"), "name")
    fact = _relation_fact(owner, relation, value, ids, ctx, _rel_statement(m, owner, value))
    return [_found(m, "v", fact)] if fact else []


def _rel_statement(m: re.Match[str], owner: _Subject, value: str) -> str:
    adj = (m.groupdict().get("adj") or "").strip()
    noun = m.group("rel").lower()
    verb = m.groupdict().get("verb") or ("are" if noun in _PLURALS else "is")
    phrase = f"{adj} {noun}".strip()
    if noun in PET_RELATIONS:
        return f"{owner.poss} {phrase} {verb} called {value}."
    return f"{owner.poss} {phrase} {verb} {value}."


def _h_rel_fact(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    """A relation fact from a match with a possessor and a ``v`` group (both word orders)."""
    owner = _possessor(m, ctx)
    if owner is None:
        return []
    relation = _rel_key(m)
    fact = _relation_fact(owner, relation, m.group("v"), ids, ctx)
    if fact is None:
        return []
    fact.statement = _sentence(_rel_statement(m, owner, fact.value))
    return [_found(m, "v", fact)]


def _h_have_rel(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    """"I have a sister, Mia", "I have two kids, Sam and Ella"."""
    subj = _subject(m, ctx, allow_we=True)
    if subj is None:
        return []
    relation = _rel_key(m)
    names = [_valid_name(n) for n in re.split(r",\s*|\s+and\s+", m.group("v"))]
    if not names or not all(names):
        return []
    value = " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    for name in names:
        ctx.mention(name, gender=PERSON_RELATIONS.get(relation))
    verb = "have" if subj.user else "has"
    statement = f"{subj.name} {verb} {m.group('det')} {m.group('rel')}, {value}."
    return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]


def _h_married(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    name = _valid_name(m.group("v"))
    if subj is None or not name:
        return []
    name = ctx.mention(name)
    statement = f"{subj.name} {'are' if subj.user else 'is'} married to {name}."
    return [_found(m, "v", _make_fact(subj, "spouse", name, ids, statement))]


def _h_named_thing(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str
) -> list[_Found]:
    """"I have a dog named Biscuit", "Andre runs a little studio called Kestrel Room"."""
    subj = _subject(m, ctx, allow_we=True)
    if subj is None:
        return []
    relation = _relation_noun(m.group("rel"))
    value = _clean_value(m.group("v"), "name" if _is_person_or_pet(relation) else "free")
    if not value or _void_start(value):
        return []
    det = (m.group("det") or "").strip()
    adjs = (m.group("adjs") or "").strip()
    verb = _conj(m.group("verb").lower(), subj.user)
    statement = f"{subj.name} {verb} {det} {adjs} {m.group('rel')} called {value}."
    fact = _relation_fact(subj, relation, value, ids, ctx, statement)
    return [_found(m, "v", fact)] if fact else []


def _h_generic_poss(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str
) -> list[_Found]:
    """"His first album was called X", "my band is called X": named things and attributes."""
    attr = m.group("attr").lower()
    if attr.split()[0] in ("favourite", "favorite", "fave", "name", "own", "job", "birthday"):
        return []
    owner = _possessor(m, ctx)
    called = m.group("called") or ""
    value = _clean_value(m.group("v"), "free")
    if called:
        value = value.strip("\"'")
    elif not re.match(r"[\"A-ZÀ-Þ0-9]", m.group("v")):
        return []  # without "called", only a name-like value is a fact ("my car is red" is not)
    if owner is None or not value or _void_start(value):
        return []
    if "language" in attr or "tongue" in attr:
        statement = f"{owner.poss} {attr} is {value}."
        return [_found(m, "v", _make_fact(owner, "speaks", value, ids, statement))]
    statement = f"{owner.poss} {attr} {m.group('verb')} {called} {value}."
    fact = _relation_fact(owner, _relation_noun(attr), value, ids, ctx, statement)
    return [_found(m, "v", fact)] if fact else []


# -- work and study -------------------------------------------------------------------------


def _job_facts(
    m: re.Match[str],
    subj: _Subject,
    ids: list[int],
    past: bool = False,
    article: str | None = None,
) -> list[_Found]:
    raw = m.group("v")
    job = _clean_value(raw, "job")
    job = re.sub(r"^(?:an?|the)\s+", "", job, flags=re.IGNORECASE)
    if not job or _void_start(job):
        return []
    relation = "previous_job" if past else "job"
    statement = None
    if article == "the" and not past:
        statement = f"{subj.name} {'are' if subj.user else 'is'} the {job}."
    found = [_found(m, "v", _make_fact(subj, relation, job, ids, statement))]
    rest = _clean_value(raw, "free")
    place = re.search(r"\b(at|for)\s+(.+)$", rest)
    if place and not past:
        found.extend(_workplace(m, subj, job, place.group(1), place.group(2), ids))
    return found


def _workplace(
    m: re.Match[str], subj: _Subject, job: str, prep: str, raw: str, ids: list[int]
) -> list[_Found]:
    value = _clean_value(raw, "place")
    if not value or _void_start(value):
        return []
    if job.lower() == "student":
        verb = "study" if subj.user else "studies"
        fact = _make_fact(subj, "studied_at", value, ids, f"{subj.name} {verb} at {value}.")
    else:
        verb = "work" if subj.user else "works"
        fact = _make_fact(subj, "employer", value, ids, f"{subj.name} {verb} {prep} {value}.")
    return [_found(m, "v", fact)]


def _h_work_as(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    past = m.group("verb").lower() == "worked"
    return _job_facts(m, subj, ids, past=past)


_TEMPORAL_CLAUSE = re.compile(
    r"\b(?:since|when|while|until|after|before|as|once|whenever)\s*$", re.IGNORECASE
)


def _h_be_a(m: re.Match[str], ctx: ExtractionContext, ids: list[int], body: str) -> list[_Found]:
    """"I am a nurse at X", "Andre Patandre is a music producer", "He is a twin"."""
    if _TEMPORAL_CLAUSE.search(body[: m.start()]):
        return []  # "since I was a kid" describes a time, not the person
    risky = _sentence_initial_unknown(m, ctx)  # checked before _subject registers the name
    job = _clean_value(m.group("v"), "job")
    if risky and not _is_job(job):
        return []  # "Music is a big part of my life" is not about a person called Music
    subj = _subject(m, ctx, topic=False)
    if subj is None:
        return []
    article = m.group("art").lower()
    past = m.group("be").lower() == "was"
    if _is_job(job):
        if not subj.user:
            ctx.mention(subj.key, topic=True)
        return _job_facts(m, subj, ids, past=past and subj.user, article=article)
    return _description(m, ctx, subj, ids, article, past)


def _description(
    m: re.Match[str],
    ctx: ExtractionContext,
    subj: _Subject,
    ids: list[int],
    article: str,
    past: bool,
) -> list[_Found]:
    value = _clean_value(m.group("v"), "free")
    first = value.split(maxsplit=1)[0].lower() if value else ""
    if not value or _void_start(value) or first in ("bit", "little", "lot", "few", "couple"):
        return []
    if not subj.user:
        ctx.mention(subj.key, topic=True)
    be = ("were" if subj.user else "was") if past else ("are" if subj.user else "is")
    statement = f"{subj.name} {be} {article} {value}."
    return [_found(m, "v", _make_fact(subj, "description", value, ids, statement))]


def _h_appos_job(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    name = _valid_name(m.group("name"))
    job = _clean_value(m.group("v"), "job")
    if not name or not _is_job(job):
        return []
    subj = _Subject(ctx.mention(name, topic=True), False)
    return [_found(m, "v", _make_fact(subj, "job", job, ids))]


def _h_job_is(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    return _job_facts(m, owner, ids) if owner else []


def _h_work_at(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "place")
    if subj is None or not value or _void_start(value):
        return []
    prep = m.group("prep").lower()
    relation = "employer"
    if prep == "in" and not re.match(r"[A-ZÀ-Þ]", value):
        relation = "field"  # "I work in marketing" is a field, "I work in Lisbon" a place
    verb = _conj(m.group("verb").split()[-1].lower(), subj.user)
    statement = f"{subj.name} {verb} {prep} {value}."
    named = re.match(r"(?:an?|the)\s+(?:[\w-]+\s+){0,2}?(?:called|named)\s+(.+)", value)
    value = named.group(1) if named else value  # "a startup called Brightleaf" -> Brightleaf
    found = [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]
    role = re.search(r"\bas\s+(?:an?\s+)?(.+)$", m.group("v"))
    job = _clean_value(role.group(1), "job") if role else ""
    if job and not _void_start(job):  # "I work at St Mary's as a nurse"
        found.append(_Found(_make_fact(subj, "job", job, ids), (m.end("v"), m.end("v"))))
    return found


def _h_teach(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "job")
    if subj is None or not value or _void_start(value):
        return []
    found = [_found(m, "v", _make_fact(subj, "teaches", value, ids))]
    place = re.search(r"\bat\s+(.+)$", _clean_value(m.group("v"), "free"))
    if place:
        found.extend(_workplace(m, subj, "teacher", "at", place.group(1), ids))
    return found


def _h_study(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "job")
    if subj is None or not value or _void_start(value):
        return []
    verb = m.group("verb").lower()
    said = f"{subj.name} {_conj(verb, subj.user) if verb in ('study', 'studies') else verb}"
    if verb.startswith(("am ", "is ", "are ")):
        said = f"{subj.name} {'are' if subj.user else 'is'} studying"
    elif not verb.startswith(("studied", "study", "studies")):
        said = f"{subj.name} studied"
    found = [_found(m, "v", _make_fact(subj, "studied", value, ids, f"{said} {value}."))]
    rest = _clean_value(m.group("v"), "free")
    place = re.search(r"\b(?:at|in)\s+((?:the\s+)?[A-ZÀ-Þ].+)$", rest)
    if place:
        found.extend(_workplace(m, subj, "student", "at", place.group(1), ids))
    return found


def _h_school(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "place")
    if subj is None or not re.search(r"universit|college|school|academy|institute|conservato",
                                     value, re.IGNORECASE):
        return []
    return [_found(m, "v", _make_fact(subj, "studied_at", value, ids))]


# -- dates, age, body -------------------------------------------------------------------------

_YEAR_RE = re.compile(r"\b(1[89]\d\d|20[0-2]\d)\b")
_DATE_RE = re.compile(
    rf"\b((?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b(?:\s+\d{{4}})?|"
    rf"(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?)",
    re.IGNORECASE,
)


def _h_born(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    # The first clause, uncut: "born in Nairobi in 1988" holds both a place and a year.
    rest = re.split(r"[,;]|\s(?:but|because|and I|so)\s", m.group("v"))[0]
    found = []
    date = _DATE_RE.search(rest)
    if date:
        value = re.sub(r"^the\s+", "", date.group(1), flags=re.I)
        statement = f"{subj.name} {'were' if subj.user else 'was'} born on {date.group(1)}."
        found.append(_found(m, "v", _make_fact(subj, "birthday", value, ids, statement)))
    year = _YEAR_RE.search(rest)
    if year and not date:
        found.append(_found(m, "v", _make_fact(subj, "birth_year", year.group(1), ids)))
    place = re.search(r"\bin\s+(?!\d)(?!the\s+\d)([A-ZÀ-Þ].*)", rest)
    if place:
        value = _clean_value(re.split(r"\s+in\s+\d", place.group(1))[0], "place")
        if value:
            found.append(_found(m, "v", _make_fact(subj, "birthplace", value, ids)))
    return found


def _h_birthday(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    date = _DATE_RE.search(m.group("v"))
    if owner is None or not date:
        return []
    value = re.sub(r"^the\s+", "", date.group(1), flags=re.I)
    return [_found(m, "v", _make_fact(owner, "birthday", value, ids))]


def _h_age(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx, topic=False)
    age = int(m.group("v"))
    if subj is None or not 1 <= age <= 120:
        return []
    if not subj.user and _sentence_initial_unknown(m, ctx):
        return []
    return [_found(m, "v", _make_fact(subj, "age", m.group("v"), ids))]


def _h_allergy(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "thing")
    if subj is None or not value or _void_start(value):
        return []
    statement = None
    if m.group(0).rstrip().lower().endswith("allergy"):
        verb = "have" if subj.user else "has"
        statement = f"{subj.name} {verb} {_article(value)} {value} allergy."
    return [_found(m, "v", _make_fact(subj, "allergy", value, ids, statement))]


def _h_diet(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    return [_found(m, "v", _make_fact(subj, "diet", m.group("v").lower(), ids))]


def _h_nationality(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str
) -> list[_Found]:
    subj = _subject(m, ctx)
    if subj is None:
        return []
    return [_found(m, "v", _make_fact(subj, "nationality", m.group("v"), ids))]


# -- languages, music, hobbies, tastes ------------------------------------------------------


def _h_speak(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "free")
    if subj is None or not value or _void_start(value):
        return []
    words = re.findall(r"[\w-]+", value.lower())
    if not any(w in _LANGUAGES for w in words) and not re.search(r"[A-ZÀ-Þ]", value):
        return []
    return [_found(m, "v", _make_fact(subj, "speaks", value, ids))]


def _h_learn(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    raw = m.group("v")
    skill = re.match(r"(?:how\s+)?to\s+(.+)", raw)
    value = _clean_value(skill.group(1) if skill else raw, "thing")
    if m.group("verb").lower() == "taking":
        lesson = re.match(r"(.+?)\s+(?:lessons|classes|courses?)\b", value)
        value = lesson.group(1) if lesson else ""
    if subj is None or not value or _void_start(value):
        return []
    be = "are" if subj.user else "is"
    statement = f"{subj.name} {be} learning {'to ' if skill else ''}{value}."
    return [_found(m, "v", _make_fact(subj, "learning", value, ids, statement))]


def _h_play(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "play")
    if subj is None or not value or _void_start(value):
        return []
    has_the = bool(m.groupdict().get("the"))
    is_instrument = has_the or value.lower().split()[-1] in _INSTRUMENTS
    relation = "instrument" if is_instrument else "plays"
    verb = _conj(m.group("verb").split()[-1].lower(), subj.user)
    the = "the " if has_the else ""
    statement = f"{subj.name} {verb} {the}{value}."
    return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]


def _h_go_ing(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = m.group("v")
    if subj is None or value.lower() in ("going", "nothing", "something", "shopping"):
        return []
    verb = _conj(m.group("verb").lower(), subj.user)
    statement = f"{subj.name} {verb} {value}."
    return [_found(m, "v", _make_fact(subj, "hobby", value, ids, statement))]


def _h_hobby(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    value = _clean_value(m.group("v"), "thing")
    if owner is None or not value or _void_start(value):
        return []
    statement = f"{owner.poss} {m.group('what').lower()} {m.group('verb').lower()} {value}."
    return [_found(m, "v", _make_fact(owner, "hobby", value, ids, statement))]


def _h_favourite(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    owner = _possessor(m, ctx)
    value = _clean_value(m.group("v"), "free")
    if owner is None or not value or _void_start(value):
        return []
    fav = "favorite" if m.group("fav").lower() == "favorite" else "favourite"
    thing = m.group("thing").lower()
    if thing in ("hobby", "pastime"):
        return _hobby_fact(m, owner, value, ids, f"{fav} {thing}")
    if m.start("v") == 0:  # "Pierogi are my favourite food": a sentence-initial capital
        value = _decapitalise(value, ctx)
    verb = "was" if m.group("verb").lower() == "was" else "is"
    statement = f"{owner.poss} {fav} {thing} {verb} {value}."
    fact = _make_fact(owner, f"{fav} {thing}", value, ids, statement)
    return [_found(m, "v", fact)]


def _hobby_fact(
    m: re.Match[str], owner: _Subject, value: str, ids: list[int], what: str
) -> list[_Found]:
    statement = f"{owner.poss} {what} is {value}."
    return [_found(m, "v", _make_fact(owner, "hobby", value, ids, statement))]


def _decapitalise(value: str, ctx: ExtractionContext) -> str:
    words = value.split()
    if ctx.lookup(value) or any(w[:1].isupper() for w in words[1:]):
        return value
    return value[:1].lower() + value[1:]


def _h_like(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    return _taste(m, ctx, ids, "likes")


def _h_dislike(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    return _taste(m, ctx, ids, "dislikes")


def _taste(m: re.Match[str], ctx: ExtractionContext, ids: list[int], relation: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "thing")
    if subj is None or not value or _void_start(value):
        return []
    verb = re.sub(r"\s+", " ", m.group("verb").lower())
    statement = f"{subj.name} {_conj(verb, subj.user)} {value}."
    return [_found(m, "v", _make_fact(subj, relation, value, ids, statement))]


def _h_drive(m: re.Match[str], ctx: ExtractionContext, ids: list[int], _: str) -> list[_Found]:
    subj = _subject(m, ctx)
    value = _clean_value(m.group("v"), "play")
    value = re.sub(r"^(?:an?|the|my)\s+", "", value, flags=re.IGNORECASE)
    bad = ("to", "home", "around", "everywhere", "me", "carefully", "fast", "slowly", "a lot")
    if subj is None or not value or _void_start(value) or value.lower().startswith(bad):
        return []
    return [_found(m, "v", _make_fact(subj, "drives", value, ids))]


# -- the rule table, most specific first -------------------------------------------------------

_MOVE = (
    r"<SUBJ><ADV>(?:\s+(?:have|has|had))?<ADV>\s+(?:moved|relocated)"
    r"(?:\s+(?:here|over|back|away))?"
)
_BE = r"(?P<be>am|is|are|was|were)"
_RULES: list[_Rule] = [
    _Rule("moved_to_from", _rx(_MOVE + r"\s+to\s+(?P<to>.+?)\s+from\s+(?P<frm>.+)"), _h_moved),
    _Rule("moved_from_to", _rx(_MOVE + r"\s+from\s+(?P<frm>.+?)\s+to\s+(?P<to>.+)"), _h_moved),
    _Rule("moved_to", _rx(_MOVE + r"\s+to\s+(?P<to>.+)"), _h_moved),
    _Rule("moved_from", _rx(_MOVE + r"\s+from\s+(?P<frm>.+)"), _h_moved),
    _Rule(
        "call_home",
        _rx(r"<SUBJ><ADV>\s+(?:call|calls)\s+(?P<v><NAME>)\s+home\b"),
        _place_handler("lives_in"),
    ),
    _Rule(
        "used_to_live",
        _rx(r"<SUBJ><ADV>\s+(?:used to|no longer)\s+(?:live|lives)\s+(?:in|near)\s+(?P<v>.+)"),
        _place_handler("previous_city"),
    ),
    _Rule(
        "lived",
        _rx(r"<SUBJ><ADV>\s+(?:lived|was living|were living)\s+(?:in|near)\s+(?P<v>.+)"),
        _place_handler("previous_city"),
    ),
    _Rule(
        "lives",
        _rx(
            r"<SUBJ><ADV>\s+(?:live|lives|am living|is living|are living|have lived|has lived|"
            r"have been living|has been living|am based|is based|are based|am staying|is staying|"
            r"reside|resides|am settled|is settled)<ADV>\s+(?:in|near|outside|outside of|on)"
            r"\s+(?P<v>.+)"
        ),
        _place_handler("lives_in"),
    ),
    _Rule(
        "my_name",
        _rx(r"\b[Mm]y\s+(?:full\s+|first\s+|real\s+|nick)?name\s+is\s+(?P<v><NAME>)"),
        _h_my_name,
    ),
    _Rule("call_me", _rx(r"(?i:\b(?:call|calls|called)\s+me)\s+(?P<v><NAME>)"), _h_my_name),
    _Rule("his_name", _rx(r"\b(?P<pp>[Hh]is|[Hh]er)\s+name\s+is\s+(?P<v><NAME>)"), _h_his_name),
    _Rule("i_am_name", _rx(r"\bI\s+am\s+(?P<v><NAME>)<NOTPOSS>"), _h_i_am_name),
    _Rule(
        "married",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|was|got|have been|has been)\s+(?:happily\s+)?"
            r"married\s+to\s+(?P<v><NAME>)"
        ),
        _h_married,
    ),
    _Rule(
        "rel_is",
        _rx(
            r"<POSS>\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>)(?:'s\s+name|'\s+names|\s+names?)?"
            r"\s+(?P<verb>is|was|are|were)\s+(?:(?:called|named)\s+)?"
            r"(?P<v><NAME><NOTPOSS>(?:\s+and\s+<NAME>)?)<NOTPOSS>"
        ),
        _h_rel_is,
    ),
    _Rule(
        "have_rel",
        _rx(
            r"<SUBJ><ADV>\s+(?:have|has|have got|has got)\s+(?P<det>an?|one|two|three|four|"
            r"five|\d)\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>),?\s+"
            r"(?P<v><NAME>(?:(?:,\s*|,?\s+and\s+)<NAME>)*)<NOTPOSS>"
        ),
        _h_have_rel,
    ),
    _Rule(
        "rel_appos",
        _rx(
            r"<POSS>\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>),?\s+(?P<v><NAME>)<NOTPOSS>"
        ),
        _h_rel_fact,
    ),
    _Rule(
        "name_is_rel",
        _rx(
            r"(?P<v><NAME>)\s+(?:is|was)\s+<POSS>\s+(?:(?P<adj><RELADJ>)\s+)?(?P<rel><REL>)\b"
            r"<NOTPOSS>"
        ),
        _h_rel_fact,
    ),
    _Rule(
        "named_thing",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>have got|has got|have|has|got|adopted|own|owns|run|runs|"
            r"started|founded|co-founded|opened|manage|manages|play in|plays in|sing in|sings in|"
            r"wrote|released|made|built|bought|host|hosts)\s+"
            r"(?P<det>an?|one|two|three|this|the|my|his|her|their|our)?\s*"
            r"(?P<adjs>(?:[a-z][\w-]*\s+){0,2}?)(?P<rel>[a-z][\w-]*)"
            r"(?:\s+(?:there|here|now))?,?\s+(?:called|named)\s+(?P<v>.+)"
        ),
        _h_named_thing,
    ),
    _Rule(
        "hobby",
        _rx(
            r"<POSS>\s+(?P<what>hobby|hobbies|(?:favou?rite\s+)?pastime|passion)\s+"
            r"(?P<verb>is|are|includes?)\s+(?P<v>.+)"
        ),
        _h_hobby,
    ),
    _Rule(
        "favourite",
        _rx(
            r"<POSS>\s+(?P<fav>(?i:favou?rite|fave))\s+(?P<thing>[a-z][\w-]*(?:\s+[a-z][\w-]*)"
            r"{0,2}?)\s+(?P<verb>is|are|was|has always been|would be|has to be)\s+(?P<v>.+)"
        ),
        _h_favourite,
    ),
    _Rule(
        "favourite_inverse",
        _rx(
            r"^(?P<v>[^,;]{1,40}?)\s+(?P<verb>is|are)\s+(?:definitely\s+|probably\s+)?"
            r"<POSS>\s+(?:all-time\s+)?(?P<fav>(?i:favou?rite|fave))\s+"
            r"(?P<thing>[a-z][\w-]*(?:\s+[a-z][\w-]*){0,2}?)(?=\s*(?:[,.!;]|$|\s+(?:and|but|"
            r"so|of|ever|in|because)\b))"
        ),
        _h_favourite,
    ),
    _Rule(
        "work_as",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>work|works|worked|am working|is working|are working|"
            r"have worked|has worked|have been working|has been working|am employed|"
            r"is employed)<ADV>\s+as\s+(?P<v>.+)"
        ),
        _h_work_as,
    ),
    _Rule(
        "job_is",
        _rx(r"<POSS>\s+(?:day\s+)?(?:job|profession|occupation)\s+is\s+(?:being\s+)?(?P<v>.+)"),
        _h_job_is,
    ),
    _Rule(
        "allergic",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|was|have been|has been)\s+(?:(?i:very|severely|"
            r"really|quite|mildly|seriously|deathly|extremely|super|badly|slightly)\s+)?"
            r"allergic\s+to\s+(?P<v>.+)"
        ),
        _h_allergy,
    ),
    _Rule(
        "allergy_to",
        _rx(r"<SUBJ><ADV>\s+(?:have|has|have got|has got)\s+an?\s+allergy\s+to\s+(?P<v>.+)"),
        _h_allergy,
    ),
    _Rule(
        "x_allergy",
        _rx(
            r"<SUBJ><ADV>\s+(?:have|has|have got|has got)\s+an?\s+(?:(?:severe|serious|bad|"
            r"mild|slight)\s+)?(?P<v>[\w-]+(?:\s+[\w-]+)?)\s+allergy\b"
        ),
        _h_allergy,
    ),
    _Rule(
        "diet",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|have been|has been)\s+(?:an?\s+)?(?:strict\s+)?"
            r"(?P<v>(?i:vegetarian|vegan|pescatarian|lactose intolerant|gluten[- ]free|coeliac|"
            r"celiac|diabetic|teetotal))\b"
        ),
        _h_diet,
    ),
    _Rule(
        "nationality",
        _rx(r"<SUBJ>\s+(?:am|is|are)\s+(?:half\s+)?(?P<v>" + "|".join(_DEMONYMS) + r")\b"),
        _h_nationality,
    ),
    _Rule(
        "from",
        _rx(r"<SUBJ><ADV>\s+(?:am|is|are|was)\s+(?:originally\s+)?from\s+(?P<v>.+)"),
        _place_handler("hometown", allow_we=True),
    ),
    _Rule(
        "come_from",
        _rx(r"<SUBJ><ADV>\s+(?:come|comes)\s+from\s+(?P<v>.+)"),
        _place_handler("hometown", verb="come", allow_we=True),
    ),
    _Rule(
        "grew_up",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>grew up|was raised|were raised|was brought up)\s+"
            r"(?P<prep>in|on|near|outside|around|between)\s+(?P<v>.+)"
        ),
        _place_handler("hometown", verb="grew up", allow_we=True),
    ),
    _Rule(
        "hometown",
        _rx(r"<POSS>\s+(?:home\s?town|home city)\s+is\s+(?P<v>.+)"),
        lambda m, ctx, ids, s: _poss_place(m, ctx, ids, "hometown"),
    ),
    _Rule("born", _rx(r"<SUBJ>\s+(?:was|were)\s+born\s+(?P<v>.+)"), _h_born),
    _Rule(
        "birthday",
        _rx(r"<POSS>\s+(?:birthday|bday|b-day)\s+is\s+(?:on\s+)?(?P<v>.+)"),
        _h_birthday,
    ),
    _Rule(
        "age",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|turned|turn)\s+(?P<v>\d{1,3})(?![\d.,]\d|\w)"
            r"(?:\s+years?\s+old|\s+y/?o\b)?(?!\s*(?:%|percent|minutes?|mins?|hours?|km|miles|"
            r"kg|lbs|cm|euros|dollars|times|th|st|nd|rd)\b)"
        ),
        _h_age,
    ),
    _Rule(
        "study",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>studied|study|studies|am studying|is studying|are studying|"
            r"majored in|major in|did (?:my|a|his|her) (?:degree|masters|master's|phd|PhD|"
            r"bachelor's|doctorate) in|(?:have|has) (?:a|my|his|her) (?:degree|masters|"
            r"master's|phd|PhD|bachelor's|doctorate) in)\s+(?P<v>.+)"
        ),
        _h_study,
    ),
    _Rule(
        "school",
        _rx(r"<SUBJ><ADV>\s+(?:went to|go to|goes to|attended|attend|attends|graduated from)"
            r"\s+(?P<v>.+)"),
        _h_school,
    ),
    _Rule(
        "teach",
        _rx(r"<SUBJ><ADV>\s+(?:teach|teaches)\s+(?P<v>.+)"),
        _h_teach,
    ),
    _Rule(
        "work_at",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>work|works|am working|is working|are working|have worked|"
            r"has worked|have been working|has been working)<ADV>\s+(?P<prep>at|for|in)\s+"
            r"(?P<v>.+)"
        ),
        _h_work_at,
    ),
    _Rule(
        "speak",
        _rx(
            r"<SUBJ><ADV>\s+(?:speak|speaks|can speak|am fluent in|is fluent in|are fluent in|"
            r"grew up speaking)\s+(?:fluent\s+)?(?P<v>.+)"
        ),
        _h_speak,
    ),
    _Rule(
        "learn",
        _rx(
            r"<SUBJ><ADV>\s+(?:am|is|are|have been|has been|started|began)\s+"
            r"(?:(?i:currently|slowly|still|also|trying to)\s+)*"
            r"(?P<verb>learning|learn|taking)\s+(?P<v>.+)"
        ),
        _h_learn,
    ),
    _Rule(
        "play_the",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>play|plays|can play|have played|has played)\s+"
            r"(?P<the>the)\s+(?P<v>.+)"
        ),
        _h_play,
    ),
    _Rule(
        "play",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>play|plays|can play)\s+(?P<v>(?!(?:the|with|in|on|at|for|"
            r"it|them|around|a lot|some|along|games? with|music|a game|this|that)\b).+)"
        ),
        _h_play,
    ),
    _Rule(
        "go_ing",
        _rx(r"<SUBJ><ADV>\s+(?P<verb>go|goes)\s+(?P<v>[a-z]+ing)\b"),
        _h_go_ing,
    ),
    _Rule(
        "like",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>love|loves|like|likes|enjoy|enjoys|adore|adores|prefer|"
            r"prefers|am into|is into|are into|am obsessed with|is obsessed with|"
            r"am passionate about|is passionate about|am (?:a\s+)?(?:big\s+|huge\s+|massive\s+)?"
            r"fan of|is (?:a\s+)?(?:big\s+|huge\s+|massive\s+)?fan of)\s+(?P<v>.+)"
        ),
        _h_like,
    ),
    _Rule(
        "dislike",
        _rx(
            r"<SUBJ><ADV>\s+(?P<verb>hate|hates|dislike|dislikes|detest|detests|loathe|loathes|"
            r"can't stand|cannot stand|can not stand|don't like|do not like|doesn't like|"
            r"does not like|don't enjoy|do not enjoy|am not (?:a\s+)?(?:big\s+)?fan of|"
            r"is not (?:a\s+)?(?:big\s+)?fan of)\s+(?P<v>.+)"
        ),
        _h_dislike,
    ),
    _Rule("drive", _rx(r"<SUBJ><ADV>\s+(?:drive|drives)\s+(?P<v>.+)"), _h_drive),
    _Rule(
        "generic_poss",
        _rx(
            r"<POSS>\s+(?P<attr>[a-z][\w-]*(?:\s+[a-z][\w-]*)?)\s+(?P<verb>is|was)\s+"
            r"(?P<called>called|named|titled)?\s*(?P<v>.+)"
        ),
        _h_generic_poss,
    ),
    _Rule(
        "appos_job",
        _rx(r"(?P<name><NAME>),\s+(?:an?|the)\s+(?P<v>[^,]+),"),
        _h_appos_job,
    ),
    _Rule(
        "be_a",
        _rx(r"<SUBJ><ADV>\s+" + _BE + r"<ADV>\s+(?P<art>an?|the)\s+(?P<v>.+)"),
        _h_be_a,
    ),
]


def _poss_place(
    m: re.Match[str], ctx: ExtractionContext, ids: list[int], relation: str
) -> list[_Found]:
    owner = _possessor(m, ctx)
    value = _clean_value(m.group("v"), "place")
    if owner is None or not value or _void_start(value):
        return []
    return [_found(m, "v", _make_fact(owner, relation, value, ids))]


# --------------------------------------------------------------------------------------------
# Public extraction API
# --------------------------------------------------------------------------------------------


def extract_facts(
    user_text: str,
    exchange_ids: Sequence[int],
    context: ExtractionContext | None = None,
) -> list[Fact]:
    """Facts the user stated in ``user_text``, in the order they were said.

    Pass the same ``context`` for consecutive messages of one conversation so "he" in a later
    message can refer to a person named in an earlier one.
    """
    ctx = context if context is not None else ExtractionContext()
    ids = list(exchange_ids)
    facts: list[Fact] = []
    for sentence in split_sentences(normalise(user_text)):
        facts.extend(_extract_sentence(sentence, ids, ctx))
    merged = merge_facts(facts)
    log.debug("extracted %d fact(s) from %r", len(merged), user_text[:80])
    return merged


def extract_conversation(turns: Iterable[tuple[str, Sequence[int]]]) -> list[Fact]:
    """Facts from consecutive user messages, resolving pronouns across them."""
    ctx = ExtractionContext()
    facts: list[Fact] = []
    for text, ids in turns:
        facts.extend(extract_facts(text, ids, ctx))
    return merge_facts(facts)


def _extract_sentence(sentence: str, ids: list[int], ctx: ExtractionContext) -> list[Fact]:
    body = _strip_discourse(sentence)
    if not body or _is_question(body):
        return []
    candidates = []
    for priority, rule in enumerate(_RULES):
        for match in rule.regex.finditer(body):
            candidates.append((match.start(), priority, rule, match))
    candidates.sort(key=lambda item: (item[0], item[1]))
    used: list[tuple[int, int]] = []
    facts: list[Fact] = []
    for _, _, rule, match in candidates:
        if _HEDGE_RE.search(body[: match.start()]):
            continue  # "if I lived in Paris" states nothing
        for found in sorted(rule.handler(match, ctx, ids, body), key=lambda f: f.span):
            if any(found.span[0] < end and start < found.span[1] for start, end in used):
                continue
            used.append(found.span)
            facts.append(found.fact)
            log.debug("rule %s: %s", rule.name, found.fact.statement)
    return facts


def merge_facts(facts: Iterable[Fact]) -> list[Fact]:
    """Drops repeated facts (same subject, relation and value), merging their exchange ids."""
    merged: dict[tuple[str, str, str], Fact] = {}
    for fact in facts:
        key = (fact.subject.lower(), fact.relation, fact.value.lower())
        if key in merged:
            kept = merged[key]
            kept.source_exchange_ids = _union(kept.source_exchange_ids, fact.source_exchange_ids)
        else:
            merged[key] = Fact(
                fact.subject, fact.relation, fact.value, fact.statement,
                list(fact.source_exchange_ids), fact.origin,
            )
    return list(merged.values())
