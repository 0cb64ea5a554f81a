"""Plain records that the sleep stages hand to each other.

A ``Fact`` is one thing the user said (about themselves or a named person), a ``QAPair`` is one
training example derived from a fact or from replay, and a ``ScoredExchange`` is the curation
stage's verdict on one logged exchange. The exchange itself lives in ``memory.store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QA_KINDS = ("fact", "replay", "identity", "dream", "profile")
USER_SUBJECT = "user"  # Fact.subject for facts about the person talking to the bot


@dataclass
class Fact:
    """One fact stated by the user.

    ``subject`` is ``"user"`` or a person's name; ``statement`` is a clean declarative sentence
    (2nd person for the user: "You live in Lisbon."; 3rd person otherwise) that always contains
    ``value`` verbatim. ``origin`` is "pattern" (deterministic) or "model" (parsed model output).
    """

    subject: str
    relation: str
    value: str
    statement: str
    source_exchange_ids: list[int] = field(default_factory=list)
    origin: str = "pattern"


@dataclass
class QAPair:
    """One training example; ``kind`` is one of ``QA_KINDS``."""

    question: str
    answer: str
    source_exchange_ids: list[int] = field(default_factory=list)
    kind: str = "fact"


@dataclass
class ScoredExchange:
    """Curation's verdict on one exchange: the three scores, whether it was kept, and why."""

    exchange_id: int
    user_text: str
    novelty: float
    importance: float
    utility: float
    kept: bool
    reason: str
