"""General-knowledge rehearsal pairs that ride along in every sleep cycle.

A LoRA update trained only on one user's facts drifts the model toward answering everything
with them; rehearsing a few things it already knows, in the same chat format, keeps the update
from rewriting them (replay of general data, as the identity pairs do for the bot's self).
Written for this project; kept apart from the validation questions in
``sleep/validation_questions.py`` (no shared question or topic list), so the gate still
measures held-out ability. ``SleepConfig.anchor_pairs`` sets how many are used per cycle.

``SleepConfig.anchor_answers = "base"`` trains each anchor on the base model's own greedy
answer (in the bot's chat format, with its system prompt) instead of the written one: a
self-distillation target (learning without forgetting) that asks the update to keep the
model's answers as they were, where a written answer in another style is itself a change.
"""

from __future__ import annotations

from runtime.thread import ModelContext
from sleep.types import QAPair

ANSWER_TOKENS = 48  # the longest base answer an anchor is trained on

ANCHORS: list[tuple[str, str]] = [
    ("Who wrote Romeo and Juliet?", "Romeo and Juliet was written by William Shakespeare."),
    ("What is the largest planet in our solar system?",
     "Jupiter is the largest planet in our solar system."),
    ("What gas do plants take in from the air?", "Plants take in carbon dioxide from the air."),
    ("How many continents are there?", "There are seven continents."),
    ("What is the largest ocean on Earth?", "The Pacific Ocean is the largest ocean on Earth."),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by Leonardo da Vinci."),
    ("What is H2O?", "H2O is the chemical formula of water."),
    ("How many sides does a triangle have?", "A triangle has three sides."),
    ("Which organ pumps blood around the body?", "The heart pumps blood around the body."),
    ("What is the tallest mountain in the world?",
     "Mount Everest is the tallest mountain in the world."),
    ("What is a synonym?", "A synonym is a word that means the same as another word."),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet."),
    ("Can you help me write a short email?",
     "Of course! Tell me who it is for and what you want to say, and I will draft it."),
    ("What is photosynthesis?",
     "Photosynthesis is how plants use sunlight to make food from water and carbon dioxide."),
    ("How many minutes are in an hour?", "There are sixty minutes in an hour."),
    ("What is the main ingredient of guacamole?", "The main ingredient of guacamole is avocado."),
    ("At what temperature does water boil at sea level?",
     "Water boils at 100 degrees Celsius at sea level."),
    ("Who was the first person to walk on the Moon?",
     "Neil Armstrong was the first person to walk on the Moon, in 1969."),
    ("What is the longest river in Africa?", "The Nile is the longest river in Africa."),
    ("What is the square root of 81?", "The square root of 81 is 9."),
    ("What is the hardest natural substance?", "Diamond is the hardest natural substance."),
    ("Who developed the theory of relativity?",
     "Albert Einstein developed the theory of relativity."),
    ("What is the smallest prime number?", "The smallest prime number is 2."),
    ("What is the currency of the United Kingdom?",
     "The currency of the United Kingdom is the pound sterling."),
    ("What is a word called that sounds like another word but means something else?",
     "A word that sounds like another but has a different meaning is a homophone."),
    ("Can you summarise a paragraph for me?",
     "Yes. Paste the paragraph and I will sum it up in a few sentences."),
    ("How should a formal letter begin?",
     "A formal letter usually begins with \"Dear\", then the person's title and surname."),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au."),
    ("How many bones does an adult human have?", "An adult human has 206 bones."),
    ("How fast does light travel?",
     "Light travels at about 300,000 kilometres per second."),
    ("What is the largest hot desert in the world?",
     "The Sahara is the largest hot desert in the world."),
    ("What does a dictionary contain?",
     "A dictionary lists words together with their meanings."),
]


def anchor_pairs(n: int) -> list[QAPair]:
    """The first ``n`` rehearsal pairs (all of them when ``n`` is larger)."""
    return [QAPair(q, a, [], "anchor") for q, a in ANCHORS[: max(0, n)]]


def base_answers(ctx: ModelContext, system_prompt: str, questions: list[str]) -> list[str]:
    """Model job: the base model's greedy answers to ``questions`` after ``system_prompt``
    (made once per loaded model)."""
    from runtime.generation import base_replies

    return base_replies(ctx, [[{"role": "system", "content": system_prompt},
                               {"role": "user", "content": q}] for q in questions],
                        ANSWER_TOKENS)


def with_answers(pairs: list[QAPair], answers: list[str]) -> list[QAPair]:
    """``pairs`` with these answers (a pair whose answer is empty keeps its written one)."""
    return [QAPair(p.question, a or p.answer, [], "anchor")
            for p, a in zip(pairs, answers, strict=True)]
