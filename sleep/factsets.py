"""Memory-test fact sets: what a user tells the bot, and the questions that check recall.

A fact set is a JSON file::

    {
      "name": "persona_maya",                 # required, non-empty string
      "description": "...",                   # optional string
      "user_turns": ["Hi!", "I live in ..."], # required: the user's messages, in order
      "questions": [                          # required, at least one
        {
          "question": "Where do I live?",     # asked after sleep, with no context
          "reworded": ["In what city ...?"],  # paraphrases never used in training
          "keys": ["lisbon"]                  # acceptable answers: case-insensitive substrings
        }
      ]
    }

An answer is correct when it contains any key (``score_answer``; case and accents ignored).
The shipped sets live in ``sleep/factsets/*.json``; every person and detail in them is invented
so no base model knows them.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FACTSETS_DIR = Path(__file__).resolve().parent / "factsets"
_TOP_LEVEL = {"name", "description", "user_turns", "questions"}
_QUESTION_FIELDS = {"question", "reworded", "keys"}


class FactSetError(ValueError):
    """A fact set file that cannot be used; the message names the file and the problem."""


@dataclass
class FactQuestion:
    question: str
    reworded: list[str]
    keys: list[str]


@dataclass
class FactSet:
    name: str
    user_turns: list[str]
    questions: list[FactQuestion]
    description: str = ""
    path: Path | None = field(default=None, compare=False)


def _fail(path: Path, problem: str) -> FactSetError:
    return FactSetError(f"fact set {path}: {problem}")


def _string_list(path: Path, where: str, value: Any, allow_empty: bool) -> list[str]:
    ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
    if not ok or (not value and not allow_empty):
        need = "a list of non-empty strings" if allow_empty else "a non-empty list of strings"
        raise _fail(path, f"{where} must be {need}")
    return [v.strip() for v in value]


def _question(path: Path, index: int, raw: Any) -> FactQuestion:
    where = f"questions[{index}]"
    if not isinstance(raw, dict):
        raise _fail(path, f"{where} must be an object")
    unknown = set(raw) - _QUESTION_FIELDS
    if unknown:
        raise _fail(path, f"{where} has unknown field(s) {sorted(unknown)}")
    text = raw.get("question")
    if not isinstance(text, str) or not text.strip():
        raise _fail(path, f"{where}.question must be a non-empty string")
    reworded = _string_list(path, f"{where}.reworded", raw.get("reworded", []), True)
    keys = _string_list(path, f"{where}.keys", raw.get("keys"), False)
    return FactQuestion(text.strip(), reworded, keys)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _fail(path, "file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise _fail(path, f"invalid JSON at {where}: {exc.msg}") from exc


def parse_factset(data: Any, path: Path | str = "<memory>") -> FactSet:
    """Validates already-decoded JSON as a fact set."""
    path = Path(path)
    if not isinstance(data, dict):
        raise _fail(path, "top level must be a JSON object")
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise _fail(path, f"unknown field(s) {sorted(unknown)}; expected {sorted(_TOP_LEVEL)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(path, "name must be a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail(path, "description must be a string")
    turns = _string_list(path, "user_turns", data.get("user_turns"), False)
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise _fail(path, "questions must be a non-empty list")
    questions = [_question(path, i, q) for i, q in enumerate(raw_questions)]
    return FactSet(name.strip(), turns, questions, description, path)


def load_factset(path: str | Path) -> FactSet:
    """Reads and validates a fact set; raises ``FactSetError`` saying what is wrong."""
    path = Path(path)
    factset = parse_factset(_read_json(path), path)
    log.debug("loaded fact set %s (%d turns, %d questions) from %s", factset.name,
              len(factset.user_turns), len(factset.questions), path)
    return factset


def bundled_factsets() -> list[Path]:
    """Paths of the fact sets shipped with the package, sorted by name."""
    return sorted(FACTSETS_DIR.glob("*.json"))


def bundled_factset(name: str) -> FactSet:
    """A shipped fact set by file stem, e.g. ``bundled_factset("persona_maya")``."""
    path = FACTSETS_DIR / f"{name}.json"
    if not path.is_file():
        names = ", ".join(p.stem for p in bundled_factsets())
        raise FactSetError(f"no bundled fact set {name!r}; available: {names}")
    return load_factset(path)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(folded.lower().split())


def same_keys(a: list[str], b: list[str]) -> bool:
    """Whether two lists of answer keys share one (folded as :func:`score_answer` folds)."""
    return bool({_fold(k) for k in a} & {_fold(k) for k in b})


def score_answer(answer: str, keys: list[str]) -> bool:
    """True when ``answer`` contains any of ``keys`` (case, accents and spacing ignored)."""
    folded = _fold(answer)
    return any(_fold(key) and _fold(key) in folded for key in keys)
