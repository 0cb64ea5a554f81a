"""Stage 3 (REM): dreaming. The model writes synthetic Q&A pairs connecting learned facts.

Runs every ``deep_every``-th cycle or on ``--deep``. The prompt lists facts already stored in
the user's replay buffer; the model proposes new question/answer pairs that combine them.
A dream is kept only when its answer is grounded in the stored facts (never a new claim).
"""

from __future__ import annotations

import re
from pathlib import Path

from runtime.thread import ModelContext
from sleep.extraction import grounded
from sleep.types import QAPair

DREAM_PROMPT = (
    "Here are facts about a user:\n{facts}\n\n"
    "Write {n} new questions that connect two of these facts, each followed by its short "
    "answer, one per line, exactly like this:\nQ: <question> A: <answer>\n"
)
_LINE = re.compile(r"Q\s*:\s*(?P<q>.+?\?)\s*A\s*:\s*(?P<a>.+)", re.IGNORECASE)


def parse_dreams(raw: str) -> list[tuple[str, str]]:
    return [(m.group("q").strip(), m.group("a").strip()) for m in map(_LINE.search,
            raw.splitlines()) if m]


def consistent(answer: str, fact_texts: list[str]) -> bool:
    """A dream's answer must only use words the stored facts contain."""
    return len(answer) >= 2 and grounded(answer, fact_texts)


def dream(ctx: ModelContext, user_id: str, checkpoint: Path | None, fact_answers: list[str],
          n: int = 4, max_tokens: int = 160) -> tuple[list[QAPair], int]:
    """Model job: propose dreams and keep the consistent ones; returns (kept, proposed)."""
    from runtime.generation import complete

    if len(fact_answers) < 2:
        return [], 0
    listing = "\n".join(f"- {a}" for a in fact_answers[:12])
    stats = complete(ctx, user_id, checkpoint,
                     [{"role": "user", "content": DREAM_PROMPT.format(facts=listing, n=n)}],
                     max_tokens)
    proposed = parse_dreams(stats.text)
    kept = [QAPair(q, a, [], "dream") for q, a in proposed if consistent(a, fact_answers)]
    return kept, len(proposed)
