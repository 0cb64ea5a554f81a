"""bench memory: scoring helpers, BM25 notes, the table/plots, and a quick run end to end."""

from __future__ import annotations

import json

import pytest

from bot.bench.memory import (
    bm25_notes,
    parse_grid,
    plot,
    point_from_formation,
    questions_of,
    recall_rate,
    score_set,
    summary_table,
    targets,
)
from sleep.factsets import bundled_factset


def test_recall_rate_counts_key_matches_case_insensitively():
    assert recall_rate(["You live in LISBON.", "I don't know"], [["lisbon"], ["ghent"]]) == 0.5
    assert recall_rate([], []) == 0.0


def test_score_set_separates_direct_and_reworded():
    fs = bundled_factset("andre_patandre")
    direct_q, reworded_q, keys_d, keys_r = questions_of(fs)
    assert len(direct_q) == len(fs.questions) and len(reworded_q) == len(keys_r)
    right = [k[0] for k in keys_d]
    assert len(reworded_q) == sum(len(q.reworded) for q in fs.questions)  # every paraphrase
    out = score_set(fs, right, ["no idea"] * len(reworded_q))
    assert out["direct"] == 1.0 and out["reworded"] == 0.0 and out["misses"] == []
    assert out["reworded_misses"] == reworded_q


def test_a_miss_answered_with_another_fact_counts_as_a_confusion():
    from sleep.factsets import FactQuestion, FactSet

    fs = FactSet("mixed", [], [
        FactQuestion("What is my sister called?", ["Who is my sister?"], ["Ilvana"]),
        FactQuestion("What is my brother called?", [], ["Teodric"]),
        FactQuestion("What is my sister's full name?", [], ["Moss", "Ilvana"]),
    ])
    direct = ["Her surname is Moss.",  # a key of a question sharing one with it: not counted
              "Your brother is Ilvana.",  # the sister's name: confused
              "I don't know."]  # a plain miss
    out = score_set(fs, direct, ["Your sister is Teodric."])
    assert [(c["question"], c["answered"]) for c in out["confusions"]] == [
        ("What is my brother called?", "What is my sister called?"),
        ("Who is my sister?", "What is my brother called?")]
    assert out["confused"] == 2 / 4
    right = score_set(fs, ["Ilvana", "Teodric", "Ilvana Moss"], ["Ilvana"])
    assert right["confused"] == 0 and right["confusions"] == []


def test_bm25_ranks_the_exchange_that_shares_words_first():
    notes = ["User said: my dog is called Pixel", "User said: I live in Lisbon",
             "User said: hello there"]
    top = bm25_notes(notes, ["Where do I live?", "What is my dog called?"], k=1)
    assert top == [["User said: I live in Lisbon"], ["User said: my dog is called Pixel"]]


def test_parse_grid():
    assert parse_grid("1e-4:1,5e-4:5") == [(1e-4, 1), (5e-4, 5)]


def _fake_results() -> dict:
    cyc = {"cycle": 1, "direct": 0.75, "reworded": 0.5, "misses": [], "confused": 0.125,
           "report": {"status": "accepted"}}
    base = {"direct": 0.0, "reworded": 0.0, "misses": []}
    return {
        "formation": [{"factset": "x", "facts": 4, "coverage": 0.75, "base": base,
                       "retrieval": {"direct": 0.5, "reworded": 0.25, "misses": []},
                       "full_context": {"direct": 1.0, "reworded": None, "misses": []},
                       "cycles": [cyc], "general_base": {"builtin": 1.0, "mc": 0.5},
                       "general_after": {"builtin": 0.95, "mc": 0.49, "drift": 0.25}}],
        "isolation": {"leaked": 0, "questions_asked": 8, "leaks": [],
                      "second_user_cycle": "accepted"},
        "lr_sweep": [{"learning_rate": 1e-4, "epochs": 1, "steps": 10, "recall_direct": 0.5,
                      "recall_reworded": 0.25, "general_after": {"builtin": 1.0, "mc": 0.5},
                      "default_gate_accepts": True}],
    }


def test_table_plots_and_targets_from_results(tmp_path):
    results = _fake_results()
    table = summary_table(results)
    assert "| x | 4 | 75% | 0% / 0% | 50% / 25% | 100% / — | 75% / 50% |" in table
    assert "0 leaked answers of 8" in table and "| 0.0001 | 1 | 10 | 50% / 25% |" in table
    assert "another of the user's facts (interference), after each sleep: 12%" in table
    assert "(98.0% of base); drift from the base 0.250 nats/token" in table
    paths = plot(results, tmp_path)
    assert [p.name for p in paths] == ["recall_per_cycle.png", "lr_sensitivity.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    t = targets(results)
    assert t["one_sleep_direct>=0.9"] == (0.75, False)
    assert t["weights>=retrieval"][1] is True and t["zero_leaks"] == (0, True)
    results["isolation"]["second_user_cycle"] = "rejected"  # B answers from the base weights
    assert targets(results)["zero_leaks"] == (0, False)
    assert "only one direction was tested" in summary_table(results)


def test_the_default_sweep_point_is_read_from_an_accepted_formation_cycle():
    from runtime.config import load_config

    cfg = load_config(env={})
    lr, epochs = cfg.sleep.train.learning_rate, cfg.sleep.train.epochs
    report = {"status": "accepted", "seconds": 70.0, "stages": {"training": {"steps": 40}},
              "validation": {"general_post": 0.95, "reason": "general ability held"}}
    formation = {"factset": "x", "cycles": [{"cycle": 1, "direct": 1.0, "reworded": 0.75,
                                             "report": report}]}
    point = point_from_formation(formation, cfg, lr, epochs)
    assert point["recall_direct"] == 1.0 and point["recall_reworded"] == 0.75
    assert point["steps"] == 40 and point["general_after"] == {"builtin": 0.95}
    assert point_from_formation(formation, cfg, lr * 2, epochs) is None  # another setting
    report["status"] = "rejected"  # recall would be the base model's: train the point anew
    assert point_from_formation(formation, cfg, lr, epochs) is None


@pytest.mark.slow
def test_quick_mode_end_to_end_on_the_tiny_model(tmp_path, tiny_model_dir, cli):
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"  # where the bench's temporary users live: emptied at the end
    scratch.mkdir()
    proc = cli("bench", "memory", "--quick", "--json", "--out", str(out),
               "--second-user", "sleep/factsets/persona_tomasz.json",
               data_dir=tmp_path / "data", model=tiny_model_dir, env={"TMPDIR": str(scratch)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list(scratch.glob("sleepbot-*"))  # (MLX keeps its kernel cache there too)
    results = json.loads(proc.stdout)
    f = results["formation"][0]
    assert f["factset"] == "andre_patandre" and len(f["cycles"]) == 1
    assert {"direct", "reworded"} <= set(f["cycles"][0]) and "retrieval" in f
    assert results["isolation"]["questions_asked"] > 0
    for name in ("results.json", "results.md", "recall_per_cycle.png"):
        assert (out / name).is_file()
    assert "[bench memory" in proc.stderr  # progress is shown while it runs
