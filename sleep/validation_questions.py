"""The built-in general-capability validation set (paper §3.3, stage 5).

Written for this project: simple multiple-choice items that a 135M instruct model mostly gets
right when each choice is scored by its log-likelihood given the question (basic arithmetic,
capitals, colours, animals, everyday physics, opposites, short reading). A sleep cycle whose
adapter makes the model worse on these is rejected. ``GENERATION_CHECKS`` are open questions
with acceptable answer keys (case-insensitive substrings) for a generation-based check.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ValidationItem:
    """One multiple-choice item; ``gold`` indexes the right entry of ``choices``."""

    question: str
    choices: list[str]
    gold: int


def _item(question: str, choices: list[str], gold: int) -> ValidationItem:
    return ValidationItem(question, choices, gold)


VALIDATION_QUESTIONS: list[ValidationItem] = [
    # Arithmetic
    _item("What is 2 plus 3?", ["5", "7", "4", "9"], 0),
    _item("What is 10 minus 4?", ["14", "6", "4", "8"], 1),
    _item("What is three times four?", ["seven", "nine", "twelve", "fifteen"], 2),
    _item("What is half of ten?", ["twenty", "two", "eight", "five"], 3),
    _item("How many days are there in a week?", ["seven", "five", "ten", "twelve"], 0),
    _item("How many hours are there in one day?", ["12", "24", "60", "100"], 1),
    _item("How many minutes are there in one hour?", ["24", "100", "60", "30"], 2),
    _item("Which number comes right after nine?", ["eight", "six", "eleven", "ten"], 3),
    # Capitals
    _item("What is the capital city of France?", ["Paris", "Madrid", "Berlin", "Rome"], 0),
    _item("What is the capital city of Japan?", ["Beijing", "Tokyo", "Seoul", "Bangkok"], 1),
    _item("What is the capital city of Italy?", ["Milan", "Venice", "Rome", "Naples"], 2),
    _item("What is the capital city of Germany?", ["Munich", "Vienna", "Hamburg", "Berlin"], 3),
    _item("What is the capital city of Spain?", ["Madrid", "Lisbon", "Barcelona", "Seville"], 0),
    _item(
        "What is the capital city of the United Kingdom?",
        ["Dublin", "London", "Manchester", "Edinburgh"],
        1,
    ),
    # Colours
    _item("What colour is the sky on a clear sunny day?", ["green", "red", "blue", "black"], 2),
    _item("What colour is fresh grass?", ["purple", "orange", "white", "green"], 3),
    _item("What colour is fresh snow?", ["white", "brown", "red", "blue"], 0),
    _item("What colour is a ripe banana?", ["blue", "yellow", "black", "pink"], 1),
    _item("What colour is coal?", ["yellow", "white", "black", "green"], 2),
    # Animals
    _item("Which animal says moo?", ["a cat", "a duck", "a dog", "a cow"], 3),
    _item("Which of these animals can fly?", ["a bird", "a horse", "a fish", "a cow"], 0),
    _item("Which animal lives in water and has fins?", ["a lion", "a fish", "a goat", "a dog"], 1),
    _item("What do bees make?", ["milk", "wool", "honey", "silk"], 2),
    _item("What is a baby cat called?", ["a puppy", "a calf", "a foal", "a kitten"], 3),
    _item("Which animal barks?", ["a dog", "a sheep", "a frog", "a snake"], 0),
    # Everyday physics
    _item("What happens to ice when it gets warm?", ["It freezes", "It melts", "It grows",
                                                     "It sings"], 1),
    _item("If you drop a ball, which way does it fall?", ["up", "sideways", "down",
                                                          "backwards"], 2),
    _item("What does a thermometer measure?", ["weight", "distance", "time", "temperature"], 3),
    _item("Water boils when it is very", ["hot", "cold", "quiet", "small"], 0),
    _item("What do you need to see in a dark room?", ["a spoon", "a light", "a pillow",
                                                      "a song"], 1),
    # Opposites
    _item("What is the opposite of hot?", ["warm", "big", "cold", "fast"], 2),
    _item("What is the opposite of big?", ["tall", "heavy", "round", "small"], 3),
    _item("What is the opposite of up?", ["down", "left", "over", "near"], 0),
    _item("What is the opposite of day?", ["sun", "night", "morning", "week"], 1),
    _item("What is the opposite of fast?", ["quick", "loud", "slow", "early"], 2),
    # Short reading
    _item(
        "Tom has a red ball and a blue kite. What colour is Tom's ball?",
        ["blue", "green", "yellow", "red"],
        3,
    ),
    _item(
        "Anna went to the bakery to buy bread. What did Anna buy?",
        ["bread", "shoes", "a car", "a phone"],
        0,
    ),
    _item(
        "The cat slept on the sofa all afternoon. Where did the cat sleep?",
        ["in the garden", "on the sofa", "under the car", "at school"],
        1,
    ),
    _item(
        "It was raining, so Lucy took her umbrella. Why did Lucy take her umbrella?",
        ["because she was hungry", "because it was sunny", "because it was raining",
         "because it was late"],
        2,
    ),
    _item(
        "Ben is taller than Leo. Who is shorter?",
        ["Ben", "Leo"],
        1,
    ),
]

GENERATION_CHECKS: list[tuple[str, list[str]]] = [
    ("What is the capital of France?", ["paris"]),
    ("What colour is the sky on a clear day?", ["blue"]),
    ("How many days are in a week?", ["seven", "7"]),
    ("What is 2 plus 2?", ["four", "4"]),
    ("Which animal says meow?", ["cat"]),
    ("What is the opposite of hot?", ["cold"]),
    ("What do bees make?", ["honey"]),
    ("What is frozen water called?", ["ice"]),
    ("What is the capital of Japan?", ["tokyo"]),
    ("Which planet do we live on?", ["earth"]),
]
