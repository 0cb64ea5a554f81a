"""Recall: answer from a user's weights with the system prompt only (no history, no retrieval).

What ``python -m bot recall``, the terminal's ``/recall`` and Discord's ``/recall`` call.
Questions are bounded like chat messages (``chat.max_message_chars``): front ends cut typed
questions and say so, and refuse files holding longer ones, before calling here; what reaches
here is cut all the same, so nothing unbounded ever feeds the model.
"""

from __future__ import annotations

from bot.engine import Engine
from bot.wake import bound_input, clean_text
from runtime.generation import complete_batch


async def recall_answers(engine: Engine, user_id: str, questions: list[str]
                         ) -> tuple[list[str], str]:
    """One answer per question, decoded as one batch, and the label of the weights used."""
    checkpoint = (await engine.resolve_checkpoint(user_id)).path
    system = {"role": "system", "content": engine.cfg.chat.system_prompt}
    limit = engine.cfg.chat.max_message_chars
    conversations = [[system, {"role": "user", "content": bound_input(clean_text(q), limit)[0]}]
                     for q in questions]
    answers = await engine.runtime.run(complete_batch, user_id, checkpoint, conversations,
                                       engine.cfg.chat.max_tokens)
    return answers, f"{user_id}/{checkpoint.name}" if checkpoint else "base"


async def recall_answer(engine: Engine, user_id: str, question: str) -> tuple[str, str]:
    """:func:`recall_answers` for one question."""
    answers, label = await recall_answers(engine, user_id, [question])
    return answers[0], label
