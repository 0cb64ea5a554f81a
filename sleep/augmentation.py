"""Knowledge augmentation: a user's facts said together, in shuffled orders, as training text.

A cycle otherwise trains each fact only as the answer to its own questions, so the model
learns "this question → this sentence" and, asked in other words, answers in the question's
frame with a neighbour's value. Allen-Zhu & Li ("Physics of Language Models, Part 3.1", 2023)
found facts become extractable by new questions once the training text shows them in several
orders and contexts (their permutation augmentation), and Yang et al. ("Synthetic continued
pretraining", 2024) make a small corpus learnable by re-saying its entities together. Here a
profile pair asks an open question ("What do you know about me?") and answers with a few of
the user's restated facts in a shuffled order: each fact is said in ``repeats`` profiles, each
time beside other facts and at another position. Nothing is made up: every sentence of a
profile is one of the cycle's grounded answers.

    profile_pairs(pairs, repeats=2, per_profile=4, seed=0)  # QAPair(..., kind="profile")

With ``entity_repeats``, profiles are also grouped by what the facts are about (the user's
people, pets and named things: "Tell me about my sister Ilvana." answered by every restated
fact that names her), the per-person biographies of Allen-Zhu & Li's setting: the values bound
to one person are said together, apart from a neighbour's. Yes/no answers are left out: they
belong to their question.
"""

from __future__ import annotations

import random
import re

import lemminflect

from sleep.extraction.vocabulary import PERSON_RELATIONS, PET_RELATIONS
from sleep.types import QAPair

