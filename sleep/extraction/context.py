"""Who "he" and "she" can mean: the people a conversation has named so far."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from sleep.extraction.text import (
    _possessive,
)
from sleep.types import USER_SUBJECT, Fact

log = logging.getLogger(__name__)


@dataclass
class Person:
    """A person (or pet) named in the conversation; gender is "m", "f" or None (unknown)."""

    name: str
    gender: str | None = None


@dataclass
class ExtractionContext:
    """What pronoun resolution needs to remember across the messages of one conversation."""

    persons: list[Person] = field(default_factory=list)  # most recently mentioned last
    topic: str | None = None  # the person most recently talked *about* (a sentence subject)
    user_name: str | None = None

    def lookup(self, name: str) -> Person | None:
        """The known person ``name`` refers to, matching a first or last name to a full one."""
        for person in reversed(self.persons):
            if person.name == name:
                return person
        tokens = name.split()
        for person in reversed(self.persons):
            parts = person.name.split()
            if len(tokens) == 1 and len(parts) > 1 and tokens[0] in (parts[0], parts[-1]):
                return person
        return None

    def mention(self, name: str, gender: str | None = None, topic: bool = False) -> str:
        """Records a mention of ``name`` and returns its canonical (full) form."""
        person = self.lookup(name)
        if person is None:
            person = self._absorb_partial(name) or Person(name)
        else:
            self.persons.remove(person)
        self.persons.append(person)
        if gender and person.gender is None:
            person.gender = gender
        if topic:
            self.topic = person.name
        return person.name

    def _absorb_partial(self, name: str) -> Person | None:
        # "Andre" first, "Andre Patandre" later: the earlier entry becomes the full name.
        parts = name.split()
        for person in self.persons:
            if len(parts) > 1 and person.name in (parts[0], parts[-1]):
                self.persons.remove(person)
                if self.topic == person.name:
                    self.topic = name
                person.name = name
                return person
        return None

    def resolve(self, gender: str | None) -> str | None:
        """The person a pronoun means: "he"/"she" the most recent compatible person mentioned,
        "their" (gender None) the current topic, else the most recent person."""
        for person in self._candidates(prefer_topic=gender is None):
            if gender is None or person.gender in (None, gender):
                if gender and person.gender is None:
                    person.gender = gender
                return person.name
        return None

    def _candidates(self, prefer_topic: bool) -> list[Person]:
        ordered = [p for p in reversed(self.persons) if p.name != self.user_name]
        topic = next((p for p in ordered if p.name == self.topic), None)
        if not prefer_topic or topic is None:
            return ordered
        return [topic, *[p for p in ordered if p is not topic]]


@dataclass
class _Subject:
    key: str  # "user" or the person's name
    user: bool

    @property
    def name(self) -> str:
        return "You" if self.user else self.key

    @property
    def poss(self) -> str:
        return "Your" if self.user else _possessive(self.key)


@dataclass
class _Found:
    fact: Fact
    span: tuple[int, int]  # where the value came from in the sentence, to avoid double use


_Handler = Callable[[re.Match[str], ExtractionContext, list[int], str], list[_Found]]
_USER = _Subject(USER_SUBJECT, True)
_PRONOUN_GENDER = {"he": "m", "his": "m", "him": "m", "she": "f", "her": "f", "they": None,
                   "their": None}
