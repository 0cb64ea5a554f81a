"""The REALTALK development fact sets: built by scripts/realtalk_factsets.py, loadable, and
the same bytes every time (they are rebuilt from ../shared, never committed: the project
does not copy the shared chats).

Needs the REALTALK chats next to the repository (../shared/data/realtalk); skips without them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sleep.factsets import load_factset, score_answer

REPO = Path(__file__).resolve().parents[1]
REALTALK = REPO.parent / "shared" / "data" / "realtalk"

pytestmark = pytest.mark.skipif(
    not REALTALK.is_dir() or not any(REALTALK.glob("Chat_*.json")),
    reason=f"REALTALK development data not found at {REALTALK} (see ../shared/data/SOURCES.md)",
)


@pytest.fixture(scope="module")
def script():
    from bot.bench import realtalk

    return realtalk


@pytest.fixture(scope="module")
def built(script, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("realtalk")
    script.main(["--realtalk", str(REALTALK), "--out", str(out)])
    return out


def _factset_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.endswith(".meta.json"))


def test_every_output_loads_and_is_big_enough(built):
    paths = _factset_paths(built)
    assert len(paths) >= 4
    total = 0
    for path in paths:
        factset = load_factset(path)
        assert factset.name == path.stem
        assert "REALTALK (danny911kr/REALTALK @ b903e06a, data/Chat_" in factset.description
        assert "scripts/realtalk_factsets.py" in factset.description
        for question in factset.questions:
            assert len(question.reworded) == 1 and question.reworded[0] != question.question
            assert question.question.endswith("?") and question.keys
        total += len(factset.questions)
    assert total >= 60


def test_meta_files_line_up_with_the_fact_sets(built):
    for path in _factset_paths(built):
        factset = load_factset(path)
        meta = json.loads(path.with_name(f"{path.stem}.meta.json").read_text(encoding="utf-8"))
        assert meta["source"].startswith("danny911kr/REALTALK @ b903e06a, data/Chat_")
        assert len(meta["turn_times"]) == len(meta["turn_dia_ids"]) == len(factset.user_turns)
        for key in ("question_evidence", "question_categories", "question_support"):
            assert len(meta[key]) == len(factset.questions), key
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", t) for t in meta["turn_times"])
        assert meta["turn_times"] == sorted(meta["turn_times"])
        assert set(meta["question_categories"]) <= {1, 2}
        # Every question's evidence is among this speaker's own turns.
        own = set(meta["turn_dia_ids"])
        assert all(set(ids) <= own for ids in meta["question_evidence"])


def test_no_question_names_either_speaker(script, built):
    for path in _factset_paths(built):
        meta = json.loads(path.with_name(f"{path.stem}.meta.json").read_text(encoding="utf-8"))
        names = [n for names, _ in script.SPEAKERS[meta["chat"]].values() for n in names]
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b", re.I)
        for question in load_factset(path).questions:
            for text in [question.question, *question.reworded]:
                assert not pattern.search(text), (path.name, text)


def test_date_keys_do_not_match_a_neighbouring_day(script):
    keys = script.date_keys(script.ParsedDate(2024, 1, 3))
    assert score_answer("It was on January 3rd, 2024.", keys)
    assert score_answer("03.01.2024", keys)
    assert not score_answer("It was on January 30, 2024.", keys)
    assert not score_answer("On 13 January 2024.", keys)
    keys = script.date_keys(script.ParsedDate(2024, 1, 5))
    assert score_answer("January 5", keys)
    assert not score_answer("15 January", keys) and not score_answer("January 15", keys)


def test_second_person_rewrites(script):
    rewrite = script.to_second_person
    assert rewrite("What are Kate's hobbies?", ("Kate",), "f") == "What are my hobbies?"
    assert rewrite("Where does Kate work as a teacher assistant?", ("Kate",), "f") == (
        "Where do I work as a teacher assistant?")
    assert rewrite("Where is Paola planning to go?", ("Paola",), "f") == (
        "Where am I planning to go?")
    assert rewrite("How long has Kevin been interning?", ("Kevin",), "m") == (
        "How long have I been interning?")
    assert rewrite("When did Nebraas clean her apartment?", ("Nebraas",), "f") == (
        "When did I clean my apartment?")
    assert rewrite("When Emi went to the cinema?", ("Emi",), "f") == (
        "When was it that I went to the cinema?")
    with pytest.raises(script.Drop):
        rewrite("What do Nebraas and his girlfriend do together?", ("Nebraas",), "m")


def test_a_rebuild_gives_the_same_bytes(script, built, tmp_path):
    script.main(["--realtalk", str(REALTALK), "--out", str(tmp_path)])
    rebuilt = sorted(p.name for p in tmp_path.glob("*.json"))
    assert rebuilt == sorted(p.name for p in built.glob("*.json"))
    for name in rebuilt:
        assert (tmp_path / name).read_bytes() == (built / name).read_bytes(), name
