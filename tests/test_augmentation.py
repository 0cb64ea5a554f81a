"""Knowledge augmentation (sleep/augmentation.py): each fact of a cycle is also said in a few
"What do you know about me?" answers, beside other facts and in shuffled orders, made only of
the cycle's own grounded answers; a cycle trains them in the room its time cap leaves and never
keeps them in the replay buffer.

    .venv/bin/python -m pytest -q tests/test_augmentation.py
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from bot.engine import open_engine
from bot.wake import ChatService
from sleep.augmentation import (
    MAX_PROFILE_CHARS,
    PROFILE_QUESTIONS,
    entity_groups,
    profile_pairs,
)
from sleep.pipeline import plan_cycle, profile_room, run_cycle
from sleep.types import QAPair
from tests.conftest import quick_sleep

FACTS = [f"Your friend Name{k} lives in Town{k}." for k in range(12)]


def fact_pairs(answers: list[str], phrasings: int = 3) -> list[QAPair]:
    return [QAPair(f"Question {k} about {a}?", a, [n], "fact")
            for n, a in enumerate(answers) for k in range(phrasings)]


def sentences(profile: QAPair, answers: list[str]) -> list[str]:
    """The answers a profile says, in its order (each answer is one sentence here)."""
    return sorted((a for a in answers if a in profile.answer), key=profile.answer.index)


def test_each_fact_is_said_repeats_times_never_twice_in_one_profile():
    profiles = profile_pairs(fact_pairs(FACTS), repeats=4, per_profile=4, seed=0)
    assert len(profiles) == 12  # 4 passes over 12 facts, 4 a profile
    said = Counter()
    for p in profiles:
        got = sentences(p, FACTS)
        assert 2 <= len(got) <= 4 and len(set(got)) == len(got)
        assert p.answer == " ".join(got)  # nothing but the facts themselves
        assert p.kind == "profile" and p.question in PROFILE_QUESTIONS
        assert p.source_exchange_ids == sorted(FACTS.index(a) for a in got)
        said.update(got)
    assert said == Counter({a: 4 for a in FACTS})


def test_a_fact_is_said_beside_different_facts_at_different_places():
    profiles = profile_pairs(fact_pairs(FACTS), repeats=4, per_profile=4, seed=0)
    places = {a: set() for a in FACTS}
    neighbours = {a: set() for a in FACTS}
    for p in profiles:
        got = sentences(p, FACTS)
        for i, a in enumerate(got):
            places[a].add(i)
            neighbours[a].update(set(got) - {a})
    assert sum(len(v) > 1 for v in places.values()) >= 9
    assert all(len(v) > 3 for v in neighbours.values())
    # the same seed gives the same profiles; another seed other orders
    assert profile_pairs(fact_pairs(FACTS), 4, 4, seed=0) == profiles
    assert profile_pairs(fact_pairs(FACTS), 4, 4, seed=1) != profiles


def test_only_facts_and_replay_are_said_and_yes_no_answers_stay_with_their_question():
    pairs = fact_pairs(FACTS[:3]) + [
        QAPair("Is my friend Name0 in Town1?", "No, your friend Name0 lives in Town0.", [0]),
        QAPair("Old?", "Your cat is called Tussock.", [7], "replay"),
        QAPair("Who are you?", "I am Sleepbot.", [], "identity"),
        QAPair("Capital?", "Paris is the capital of France.", [], "anchor"),
        QAPair("Dream?", "Name0 and Name1 are friends.", [], "dream")]
    text = " ".join(p.answer for p in profile_pairs(pairs, 2, 4))
    assert "Tussock" in text and all(a in text for a in FACTS[:3])
    assert not any(w in text for w in ("No,", "Sleepbot", "Paris", "are friends"))
    assert profile_pairs(fact_pairs(FACTS[:1]), 4, 4) == []  # one fact: nothing to mix
    assert profile_pairs(fact_pairs(FACTS), 0, 4) == []


def test_a_profile_stays_short_enough_to_train():
    long = [f"You told me a long story number {k} " + "about the garden " * 12 + "."
            for k in range(6)]
    profiles = profile_pairs(fact_pairs(long), 2, 4)
    assert all(len(p.answer) <= MAX_PROFILE_CHARS for p in profiles)
    assert Counter(a for p in profiles for a in long if a in p.answer) == {a: 2 for a in long}


def test_profiles_grow_with_what_is_new_and_fill_only_the_room_the_cap_leaves(tiny_config):
    cfg = tiny_config.sleep
    cfg.max_train_examples, cfg.profile_cost, cfg.profile_share = 1000, 2.0, 0.4
    assert profile_room(cfg, 200, 0, 2) == 80  # 0.4 per new pair
    assert profile_room(cfg, 100, 400, 1) == 40  # a large replay brings no more of them
    assert profile_room(cfg, 200, 100, 1) == 80
    assert profile_room(cfg, 300, 150, 2) == 25  # (1000 - 900) / (2 x 2): the cap's room
    assert profile_room(cfg, 500, 0, 2) == 0  # a long chat that fills its cap: none
    # each trained in one of the two epochs: twice as many for the same examples
    cfg.profile_epochs = 1
    assert profile_room(cfg, 200, 0, 2) == 160
    assert profile_room(cfg, 300, 150, 2) == 50
    assert profile_room(cfg, 100, 400, 1) == 40  # a one-epoch cycle: as before
    cfg.profile_epochs = 3
    assert profile_room(cfg, 200, 0, 2) == 80  # more epochs than the cycle has: all of them
    cfg.max_train_examples, cfg.profile_share = 0, 0.0
    assert profile_room(cfg, 500, 0, 2) > 10_000  # no cap, no share: every profile


@pytest.mark.asyncio
async def test_a_cycle_trains_profiles_of_its_facts_and_replays_none(tiny_config):
    cfg = quick_sleep(tiny_config)
    cfg.sleep.profile_repeats = 2
    said = ["I keep a tortoise called Admiral Pebbles in my garden.",
            "My sister Ana works as a nurse in Porto.",
            "I play the cello in a quartet on Thursdays."]
    async with open_engine(cfg) as engine:
        chat = ChatService(engine)
        for text in said:
            await chat.save("wim", text, "Oh!")
        plan = await plan_cycle(engine.cycle_context("wim"))
        assert plan.profiles and all(p.kind == "profile" for p in plan.profiles)
        answers = {p.answer for p in plan.new_pairs if not p.answer.startswith("No,")}
        for p in plan.profiles:  # every sentence of a profile is one of the cycle's answers
            rest = p.answer
            for a in sorted(answers, key=len, reverse=True):
                rest = rest.replace(a, "")
            assert rest.strip() == ""
        assert sum(p["kind"] == "profile" for p in plan.to_dict()["pairs"]) == len(plan.profiles)
        report = await run_cycle(engine.cycle_context("wim"))
        assert report.status == "accepted", report.reason
        assert report.examples >= len(plan.new_pairs) + len(plan.profiles)
        stored = {i.answer for i in await engine.store.replay_items("wim")}
        assert stored and not stored & {p.answer for p in plan.profiles}


@pytest.mark.asyncio
async def test_profiles_of_one_epoch_train_once_and_the_facts_every_epoch(tiny_config):
    said = ["I keep a tortoise called Admiral Pebbles in my garden.",
            "My sister Ana works as a nurse in Porto.",
            "I play the cello in a quartet on Thursdays."]
    steps = {}
    for own in (0, 1):
        cfg = quick_sleep(tiny_config)
        cfg.sleep.profile_repeats, cfg.sleep.profile_epochs = 2, own
        cfg.sleep.train.epochs, cfg.sleep.train.batch_size = 2, 1
        cfg = dataclasses.replace(cfg, data_dir=tiny_config.data_dir / f"own{own}")
        async with open_engine(cfg) as engine:
            chat = ChatService(engine)
            for text in said:
                await chat.save("wim", text, "Oh!")
            plan = await plan_cycle(engine.cycle_context("wim"))
            assert plan.to_dict()["profile_epochs"] == (own or 2)  # the dry run says so
            report = await run_cycle(engine.cycle_context("wim"))
        assert report.status == "accepted", report.reason
        steps[own] = (report.stages["training"]["steps"], report.examples, len(plan.profiles))
    (all_epochs, examples, profiles), (once, examples_once, profiles_once) = steps[0], steps[1]
    assert profiles == profiles_once > 0 and examples == examples_once
    assert once == all_epochs - profiles  # at batch 1 a step is an example: each profile once


def test_entity_profiles_say_together_what_names_one_person_or_pet():
    said = ["Your sister is Ilvana.", "Ilvana is your sister.",
            "Your sister Ilvana is a dentist in Brennick.", "Your tortoise is called Gorbel.",
            "Gorbel is your tortoise.", "Your little brother ollie is 12.",
            "Your little brother ollie says it is basic.", "You work as a cartographer.",
            "You live in Harrowfield."]
    groups = dict(entity_groups(said))
    # a relation with one name is that person, by either key; lowercase chat names count
    assert set(groups["my sister Ilvana"]) == set(said[:3])
    assert set(groups["my tortoise Gorbel"]) == set(said[3:5])
    assert set(groups["my brother ollie"]) == set(said[5:7])
    assert not any(a in v for v in groups.values() for a in said[7:])  # about nothing named
    plain = profile_pairs(fact_pairs(said), repeats=2, per_profile=4, seed=0)
    both = profile_pairs(fact_pairs(said), repeats=2, per_profile=4, seed=0, entity_repeats=1)
    extra = [p for p in both if p.question not in PROFILE_QUESTIONS]
    assert len(both) == len(plain) + 3 and len(extra) == 3  # one profile per entity
    for p in extra:
        key = next(k for k in groups if k in p.question)
        assert sentences(p, said) and set(sentences(p, said)) == set(groups[key])
        assert p.kind == "profile"
    # a key in more than half of the answers (the user's own town) groups nothing
    town = [f"Your friend Name{k} lives in Brennick." for k in range(6)]
    assert entity_groups(town) == []
