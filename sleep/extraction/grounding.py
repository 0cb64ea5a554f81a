"""Grounding (is a value supported by what the user wrote?) and de-duplication of pairs."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable

from sleep.extraction.text import (
    _union,
)
from sleep.types import QAPair

log = logging.getLogger(__name__)

_STOPWORDS = frozenset(
    """a an the of in on at to for from with and or is are was were be been being am i you he
    she it they we my your his her their our me him them this that these those as by its there
    here very really just also not no yes do does did has have had called named s t d ll re ve
    m user users""".split()
)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", _fold(text))


def _stem(token: str) -> str:
    plural = len(token) > 3 and token.endswith("s") and not token.endswith("ss")
    return token[:-1] if plural else token


def grounded(answer_value: str, user_texts: Iterable[str]) -> bool:
    """True when every content word of ``answer_value`` occurs in what the user wrote.

    Case, accents, punctuation, stopwords and a plural "s" are ignored; a value with no content
    words is never grounded.
    """
    words = [t for t in _tokens(answer_value) if t not in _STOPWORDS]
    if not words:
        return False
    available: set[str] = set()
    for text in user_texts:
        for token in _tokens(text):
            available.update((token, _stem(token)))
    return all(w in available or _stem(w) in available for w in words)


def _norm(text: str) -> str:
    return " ".join(_tokens(text))


def dedupe_pairs(pairs: Iterable[QAPair]) -> list[QAPair]:
    """Drops pairs whose normalised question and answer repeat, merging their exchange ids."""
    kept: dict[tuple[str, str], QAPair] = {}
    for pair in pairs:
        key = (_norm(pair.question), _norm(pair.answer))
        if key in kept:
            first = kept[key]
            first.source_exchange_ids = _union(first.source_exchange_ids, pair.source_exchange_ids)
        else:
            kept[key] = QAPair(pair.question, pair.answer, list(pair.source_exchange_ids),
                               pair.kind)
    return list(kept.values())
