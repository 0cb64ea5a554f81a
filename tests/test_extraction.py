"""Deterministic extraction and Q&A generation: coverage of the shipped fact sets, exact
expectations on common statements, reversed questions, grounding and the model-output parser."""

from __future__ import annotations

import re

import pytest

from sleep.extraction import (
    EXTRACTION_PROMPT,
    ExtractionContext,
    dedupe_pairs,
    extract_conversation,
    extract_facts,
    grounded,
    parse_model_extraction,
    qa_for_facts,
    qa_pairs,
)
from sleep.factsets import FactSet, bundled_factsets, load_factset, score_answer
from sleep.types import Fact, QAPair

FACTSETS = [load_factset(p) for p in bundled_factsets()]
FACTSET_IDS = [f.name for f in FACTSETS]


def _triples(text: str) -> list[tuple[str, str, str]]:
    return [(f.subject, f.relation, f.value) for f in extract_facts(text, [1])]


def _per_turn_facts(factset: FactSet) -> list[Fact]:
    # Each turn alone, with no shared context: what curation sees one exchange at a time.
    return [f for i, turn in enumerate(factset.user_turns) for f in extract_facts(turn, [i])]


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


# -- the shipped fact sets are fully covered ----------------------------------------------------


@pytest.mark.parametrize("factset", FACTSETS, ids=FACTSET_IDS)
def test_every_question_has_an_extracted_fact(factset: FactSet) -> None:
    facts = _per_turn_facts(factset)
    for question in factset.questions:
        assert any(score_answer(f.value, question.keys) for f in facts), question.question


@pytest.mark.parametrize("factset", FACTSETS, ids=FACTSET_IDS)
def test_every_question_has_a_qa_answer_with_its_key(factset: FactSet) -> None:
    pairs = qa_for_facts(_per_turn_facts(factset), phrasings=4)
    for question in factset.questions:
        assert any(score_answer(p.answer, question.keys) for p in pairs), question.question


@pytest.mark.parametrize("factset", FACTSETS, ids=FACTSET_IDS)
def test_conversation_extraction_covers_every_question(factset: FactSet) -> None:
    facts = extract_conversation([(t, [i]) for i, t in enumerate(factset.user_turns)])
    for question in factset.questions:
        assert any(score_answer(f.value, question.keys) for f in facts), question.question


@pytest.mark.parametrize("factset", FACTSETS, ids=FACTSET_IDS)
def test_reworded_questions_never_appear_in_training(factset: FactSet) -> None:
    facts = extract_conversation([(t, [i]) for i, t in enumerate(factset.user_turns)])
    facts += _per_turn_facts(factset)
    trained = {_norm(p.question) for p in qa_for_facts(facts, phrasings=50)}
    for question in factset.questions:
        for reworded in question.reworded:
            assert _norm(reworded) not in trained, reworded


def test_isolated_personas_share_no_answers() -> None:
    maya, tomasz = (load_factset(p) for p in bundled_factsets() if "persona" in p.name)
    maya_answers = [p.answer for p in qa_for_facts(_per_turn_facts(maya))]
    tomasz_answers = [p.answer for p in qa_for_facts(_per_turn_facts(tomasz))]
    for question in tomasz.questions:
        assert not any(score_answer(a, question.keys) for a in maya_answers), question.keys
    for question in maya.questions:
        assert not any(score_answer(a, question.keys) for a in tomasz_answers), question.keys


def test_andre_conversation_resolves_first_name_to_full_name() -> None:
    andre = next(f for f in FACTSETS if f.name == "andre_patandre")
    facts = extract_conversation([(t, [i]) for i, t in enumerate(andre.user_turns)])
    by_relation = {f.relation: f for f in facts if f.subject == "Andre Patandre"}
    assert by_relation["job"].statement == "Andre Patandre is a music producer."
    assert by_relation["lives_in"].statement == "Andre Patandre lives in Rotterdam."
    assert by_relation["wife"].value == "Solveig"
    assert by_relation["daughter"].value == "Noor"  # "Their daughter" resolves to Andre
    assert by_relation["first album"].value == "Glass Harbour Nights"
    assert by_relation["studio"].value == "Kestrel Room"


