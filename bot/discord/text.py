"""Pure text helpers for Discord: split long replies into messages, strip bot mentions.

``split_message`` cuts text into pieces of at most ``limit`` characters (Discord allows 2,000
per message), preferring paragraph, then line, then word boundaries, and never leaves a code
fence open: a piece that ends inside a ``` block is closed with ``` and the next piece reopens
it with the same language tag. Lengths are counted in UTF-16 code units, as Discord's client
does, so emoji never push a piece over the limit. Run the tests with
``pytest tests/test_discord_text.py``.
"""

from __future__ import annotations

import re

DISCORD_LIMIT = 2000
FENCE = "```"
_CLOSE = "\n" + FENCE
_SEPARATORS = ("\n\n", "\n", " ")
_LANG = re.compile(r"[A-Za-z0-9_+#.-]{0,16}")


def utf16_len(text: str) -> int:
    """Length as Discord counts it: characters outside the BMP count twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _prefix_fitting(text: str, budget: int) -> int:
    """The largest index ``i`` such that ``utf16_len(text[:i]) <= budget``."""
    if utf16_len(text) <= budget:
        return len(text)
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > budget:
            return i
    return len(text)


def open_fence(text: str) -> str | None:
    """The fence to reopen with (e.g. "```python") if ``text`` ends inside a code block."""
    opener = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(FENCE):
            opener = None if opener is not None else _reopener(stripped)
    return opener


def _reopener(line: str) -> str:
    # Keep a short language tag only: a reopened fence must stay small to make progress.
    lang = line[len(FENCE):].strip()
    return FENCE + lang if _LANG.fullmatch(lang) else FENCE


def _cut_point(window: str, min_cut: int) -> tuple[int, int]:
    """Where to cut ``window``: (end of this piece, start of the rest)."""
    for sep in _SEPARATORS:
        idx = window.rfind(sep)
        if idx >= min_cut:
            return idx, idx + len(sep)
    return len(window), len(window)


def split_message(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-16 units (see the module doc).

    Whitespace-only pieces are dropped, so the empty string gives ``[]``. Every piece has
    balanced code fences.
    """
    if limit < 100:
        raise ValueError("limit must leave room for code fences (at least 100)")
    pieces: list[str] = []
    rest = text
    while rest.strip():
        # A block left open at the very end (a reply cut off mid-code) is closed too.
        whole = rest + _CLOSE if open_fence(rest) is not None else rest
        if utf16_len(whole) <= limit:
            pieces.append(whole)
            break
        piece, rest = _take_piece(rest, limit)
        if piece.strip():
            pieces.append(piece)
    return pieces


def _take_piece(text: str, limit: int) -> tuple[str, str]:
    """One piece from the front of ``text`` and what is left (with a reopened fence)."""
    budget = limit
    while True:
        window = text[:_prefix_fitting(text, budget)]
        end, start = _cut_point(window, max(1, budget // 4))
        piece = text[:end]
        fence = open_fence(piece)
        if fence is None:
            return piece, text[start:]
        if utf16_len(piece) + len(_CLOSE) <= limit:
            # Close the block here and reopen it (same language tag) in the next piece.
            return piece + _CLOSE, f"{fence}\n{text[start:]}"
        budget = limit - len(_CLOSE)


_MENTION = re.compile(r"<@!?(\d+)>")


def strip_mentions(text: str, user_id: int) -> str:
    """Remove mentions of ``user_id`` (``<@id>`` and ``<@!id>``) and tidy the spaces."""
    cleaned = _MENTION.sub(lambda m: "" if int(m.group(1)) == user_id else m.group(0), text)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()
