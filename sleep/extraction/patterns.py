"""Regex building blocks for the rules: names, adverbs, relation nouns, where a value ends."""

from __future__ import annotations

import logging
import re

from sleep.extraction.vocabulary import (
    _CAP_STOP,
    _MONTHS,
    _PLURALS,
    _REL_ADJ,
    PERSON_RELATIONS,
    PET_RELATIONS,
)

log = logging.getLogger(__name__)

_LETTER = r"[^\W\d_]"
_CAPWORD = rf"[A-ZÀ-ÖØ-Þ]{_LETTER}*(?:-{_LETTER}+)*(?![\w-])"
_NAME = (
    rf"(?<![\w'’-])(?!(?:{'|'.join(sorted(_CAP_STOP))})(?![\w'’-])){_CAPWORD}"
    rf"(?:\s+(?:(?:de|da|van|von|del|di|le|la|al)\s+)?{_CAPWORD}){{0,3}}"
)
_ADV = (
    r"(?:\s+(?i:also|still|now|currently|just|really|actually|recently|originally|mostly|"
    r"usually|even|already|finally|totally|absolutely|honestly|definitely|truly|genuinely|"
    r"only|both|all|kind of|sort of|pretty much|literally|secretly|always|remotely|"
    r"full-time|part-time|mainly|freelance))*"
)
_REL_NOUNS = sorted(
    [*PERSON_RELATIONS, *PET_RELATIONS, *_PLURALS, "guinea pig", "parents", "grandparents"],
    key=len,
    reverse=True,
)
_PLACEHOLDERS = {
    "<SUBJ>": rf"(?P<subj>\b(?:I|[Ww]e|[Hh]e|[Ss]he|[Tt]hey)\b|{_NAME})",
    "<POSS>": rf"(?P<poss>\b(?:[Mm]y|[Oo]ur|[Hh]is|[Hh]er|[Tt]heir)\b|(?P<pname>{_NAME})['’]s)",
    "<NAME>": _NAME,
    "<ADV>": _ADV,
    "<RELADJ>": _REL_ADJ,
    "<REL>": "|".join(re.escape(n) for n in _REL_NOUNS),
    "<NOTPOSS>": r"(?!['’]s\b)",
}


def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    for key, value in _PLACEHOLDERS.items():
        pattern = pattern.replace(key, value)
    return re.compile(pattern, flags)


# Where a captured value stops: punctuation, clause openers and trailing time expressions.
_CUTS = [
    r"but", r"because", r"since", r"which", r"who", r"whom", r"whose", r"where", r"when",
    r"while", r"so", r"though", r"although", r"unless", r"if", r"until", r"as well", r"too",
    r"anyway", r"lol", r"haha", r"btw", r"these days", r"nowadays", r"right now",
    r"at the moment", r"currently", r"now", r"already", r"again", r"by the way", r"actually",
    r"i think", r"i guess", r"i suppose", r"originally", r"sometimes", r"often", r"usually",
    r"a lot", r"very much", r"so much", r"most days", r"at (?:the )?weekends?",
    r"on (?:the )?weekends?",
    r"on \w+days", r"every \w+", r"almost every \w+", r"once a \w+", r"twice a \w+",
    r"and (?:i|we|he|she|they|my|our|his|her|their|it|its|then|also|now|that|so|still|have|"
    r"has|am|is|was|are|were|do|did|there|here|honestly|yes|no)",
    r"or (?:i|so|something)", r"with (?:my|our|his|her|their)",
    r"for (?:about |almost |nearly |over |around |the past |the last )?(?:\d+|a|an|one|two|"
    r"three|four|five|six|seven|eight|nine|ten|many|several|a few|years|months|weeks|ages|"
    r"a while|work|a living|fun|now|the weekend)",
    r"(?:about |almost |nearly |over |around )?(?:\d+|a|an|one|two|three|four|five|six|seven|"
    r"eight|nine|ten|a few|several|many|some) (?:years?|months?|weeks?|days?) ago",
    r"last (?:year|month|week|spring|summer|autumn|fall|winter|night|time)",
    r"this (?:year|month|week|spring|summer|autumn|fall|winter|weekend|morning|evening)",
    rf"(?:in|since|around|back in) (?:\d{{4}}|the \d{{4}}s|(?:early|late|mid) \d{{4}}|{_MONTHS})",
    r"in (?:my|his|her|their|our) (?:free|spare) time",
    r"(?-i:I)",  # a new clause: "Paris I would be happy"
]
_CUT_RE = re.compile(
    r"\s*(?:[,;:!?()\[\]\"“”]|\s[-–—]\s|\.(?:\s|$)|\.\.\.|(?<!\w)(?:" + "|".join(_CUTS) + r")\b)",
    re.IGNORECASE,
)
_KIND_CUTS = {
    "name": re.compile(r"\s+(?:and|from|who|is|was)\b", re.IGNORECASE),
    "place": re.compile(r"\s+(?:and|for|with|to|from|because|as|after|before)\b", re.I),
    "job": re.compile(
        r"\s+(?:at|for|in|from|with|who|on|since|by|near|and|based)\b", re.IGNORECASE
    ),
    "play": re.compile(
        r"\s+(?:on|in|at|with|for|and|since|every|when|as|to|professionally)\b", re.IGNORECASE
    ),
    "thing": re.compile(r"\s+(?:for|to|over|rather than|instead of|more than)\s", re.I),
}
_MAX_WORDS = {"name": 4, "place": 6, "job": 6, "play": 4}
