"""Question templates: several phrasings per fact, answered by the fact's statement."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable

from sleep.extraction.grounding import (
    dedupe_pairs,
)
from sleep.extraction.text import (
    _is_person_or_pet,
)
from sleep.extraction.vocabulary import (
    _LANGUAGES,
    _PAST_ADJ,
    _SPOUSES,
    PERSON_RELATIONS,
)
from sleep.types import USER_SUBJECT, Fact, QAPair

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Question templates. A plain string is answered with the fact's statement; ("...", "yes") and
# ("...", "no") prefix the statement with "Yes, " / "No, ". {s} is the person, {v} the value.
# --------------------------------------------------------------------------------------------

_Template = str | tuple[str, str]

_QUESTIONS: dict[str, tuple[list[_Template], list[_Template]]] = {
    "name": (
        ["What is my name?", "What am I called?", "Do you remember my name?",
         "What name do I go by?", "What should you call me?", "Who am I?"],
        ["What is {s}'s name?", "What is {s} called?"],
    ),
    "lives_in": (
        ["Where do I live?", "Which city do I live in?", "Where am I living these days?",
         "Where is my home now?", "Where am I based?", "What city do I call home?"],
        ["Where does {s} live?", "Which city does {s} live in?", "Where is {s} based?",
         "Where is {s} living these days?", "What city does {s} call home?",
         "Where is {s}'s home?"],
    ),
    "previous_city": (
        ["Where did I live before?", "Which city did I move from?", "Where did I use to live?",
         "Where was I living before I moved?", "What city did I leave when I moved?",
         "Where was my old home?"],
        ["Where did {s} live before?", "Which city did {s} move from?",
         "Where did {s} use to live?", "Where was {s} living before?",
         "What city did {s} leave?"],
    ),
    "hometown": (
        ["Where am I from?", "Where did I grow up?", "What is my hometown?",
         "Where am I from originally?", "Which town did I grow up in?", "Where was I raised?"],
        ["Where is {s} from?", "Where did {s} grow up?", "What is {s}'s hometown?",
         "Where is {s} from originally?", "Which town did {s} grow up in?",
         "Where was {s} raised?"],
    ),
    "birthplace": (
        ["Where was I born?", "What is my place of birth?", "In which city was I born?",
         "Where did I come into the world?"],
        ["Where was {s} born?", "What is {s}'s place of birth?", "In which city was {s} born?",
         "Where did {s} come into the world?"],
    ),
    "job": (
        ["What do I do for a living?", "What is my job?", "What is my profession?",
         "What do I work as?", "What kind of work do I do?", "What's my occupation?"],
        ["Who is {s}?", "What does {s} do for a living?", "What is {s}'s job?",
         "What is {s}'s profession?", "What does {s} do?", "What kind of work does {s} do?"],
    ),
    "previous_job": (
        ["What did I use to work as?", "What was my previous job?",
         "What job did I have before?", "What did I do for work before?"],
        ["What did {s} use to work as?", "What was {s}'s previous job?",
         "What job did {s} have before?", "What did {s} do for work before?"],
    ),
    "employer": (
        ["Where do I work?", "Which company do I work for?", "Who is my employer?",
         "Who do I work for?", "What is the name of my workplace?"],
        ["Where does {s} work?", "Which company does {s} work for?", "Who is {s}'s employer?",
         "Who does {s} work for?", "What is the name of {s}'s workplace?"],
    ),
    "field": (
        ["What field do I work in?", "What industry am I in?", "What area do I work in?",
         "What sector do I work in?"],
        ["What field does {s} work in?", "What industry is {s} in?",
         "What area does {s} work in?", "What sector does {s} work in?"],
    ),
    "studied": (
        ["What did I study?", "What subject do I study?", "What is my degree in?",
         "What was my major?", "What is my field of study?"],
        ["What did {s} study?", "What subject does {s} study?", "What is {s}'s degree in?",
         "What was {s}'s major?", "What is {s}'s field of study?"],
    ),
    "studied_at": (
        ["Where did I study?", "Which university did I go to?", "Which school did I attend?",
         "Where did I go to university?"],
        ["Where did {s} study?", "Which university did {s} go to?",
         "Which school did {s} attend?", "Where did {s} go to university?"],
    ),
    "teaches": (
        ["What do I teach?", "What subject do I teach?", "Which subject do I teach?",
         "What do I teach my students?"],
        ["What does {s} teach?", "What subject does {s} teach?", "Which subject does {s} teach?",
         "What does {s} teach their students?"],
    ),
    "likes": (
        ["What do I love?", "What is something I enjoy?", "What am I into?",
         "Name something I really like.", ("Do I like {v}?", "yes")],
        ["What does {s} love?", "What is something {s} enjoys?", "What is {s} into?",
         "Name something {s} really likes.", ("Does {s} like {v}?", "yes")],
    ),
    "dislikes": (
        ["What do I hate?", "What can't I stand?", "What do I dislike?",
         "Is there something I really don't like?", ("Do I like {v}?", "no")],
        ["What does {s} hate?", "What can't {s} stand?", "What does {s} dislike?",
         "Is there something {s} really doesn't like?", ("Does {s} like {v}?", "no")],
    ),
    "allergy": (
        ["What am I allergic to?", "Do I have any allergies?", "What allergy do I have?",
         "Is there anything I'm allergic to?", "What should I avoid because of my allergy?"],
        ["What is {s} allergic to?", "Does {s} have any allergies?",
         "What allergy does {s} have?", "Is there anything {s} is allergic to?"],
    ),
    "speaks": (
        ["What languages do I speak?", "Which language do I speak?",
         "What language can I speak?", "Which languages am I fluent in?"],
        ["What languages does {s} speak?", "Which language does {s} speak?",
         "What language can {s} speak?", "Which languages is {s} fluent in?"],
    ),
    "learning": (
        ["What am I learning?", "What am I learning at the moment?",
         "What new skill am I working on?", "What am I trying to learn?"],
        ["What is {s} learning?", "What is {s} learning at the moment?",
         "What new skill is {s} working on?", "What is {s} trying to learn?"],
    ),
    "instrument": (
        ["What instrument do I play?", "Which instrument do I play?",
         "Do I play an instrument?", "What musical instrument can I play?", "What do I play?"],
        ["What instrument does {s} play?", "Which instrument does {s} play?",
         "Does {s} play an instrument?", "What musical instrument can {s} play?",
         "What does {s} play?"],
    ),
    "plays": (
        ["What do I play?", "What sport or game do I play?", "What do I like to play?",
         "What do I play in my free time?"],
        ["What does {s} play?", "What sport or game does {s} play?",
         "What does {s} like to play?", "What does {s} play in their free time?"],
    ),
    "hobby": (
        ["What is my hobby?", "What do I do in my free time?", "What do I do for fun?",
         "How do I spend my free time?"],
        ["What is {s}'s hobby?", "What does {s} do in their free time?",
         "What does {s} do for fun?", "How does {s} spend their free time?"],
    ),
    "birth_year": (
        ["When was I born?", "What year was I born in?", "What is my birth year?",
         "In which year was I born?"],
        ["When was {s} born?", "What year was {s} born in?", "What is {s}'s birth year?",
         "In which year was {s} born?"],
    ),
    "birthday": (
        ["When is my birthday?", "What day is my birthday?", "When do I celebrate my birthday?",
         "What date was I born on?"],
        ["When is {s}'s birthday?", "What day is {s}'s birthday?",
         "When does {s} celebrate their birthday?", "What date was {s} born on?"],
    ),
    "age": (
        ["How old am I?", "What is my age?", "How many years old am I?", "What age am I?"],
        ["How old is {s}?", "What is {s}'s age?", "How many years old is {s}?",
         "What age is {s}?"],
    ),
    "nationality": (
        ["What is my nationality?", "What nationality am I?", "Which nationality do I have?"],
        ["What is {s}'s nationality?", "What nationality is {s}?",
         "Which nationality does {s} have?"],
    ),
    "diet": (
        ["What is my diet?", "What kind of diet do I follow?",
         "Do I have any dietary restrictions?", "How do I eat?"],
        ["What is {s}'s diet?", "What kind of diet does {s} follow?",
         "Does {s} have any dietary restrictions?", "How does {s} eat?"],
    ),
    "drives": (
        ["What car do I drive?", "What do I drive?", "What kind of car do I have?",
         "Which car is mine?"],
        ["What car does {s} drive?", "What does {s} drive?", "What kind of car does {s} have?",
         "Which car is {s}'s?"],
    ),
    "description": (
        ["What kind of person am I?", "What do you know about me?", "How would you describe me?",
         "Tell me something about myself."],
        ["Who is {s}?", "What do you know about {s}?", "Tell me about {s}.",
         "What can you tell me about {s}?", "How would you describe {s}?"],
    ),
}
_LANGUAGE_QUESTIONS = (
    ["Which language am I learning?", "What language am I studying?"],
    ["Which language is {s} learning?", "What language is {s} studying?"],
)


def _render(template: _Template, fact: Fact, statement: str) -> tuple[str, str]:
    question, mode = (template, "s") if isinstance(template, str) else template
    question = question.format(s=fact.subject, v=fact.value)
    if mode == "s":
        return question, statement
    prefix = "Yes" if mode == "yes" else "No"
    return question, f"{prefix}, {statement[:1].lower()}{statement[1:]}"


def _favourite_questions(fact: Fact) -> list[str]:
    fav, _, thing = fact.relation.partition(" ")
    if fact.subject == USER_SUBJECT:
        return [f"What is my {fav} {thing}?", f"Which {thing} do I like best?",
                f"What {thing} do I love the most?", f"Do you know my {fav} {thing}?",
                f"Tell me my {fav} {thing}."]
    s = fact.subject
    return [f"What is {s}'s {fav} {thing}?", f"Which {thing} does {s} like best?",
            f"What {thing} does {s} love the most?", f"Do you know {s}'s {fav} {thing}?",
            f"Tell me {s}'s {fav} {thing}."]


def _named_questions(fact: Fact) -> tuple[list[str], list[tuple[str, str]]]:
    """Forward questions and (question, answer) reversed ones for "<owner>'s <noun> is <X>"."""
    noun, value, user = fact.relation, fact.value, fact.subject == USER_SUBJECT
    owner = "my" if user else f"{fact.subject}'s"
    be = "was" if noun.split()[0] in _PAST_ADJ else "is"
    person = _is_person_or_pet(noun)
    forward = [
        f"What {be} {owner} {noun}'s name?" if person else f"What {be} {owner} {noun} called?",
        f"What {be} {owner} {noun} called?" if person
        else f"What {be} the name of {owner} {noun}?",
        f"What's the name of {owner} {noun}?",
        f"Who is {owner} {noun}?" if person
        else f"Do you remember what {owner} {noun} {be} called?",
        f"Tell me the name of {owner} {noun}.",
    ]
    reverse_answer = f"{value} {be} {'your' if user else owner} {noun}."
    who = "Who" if person else "What"
    reverse = [
        (f"{who} is {value}?", reverse_answer),
        (f"Whose {noun} {be} {value}?", reverse_answer),
    ]
    if user and noun in PERSON_RELATIONS:
        reverse += [(f"How do I know {value}?", reverse_answer),
                    (f"Who is {value} to me?", reverse_answer)]
    elif not user and noun in PERSON_RELATIONS:
        reverse.append((f"How is {value} related to {fact.subject}?", reverse_answer))
    if noun in _SPOUSES:
        married = "you" if user else fact.subject
        forward.append("Who am I married to?" if user else f"Who is {fact.subject} married to?")
        reverse.append((f"Who is {value} married to?", f"{value} is married to {married}."))
    return list(dict.fromkeys(forward)), reverse


def _templates(fact: Fact) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    statement = fact.statement
    if fact.relation.startswith("qa:"):
        return [(fact.relation[3:].strip(), statement)], []
    if fact.relation.startswith(("favourite ", "favorite ")):
        return [(q, statement) for q in _favourite_questions(fact)], []
    if fact.relation == "spouse" or fact.relation not in _QUESTIONS:
        forward, reverse = _named_questions(fact)
        return [(q, statement) for q in forward], reverse
    user_qs, third_qs = _QUESTIONS[fact.relation]
    templates = list(user_qs if fact.subject == USER_SUBJECT else third_qs)
    if fact.relation == "learning" and fact.value.lower() in _LANGUAGES:
        extra = _LANGUAGE_QUESTIONS[0 if fact.subject == USER_SUBJECT else 1]
        templates = [templates[0], *extra, *templates[1:]]
    return [_render(t, fact, statement) for t in templates], []


def _seed(fact: Fact) -> int:
    key = f"{fact.subject}|{fact.relation}|{fact.value}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def qa_pairs(fact: Fact, phrasings: int = 4) -> list[QAPair]:
    """Up to ``phrasings`` question phrasings of ``fact``, each answered by a full sentence.

    The first (canonical) question is always included and the rest are a seeded, hence
    repeatable, sample. Relation facts get at least one reversed question when ``phrasings``
    is 2 or more. Every answer contains ``fact.value`` verbatim.
    """
    if phrasings <= 0:
        return []
    forward, reverse = _templates(fact)
    rng = random.Random(_seed(fact))
    n_reverse = min(len(reverse), max(1, phrasings // 3)) if phrasings > 1 else 0
    n_forward = min(len(forward), phrasings - n_reverse)
    n_reverse = min(len(reverse), phrasings - n_forward)
    chosen = forward[:1] + rng.sample(forward[1:], max(n_forward - 1, 0)) if n_forward else []
    chosen += rng.sample(reverse, n_reverse)
    pairs = []
    for question, answer in chosen:
        if fact.value not in answer:
            log.warning("dropping %r: answer %r lacks value %r", question, answer, fact.value)
            continue
        pairs.append(QAPair(question, answer, list(fact.source_exchange_ids), "fact"))
    return pairs


def qa_for_facts(facts: Iterable[Fact], phrasings: int = 4) -> list[QAPair]:
    """``qa_pairs`` for every fact, deduplicated."""
    return dedupe_pairs([pair for fact in facts for pair in qa_pairs(fact, phrasings)])
