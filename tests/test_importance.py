"""Deterministic importance and utility scores: facts, preferences and corrections high;
greetings, thanks, filler and questions to the bot low; stable facts more useful than moods."""

from __future__ import annotations

import pytest

from sleep.importance import explain, importance, signals, utility

GREETINGS = ["Hi!", "hello there", "Hey, good morning!", "Thanks!", "thank you so much",
             "ok", "lol", "cool, nice", "Good night!"]
BOT_QUESTIONS = ["What's the weather like?", "Tell me a joke.", "Can you help me write an email?",
                 "How do I boil an egg?", "What is the capital of Peru?"]
FIRST_PERSON_FACTS = ["I live in Lisbon.", "My sister is called Mia.", "I work as a nurse.",
                      "I'm allergic to peanuts.", "I was born in 1991.", "I have a dog named Rex."]
PREFERENCES = ["I love jazz.", "My favourite colour is green.", "I hate mushrooms.",
               "I prefer tea over coffee."]
CORRECTIONS = ["Actually, it's Porto, not Lisbon.", "No, I meant my brother, not my sister.",
               "That's wrong, my dog is called Rex."]
THIRD_PERSON = ["Andre Patandre is a music producer.", "His wife is Lena.",
                "Sara Lindqvist lives in Uppsala."]


@pytest.mark.parametrize("text", GREETINGS)
def test_greetings_thanks_and_filler_score_low(text: str) -> None:
    assert importance(text) <= 0.1
    assert utility(text) <= 0.1


@pytest.mark.parametrize("text", BOT_QUESTIONS)
def test_questions_to_the_bot_score_low(text: str) -> None:
    assert importance(text) <= 0.2
    assert utility(text) <= 0.2


@pytest.mark.parametrize("text", FIRST_PERSON_FACTS)
def test_first_person_facts_score_high(text: str) -> None:
    assert importance(text) >= 0.7
    assert utility(text) >= 0.8
    assert explain(text).startswith("first-person fact")


@pytest.mark.parametrize("text", PREFERENCES)
def test_preferences_score_high(text: str) -> None:
    assert importance(text) >= 0.6
    assert utility(text) >= 0.5


@pytest.mark.parametrize("text", CORRECTIONS)
def test_corrections_score_high(text: str) -> None:
    assert importance(text) >= 0.5
    assert explain(text) == "correction"


@pytest.mark.parametrize("text", THIRD_PERSON)
def test_facts_about_named_people_score_high(text: str) -> None:
    assert importance(text) >= 0.5
    assert utility(text) >= 0.6


def test_named_entities_raise_importance() -> None:
    assert importance("I met Andre at the Blue Note in 2019.") > importance("I met someone.")


def test_every_fact_outranks_every_greeting_and_question() -> None:
    low = max(importance(t) for t in GREETINGS + BOT_QUESTIONS)
    high = min(importance(t) for t in FIRST_PERSON_FACTS + PREFERENCES + THIRD_PERSON)
    assert high > low + 0.3


def test_stable_facts_are_more_useful_than_transient_states() -> None:
    assert utility("I'm tired today.") < 0.3
    assert utility("I'm so hungry right now.") < 0.3
    assert utility("I live in Lisbon.") > utility("I love jazz.") > utility("I'm tired today.")
    assert utility("I'm allergic to peanuts.") == 1.0
    assert explain("I'm tired today.") == "transient state"


def test_explain_names_the_main_reason() -> None:
    assert explain("Hi!") == "greeting"
    assert explain("Thanks a lot") == "thanks"
    assert explain("ok") == "filler"
    assert explain("What's the weather like?") == "question to the bot"
    assert explain("I live in Lisbon.") == "first-person fact (lives_in)"
    assert explain("Andre Patandre is a music producer.") == "fact about a named person (job)"
    assert explain("His wife is Lena.") == "fact about another person"
    assert explain("") == "empty message"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "!!!", "a" * 5000, "I live in Lisbon. " * 50, "Hi! " * 100, "12345", "🙂"]
    + GREETINGS + BOT_QUESTIONS + FIRST_PERSON_FACTS + PREFERENCES + CORRECTIONS,
)
def test_scores_are_in_range(text: str) -> None:
    assert 0.0 <= importance(text) <= 1.0
    assert 0.0 <= utility(text) <= 1.0
    assert isinstance(explain(text), str) and explain(text)


def test_scores_are_deterministic() -> None:
    text = "My sister is called Mia and she lives in Toronto."
    assert importance(text) == importance(text) and utility(text) == utility(text)
    assert [f.value for f in signals(text).facts] == ["Mia", "Toronto"]
