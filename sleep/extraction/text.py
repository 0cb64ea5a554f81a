"""Text preparation (contractions, sentences, discourse markers) and small word helpers."""

from __future__ import annotations

import logging
import re

from sleep.extraction.patterns import (
    _CUT_RE,
    _KIND_CUTS,
    _MAX_WORDS,
    _NAME,
)
from sleep.extraction.vocabulary import (
    _CAP_STOP,
    _JOB_SUFFIXES,
    _JOB_WORDS,
    _NOT_JOBS,
    _PLURALS,
    _VOID_FIRST_WORDS,
    _VOID_VALUES,
    PERSON_RELATIONS,
    PET_RELATIONS,
)

log = logging.getLogger(__name__)

_CONTRACTIONS = [
    (r"[’‘`´]", "'"),
    (r"[“”]", '"'),
    (r"\be\.g\.", "eg"),
    (r"\bi\.e\.", "ie"),
    (r"\bi\b", "I"),
    (r"\bI'm\b", "I am"),
    (r"\bI've\b", "I have"),
    (r"\bI'd\b", "I would"),
    (r"\bI'll\b", "I will"),
    (r"\b([Hh]e|[Ss]he)'s (been|got)\b", r"\1 has \2"),
    (r"\b([Hh]e|[Ss]he|[Ii]t|[Tt]hat|[Tt]here|[Ww]hat|[Ww]ho|[Ww]here)'s\b", r"\1 is"),
    (r"\b([Ww]e|[Tt]hey|[Yy]ou)'re\b", r"\1 are"),
    (r"\b([Ww]e|[Tt]hey|[Yy]ou)'ve\b", r"\1 have"),
    (r"\bname's\b", "name is"),
    (r"\b(birthday|hometown|job)'s\b", r"\1 is"),
    (r"\b([A-Z][a-z]+)'s (been|got)\b", r"\1 has \2"),
    (
        r"\b([A-Z][a-z]+)'s (a|an|the|from|originally|living|working|based|married|allergic|"
        r"learning|studying|\d)",
        r"\1 is \2",
    ),
    (r"\b(St|Dr|Mr|Mrs|Ms|Prof|Jr|Sr|Mt|Ave|Rd|vs|etc)\.", r"\1"),
    (r"[ \t]+", " "),
]
_CONTRACTION_RES = [(re.compile(p), r) for p, r in _CONTRACTIONS]
_DISCOURSE_RE = re.compile(
    r"^(?:(?:oh|ah|well|so|ok|okay|anyway|anyways|actually|also|and|but|btw|by the way|no|yes|"
    r"yeah|yep|nope|hmm|um|uh|lol|haha|right|sure|honestly|basically|fun fact|oh and|and also|"
    r"just so you know|for the record|in fact|correction|sorry|to be clear|wait|hey|hi|hello|"
    r"ha|haha|oops|anyhow|plus|then again|funny enough|funnily enough)\b[\s,:;!.-]*)+",
    re.IGNORECASE,
)
_QUESTION_START = frozenset(
    """what who where when why how which whose do does did is are am was were can could would
    will should shall have has had may might tell any remember know guess""".split()
)
_HEDGE_RE = re.compile(
    r"\b(?:if|wish|imagine|suppose|pretend|whether|unless|wonder|dream of|dreamt|dreamed)\b"
    r"[^,;]*$",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Straightens quotes and expands the contractions the patterns rely on."""
    for regex, repl in _CONTRACTION_RES:
        text = regex.sub(repl, text)
    return text.strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (abbreviation periods are dropped by ``normalise`` beforehand)."""
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if p and p.strip()]


def _strip_discourse(sentence: str) -> str:
    return _DISCOURSE_RE.sub("", sentence).strip()


def _is_question(body: str) -> bool:
    words = body.split(maxsplit=1)
    return body.endswith("?") and bool(words) and words[0].lower() in _QUESTION_START


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _possessive(name: str) -> str:
    return f"{name}'s"