PROFILE_QUESTIONS = (
    "What do you know about me?",
    "Tell me what you remember about me.",
    "What have I told you about myself?",
    "Remind me what you know about my life.",
    "What do you remember from our chats?",
    "Sum up what you know about me.",
)
_CONTRAST = re.compile(r"(?:No|Yes),\s")
MAX_PROFILE_CHARS = 480  # a profile stays well inside a training example's 256 tokens
ENTITY_QUESTIONS = (
    "What do you know about {x}?",
    "Tell me about {x}.",
    "What have I told you about {x}?",
)
_NOT_NAMES = frozenset(
    "You Your Yours I I'm I've It It's The A An And But Or So If On In At By For To Of With "
    "Mr Mrs Ms Dr January February March April May June July August September October "
    "November December Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())
_RELATIONS = "|".join(sorted((re.escape(r) for r in (*PERSON_RELATIONS, *PET_RELATIONS)),
                             key=len, reverse=True))
_NAME_TEXT = r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*"
# "your (little) brother (Ollie)": the relation, and the name said right after it, if any
_RELATION = re.compile(rf"\b[Yy]our\s+(?:\w+\s+)?({_RELATIONS})\b(?:\s+({_NAME_TEXT}|[a-z]+\b))?")
# "your tortoise is called Gorbel", "Gorbel is your tortoise": the name of a relation too
_RELATION_IS = re.compile(rf"\b[Yy]our\s+(?:\w+\s+)?({_RELATIONS})\s+(?:is|was)\s+"
                          rf"(?:called\s+|named\s+)?({_NAME_TEXT})")
_IS_RELATION = re.compile(rf"({_NAME_TEXT})\s+(?:is|was)\s+your\s+(?:\w+\s+)?({_RELATIONS})\b")
_NAME = re.compile(rf"(?<![\w'-]){_NAME_TEXT}")
_MAX_KEY_SHARE = 0.5  # a key in more than half the answers (the user's town) groups nothing


def profile_pairs(pairs: list[QAPair], repeats: int, per_profile: int = 4,
                  seed: int = 0, entity_repeats: int = 0) -> list[QAPair]:
    """Profile pairs over the distinct answers of ``pairs`` (facts and replay; not anchors,
    identity or dreams): ``repeats`` shuffled passes over them, cut into profiles of up to
    ``per_profile`` answers (and :data:`MAX_PROFILE_CHARS`; one left over joins the profile
    before it). A profile holds two answers or more, never one twice; its source exchanges
    are those of its answers. Fewer than two answers: none.

    ``entity_repeats`` passes of :func:`entity_groups` come between the shuffled passes (a
    caller that keeps only the first profiles keeps both kinds)."""
    sources: dict[str, list[int]] = {}
    for p in pairs:
        # a contrast ("No, your cat is called Tussock. ...") answers its yes/no question only
        if p.kind in ("fact", "replay") and not _CONTRAST.match(p.answer):
            ids = sources.setdefault(p.answer.strip(), [])
            ids += [i for i in p.source_exchange_ids if i not in ids]
    answers = [a for a in sources if a]
    if per_profile < 2 or len(answers) < 2:
        return []
    rng = random.Random(seed)
    entities = entity_groups(answers) if entity_repeats > 0 else []
    out: list[QAPair] = []
    for r in range(max(repeats, entity_repeats)):
        if r < repeats:
            order = answers[:]
            rng.shuffle(order)
            groups = _cut(order, per_profile)
            if len(groups[-1]) == 1:  # a fact alone is no profile: it joins another
                last = groups.pop()[0]
                if groups and len(" ".join(groups[-1] + [last])) <= MAX_PROFILE_CHARS:
                    groups[-1].append(last)
                else:
                    groups.append([last, rng.choice([a for a in answers if a != last])])
            out += [_profile(g, sources, PROFILE_QUESTIONS[(len(out) + k) % len(
                PROFILE_QUESTIONS)]) for k, g in enumerate(groups)]
        if r < entity_repeats:
            for name, said in entities:
                said = said[:]
                rng.shuffle(said)
                for g in _cut(said, per_profile):
                    if len(g) > 1:  # one fact left over is no profile of that entity
                        q = ENTITY_QUESTIONS[(len(out) + r) % len(ENTITY_QUESTIONS)]
                        out.append(_profile(g, sources, q.format(x=name)))
    return out


def entity_groups(answers: list[str]) -> list[tuple[str, list[str]]]:
    """What ``answers`` are about, each with the answers that name it: a person, pet or thing by
    its name ("Ilvana", "Lord Fenwick") or by the user's relation to it ("my sister"; "my
    sister Ilvana" when one name follows that relation). Only keys in two answers or more,
    and in at most half of them; the rest of the answers are in no group."""
    keys: dict[str, list[str]] = {}
    named: dict[str, set[str]] = {}  # relation -> the names said right after it
    for a in answers:
        found: set[str] = set()
        pairs = [(m.group(1), m.group(2)) for m in _RELATION.finditer(a)]
        pairs += [(m.group(1), m.group(2)) for m in _RELATION_IS.finditer(a)]
        pairs += [(m.group(2), m.group(1)) for m in _IS_RELATION.finditer(a)]
        for rel, name in pairs:
            found.add(f"my {rel.lower()}")
            name = _name(name)
            # a lowercase word after the relation is a name only if English does not know it
            if name and (name[0].isupper() or not lemminflect.getAllLemmas(name)):
                named.setdefault(f"my {rel.lower()}", set()).add(name)
                found.add(name)
        for m in _NAME.finditer(a):
            first = m.start() == 0 or a[:m.start()].rstrip()[-1:] in ".!?:"
            # a sentence's first word is capitalised anyway: not taken for a name here
            if name := _name(m.group(0), skip_first=first):
                found.add(name)
        for k in found:
            keys.setdefault(k, []).append(a)
    # a relation with one name is that person: "my brother" and "Ollie" are one key
    for rel, names in named.items():
        if len(names) == 1 and (name := next(iter(names))) in keys:
            merged = keys.pop(rel) + keys.pop(name)
            keys[f"{rel} {name}"] = list(dict.fromkeys(merged))
    limit = max(2, int(_MAX_KEY_SHARE * len(answers)))
    return [(k, v) for k, v in keys.items() if 2 <= len(v) <= limit]


def _name(text: str | None, skip_first: bool = False) -> str:
    words = (text or "").split()[1 if skip_first else 0:]
    while words and words[0] in _NOT_NAMES:
        words = words[1:]
    return " ".join(words)


def _cut(order: list[str], per_profile: int) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for a in order:
        if len(groups[-1]) == per_profile or (
                groups[-1] and len(" ".join(groups[-1] + [a])) > MAX_PROFILE_CHARS):
            groups.append([])
        groups[-1].append(a)
    return groups


def _profile(answers: list[str], sources: dict[str, list[int]], question: str) -> QAPair:
    ids = sorted({i for a in answers for i in sources[a]})
    text = " ".join(a if a[-1] in ".!?" else a + "." for a in answers)
    return QAPair(question, text, ids, "profile")
