"""Deterministic importance and utility scores for a user's message (paper §3.3, stage 1).

Curation combines these with a model-based novelty score. Importance asks "did the user tell us
something?": first-person facts, stated preferences, corrections, named entities and facts about
named people score high; greetings, thanks, filler and questions to the bot score low. Utility
asks "will it still matter later?": stable personal facts (name, city, family, allergies) beat
preferences, which beat transient states ("I'm tired today").

Both scores are in [0, 1]; ``explain`` names the main reason, for the sleep report.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sleep.extraction import PERSON_RELATIONS, extract_facts, normalise
from sleep.types import USER_SUBJECT, Fact

log = logging.getLogger(__name__)

# How long a fact of each relation stays true; unlisted relations (named relations such as
# "sister" or "studio") count as stable.
_STABILITY: dict[str, float] = {
    "name": 1.0, "allergy": 1.0, "birthday": 0.95, "birth_year": 0.95, "birthplace": 0.95,
    "hometown": 0.95, "nationality": 0.95, "lives_in": 0.9, "previous_city": 0.85,
    "job": 0.9, "employer": 0.85, "field": 0.8, "studied": 0.85, "studied_at": 0.85,
    "speaks": 0.9, "diet": 0.85, "instrument": 0.8, "teaches": 0.8, "previous_job": 0.75,
    "spouse": 0.95, "age": 0.7, "hobby": 0.75, "plays": 0.7, "learning": 0.65, "likes": 0.65,
    "dislikes": 0.65, "drives": 0.6, "description": 0.6,
}
_STABLE_DEFAULT = 0.9
_FAVOURITE_STABILITY = 0.75

_FIRST_PERSON_RE = re.compile(
    r"\b(?:I (?:am|was|have|had|live|lived|work|worked|grew|moved|play|speak|study|studied|"
    r"teach|own|got|love|like|hate|prefer|enjoy|used to)|my \w+)\b",
    re.IGNORECASE,
)
_PREFERENCE_RE = re.compile(
    r"\b(?:I (?:\w+ )?(?:love|loves|like|hate|prefer|enjoy|adore|dislike|can't stand|"
    r"cannot stand|don't like|do not like)|my fav(?:ou?rite|e)|favou?rite|I'm (?:not )?(?:a )?"
    r"(?:big |huge )?fan of|I am (?:not )?(?:a )?(?:big |huge )?fan of|I'm into|I am into)\b",
    re.IGNORECASE,
)
_CORRECTION_RE = re.compile(
    r"(?:^|[.!?]\s*)(?:actually|no,|nope,|not quite|correction|wait,|sorry,? I meant)\b|"
    r"\bI meant\b|\bthat's (?:wrong|not right|incorrect)\b|\bthat is (?:wrong|not right|"
    r"incorrect)\b|\bto be clear\b|\bI said\b|\bnot \w+,? but\b|\b(?:is|it's|it is) \w+,? not\b",
    re.IGNORECASE,
)
_GREETING_RE = re.compile(
    r"^(?:hi|hello|hey|hiya|yo|good (?:morning|afternoon|evening|night)|morning|evening|"
    r"howdy|greetings|bye|goodbye|see you|see ya|good ?night|gn|sup|what's up|how are you)\b",
    re.IGNORECASE,
)
_THANKS_RE = re.compile(r"\b(?:thanks|thank you|thx|ty|cheers|appreciate it)\b", re.I)
_FILLER_WORDS = frozenset(
    """ok okay k kk sure yes yeah yep yup no nope nah lol lmao haha hahaha hehe hmm hm um uh
    cool nice great awesome wow oh ah alright right fine good same true indeed ikr omg gotcha
    got it i see makes sense sounds good you too me too thanks thank you cheers please""".split()
)
_TRANSIENT_RE = re.compile(
    r"\b(?:today|tonight|right now|at the moment|this (?:morning|afternoon|evening|week)|"
    r"currently|just now|for now|these days)\b|\bI(?:'m| am) (?:so |really |very |a bit |"
    r"kind of |pretty )?(?:tired|hungry|bored|sleepy|busy|sick|ill|stressed|sad|happy|"
    r"excited|cold|hot|late|angry|annoyed|exhausted|thirsty|fine|ok|okay|good|great)\b",
    re.IGNORECASE,
)
_BOT_REQUEST_RE = re.compile(
    r"^(?:tell me|give me|show me|write|explain|help|can you|could you|would you|will you|"
    r"please|translate|summari[sz]e|list|describe|calculate|find|search|make|generate)\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^(?:what|who|where|when|why|how|which|whose|do|does|did|is|are|am|was|were|can|could|"
    r"would|will|should|shall|have|has|had|may|might)\b",
    re.IGNORECASE,
)
# Facts about someone else, even when "his" cannot be resolved within one message.
_THIRD_PERSON_RE = re.compile(
    r"\b(?:his|her|their)\s+(?:\w+\s+)?(?:"
    + "|".join(re.escape(r) for r in PERSON_RELATIONS)
    + r"|name|job|album|band|studio|company|book|birthday)\s+(?:is|was|are)\b|"
    r"\b(?:he|she) (?:is|was|works|worked|lives|lived|grew|plays|runs|owns|has|studied|"
    r"teaches|speaks|moved)\b",
    re.IGNORECASE,
)
_ENTITY_RE = re.compile(
    r"(?<=[a-z,;:] )[A-Z][a-zA-Z'-]+|\b\d+(?:[.,]\d+)?\b|\b(?:january|february|march|april|"
    r"may|june|july|august|september|october|november|december)\b",
)


@dataclass
class Signals:
    """What the scores are computed from; exposed for debugging and the sleep report."""

    facts: list[Fact]
    first_person: bool
    preference: bool
    correction: bool
    third_person: bool
    entities: int
    greeting: bool
    thanks: bool
    filler: bool
    question: bool
    request: bool
    transient: bool
    words: int


def signals(text: str) -> Signals:
    """Extracts every signal ``importance``, ``utility`` and ``explain`` use."""
    clean = normalise(text)
    stripped = clean.strip().lower().strip("!.?, ")
    words = re.findall(r"[\w']+", clean)
    return Signals(
        facts=extract_facts(text, []),
        first_person=bool(_FIRST_PERSON_RE.search(clean)),
        preference=bool(_PREFERENCE_RE.search(clean)),
        correction=bool(_CORRECTION_RE.search(clean)),
        third_person=bool(_THIRD_PERSON_RE.search(clean)),
        entities=len(_ENTITY_RE.findall(clean)),
        greeting=bool(_GREETING_RE.match(stripped)),
        thanks=bool(_THANKS_RE.search(clean)),
        filler=_is_filler(stripped),
        question=_is_question(clean),
        request=bool(_BOT_REQUEST_RE.match(stripped)),
        transient=bool(_TRANSIENT_RE.search(clean)),
        words=len(words),
    )


def _is_filler(stripped: str) -> bool:
    words = re.findall(r"[\w']+", stripped)
    return bool(words) and all(w in _FILLER_WORDS for w in words)


def _is_question(text: str) -> bool:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    return bool(sentences) and all(
        s.endswith("?") or _QUESTION_START.match(s) for s in sentences
    )


def _small_talk(sig: Signals) -> bool:
    """Greetings, thanks and filler that carry no fact, preference or correction."""
    informative = sig.facts or sig.preference or sig.correction or sig.third_person
    informative = informative or sig.entities > 1
    return not informative and (sig.greeting or sig.thanks or sig.filler)


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _importance(sig: Signals) -> float:
    if sig.words == 0:
        return 0.0
    score = 0.1
    if sig.facts:
        stability = max(_stability(f) for f in sig.facts)
        score += 0.45 + 0.2 * stability + 0.05 * min(len(sig.facts) - 1, 3)
    elif sig.third_person:
        score += 0.35
    if sig.first_person:
        score += 0.1
    if sig.preference:
        score += 0.1 if sig.facts else 0.3  # an extracted preference is already counted
    if sig.correction:
        score += 0.35
    score += 0.07 * min(sig.entities, 3)
    if _small_talk(sig):
        return min(score, 0.1)
    if not sig.facts and (sig.question or sig.request):
        return min(score, 0.2)  # asking the bot something tells us little about the user
    if not sig.facts and sig.transient:
        return min(score, 0.3)
    return _clamp(score)


def importance(text: str) -> float:
    """How much ``text`` tells the bot about the user or people they know, in [0, 1]."""
    return round(_importance(signals(text)), 3)


def _stability(fact: Fact) -> float:
    if fact.relation.startswith(("favourite ", "favorite ")):
        return _FAVOURITE_STABILITY
    score = _STABILITY.get(fact.relation, _STABLE_DEFAULT)
    # Facts about the user are what the bot will be asked about most.
    return score if fact.subject == USER_SUBJECT else score - 0.05


def _utility(sig: Signals) -> float:
    if sig.words == 0:
        return 0.0
    if sig.facts:
        return max(_stability(f) for f in sig.facts)
    if _small_talk(sig):
        return 0.05
    if sig.question or sig.request:
        return 0.1
    if sig.transient:
        return 0.15
    if sig.correction or sig.third_person:
        return 0.6
    if sig.preference:
        return 0.5
    return 0.2 + 0.1 * min(sig.entities, 2)


def utility(text: str) -> float:
    """How useful ``text`` will be in later conversations, in [0, 1]."""
    return round(_clamp(_utility(signals(text))), 3)


def explain(text: str) -> str:
    """The main reason for ``text``'s scores, in a few words."""
    sig = signals(text)
    if sig.words == 0:
        return "empty message"
    if sig.correction and (sig.facts or sig.entities):
        return "correction"
    if sig.facts:
        best = max(sig.facts, key=_stability)
        who = "first-person fact" if best.subject == USER_SUBJECT else "fact about a named person"
        return f"{who} ({best.relation})"
    return _explain_without_facts(sig)


def _explain_without_facts(sig: Signals) -> str:
    if _small_talk(sig):
        return "greeting" if sig.greeting else "thanks" if sig.thanks else "filler"
    if sig.question or sig.request:
        return "question to the bot"
    if sig.correction:
        return "correction"
    if sig.third_person:
        return "fact about another person"
    if sig.preference:
        return "stated preference"
    if sig.transient:
        return "transient state"
    if sig.entities:
        return "named entities"
    return "no memorable content"
