"""The per-user identity dataset: core Q&A pairs included in every sleep cycle (paper §3.5).

Rehearsing these pairs in every cycle keeps the bot's sense of who it is from drifting as
user memories are trained into the weights. Each user has an editable ``identity.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentityPair:
    """One question and the answer the bot should always give to it."""

    question: str
    answer: str


def default_identity(bot_name: str) -> list[IdentityPair]:
    """The identity pairs a new user starts with."""
    return [
        IdentityPair("What is your name?", f"My name is {bot_name}."),
        IdentityPair(
            "Who are you?",
            f"I am {bot_name}, a friendly assistant that chats with you and remembers "
            "what you tell me.",
        ),
        IdentityPair(
            "Do you remember our past conversations?",
            "Yes. What you tell me becomes part of my memory while I sleep, so I can "
            "recall it later.",
        ),
        IdentityPair(
            "What happens when you sleep?",
            "While I sleep, I go over our recent conversations and fold them into my "
            "long-term memory.",
        ),
        IdentityPair(
            "What should you do if you don't know something about me?",
            "I should say that I don't remember it rather than make something up.",
        ),
        IdentityPair(
            "Can I ask you to forget something?",
            "Yes. If you ask me to forget something, I remove it from my memory.",
        ),
    ]


def save_identity(path: Path, pairs: list[IdentityPair]) -> None:
    """Write ``pairs`` as JSONL atomically (temp file in the same dir + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for pair in pairs:
                f.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _parse_pair(line: str) -> IdentityPair | None:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    question, answer = obj.get("question"), obj.get("answer")
    if not isinstance(question, str) or not isinstance(answer, str):
        return None
    if not question.strip() or not answer.strip():
        return None
    return IdentityPair(question, answer)


def load_identity(path: Path, bot_name: str) -> list[IdentityPair]:
    """Read the identity pairs at ``path``, writing the defaults there first if it is missing.

    Bad lines are skipped with a warning. A file with no usable pair yields the defaults
    (without overwriting it), since every sleep cycle needs identity data.
    """
    path = Path(path)
    if not path.exists():
        pairs = default_identity(bot_name)
        save_identity(path, pairs)
        log.info("wrote default identity dataset to %s", path)
        return pairs
    pairs = []
    text = path.read_bytes().decode("utf-8", errors="replace")
    # split on "\n" only: str.splitlines() would also break inside answers containing U+2028
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        pair = _parse_pair(line)
        if pair is None:
            log.warning("skipping bad identity line %d in %s", lineno, path)
            continue
        pairs.append(pair)
    if not pairs:
        log.warning("no usable identity pairs in %s; using the defaults", path)
        return default_identity(bot_name)
    return pairs
