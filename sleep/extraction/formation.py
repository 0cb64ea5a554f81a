"""What one cycle learns from a user's turns: the rule layer and the general path, together.

* the **rules** (:mod:`.rules`) are a precise first layer for the fact kinds they know, with
  relations asked both ways ("Who is Mia?" → "Mia is your sister.");
* the **general path** (:mod:`.statements`) handles any sentence in which the user discloses
  something: it is restated in the second person with absolute dates (the answer) and asked
  about in several ways (the questions). It knows no list of fact kinds, so what a user says
  reaches the training data whatever it is about.

A statement that a later one in the same cycle corrects ("actually it's Tim", a move) is not
trained; :func:`superseded_answers` finds the answers of earlier cycles that a new statement
replaces, so the replay buffer stops bringing them back.

    extracted = extract_turns([(text, [exchange_id], when), ...], phrasings=8)
    extracted.pairs  # QAPair(question, answer, source_exchange_ids, "fact")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sleep.extraction.grounding import dedupe_pairs
from sleep.extraction.questions import qa_for_facts
from sleep.extraction.rules import extract_conversation
from sleep.extraction.statements import (
    Statement,
    former,
    generalised,
    named_things,
    questions_for,
    slot,
    statements_from_turns,
    supersede,
    unnamed,
)
from sleep.extraction.vocabulary import PERSON_RELATIONS, PET_RELATIONS
from sleep.types import USER_SUBJECT, Fact, QAPair

Turn = tuple[str, list[int], datetime | None]  # (user text, exchange ids, when it was said)


@dataclass
class Extracted:
    facts: list[Fact] = field(default_factory=list)  # rule facts, then general statements
    pairs: list[QAPair] = field(default_factory=list)
    rule_facts: int = 0
    statements: int = 0
    superseded: list[str] = field(default_factory=list)  # restated statements not trained


def statement_fact(st: Statement) -> Fact:
    """A general statement as a Fact (relation "statement": the sentence is the value)."""
    return Fact(st.subject, "statement", st.restated, st.restated,
                list(st.source_exchange_ids), "statement")


def extract_turns(turns: list[Turn], phrasings: int, *, rules: bool = True,
                  general: bool = True, seed: int = 0) -> Extracted:
    """Facts and training pairs from ``turns`` (rules first, then the general path)."""
    out = Extracted()
    rule_facts = extract_conversation([(text, ids) for text, ids, _ in turns]) if rules else []
    if general:
        statements = statements_from_turns(turns)
        gone = [st for st in statements if st.superseded_by is not None]
        # a change (a move, a new job) keeps the old value as what used to be true; a
        # correction ("sorry, I meant Noodle") drops it: it was never true
        current = [st for st in statements if st.superseded_by is None]
        live = current + [f for st in gone if statements[st.superseded_by].reason != "correction"
                          and (f := former(st)) is not None]
        out.superseded = [st.restated for st in gone]
        # the rules know no corrections: drop their facts whose value only a replaced
        # statement holds ("My hamster is Dumpling." ... "sorry, I meant Noodle")
        rule_facts = [f for f in rule_facts if not _only_in(f.value, gone, current)
                      and not _taken_back(f, gone, current)]
        out.statements = len(live)
        rule_facts += named_facts(current, rule_facts)
        merged = set()  # statements merged with the one before share one answer: one fact
        out.facts += [statement_fact(st) for st in live
                      if not (st.restated in merged or merged.add(st.restated))]
        for st in live:
            asked = questions_for(st, phrasings, seed)
            out.pairs += [QAPair(q, a, list(st.source_exchange_ids), "fact") for q, a in asked]
            out.pairs += [QAPair(q, st.restated, list(st.source_exchange_ids), "fact")
                          for q in generalised([q for q, _ in asked])
                          + unnamed([q for q, _ in asked]) + _home_questions(st)]
    out.facts = rule_facts + out.facts
    rule_pairs = qa_for_facts(rule_facts, phrasings)
    # a name the rules found is asked by its kind as well ("my spaniel" → "my dog", "my pet")
    rule_pairs += [QAPair(g, p.answer, list(p.source_exchange_ids), p.kind)
                   for p in rule_pairs for g in generalised([p.question], breeds=True)]
    out.pairs = drop_conflicts(dedupe_pairs(rule_pairs + out.pairs + contrasts(rule_facts)))
    out.rule_facts = len(rule_facts)
    return out


def named_facts(statements: list[Statement], known: list[Fact]) -> list[Fact]:
    """A short fact of its own for each thing or person a statement names ("a grey cat named
    Pimbrook and an elderly tortoise called Ossery": "Your cat is called Pimbrook.", "Your
    tortoise is called Ossery."), asked both ways like the rules' names ("What is my cat
    called?", "What is Pimbrook?"). A whole sentence that holds two names answers both
    questions with both; the short facts keep them apart. Names the rules found are left."""
    names = {f.value.lower() for f in known}
    out = []
    for st in statements:
        for noun, name in named_things(st.first_person):
            if name.lower() in names:
                continue
            names.add(name.lower())
            # people as the rules say them ("Your friend is Kai."), things "called"
            called = "" if noun in PERSON_RELATIONS else "called "
            out.append(Fact(USER_SUBJECT, noun, name, f"Your {noun} is {called}{name}.",
                            list(st.source_exchange_ids)))
    return out


def _home_questions(st: Statement) -> list[str]:
    """"We're in Sallowby now" says where the user lives without "live": asked that way too."""
    s = slot(st)
    if s is None or s[:2] != ("i", "home") or re.search(r"\blive", st.first_person, re.I):
        return []
    return ["Where do I live now?", "Where do I live?"]


def contrasts(facts: list[Fact]) -> list[QAPair]:
    """One yes/no pair per fact that is easy to mix up with another of its kind, asked with
    the other's value and answered with both ("Is my tortoise called Tussock?" → "No, your
    tortoise is called Gorbel. Your cat is called Tussock."). Kinds: the names of the user's
    people, the names of their pets and things, and one relation (a job) of several people
    or of the user and others. A small model trained on each fact alone answers the question
    of one with the value of its neighbour (the brother's name for the partner's); these pairs
    train the difference itself."""
    who = {f.value: f.relation for f in facts if f.subject == USER_SUBJECT
           and f.relation in PERSON_RELATIONS}
    kinds: dict[str, list[tuple[Fact, str, str]]] = {}  # kind -> (fact, question, sentence)
    for f in facts:
        v = f.value
        if len(v.split()) > 4 or v not in f.statement:
            continue
        if f.subject == USER_SUBJECT and f.relation in PERSON_RELATIONS:
            kinds.setdefault("person", []).append(
                (f, f"Is my {f.relation} {{v}}?", f"Your {f.relation} is {v}."))
        elif f.subject == USER_SUBJECT and (f.relation in PET_RELATIONS
                                            or f.statement.endswith(f"is called {v}.")):
            kinds.setdefault("named", []).append(
                (f, f"Is my {f.relation} called {{v}}?", f"Your {f.relation} is called {v}."))
        elif (m := re.fullmatch(rf"(You are|{re.escape(f.subject)} is) (an? )?{re.escape(v)}\.",
                                f.statement)) is not None:
            article = m.group(2) or ""
            if f.subject == USER_SUBJECT:
                ask, say = "Am I", "You are"
            elif f.subject in who:  # "Is my brother a ...?": people ask by the relation
                ask, say = f"Is my {who[f.subject]}", f"Your {who[f.subject]} {f.subject} is"
            else:
                ask, say = f"Is {f.subject}", f"{f.subject} is"
            kinds.setdefault(f.relation, []).append(
                (f, f"{ask} {{v}}?", f"{say} {article}{v}."))
    out = []
    for group in kinds.values():
        group = list({f.value.lower(): (f, q, a) for f, q, a in group}.values())
        if len(group) < 2:
            continue
        for k, (f, ask, said) in enumerate(group):
            other, _, other_said = group[(k + 1) % len(group)]
            question = ask.format(v=_with_article(other, other_said))
            out.append(QAPair(question, f"No, {said[0].lower()}{said[1:]} {other_said}",
                              list(f.source_exchange_ids) + list(other.source_exchange_ids),
                              "fact"))
    return out


def _with_article(f: Fact, sentence: str) -> str:
    """The value as ``sentence`` says it after its verb ("a pastry chef", "Tussock")."""
    m = re.search(rf"(?:\b(an?) )?{re.escape(f.value)}\.$", sentence)
    return f"{m.group(1)} {f.value}" if m and m.group(1) else f.value


def _named(text: str, skip: set[str]) -> set[str]:
    """Names and numbers in a sentence (after its first word), less those in ``skip``."""
    words = [w.strip(".,!?;:'\"()").lower() for w in text.split()[1:]]
    caps = [w for w, raw in zip(words, text.split()[1:], strict=True)
            if raw[:1].isupper() or any(c.isdigit() for c in raw)]
    return {w for w in caps if w and w not in skip}


def drop_conflicts(pairs: list[QAPair]) -> list[QAPair]:
    """Drop a question trained with answers that name different things ("What is my pet
    called?" for a dog Rex and a cat Sprocket): one question, one fact. Answers that add to
    each other ("Ana is your sister." / "Your sister Ana works in Porto.") stay."""
    by_question: dict[str, list[QAPair]] = {}
    for p in pairs:
        for key in _conflict_keys(p.question):
            by_question.setdefault(key, []).append(p)
    bad = set()
    for q, ps in by_question.items():
        skip = _named("x " + q, set())
        names = [n for n in (_named(p.answer, skip) for p in ps) if n]
        if any(not (a & b) for i, a in enumerate(names) for b in names[i + 1:]):
            bad.add(q)
    return [p for p in pairs if not bad & set(_conflict_keys(p.question))]


# "What is my pet's name?", "Do you remember what my pet is called?", "Who is my pet?": one
# question for conflicts, whatever its wording, when it asks the name of a thing by its kind
_KINDS = "pet|dog|cat|car|vehicle|instrument|plant"
_KIND_NAME = re.compile(rf"\b(?:my|our)\s+({_KINDS})(?:'s)?\b.*"
                        rf"|\bname of (?:my|our)\s+({_KINDS})\b")


def _conflict_keys(question: str) -> list[str]:
    q = " ".join(question.lower().split())
    m = _KIND_NAME.search(q)
    if m and re.search(r"\b(?:name|called|who)\b", q):
        return [q, f"the name of my {m.group(1) or m.group(2)}"]
    return [q]


def _taken_back(f: Fact, gone: list[Statement], live: list[Statement]) -> bool:
    """Whether a rule fact restates a replaced statement of its own exchange ("My partner's
    name is Joost." ... "no, Joost is my brother") that no current statement still says: the
    replaced one names the value and the relation ("partner"); no current one names both."""
    stems = [w[:4] for w in f.relation.lower().split("_") if len(w) > 2]
    value = f.value.lower()

    def says(st: Statement) -> bool:
        low = st.restated.lower()
        return value in low and (not stems or any(w in low for w in stems))

    return any(says(st) and set(st.source_exchange_ids) & set(f.source_exchange_ids)
               for st in gone) and not any(says(st) for st in live)


def _only_in(value: str, gone: list[Statement], live: list[Statement]) -> bool:
    low = value.lower()
    return any(low in st.restated.lower() for st in gone) and not any(
        low in st.restated.lower() for st in live)


@dataclass
class Replaced:
    """What earlier statements a new cycle's statements replace."""

    answers: set[str] = field(default_factory=set)  # the replaced statements, restated
    values: dict[int, set[str]] = field(default_factory=dict)  # exchange id -> old values
    former: list[Statement] = field(default_factory=list)  # what used to be true, to learn

    def covers(self, answer: str, source_exchange_ids: list[int]) -> bool:
        """Whether a stored pair (from any layer) states a replaced value: its answer is a
        replaced statement, or it comes from the same exchange and names the old value."""
        if answer in self.answers:
            return True
        low = answer.lower()
        return any(v in low for i in source_exchange_ids for v in self.values.get(i, ()))


def superseded_answers(earlier: list[Turn], new: list[Turn]) -> Replaced:
    """The statements of ``earlier`` turns that a statement of ``new`` replaces (same
    subject and single-valued predicate, another value: a move, a new job)."""
    out = Replaced()
    if not earlier or not new:
        return out
    old = statements_from_turns(earlier)
    replaced = supersede(old, statements_from_turns(new))
    for j in sorted({j for js in replaced.values() for j in js}):
        out.answers.add(old[j].restated)
        if (was := former(old[j])) is not None:
            out.former.append(was)
        s = slot(old[j])
        for i in old[j].source_exchange_ids:
            if s is not None:
                out.values.setdefault(i, set()).add(s[2])
    return out


def informativeness(answer: str) -> float:
    """How much a restated fact holds: names and numbers count most, then its length."""
    words = answer.split()
    named = sum(1 for w in words[1:] if w[:1].isupper() or any(c.isdigit() for c in w))
    return named + 0.1 * len(words)


def fit_budget(pairs: list[QAPair], epochs: int, budget: int) -> tuple[list[QAPair], int]:
    """At most ``budget`` training examples (pairs × epochs) from ``pairs``.

    A long real conversation yields far more statements than one cycle can train in its time
    budget. Phrasings go first, taken round-robin over facts (one answer, one fact) so every
    fact keeps its best questions (at least two while possible); then epochs; only then the
    least informative facts (:func:`informativeness`). Returns (pairs, epochs).
    """
    if budget <= 0 or len(pairs) * epochs <= budget:
        return pairs, epochs
    groups: dict[str, list[QAPair]] = {}
    for p in pairs:
        groups.setdefault(p.answer, []).append(p)
    if 2 * len(groups) * epochs > budget:
        epochs = max(1, budget // (2 * len(groups)))
    target = budget // epochs
    ranked = sorted(groups.values(), key=lambda g: -informativeness(g[0].answer))
    chosen: list[QAPair] = []
    depth = 0
    while len(chosen) < target and any(depth < len(g) for g in ranked):
        chosen += [g[depth] for g in ranked if depth < len(g)][: target - len(chosen)]
        depth += 1
    return chosen, epochs
