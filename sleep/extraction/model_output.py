"""Model-based extraction: the prompt, and a tolerant parser of what the model wrote."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sleep.extraction.context import (
    _USER,
    _Subject,
)
from sleep.extraction.patterns import (
    _NAME,
    _REL_NOUNS,
)
from sleep.extraction.rules import (
    _make_fact,
    extract_facts,
    merge_facts,
)
from sleep.extraction.text import (
    _relation_noun,
    _sentence,
    _valid_name,
)
from sleep.types import USER_SUBJECT, Fact

log = logging.getLogger(__name__)

EXTRACTION_PROMPT = (
    "Read the message below and list every fact the user states about themselves or about "
    "people they mention.\n"
    "Write one fact per line, exactly like this:\n"
    "Q: <question about the fact> A: <short answer>\n"
    "Use only what the user wrote. If there are no facts, write NONE.\n\n"
    "Example message: I live in Oslo and my brother is called Finn.\n"
    "Q: Where does the user live? A: Oslo\n"
    "Q: What is the name of the user's brother? A: Finn\n\n"
    "Message: {text}\n"
)

_QA_LINE = re.compile(
    r"^Q(?:uestion)?\s*\d*\s*[:\-]\s*(?P<q>.+?)\s+A(?:nswer)?\s*\d*\s*[:\-]\s*(?P<a>.+)$",
    re.IGNORECASE,
)
_Q_ONLY = re.compile(r"^Q(?:uestion)?\s*\d*\s*[:\-]\s*(?P<q>.+)$", re.IGNORECASE)
_A_ONLY = re.compile(r"^A(?:nswer)?\s*\d*\s*[:\-]\s*(?P<a>.+)$", re.IGNORECASE)
_JUNK_ANSWER_RE = re.compile(
    r"^(?:unknown|none|n/?a|null|nothing|unclear|not (?:mentioned|stated|specified|given|"
    r"provided)|no (?:information|answer|facts?)|i don'?t know|-+|\?+|\.+)\.?$",
    re.IGNORECASE,
)
_CLASSIFIERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), r)
    for p, r in [
        (r"allerg", "allergy"),
        (
            r"\b(?:moved from|used to live|live[d]? before|previous (?:city|home)|old city)",
            "previous_city",
        ),
        (
            r"\b(?:grow up|grew up|hometown|originally from|where (?:is|are|am) .+ from)",
            "hometown",
        ),
        (r"\bbirthday\b", "birthday"),
        (r"\bwhere\b.*\bborn\b|\bplace of birth\b", "birthplace"),
        (r"\b(?:born|birth year|year of birth)\b", "birth_year"),
        (r"\b(?:how old|age)\b", "age"),
        (r"\b(?:live|lives|living|reside|based|city)\b", "lives_in"),
        (r"\b(?:job|profession|occupation|for a living|work as)\b", "job"),
        (
            r"\b(?:employer|company|work for|work at|works for|works at)\b|where do(?:es)? .+ work",
            "employer",
        ),
        (r"\blearn", "learning"),
        (r"\b(?:speak|language)", "speaks"),
        (r"\binstrument", "instrument"),
        (r"\bsport", "plays"),
        (r"\b(?:hobby|hobbies|free time|for fun|pastime)", "hobby"),
        (r"\b(?:study|studied|degree|major)\b", "studied"),
        (r"\b(?:hate|dislike|can't stand)", "dislikes"),
        (r"\b(?:like|love|enjoy)", "likes"),
    ]
]
_REL_WORD_RE = re.compile(r"\b(" + "|".join(re.escape(n) for n in _REL_NOUNS) + r")\b", re.I)
_FAV_RE = re.compile(r"\b(favou?rite)\s+([a-z]+(?:\s+[a-z]+)?)", re.IGNORECASE)
_FIRST_PERSON = [
    (r"\bthe user's\b|\buser's\b", "my"), (r"\bdoes the user\b", "do I"),
    (r"\bis the user\b", "am I"), (r"\bwas the user\b", "was I"), (r"\bhas the user\b", "have I"),
    (r"\bthe user is\b", "I am"), (r"\bthe user has\b", "I have"), (r"\b(?:the )?user\b", "I"),
    (r"\bdo you\b", "do I"), (r"\bare you\b", "am I"), (r"\bwere you\b", "was I"),
    (r"\bhave you\b", "have I"), (r"\byour\b", "my"), (r"\byou\b", "I"),
]


def _first_person(text: str) -> str:
    for pattern, repl in _FIRST_PERSON:
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)
    return text[:1].upper() + text[1:]


def _strip_markup(line: str) -> str:
    line = line.replace("**", "").replace("__", "").strip()
    return re.sub(r"^(?:[-*•>]+|\d+[.)])\s*", "", line).strip()


def _clean_answer(answer: str) -> str:
    answer = answer.strip().strip("\"'`").strip()
    return re.sub(r"[.!]+$", "", answer).strip()


def _is_junk(value: str) -> bool:
    return not value or bool(_JUNK_ANSWER_RE.match(value)) or len(value.split()) > 12 or (
        "<" in value or "{" in value
    )


def _model_subject(question: str) -> str:
    if re.search(r"\b(?:I|my|me|you|your|user|user's)\b", question, re.IGNORECASE):
        return USER_SUBJECT
    names = [_valid_name(n) for n in re.findall(_NAME, question[1:])]
    return next((n for n in names if n), USER_SUBJECT)


def _classify(text: str) -> str | None:
    fav = _FAV_RE.search(text)
    if fav:
        return f"{fav.group(1).lower()} {fav.group(2).lower()}"
    rel = _REL_WORD_RE.search(text)
    if rel and not re.search(r"\b(?:live|work|born|from)\b", text, re.IGNORECASE):
        return _relation_noun(rel.group(1))
    for regex, relation in _CLASSIFIERS:
        if regex.search(text):
            return relation
    return "name" if re.search(r"\bname\b|\bcalled\b", text, re.IGNORECASE) else None


def _strip_value(value: str, relation: str) -> str:
    value = re.sub(r"^(?:in|at|to|from|near|as)\s+", "", value, flags=re.IGNORECASE)
    if relation in ("job", "previous_job", "description", "drives"):
        value = re.sub(r"^(?:an?|the)\s+", "", value, flags=re.IGNORECASE)
    return value.strip()


def _model_fact(subject: str, relation: str | None, value: str, question: str,
                ids: list[int]) -> Fact | None:
    value = _clean_answer(value)
    if _is_junk(value):
        return None
    subj = _USER if subject == USER_SUBJECT else _Subject(subject, False)
    if relation:
        value = _strip_value(value, relation)
        if value:
            fact = _make_fact(subj, relation, value, ids)
            fact.origin = "model"
            return fact
    statement = _sentence(value)
    return Fact(subj.key, f"qa: {question}", value, statement, list(ids), "model")


def _facts_from_sentence(answer: str, ids: list[int]) -> list[Fact]:
    facts = extract_facts(_first_person(answer), ids)
    for fact in facts:
        fact.origin = "model"
    return facts


def _facts_from_qa(question: str, answer: str, ids: list[int]) -> list[Fact]:
    answer = _clean_answer(answer)
    if _is_junk(answer):
        return []
    question = _first_person(question.strip())
    if len(answer.split()) >= 4:
        facts = _facts_from_sentence(answer, ids)
        if facts:
            return facts
    fact = _model_fact(_model_subject(question), _classify(question), answer, question, ids)
    return [fact] if fact else []


def _facts_from_triple(line: str, ids: list[int]) -> list[Fact]:
    parts = [p.strip() for p in line.strip().strip("|").split("|")]
    if len(parts) != 3 or not all(parts) or set(parts[0].lower().split()) & {"subject"}:
        return []
    subject_raw, relation_raw, value = parts
    if subject_raw.lower() in ("user", "the user", "i", "me", "myself", "you"):
        subject = USER_SUBJECT
    else:
        subject = _valid_name(subject_raw) or ""
    if not subject:
        return []
    relation = _classify(relation_raw) or _relation_noun(relation_raw)
    fact = _model_fact(subject, relation, value, relation_raw, ids)
    return [fact] if fact else []


def parse_model_extraction(raw: str, exchange_ids: Sequence[int]) -> list[Fact]:
    """Facts from a model's answer to ``EXTRACTION_PROMPT``; lines it cannot parse are skipped.

    Understands "Q: ... A: ..." on one line or over two, and "- subject | relation | value";
    bullets, numbering and markdown bold are ignored. Returned facts have origin "model" and
    should still pass ``grounded`` against the user's text before training on them.
    """
    ids = list(exchange_ids)
    facts: list[Fact] = []
    pending: str | None = None
    for raw_line in raw.splitlines():
        line = _strip_markup(raw_line)
        if not line:
            continue
        if qa := _QA_LINE.match(line):
            facts.extend(_facts_from_qa(qa.group("q"), qa.group("a"), ids))
            pending = None
        elif q := _Q_ONLY.match(line):
            pending = q.group("q")
        elif (a := _A_ONLY.match(line)) and pending:
            facts.extend(_facts_from_qa(pending, a.group("a"), ids))
            pending = None
        elif "|" in line:
            facts.extend(_facts_from_triple(line, ids))
    log.debug("parsed %d fact(s) from model extraction output %r", len(facts), raw[:200])
    return merge_facts(facts)
