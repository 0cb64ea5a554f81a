"""The built-in general-capability validation set (paper §3.3, stage 5).

Written for this project: simple multiple-choice items that a 135M instruct model mostly gets
right when each choice is scored by its log-likelihood given the question (basic arithmetic,
capitals, colours, animals, everyday physics, opposites, short reading). A sleep cycle whose
adapter makes the model worse on these is rejected.

The items were kept from a larger written pool because the bundled SmolLM2-135M-Instruct
(Q4_1, float32 on the CPU, prompt "Question: ...\nAnswer:", mean choice log-likelihood) ranked
the right choice first with a clear margin, so a healthy model scores near 1.0 and a drop
means damage rather than noise. Arithmetic with close numbers was left out: the 135M model is
near chance there.
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
    # Counting and arithmetic
    _item("What is 1 plus 1?", ["2", "3", "5", "0"], 0),
    _item("What is 10 times 10?", ["20", "100", "1000", "11"], 1),
    _item("How many days are in a week?", ["5", "10", "7", "12"], 2),
    _item("How many months are in a year?", ["10", "7", "24", "12"], 3),
    _item("How many legs does a bird have?", ["2", "4", "6", "8"], 0),
    # Capitals
    _item("What is the capital city of France?", ["Madrid", "Paris", "Berlin", "Rome"], 1),
    _item("What is the capital city of Japan?", ["Beijing", "Seoul", "Tokyo", "Bangkok"], 2),
    _item("What is the capital city of Italy?", ["Milan", "Venice", "Naples", "Rome"], 3),
    _item("What is the capital city of Germany?", ["Berlin", "Munich", "Vienna", "Hamburg"], 0),
    _item(
        "What is the capital city of the United Kingdom?",
        ["Dublin", "London", "Manchester", "Edinburgh"],
        1,
    ),
    _item("What is the capital of Greece?", ["Sparta", "Rome", "Athens", "Cairo"], 2),
    # Colours
    _item("What colour is the sky on a clear sunny day?", ["green", "red", "black", "blue"], 3),
    _item("What colour is a ripe banana?", ["yellow", "blue", "black", "pink"], 0),
    _item("What colour is a strawberry?", ["blue", "red", "green", "grey"], 1),
    _item("What colour are most leaves in summer?", ["purple", "blue", "green", "white"], 2),
    # Animals
    _item("Which animal says moo?", ["a cat", "a duck", "a dog", "a cow"], 3),
    _item("Which of these animals can fly?", ["a bird", "a horse", "a fish", "a cow"], 0),
    _item("Which animal lives in water and has fins?", ["a lion", "a fish", "a goat", "a dog"], 1),
    _item("What do bees make?", ["milk", "wool", "honey", "silk"], 2),
    _item("What is a baby cat called?", ["a puppy", "a calf", "a foal", "a kitten"], 3),
    _item("Which animal barks?", ["a dog", "a sheep", "a frog", "a snake"], 0),
    _item(
        "Which animal is known as the king of the jungle?",
        ["the mouse", "the lion", "the cow", "the duck"],
        1,
    ),
    # Everyday physics and objects
    _item(
        "What happens to ice when it gets warm?",
        ["It freezes", "It grows", "It melts", "It sings"],
        2,
    ),
    _item(
        "If you drop a ball, which way does it fall?",
        ["up", "sideways", "backwards", "down"],
        3,
    ),
    _item("What does a thermometer measure?", ["temperature", "weight", "distance", "time"], 0),
    _item("Water boils when it is very", ["cold", "hot", "quiet", "small"], 1),
    _item(
        "What do you need to see in a dark room?",
        ["a spoon", "a pillow", "a light", "a song"],
        2,
    ),
    _item(
        "What do plants need to grow?",
        ["darkness and salt", "loud noise", "plastic bags", "sunlight and water"],
        3,
    ),
    _item("What do we use to tell the time?", ["a clock", "a spoon", "a shoe", "a carrot"], 0),
    _item("What falls from clouds when it rains?", ["sand", "water", "sugar", "rocks"], 1),
    # Opposites
    _item("What is the opposite of cold?", ["blue", "tall", "hot", "soft"], 2),
    _item("What is the opposite of happy?", ["green", "fast", "tall", "sad"], 3),
    _item("What is the opposite of wet?", ["dry", "hot", "loud", "sad"], 0),
    _item("What is the opposite of open?", ["yellow", "closed", "happy", "round"], 1),
    _item("What is the opposite of up?", ["left", "over", "down", "near"], 2),
    # Short reading
    _item(
        "The cat slept on the sofa all afternoon. Where did the cat sleep?",
        ["in the garden", "under the car", "at school", "on the sofa"],
        3,
    ),
    _item(
        "It was raining, so Lucy took her umbrella. Why did Lucy take her umbrella?",
        ["because it was raining", "because she was hungry", "because it was sunny",
         "because it was late"],
        0,
    ),
    _item(
        "Mark put his keys in the drawer. Where are Mark's keys?",
        ["on the roof", "in the drawer", "in the sea", "in the oven"],
        1,
    ),
    _item(
        "The dog is wet because it played in the rain. Why is the dog wet?",
        ["it ate dinner", "it slept all day", "it played in the rain", "it was sunny"],
        2,
    ),
    _item(
        "Lily drinks milk every morning. What does Lily drink every morning?",
        ["oil", "ink", "paint", "milk"],
        3,
    ),
]
