"""Tests for memory.identity and memory.paths."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from memory.identity import IdentityPair, default_identity, load_identity, save_identity
from memory.paths import models_dir, safe_user_id, store_path, user_paths


def test_defaults_are_written_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "users" / "u1" / "identity.jsonl"
    pairs = load_identity(path, "Sleepbot")
    assert pairs == default_identity("Sleepbot")
    assert IdentityPair("What is your name?", "My name is Sleepbot.") in pairs
    assert len(pairs) >= 5
    on_disk = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert on_disk == [{"question": p.question, "answer": p.answer} for p in pairs]
    assert load_identity(path, "Other") == pairs  # the file, not fresh defaults, wins
    assert [p.name for p in path.parent.iterdir()] == ["identity.jsonl"]


def test_user_edits_are_loaded_and_bad_lines_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "identity.jsonl"
    path.write_text(
        '{"question": "Who made you?", "answer": "A hobbyist."}\n'
        "not json\n"
        '{"question": "no answer"}\n'
        '{"question": "Line\\u2028sep?", "answer": "Kept\u2028whole."}\n',
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING, logger="memory.identity"):
        pairs = load_identity(path, "Sleepbot")
    assert pairs == [
        IdentityPair("Who made you?", "A hobbyist."),
        IdentityPair("Line\u2028sep?", "Kept\u2028whole."),
    ]
    assert sum("line" in r.getMessage() for r in caplog.records) == 2


def test_file_without_usable_pairs_falls_back_to_defaults(tmp_path: Path) -> None:
    path = tmp_path / "identity.jsonl"
    path.write_text("garbage\n", encoding="utf-8")
    assert load_identity(path, "Bot") == default_identity("Bot")
    assert path.read_text(encoding="utf-8") == "garbage\n"  # not overwritten


def test_save_identity_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "identity.jsonl"
    pairs = [IdentityPair("Q?", "A ✓.")]
    save_identity(path, pairs)
    assert load_identity(path, "Bot") == pairs


def test_user_paths_layout(tmp_path: Path) -> None:
    p = user_paths(tmp_path, "123456789")
    assert p.root == tmp_path / "users" / "123456789"
    assert p.log == p.root / "conversation.jsonl"
    assert p.identity == p.root / "identity.jsonl"
    assert p.checkpoints == p.root / "checkpoints"
    assert not p.root.exists()  # computing paths creates nothing
    assert store_path(tmp_path) == tmp_path / "sleepbot.db"
    assert models_dir(tmp_path) == tmp_path / "models"


@pytest.mark.parametrize("raw", ["../etc", "a/b", "a b", "", ".", "..", "ü", "x" * 300])
def test_safe_ids_are_filesystem_safe(raw: str) -> None:
    safe = safe_user_id(raw)
    assert safe not in ("", ".", "..")
    assert "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert len(safe) <= 100


def test_safe_ids_never_collide() -> None:
    raws = ["a.b", "a_b", "a/b", "a b", "A_B", "ab", "", "_"]
    raws.append(safe_user_id("a.b"))  # an id that looks like another's encoding
    encoded = [safe_user_id(r) for r in raws]
    assert len(set(encoded)) == len(raws)
    assert safe_user_id("a_b") == "a_b"
    assert safe_user_id("a.b").startswith("a_b.")