def _article(phrase: str) -> str:
    word = phrase.lower()
    if word.startswith(("uni", "eu", "use", "one", "ur")):
        return "a"
    if word.startswith(("hour", "honest", "heir")):
        return "an"
    return "an" if word[:1] in "aeiou" else "a"


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _words(text: str) -> list[str]:
    return text.split()


def _clean_value(raw: str, kind: str = "free") -> str:
    """Cuts a captured rest-of-sentence down to the value itself; '' when nothing is left."""
    value = raw.strip().strip("\"'")
    cut = _CUT_RE.search(value)
    if cut:
        value = value[: cut.start()]
    extra = _KIND_CUTS.get(kind)
    if extra:
        cut = extra.search(value)
        if cut:
            value = value[: cut.start()]
    value = value.strip(" \t'\"-.,")
    if not value or len(_words(value)) > _MAX_WORDS.get(kind, 8):
        return ""
    return "" if value.lower() in _VOID_VALUES else value


def _void_start(value: str) -> bool:
    first = value.split(maxsplit=1)[0].lower() if value else ""
    return first in _VOID_FIRST_WORDS


def _leading_name(value: str) -> str:
    """The capitalised name at the start of ``value`` ('' when it does not start with one)."""
    match = re.match(_NAME, value)
    return _valid_name(match.group(0)) if match else ""


def _valid_name(name: str) -> str:
    tokens = name.split()
    while tokens and tokens[0] in _CAP_STOP:
        tokens = tokens[1:]
    if not tokens or any(t in ("I", "I'm") for t in tokens):
        return ""
    return " ".join(tokens)


def _is_job(phrase: str) -> bool:
    phrase = phrase.lower().strip()
    if not phrase or phrase in _NOT_JOBS:
        return False
    head = phrase.split()[-1]
    if head in _NOT_JOBS or " ".join(phrase.split()[-2:]) in _NOT_JOBS:
        return False
    return head in _JOB_WORDS or (len(head) > 4 and head.endswith(_JOB_SUFFIXES))


def _relation_noun(noun: str) -> str:
    noun = noun.lower().strip()
    noun = _PLURALS.get(noun, noun)
    return {"fiancé": "fiance", "fiancée": "fiancee", "guinea pig": "guinea-pig"}.get(noun, noun)


def _is_person_or_pet(relation: str) -> bool:
    head = relation.split()[-1] if relation else ""
    return relation in PERSON_RELATIONS or head in PERSON_RELATIONS or head in PET_RELATIONS


_MODALS = frozenset({"can", "can't", "cannot", "could", "used", "was", "were", "will", "would"})
_IRREGULAR_PAST = frozenset(
    "grew came went ran made wrote built bought got had did taught began saw met won".split()
)


def _conj(verb_phrase: str, user: bool) -> str:
    """Conjugates a verb phrase the user said ("love", "am into") for the statement's subject."""
    words = verb_phrase.split()
    head, rest = words[0].lower(), words[1:]
    if head in ("don't", "doesn't"):
        head = "don't" if user else "doesn't"
    elif head in ("do", "does"):
        head = "do" if user else "does"
    elif head in ("am", "is", "are"):
        head = "are" if user else "is"
    elif head in ("have", "has"):
        head = "have" if user else "has"
    elif not (head.endswith("ed") or head in _MODALS or head in _IRREGULAR_PAST):
        base = _base_form(head)
        head = base if user else _third_person(base)
    return " ".join([head, *rest])


def _base_form(verb: str) -> str:
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if verb.endswith(("ches", "shes", "sses", "xes", "oes")):
        return verb[:-2]
    if verb.endswith("s") and not verb.endswith("ss") and len(verb) > 3:
        return verb[:-1]
    return verb


def _third_person(base: str) -> str:
    if base.endswith(("s", "sh", "ch", "x", "o")):
        return base + "es"
    if base.endswith("y") and base[-2:-1] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def _union(first: list[int], second: list[int]) -> list[int]:
    return first + [i for i in second if i not in first]