# -- exact expectations on common statements ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My name is Maya Okafor.", [("user", "name", "Maya Okafor")]),
        ("I'm Tomasz, I live in Gdansk.",
         [("user", "name", "Tomasz"), ("user", "lives_in", "Gdansk")]),
        ("Call me Bea.", [("user", "name", "Bea")]),
        ("I moved to Lisbon from Manchester last spring.",
         [("user", "lives_in", "Lisbon"), ("user", "previous_city", "Manchester")]),
        ("I moved from Porto to Berlin in 2020.",
         [("user", "previous_city", "Porto"), ("user", "lives_in", "Berlin")]),
        ("I'm from Cork originally.", [("user", "hometown", "Cork")]),
        ("I grew up in Leeds.", [("user", "hometown", "Leeds")]),
        ("I work as a nurse at St. Mary's Hospital.",
         [("user", "job", "nurse"), ("user", "employer", "St Mary's Hospital")]),
        ("I'm a data analyst at Northwind Logistics.",
         [("user", "job", "data analyst"), ("user", "employer", "Northwind Logistics")]),
        ("I work at Blue Finch Bakery.", [("user", "employer", "Blue Finch Bakery")]),
        ("My sister is called Mia.", [("user", "sister", "Mia")]),
        ("My brother's name is Leo.", [("user", "brother", "Leo")]),
        ("Mia is my sister.", [("user", "sister", "Mia")]),
        ("My dog Rex is asleep.", [("user", "dog", "Rex")]),
        ("I have a cat named Luna.", [("user", "cat", "Luna")]),
        ("My favourite color is green.", [("user", "favourite color", "green")]),
        ("I love jazz.", [("user", "likes", "jazz")]),
        ("I hate mushrooms.", [("user", "dislikes", "mushrooms")]),
        ("I was born in 1990.", [("user", "birth_year", "1990")]),
        ("I'm 34.", [("user", "age", "34")]),
        ("My birthday is March 3.", [("user", "birthday", "March 3")]),
        ("I'm allergic to peanuts.", [("user", "allergy", "peanuts")]),
        ("I speak Portuguese and English.", [("user", "speaks", "Portuguese and English")]),
        ("I'm learning Japanese.", [("user", "learning", "Japanese")]),
        ("I play the violin.", [("user", "instrument", "violin")]),
        ("I studied biology at the University of Porto.",
         [("user", "studied", "biology"), ("user", "studied_at", "the University of Porto")]),
        ("Andre Patandre is a music producer.", [("Andre Patandre", "job", "music producer")]),
        ("Sara Lindqvist works at Northwind Labs.",
         [("Sara Lindqvist", "employer", "Northwind Labs")]),
        ("Andre Patandre's wife is Solveig.", [("Andre Patandre", "wife", "Solveig")]),
        ("Jonas Berg was born in 1975.", [("Jonas Berg", "birth_year", "1975")]),
        ("Jonas Berg lives in Oslo.", [("Jonas Berg", "lives_in", "Oslo")]),
    ],
)
def test_exact_extraction(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert _triples(text) == expected


def test_statements_are_second_person_for_the_user_and_third_for_others() -> None:
    facts = extract_facts("I live in Lisbon. Andre Patandre lives in Rotterdam.", [7])
    assert [f.statement for f in facts] == [
        "You live in Lisbon.",
        "Andre Patandre lives in Rotterdam.",
    ]
    assert all(f.origin == "pattern" and f.source_exchange_ids == [7] for f in facts)


def test_pronouns_resolve_to_the_last_compatible_person() -> None:
    text = (
        "Andre Patandre is a music producer. His wife Solveig is a painter. "
        "His daughter is called Noor. She was born in 2015."
    )
    triples = _triples(text)
    assert ("Andre Patandre", "wife", "Solveig") in triples
    assert ("Solveig", "job", "painter") in triples
    assert ("Andre Patandre", "daughter", "Noor") in triples  # "his" skips Solveig
    assert ("Noor", "birth_year", "2015") in triples


def test_context_carries_pronouns_across_messages() -> None:
    ctx = ExtractionContext()
    extract_facts("My friend Andre Patandre is a music producer.", [1], ctx)
    facts = extract_facts("He grew up in Marseille.", [2], ctx)
    assert [(f.subject, f.relation, f.value) for f in facts] == [
        ("Andre Patandre", "hometown", "Marseille")
    ]
    assert extract_facts("He grew up in Marseille.", [2]) == []  # no antecedent, no guess


@pytest.mark.parametrize(
    "text",
    [
        "Hi there! How are you?",
        "Thanks so much, that was helpful.",
        "What's the weather like today?",
        "Tell me a joke.",
        "Do you know where I live?",
        "I'm tired today.",
        "I don't live in Paris anymore.",
        "If I lived in Paris I'd be happy.",
        "I love you!",
        "I like that idea.",
        "I'd love to visit Japan someday.",
        "Music is a big part of my life.",
        "I'm 5 minutes away.",
        "ok lol",
    ],
)
def test_no_facts_from_small_talk_questions_or_hypotheticals(text: str) -> None:
    assert extract_facts(text, [1]) == []


def test_correction_takes_the_corrected_value() -> None:
    assert _triples("Actually, I live in Porto, not Lisbon.") == [("user", "lives_in", "Porto")]


def test_repeated_facts_are_merged_with_their_ids() -> None:
    facts = extract_conversation([("I live in Lisbon.", [1]), ("I live in Lisbon now.", [4])])
    assert len(facts) == 1 and facts[0].source_exchange_ids == [1, 4]


# -- held-out generalisation check ---------------------------------------------------------------

# Written after the patterns, in wording that appears nowhere in the shipped fact sets, and
# not used to tune them: (statement, a key the extracted value must contain).
HELD_OUT = [
    ("My partner Lucia and I just bought a flat.", "lucia"),
    ("I'm employed as a software tester at Quarry Labs.", "software tester"),
    ("My mother's name is Adaeze.", "adaeze"),
    ("I've lived in Tallinn for about three years.", "tallinn"),
    ("My favourite season is autumn.", "autumn"),
    ("I was born in 1979.", "1979"),
    ("I'm allergic to bee stings.", "bee stings"),
    ("I have a golden retriever called Mango.", "mango"),
    ("I've been playing the trumpet since high school.", "trumpet"),
    ("I come from a tiny village in Wales.", "wales"),
]


def test_held_out_statements_mostly_extracted() -> None:
    hits = [
        text for text, key in HELD_OUT
        if any(key in f.value.lower() for f in extract_facts(text, [1]))
    ]
    assert len(hits) >= 8, f"only {len(hits)}/10 extracted: {hits}"


# -- Q&A generation -----------------------------------------------------------------------------


def _all_facts() -> list[Fact]:
    facts = [f for fs in FACTSETS for f in _per_turn_facts(fs)]
    facts += extract_facts(" ".join(text for text, _ in HELD_OUT), [1])
    facts += extract_facts("Andre Patandre is a music producer. His wife is Solveig.", [2])
    return facts


@pytest.mark.parametrize("phrasings", [1, 2, 3, 4])
def test_phrasings_count_is_honoured(phrasings: int) -> None:
    for fact in _all_facts():
        pairs = qa_pairs(fact, phrasings)
        assert len(pairs) == phrasings, (fact, [p.question for p in pairs])
        assert len({p.question for p in pairs}) == phrasings


def test_qa_pairs_are_deterministic_and_bounded() -> None:
    fact = extract_facts("I live in Lisbon.", [1])[0]
    assert qa_pairs(fact, 3) == qa_pairs(fact, 3)
    assert qa_pairs(fact, 0) == []
    many = qa_pairs(fact, 100)
    assert 4 <= len(many) <= 100 and len({p.question for p in many}) == len(many)
    assert qa_pairs(fact, 1)[0].question == "Where do I live?"  # the canonical phrasing


def test_no_answer_ever_lacks_its_value() -> None:
    for fact in _all_facts():
        assert fact.value in fact.statement
        for pair in qa_pairs(fact, 50):
            assert fact.value in pair.answer, (fact, pair)
            assert pair.kind == "fact" and pair.source_exchange_ids == fact.source_exchange_ids


def test_relation_facts_get_a_reversed_question() -> None:
    fact = extract_facts("My sister is called Mia.", [1])[0]
    pairs = qa_pairs(fact, 3)
    assert any(p.answer == "Mia is your sister." and "Mia" in p.question for p in pairs)
    third = extract_facts("Andre Patandre's wife is Solveig.", [1])[0]
    pairs = qa_pairs(third, 2)
    assert any(p.answer == "Solveig is Andre Patandre's wife." for p in pairs)
    married = qa_pairs(third, 50)
    assert any(p.question == "Who is Solveig married to?" for p in married)


def test_every_relation_fact_in_the_factsets_has_a_reversed_question() -> None:
    relational = [f for f in _all_facts() if f.relation in ("sister", "dog", "wife", "daughter",
                                                            "brother", "cat", "studio")]
    assert len(relational) >= 6
    for fact in relational:
        assert any(p.question.endswith(f"{fact.value}?") for p in qa_pairs(fact, 4)), fact


def test_answers_restate_the_fact_as_a_sentence() -> None:
    fact = extract_facts("I live in Lisbon.", [1])[0]
    assert {p.answer for p in qa_pairs(fact, 4)} == {"You live in Lisbon."}
    job = extract_facts("Andre Patandre is a music producer.", [1])[0]
    assert qa_pairs(job, 1)[0].answer == "Andre Patandre is a music producer."


def test_yes_no_questions_answer_with_the_statement() -> None:
    fact = extract_facts("I hate mushrooms.", [1])[0]
    answers = {p.question: p.answer for p in qa_pairs(fact, 50)}
    assert answers["Do I like mushrooms?"] == "No, you hate mushrooms."


def test_dedupe_pairs_normalises_and_merges_ids() -> None:
    pairs = [
        QAPair("Where do I live?", "You live in Lisbon.", [1], "fact"),
        QAPair("where do I live", "you live in Lisbon", [2], "fact"),
        QAPair("Where do I live?", "You live in Porto.", [3], "fact"),
    ]
    deduped = dedupe_pairs(pairs)
    assert [p.answer for p in deduped] == ["You live in Lisbon.", "You live in Porto."]
    assert deduped[0].source_exchange_ids == [1, 2]
    assert pairs[0].source_exchange_ids == [1]  # inputs are not mutated


# -- grounding ------------------------------------------------------------------------------------


def test_grounded_accepts_what_the_user_said() -> None:
    texts = ["My favourite food is Grilled Sardines!", "I'm allergic to hazelnuts."]
    assert grounded("grilled sardines", texts)
    assert grounded("hazelnut", texts)  # plural/singular
    assert grounded("the Sardines", texts)  # stopwords and case ignored


def test_grounded_rejects_hallucinated_values() -> None:
    texts = ["I moved to Lisbon from Manchester last spring."]
    assert not grounded("Oslo", texts)
    assert not grounded("Lisbon, Portugal", texts)  # one unsupported word is enough
    assert not grounded("the", texts)  # nothing to check is not support
    assert not grounded("Lisbon", [])


# -- model extraction ---------------------------------------------------------------------------


def test_prompt_formats_with_text() -> None:
    prompt = EXTRACTION_PROMPT.format(text="I live in Lisbon.")
    assert "I live in Lisbon." in prompt and "Q:" in prompt and "A:" in prompt


def test_parse_model_extraction_is_tolerant_of_junk() -> None:
    raw = """Sure! Here are the facts I found:
1. Q: Where does the user live? A: In Lisbon.
2. **Q:** What is the user's name? **A:** Maya
- Q: What is the name of the user's sister?
  A: Ifeoma
Q: What does the user do? A: The user works as a landscape architect.
Q: How many moons does Mars have? A: unknown
Q: What is the user's job? A:
- subject | relation | value
- Andre Patandre | job | music producer
random junk line with | one pipe
Q: <question> A: <short answer>
NONE
"""
    facts = parse_model_extraction(raw, [5])
    triples = {(f.subject, f.relation, f.value) for f in facts}
    assert triples == {
        ("user", "lives_in", "Lisbon"),
        ("user", "name", "Maya"),
        ("user", "sister", "Ifeoma"),
        ("user", "job", "landscape architect"),
        ("Andre Patandre", "job", "music producer"),
    }
    assert all(f.origin == "model" and f.source_exchange_ids == [5] for f in facts)
    assert all(f.value in f.statement for f in facts)


@pytest.mark.parametrize("raw", ["", "NONE", "I don't know.", "A: B: Q:", "|||", "Q: ? A: ?"])
def test_parse_model_extraction_of_garbage_is_empty(raw: str) -> None:
    assert parse_model_extraction(raw, [1]) == []


def test_model_facts_can_be_filtered_by_grounding() -> None:
    raw = "Q: Where does the user live? A: Oslo\nQ: What is the user's dog called? A: Biscuit"
    user_texts = ["I have a dog named Biscuit."]
    kept = [f for f in parse_model_extraction(raw, [1]) if grounded(f.value, user_texts)]
    assert [(f.relation, f.value) for f in kept] == [("dog", "Biscuit")]
