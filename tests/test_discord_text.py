"""Unit tests for bot/discord/text.py: splitting long replies for Discord, stripping mentions.

    pytest tests/test_discord_text.py
"""

from __future__ import annotations

import random

import pytest

from bot.discord.text import (
    DISCORD_LIMIT,
    open_fence,
    split_message,
    strip_mentions,
    utf16_len,
)


def words_of(pieces: list[str]) -> list[str]:
    """The words of the pieces with the fences the splitter added removed."""
    return " ".join(pieces).replace("```", " ").split()


def assert_valid(pieces: list[str], limit: int = DISCORD_LIMIT) -> None:
    for piece in pieces:
        assert 0 < utf16_len(piece) <= limit
        assert piece.strip()
        assert open_fence(piece) is None, f"piece leaves a code fence open: {piece[-80:]!r}"


def test_short_and_empty_text() -> None:
    assert split_message("hello") == ["hello"]
    assert split_message("") == []
    assert split_message(" \n\n ") == []
    exact = "x" * DISCORD_LIMIT
    assert split_message(exact) == [exact]


def test_prefers_paragraph_boundaries() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 150 for i in range(8)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    pieces = split_message(text)
    assert len(pieces) > 1
    assert_valid(pieces)
    for piece in pieces:  # every piece starts at a paragraph start
        assert piece.startswith("Paragraph")
    assert words_of(pieces) == text.split()


def test_falls_back_to_lines_then_words() -> None:
    lines = "\n".join(f"line {i} " + "abc " * 30 for i in range(60))
    pieces = split_message(lines)
    assert_valid(pieces)
    assert all(p.startswith("line") for p in pieces)
    one_line = "word " * 1000
    pieces = split_message(one_line)
    assert_valid(pieces)
    assert all(not p.startswith(" ") and not p.endswith("wor") for p in pieces)
    assert words_of(pieces) == one_line.split()


def test_hard_cut_for_a_giant_word() -> None:
    text = "a" * 5000
    pieces = split_message(text)
    assert [len(p) for p in pieces] == [2000, 2000, 1000]


def test_code_fence_is_closed_and_reopened() -> None:
    code = "\n".join(f"    x_{i} = compute({i})  # step" for i in range(150))
    text = "Here is the code:\n\n```python\n" + code + "\n```\n\nThat's all."
    pieces = split_message(text)
    assert len(pieces) >= 3
    assert_valid(pieces)
    for piece in pieces[1:-1]:
        assert piece.startswith("```python\n")
    # the code lines survive intact, indentation included
    joined = "\n".join(pieces)
    for i in range(150):
        assert f"    x_{i} = compute({i})  # step" in joined


def test_fence_without_language_and_odd_fence_lines() -> None:
    text = "```\n" + ("y " * 40 + "\n") * 80 + "```"
    pieces = split_message(text)
    assert_valid(pieces)
    assert all(p.startswith("```") for p in pieces)
    weird = "```" + "z" * 4000  # a fence line with no newline must still make progress
    assert_valid(split_message(weird))


def test_astral_characters_count_double() -> None:
    text = "😀" * 1500  # 3000 UTF-16 units
    pieces = split_message(text)
    assert [utf16_len(p) for p in pieces] == [2000, 1000]
    assert "".join(pieces) == text


def random_text(rng: random.Random, alphabet: list[str]) -> str:
    return "".join(rng.choice(alphabet) + rng.choice(["", " "])
                   for _ in range(rng.randint(0, 900)))


def test_random_texts_stay_within_limits() -> None:
    rng = random.Random(7)
    with_fences = ["word", "x", "\n", "\n\n", "```", "```py\n", " ", "é", "🙂", "longerword"]
    for _ in range(200):
        limit = rng.choice([100, 150, 400, 2000])
        assert_valid(split_message(random_text(rng, with_fences), limit), limit)


def test_random_texts_lose_nothing() -> None:
    rng = random.Random(11)
    plain = ["word", "x", "\n", "\n\n", " ", "é", "🙂", "longerword"]
    for _ in range(200):
        text = random_text(rng, plain)
        pieces = split_message(text, rng.choice([100, 150, 400, 2000]))
        assert "".join("".join(pieces).split()) == "".join(text.split())


def test_small_limit_rejected() -> None:
    with pytest.raises(ValueError):
        split_message("abc", limit=10)


def test_strip_mentions() -> None:
    assert strip_mentions("<@42> hello there", 42) == "hello there"
    assert strip_mentions("hey <@!42>,  you", 42) == "hey , you"
    assert strip_mentions("<@42> ask <@7> too", 42) == "ask <@7> too"
    assert strip_mentions("<@42>", 42) == ""
