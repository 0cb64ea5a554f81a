"""Memory-test fact sets: the shipped files load, are well-formed and isolated from each other,
answers are scored by key, and a malformed file fails with a message that says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleep.extraction import extract_facts
from sleep.factsets import (
    FACTSETS_DIR,
    FactSetError,
    bundled_factset,
    bundled_factsets,
    load_factset,
    parse_factset,
    score_answer,
)

VALID = {
    "name": "tiny",
    "user_turns": ["Hi!", "I live in Lisbon."],
    "questions": [{"question": "Where do I live?", "reworded": ["My city?"], "keys": ["lisbon"]}],
}


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "set.json"
    path.write_text(content, encoding="utf-8")
    return path


def test_three_factsets_are_shipped() -> None:
    names = [p.stem for p in bundled_factsets()]
    assert names == ["andre_patandre", "persona_maya", "persona_tomasz"]
    assert all(p.parent == FACTSETS_DIR for p in bundled_factsets())


@pytest.mark.parametrize(
    ("name", "min_turns", "min_questions"),
    [("andre_patandre", 8, 8), ("persona_maya", 10, 12), ("persona_tomasz", 8, 8)],
)
def test_shipped_factsets_are_well_formed(name: str, min_turns: int, min_questions: int) -> None:
    factset = bundled_factset(name)
    assert factset.name == name
    assert len(factset.user_turns) >= min_turns
    assert len(factset.questions) >= min_questions
    for question in factset.questions:
        assert question.keys and all(k == k.lower() for k in question.keys)
        assert len(question.reworded) >= 2
        assert question.question not in question.reworded


@pytest.mark.parametrize("name", ["andre_patandre", "persona_maya", "persona_tomasz"])
def test_shipped_factsets_read_like_chat(name: str) -> None:
    # Natural conversation mixes in turns that state nothing (greetings, asides, questions).
    turns = bundled_factset(name).user_turns
    assert any(not extract_facts(t, [0]) for t in turns)
    assert sum(bool(extract_facts(t, [0])) for t in turns) >= len(turns) // 2


def test_persona_keys_do_not_overlap() -> None:
    maya = [k for q in bundled_factset("persona_maya").questions for k in q.keys]
    tomasz = [k for q in bundled_factset("persona_tomasz").questions for k in q.keys]
    for a in maya:
        for b in tomasz:
            assert a not in b and b not in a, (a, b)
    maya_text = " ".join(bundled_factset("persona_maya").user_turns).lower()
    assert not any(k in maya_text for k in tomasz)


def test_score_answer_is_a_case_insensitive_substring_match() -> None:
    assert score_answer("You live in LISBON.", ["lisbon"])
    assert score_answer("He is a music producer", ["producer", "dj"])
    assert score_answer("You live in Gdańsk.", ["gdansk"])
    assert score_answer("Kestrel   Room", ["kestrel room"])
    assert not score_answer("You live in Porto.", ["lisbon"])
    assert not score_answer("anything", [])
    assert not score_answer("anything", [""])


def test_load_valid_file(tmp_path: Path) -> None:
    factset = load_factset(_write(tmp_path, json.dumps(VALID)))
    assert factset.name == "tiny" and factset.questions[0].keys == ["lisbon"]
    assert factset.path == tmp_path / "set.json"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[]", "top level must be a JSON object"),
        (json.dumps({**VALID, "name": ""}), "name must be a non-empty string"),
        (json.dumps({**VALID, "user_turns": []}), "user_turns must be a non-empty list"),
        (json.dumps({**VALID, "user_turns": ["ok", 3]}), "user_turns must be"),
        (json.dumps({**VALID, "questions": []}), "questions must be a non-empty list"),
        (json.dumps({**VALID, "questions": ["Where?"]}), "questions[0] must be an object"),
        (json.dumps({**VALID, "questions": [{"question": "Q?", "reworded": []}]}),
         "questions[0].keys must be a non-empty list"),
        (json.dumps({**VALID, "questions": [{"question": "", "keys": ["x"]}]}),
         "questions[0].question must be a non-empty string"),
        (json.dumps({**VALID, "questions": [{"question": "Q?", "keys": ["x"], "key": "y"}]}),
         "questions[0] has unknown field(s) ['key']"),
        (json.dumps({**VALID, "question": []}), "unknown field(s) ['question']"),
    ],
)
def test_malformed_file_fails_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(FactSetError) as info:
        load_factset(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FactSetError, match="file not found"):
        load_factset(tmp_path / "nope.json")


def test_unknown_bundled_name_lists_the_available_ones() -> None:
    with pytest.raises(FactSetError, match="persona_maya"):
        bundled_factset("nope")


def test_parse_factset_accepts_decoded_json() -> None:
    assert parse_factset(VALID).user_turns == ["Hi!", "I live in Lisbon."]
    assert isinstance(FactSetError("x"), ValueError)
