"""``bench memory --lifelong`` on a small invented chat in REALTALK's format, on the tiny model:
one cycle per day of messages, questions asked once their evidence was said, the week-one
forgetting check in a new process, and the plot.

    .venv/bin/python -m pytest -q tests/test_lifelong.py
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import quick_sleep

# Two invented people over three days; dia_ids and fields as REALTALK writes them.
DAYS = [
    ("03.03.2025", [("Ines", "I just adopted a tortoise, his name is Admiral Pebbles!"),
                    ("Tove", "Congrats! I'm off to Bergen for work this week."),
                    ("Ines", "My sister Ana works as a nurse in Porto.")]),
    ("04.03.2025", [("Ines", "Today I started a pottery class at the community hall."),
                    ("Tove", "Nice, how was it?")]),
    ("05.03.2025", [("Ines", "I bought a green bicycle from a shop in Ghent.")]),
]
QA = [
    {"question": "What is the name of Ines's tortoise?", "answer": "Admiral Pebbles",
     "evidence": ["D1:1"], "category": 1},
    {"question": "Where does Ines's sister work?", "answer": "Porto",
     "evidence": ["D1:3"], "category": 1},
    {"question": "What class did Ines start?", "answer": "pottery", "evidence": ["D2:1"],
     "category": 1},
    {"question": "What color is Ines's bicycle?", "answer": "green", "evidence": ["D3:1"],
     "category": 1},
]


def write_chat(path) -> None:
    chat = {"name": {"speaker_1": "Ines", "speaker_2": "Tove"}, "qa": QA}
    for n, (day, lines) in enumerate(DAYS, 1):
        chat[f"session_{n}"] = [
            {"clean_text": text, "speaker": who, "date_time": f"{day}, 1{k}:00:00",
             "img_file": [], "img_url": [], "dia_id": f"D{n}:{k + 1}"}
            for k, (who, text) in enumerate(lines)]
        chat[f"session_{n}_date_time"] = f"{day}, 10:00:00"
        chat[f"events_session_{n}"] = {"agent_a": [], "agent_b": []}
    path.write_text(json.dumps(chat))


@pytest.mark.asyncio
async def test_lifelong_sleeps_every_night_and_asks_what_was_said(tiny_config, tmp_path):
    from bot.bench.lifelong import LifelongOptions, format_table, load_speakers, run_lifelong

    chat = tmp_path / "Chat_99_Ines_Tove.json"
    write_chat(chat)
    [ines] = load_speakers(chat)  # Tove has no questions
    assert ines.name == "Ines" and len(ines.factset.questions) == 4
    assert ines.factset.questions[0].question == "What is the name of my tortoise?"
    cfg = quick_sleep(tiny_config)
    mc = tmp_path / "mc.jsonl"  # invented items: general ability is scored every night
    mc.write_text("\n".join(json.dumps({"query": q, "choices": c, "gold": 0}) for q, c in [
        ("What colour is snow?", ["white", "green"]),
        ("How many legs has a spider?", ["eight", "three", "five"]),
        ("Which is a fruit?", ["apple", "brick"])]) + "\n")
    result = await run_lifelong(cfg, LifelongOptions(chat, mc=mc, out=tmp_path / "out"))
    nights = result["nights"]
    # retention after every night, on the weights that night left; the last is the end's
    assert all(set(n["general"]) == {"builtin", "mc", "drift"} for n in nights)
    assert result["general_base"]["drift"] == 0.0  # the base from itself
    assert all(n["general"]["drift"] > 0 for n in nights)  # every accepted night moved it
    assert all(n["general"]["mc"] in (0.0, 1 / 3, 2 / 3, 1.0) for n in nights)
    assert result["general_after"] == nights[-1]["general"]
    assert "mc" in result["general_base"]
    assert "Lowest MC over the nights" in format_table(result)
    assert "Drift from the base" in format_table(result)
    assert [n["day"] for n in nights] == ["2025-03-03", "2025-03-04", "2025-03-05"]
    assert [n["turns"] for n in nights] == [2, 1, 1]
    assert [n["asked"] for n in nights] == [2, 3, 4]
    # every question said so far has a verdict each night; "lost" counts the ones answered
    # on an earlier night and missed tonight
    assert [len(n["hits"]) for n in nights] == [2, 3, 4]
    assert all(n["answers"].keys() == n["hits"].keys() for n in nights)  # what each one said
    for i, n in enumerate(nights):
        before = {q for prev in nights[:i] for q, h in prev["hits"].items() if h}
        assert n["lost"] == sum(1 for q in before if not n["hits"].get(q))
    partial = json.loads((tmp_path / "out" / "partial.json").read_text())
    assert len(partial["nights"]) == 3  # written after every night
    assert all(n["status"] == "accepted" for n in nights), nights
    assert all(n["reason"] and n["scale"] == 1.0 for n in nights)  # each night's verdict
    assert "Nights rejected: 0; accepted at a smaller step: 0." in format_table(result)
    told = json.loads(json.dumps(result))  # what the table says of rejected and scaled nights
    told["nights"][1].update(status="rejected", reason="general ability fell below the base "
                             "model's: 0.925 < 0.95 × 1.000")
    told["nights"][2]["scale"] = 0.7
    assert ("Nights rejected: 1 (general ability fell below the base model's: 1); accepted at "
            "a smaller step: 1.") in format_table(told)
    assert result["week_one"]["questions"] == 4
    assert 0.0 <= result["week_one"]["at_the_end"] <= 1.0
    assert result["general_after"]["builtin"] >= 0.0
    assert (tmp_path / "out" / "lifelong.png").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "results.json").read_text())["speaker"] == "Ines"
    assert "| 3 | 2025-03-05 | 1 | accepted |" in format_table(result)
