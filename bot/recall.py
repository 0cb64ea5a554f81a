"""Recall: answer from a user's weights with the system prompt only (no history, no retrieval).

What ``python -m bot recall``, the terminal's ``/recall`` and Discord's ``/recall`` call.
"""

from __future__ import annotations

from bot.engine import Engine
from bot.wake import clean_text
from runtime.generation import complete_batch


async def recall_answers(engine: Engine, user_id: str, questions: list[str]
                         ) -> tuple[list[str], str]:
    """One answer per question, decoded as one batch, and the label of the weights used."""
    checkpoint = engine.checkpoint(user_id)
    system = {"role": "system", "content": engine.cfg.chat.system_prompt}
    conversations = [[system, {"role": "user", "content": clean_text(q)}] for q in questions]
    answers = await engine.runtime.run(complete_batch, user_id, checkpoint, conversations,
                                       engine.cfg.chat.max_tokens)
    return answers, engine.checkpoint_label(user_id)


async def recall_answer(engine: Engine, user_id: str, question: str) -> tuple[str, str]:
    """:func:`recall_answers` for one question."""
    answers, label = await recall_answers(engine, user_id, [question])
    return answers[0], label
