"""Memory formation from natural conversation (sleep/extraction/formation.py and the cycle's
use of it): any disclosing sentence reaches the training data, with absolute dates; corrections
and moves replace what they correct, in the cycle and in the replay buffer; curation keeps what
discloses something in chatty text; the dry run shows all of it and changes nothing.

    .venv/bin/python -m pytest -q tests/test_formation.py
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from bot.engine import open_engine
from bot.wake import ChatService
from sleep.extraction.formation import contrasts, extract_turns, superseded_answers
from sleep.extraction.statements import generalised, named_things, split_sentences, unnamed
from sleep.pipeline import plan_cycle, run_cycle
from sleep.types import USER_SUBJECT, Fact
from tests.conftest import quick_sleep

SENT = datetime(2024, 1, 5, 18, 30)


def turns(*texts: str, when: datetime | None = SENT) -> list:
    return [(t, [n], when) for n, t in enumerate(texts, 1)]


def answers_of(extracted) -> list[str]:
    return [p.answer for p in extracted.pairs]


@pytest.mark.parametrize("text, values", [
    ("I keep a tortoise called Admiral Pebbles in my garden in Ghent.",
     ["Admiral Pebbles", "tortoise", "Ghent"]),
    ("my brother Tomas just started as a sous-chef at a bistro in Lyon",
     ["Tomas", "sous-chef", "Lyon"]),
    ("We're saving up for a canal boat, we want to call it the Heron.", ["canal boat", "Heron"]),
    ("I've been collecting vintage fountain pens for about 12 years.",
     ["fountain pens", "12 years"]),
    ("Honestly I'm terrified of deep water since I nearly drowned as a kid.", ["deep water"]),
])
def test_any_disclosing_sentence_reaches_the_training_data(text, values):
    got = extract_turns(turns(text), phrasings=6)
    assert len({p.question for p in got.pairs}) >= 3
    joined = " ".join(answers_of(got))
    for value in values:
        assert value in joined, value
    assert all(" my " not in f" {a} " and not a.startswith(("I ", "My ")) for a in
               answers_of(got) if got.statements)


def test_sentences_merged_into_one_answer_are_one_fact_asked_from_both():
    """"It took me three summers" leans on the sentence before: one fact, one answer (holding
    two facts, it is asked with both sentences' questions)."""
    got = extract_turns(turns("I finally finished restoring the old sailboat. It took me three "
                              "summers.", "My sister lives in Bergen."), phrasings=4)
    merged = ("You finally finished restoring the old sailboat on January 5, 2024. It took you "
              "three summers.")
    assert [f.statement for f in got.facts] == [merged, "Your sister lives in Bergen."]
    asked = [p.question for p in got.pairs if p.answer == merged]
    assert len(asked) >= 6 and any("finish" in q for q in asked) and any(
        "summers" in q for q in asked)
    assert all(p.source_exchange_ids == [1] for p in got.pairs if p.answer == merged)
    assert len(set(asked)) == len(asked)


def test_small_talk_and_questions_to_the_bot_are_not_facts():
    got = extract_turns(turns("hey how are you?", "lol thanks, that's so funny",
                              "Can you recommend a good film?", "good night!"), phrasings=6)
    assert got.pairs == [] and got.facts == []


def test_relative_times_become_dates():
    got = extract_turns(turns("I adopted a kitten yesterday."), phrasings=6)
    assert any("January 4, 2024" in a for a in answers_of(got))
    assert any(p.question.startswith("When ") for p in got.pairs)


def test_a_correction_in_the_same_cycle_replaces_what_it_corrects():
    got = extract_turns(turns("My hamster is called Dumpling.", "sorry, I meant Noodle"),
                        phrasings=6)
    joined = " ".join(answers_of(got))
    assert "Noodle" in joined and "Dumpling" not in joined
    assert any("Dumpling" in s for s in got.superseded)


def test_a_name_taken_back_leaves_no_rule_fact_behind():
    """The rule layer read "My partner's name is Sven." before the correction came."""
    got = extract_turns(turns("My partner's name is Sven.",
                              "ugh, no, Sven is my brother. My partner is Arne."), phrasings=6)
    answers = answers_of(got)
    assert not any("partner is Sven" in a or "Sven is your partner" in a for a in answers)
    assert any("Arne" in a for a in answers) and any("brother" in a for a in answers)
    # ... and the two are told apart
    assert "No, your partner is Arne. Your brother is Sven." in answers
    assert not any("used to" in a for a in answers)  # a correction, not a change


def test_a_move_supersedes_the_earlier_home():
    gone = superseded_answers(turns("I live in Porto."),
                              turns("We moved to Valencia last month."))
    assert any("Porto" in a for a in gone.answers)
    assert gone.covers("You live in Porto.", [1]) and not gone.covers("You like jazz.", [1])
    assert superseded_answers(turns("I live in Porto."), turns("My cat is grey.")).answers == set()


def test_the_same_kind_of_fact_about_different_things_gets_different_questions():
    got = extract_turns(turns("My dog is called Fennel.", "My cat is called Saffron."),
                        phrasings=6)
    by_answer: dict[str, set[str]] = {}
    for p in got.pairs:
        if not p.answer.startswith("No, "):  # the pairs that tell the two apart name both
            by_answer.setdefault(p.answer, set()).add(p.question)
    dog = {q for a, qs in by_answer.items() if "Fennel" in a for q in qs}
    cat = {q for a, qs in by_answer.items() if "Saffron" in a for q in qs}
    assert dog and cat and not (dog & cat)
    told_apart = {p.question: p.answer for p in got.pairs if p.answer.startswith("No, ")}
    assert told_apart["Is my dog called Saffron?"] == (
        "No, your dog is called Fennel. Your cat is called Saffron.")


@pytest.mark.asyncio
async def test_curation_keeps_chatty_disclosures_and_drops_small_talk(tiny_config):
    said = ["lol ok", "ugh work was long today, im a radiographer so shifts r normal",
            "what do you think about cats?", "thanks!!",
            "my nan turned 90 on sunday, we had cake at her flat in Leith"]
    async with open_engine(tiny_config) as engine:
        chat = ChatService(engine)
        for text in said:
            await chat.save("una", text, "Oh!")
        plan = await plan_cycle(engine.cycle_context("una"))
    kept = [s.user_text for s in plan.scored if s.kept]
    assert kept == [said[1], said[4]]
    joined = " ".join(p.answer for p in plan.new_pairs)
    assert "radiographer" in joined and "Leith" in joined


@pytest.mark.asyncio
async def test_a_later_cycle_retires_the_replaced_fact_from_replay(tiny_config):
    cfg = quick_sleep(tiny_config)
    async with open_engine(cfg) as engine:
        chat = ChatService(engine)
        await chat.save("vic", "I live in Porto with my partner Joana.", "Nice.")
        first = await run_cycle(engine.cycle_context("vic"))
        assert first.status == "accepted", first.reason
        assert any("Porto" in i.answer for i in await engine.store.replay_items("vic"))
        await chat.save("vic", "Big news: we moved to Valencia last week!", "Wow.")
        plan = await plan_cycle(engine.cycle_context("vic"))
        assert plan.retired and all("Porto" in i.answer for i in plan.retired)
        assert not any("Porto" in p.answer for p in plan.replay_pairs)
        second = await run_cycle(engine.cycle_context("vic"))
        assert second.status == "accepted", second.reason
        left = [i.answer for i in await engine.store.replay_items("vic")]
    assert any("Valencia" in a for a in left) and not any("live in Porto" in a for a in left)


def test_dry_run_shows_every_pair_and_changes_nothing(tiny_config, tiny_model_dir, cli):
    data = tiny_config.data_dir
    args = dict(data_dir=data, model=tiny_model_dir)
    talk = tiny_config.data_dir.parent / "talk.jsonl"
    talk.write_text("\n".join(json.dumps(m) for m in [
        {"role": "user", "content": "I keep a tortoise called Admiral Pebbles in Ghent."},
        {"role": "assistant", "content": "Lovely."},
        {"role": "user", "content": "hi!"}, {"role": "assistant", "content": "Hello."}]))
    assert cli("ingest", "--user", "wim", str(talk), **args).returncode == 0
    before = cli("status", "--user", "wim", "--json", **args)
    out = cli("sleep", "--user", "wim", "--dry-run", "--json", **args)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["dry_run"] is True and plan["exchanges"] == 2
    assert any("Admiral Pebbles" in f for f in plan["facts"])
    assert plan["pairs"] and all(set(p) == {"question", "answer", "kind", "source_exchange_ids"}
                                 for p in plan["pairs"])
    assert all(p["source_exchange_ids"] == [1] for p in plan["pairs"])
    after = cli("status", "--user", "wim", "--json", **args)
    assert json.loads(after.stdout)["users"] == json.loads(before.stdout)["users"]
    assert json.loads(after.stdout)["queue"] == []
    text = cli("sleep", "--user", "wim", "--dry-run", **args)
    assert "nothing changed" in text.stdout and "dropped exchange 2" in text.stdout


def test_the_budget_drops_phrasings_before_epochs_before_facts():
    from sleep.extraction.formation import fit_budget
    from sleep.types import QAPair

    pairs = [QAPair(f"q{f}-{k}", f"Fact {f} about Name{f}.", [f]) for f in range(10)
             for k in range(6)]
    same, epochs = fit_budget(pairs, 3, 1000)
    assert same == pairs and epochs == 3  # under budget: untouched
    fewer, epochs = fit_budget(pairs, 3, 90)  # 30 pairs: three phrasings of every fact
    assert epochs == 3 and len(fewer) == 30
    assert {p.answer for p in fewer} == {p.answer for p in pairs}
    assert all(sum(p.answer == a for p in fewer) == 3 for a in {p.answer for p in pairs})
    tight, epochs = fit_budget(pairs, 3, 20)  # two phrasings of ten facts need one epoch
    assert epochs == 1 and len(tight) == 20 and len({p.answer for p in tight}) == 10
    cut, epochs = fit_budget(pairs, 3, 5)  # fewer than one per fact: the most informative
    assert epochs == 1 and len(cut) == 5 and len({p.answer for p in cut}) == 5


@pytest.mark.asyncio
async def test_a_long_chat_keeps_to_the_cycles_training_budget(tiny_config):
    cfg = quick_sleep(tiny_config)
    cfg.sleep.max_train_examples = 120
    cfg.sleep.train.epochs = 3
    cfg.sleep.phrasings_per_fact = 4
    cfg.sleep.replay_ratio = 0.5
    names = ["Ada", "Bram", "Cleo", "Dario", "Elke", "Femi", "Greta", "Hugo", "Ines", "Joss",
             "Kaja", "Luca", "Mira", "Nils", "Odile", "Pavel", "Quinn", "Rosa", "Sven", "Tove"]
    towns = ["Aalst", "Bergen", "Cork", "Delft", "Eger", "Faro", "Gap", "Hull", "Ieper", "Jena",
             "Kiel", "Lund", "Mons", "Nancy", "Oulu", "Pula", "Quimper", "Riga", "Sion", "Tartu"]
    said = [f"My friend {n} lives in {t} and works as a baker."
            for n, t in zip(names, towns, strict=True)]
    async with open_engine(cfg) as engine:
        chat = ChatService(engine)
        for text in said:
            await chat.save("xia", text, "Oh!")
        plan = await plan_cycle(engine.cycle_context("xia"))
    assert plan.stages["extraction"]["pairs_found"] > len(plan.new_pairs)
    # a first cycle has nothing to replay: replay's half of the cap goes to what is new
    assert 60 < len(plan.new_pairs) * plan.epochs <= 120
    assert plan.replay_pairs == []
    assert all(s.novelty != s.novelty for s in plan.scored)  # threshold 0: never scored (NaN)


def test_a_question_is_never_trained_with_two_different_answers():
    got = extract_turns(turns("I have a dachshund named Rex.", "I also have a cat called Sprocket.",
                              "My sister Ana works as a nurse in Porto."), phrasings=8)
    answers: dict[str, set[str]] = {}
    for p in got.pairs:
        answers.setdefault(p.question.lower(), set()).add(p.answer)
    pets = answers.get("what is my pet called?", set())
    assert not ({a for a in pets if "Rex" in a} and {a for a in pets if "Sprocket" in a})
    assert "what is my dachshund called?" in answers and "what is my cat called?" in answers
    # answers that add to each other are not a conflict: "Who is Ana?" keeps both
    assert len(answers.get("who is ana?", set())) >= 1


def test_a_thing_with_a_name_is_asked_for_by_its_name_and_its_kind():
    got = extract_turns(turns("We share the flat with a tortoise named Gustavo."), phrasings=10)
    questions = {p.question for p in got.pairs}
    assert "What is my tortoise called?" in questions
    assert "What is my pet called?" in questions  # one pet: the general word is unambiguous


def test_time_that_is_counted_is_not_made_a_date():
    got = extract_turns(turns("It will be our first proper holiday in two years."), 6)
    assert all("in two years" in p.answer for p in got.pairs)


def test_anchors_are_a_share_of_a_small_cycle():
    from runtime.config import load_config
    from sleep.pipeline import anchor_count

    cfg = load_config(env={}).sleep  # the bundled model on the CPU: up to 8, half the new pairs
    assert (anchor_count(cfg, 10), anchor_count(cfg, 12), anchor_count(cfg, 500)) == (5, 6, 8)
    cfg.anchor_ratio = 0.0
    assert anchor_count(cfg, 10) == 8  # no ratio: always anchor_pairs


def test_each_named_thing_in_a_sentence_is_a_short_fact_of_its_own():
    turns = [("We also have two animals: a grey cat named Pimbrook and an elderly tortoise "
              "called Ossery, who is older than I am.", [1], None),
             ("The dog, I should say, is called Lord Fenwick.", [2], None),
             ("I went to a cafe called Tapioca Moon and met a guy named Tom.", [3], None),
             ("One of my favourite paintings is called Blue Rider.", [4], None)]
    out = extract_turns(turns, 4)
    by_answer: dict[str, set[str]] = {}
    for p in out.pairs:
        by_answer.setdefault(p.answer, set()).add(p.question)
    assert "What is my cat called?" in by_answer["Your cat is called Pimbrook."]
    assert "What is my tortoise called?" in by_answer["Your tortoise is called Ossery."]
    assert by_answer["Ossery is your tortoise."]  # asked the other way too
    assert "Your dog is called Lord Fenwick." in by_answer
    assert [p.source_exchange_ids for p in out.pairs
            if p.answer == "Your cat is called Pimbrook."][0] == [1]
    # a café the user went to and a man they met are not theirs; a plural is no one thing
    assert not any(a.startswith(("Your cafe", "Your guy", "Your paintings")) for a in by_answer)


def test_a_name_beside_what_it_names_is_a_short_fact_asked_by_its_kind_too():
    """"my old spaniel Pimbleton" in a sentence about something else names the dog; a breed is
    asked as "my dog" and, with one pet, "my pet"; two pets make every wording of "What is
    my pet called?" ambiguous, so none is trained. "my grandson Thaddeus" is a relation."""
    assert named_things("the curtains, which my old spaniel Pimbleton approves of") == [
        ("spaniel", "Pimbleton")]
    assert named_things("my spaniel Pimbleton", apposed=False) == []
    # only kinds of thing people name; a favourite is not the user's own
    for text in ("After my shift Tom picked me up", "my favourite guitar Gibson",
                 "my car Monday"):
        assert named_things(text) == []
    assert generalised(["What is my spaniel called?"], breeds=True) == [
        "What is my dog called?", "What is my pet called?"]
    assert generalised(["What do I do in my lab?"]) == []  # a lab is a dog only when named
    assert generalised(["What is my kitten called?"]) == ["What is my pet called?"]
    one = extract_turns([("I keep the curtains drawn, which my old spaniel Pimbleton likes.",
                          [1], None)], 4)
    asked = {p.question: p.answer for p in one.pairs}
    assert asked["What is my dog called?"] == "Your spaniel is called Pimbleton."
    assert asked["Do you remember what my pet is called?"] == "Your spaniel is called Pimbleton."
    two = extract_turns([("I keep the curtains drawn, which my old spaniel Pimbleton likes.",
                          [1], None), ("We have a tortoise called Gorbel.", [2], None)], 4)
    assert not [p.question for p in two.pairs if "my pet" in p.question.lower()]
    assert {p.question for p in two.pairs} >= {"What is my dog called?",
                                                  "What is my tortoise called?"}
    kin = extract_turns([("My grandson Thaddeus is coming to stay on Thursday.", [1], None)], 4)
    assert kin.pairs[0].answer == "Your grandson is Thaddeus."


def test_a_named_persons_questions_are_also_asked_without_the_name():
    asked = unnamed(["What is my brother Fenwick's job?", "Is my partner Thijs?",
                     "Where does my dog Rex sleep?", "What does my little sister Ann do?"])
    # "Is my partner Thijs?" asks whether the name is right: the name is no apposition there
    assert asked == ["What is my brother's job?", "Where does my dog sleep?"]


def test_facts_of_one_kind_are_told_apart():
    said = contrasts([
        Fact(USER_SUBJECT, "brother", "Joost", "Your brother is Joost.", [1]),
        Fact(USER_SUBJECT, "partner", "Thijs", "Your partner is Thijs.", [2]),
        Fact(USER_SUBJECT, "cat", "Tussock", "You have a grey cat called Tussock.", [3]),
        Fact(USER_SUBJECT, "tortoise", "Gorbel", "Your tortoise is called Gorbel.", [4]),
        Fact("Joost", "job", "pastry chef", "Joost is a pastry chef.", [5]),
        Fact(USER_SUBJECT, "job", "cartographer", "You are a cartographer.", [6]),
        Fact(USER_SUBJECT, "lives_in", "Ghent", "You live in Ghent.", [7]),  # one of its kind
    ])
    pairs = {p.question: (p.answer, p.source_exchange_ids) for p in said}
    assert pairs["Is my brother Thijs?"] == ("No, your brother is Joost. Your partner is Thijs.",
                                             [1, 2])
    assert pairs["Is my cat called Gorbel?"][0] == (
        "No, your cat is called Tussock. Your tortoise is called Gorbel.")
    # a job of a person the user named by relation is asked by the relation
    assert pairs["Is my brother a cartographer?"][0] == (
        "No, your brother Joost is a pastry chef. You are a cartographer.")
    assert pairs["Am I a pastry chef?"][0] == (
        "No, you are a cartographer. Your brother Joost is a pastry chef.")
    assert len(said) == 6 and all(p.kind == "fact" for p in said)


def test_in_a_place_now_after_a_move_is_the_new_home():
    got = extract_turns(turns("I live in Harrowfield.",
                              "wait, actually no, we moved last month, we're in Sallowby now"),
                        phrasings=6)
    answers = {p.question: p.answer for p in got.pairs}
    assert answers["Where do I live now?"] == "You're in Sallowby now."
    assert "You live in Harrowfield." not in answers.values()  # what used to be true
    assert "You used to live in Harrowfield." in answers.values()


def test_a_heading_before_a_colon_does_not_hide_the_sentence_after_it():
    got = extract_turns(turns("Work-wise: my boss Fenwick is strict but fair.",
                              "quick intro to the zoo I live in: my husband Teodric keeps bees."),
                        phrasings=4)
    answers = set(answers_of(got))
    assert "Your boss Fenwick is strict but fair." in answers
    assert "Your husband Teodric keeps bees." in answers
    assert split_sentences("my name is: Bob") == ["my name is: Bob"]
    assert split_sentences("The bus at 10:30 is mine.") == ["The bus at 10:30 is mine."]


def test_replay_reserves_only_what_the_buffer_can_fill():
    from runtime.config import load_config
    from sleep.pipeline import training_budget

    cfg = load_config(env={}).sleep
    cfg.max_train_examples, cfg.train_examples_per_turn, cfg.replay_ratio = 0, 20, 0.25
    cap = 20 * 10  # ten kept exchanges
    assert training_budget(cfg, 10, replayable=0) == cap  # a first cycle: all on what is new
    assert training_budget(cfg, 10, replayable=12) == cap - 12  # a small buffer: all of it
    assert training_budget(cfg, 10, replayable=500) == cap - 50  # a full share, no more
    assert training_budget(cfg, 10) == cap - 50  # buffer unknown: the full share
    cfg.train_examples_per_turn = 0
    assert training_budget(cfg, 10, replayable=0) == 0  # no cap at all
