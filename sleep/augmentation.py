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

Yes/no answers are left out: they belong to their question.
"""

from __future__ import annotations

import random
import re

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


def profile_pairs(pairs: list[QAPair], repeats: int, per_profile: int = 4,
                  seed: int = 0) -> list[QAPair]:
    """Profile pairs over the distinct answers of ``pairs`` (facts and replay; not anchors,
    identity or dreams): ``repeats`` shuffled passes over them, cut into profiles of up to
    ``per_profile`` answers (and :data:`MAX_PROFILE_CHARS`; one left over joins the profile
    before it). A profile holds two answers or more, never one twice; its source exchanges
    are those of its answers. Fewer than two answers: none."""
    sources: dict[str, list[int]] = {}
    for p in pairs:
        # a contrast ("No, your cat is called Tussock. ...") answers its yes/no question only
        if p.kind in ("fact", "replay") and not _CONTRAST.match(p.answer):
            ids = sources.setdefault(p.answer.strip(), [])
            ids += [i for i in p.source_exchange_ids if i not in ids]
    answers = [a for a in sources if a]
    if repeats <= 0 or per_profile < 2 or len(answers) < 2:
        return []
    rng = random.Random(seed)
    out: list[QAPair] = []
    for _ in range(repeats):
        order = answers[:]
        rng.shuffle(order)
        groups: list[list[str]] = [[]]
        for a in order:
            if len(groups[-1]) == per_profile or (
                    groups[-1] and len(" ".join(groups[-1] + [a])) > MAX_PROFILE_CHARS):
                groups.append([])
            groups[-1].append(a)
        if len(groups[-1]) == 1:  # a fact alone is no profile: it joins another
            last = groups.pop()[0]
            if groups and len(" ".join(groups[-1] + [last])) <= MAX_PROFILE_CHARS:
                groups[-1].append(last)
            else:
                groups.append([last, rng.choice([a for a in answers if a != last])])
        out += [_profile(g, sources, len(out) + k) for k, g in enumerate(groups)]
    return out


def _profile(answers: list[str], sources: dict[str, list[int]], k: int) -> QAPair:
    ids = sorted({i for a in answers for i in sources[a]})
    text = " ".join(a if a[-1] in ".!?" else a + "." for a in answers)
    return QAPair(PROFILE_QUESTIONS[k % len(PROFILE_QUESTIONS)], text, ids, "profile")
