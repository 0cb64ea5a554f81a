"""Stage 1: curation. Score each not-yet-consolidated exchange and keep the worthwhile ones.

* **novelty**: how surprising the user's words are to the user's current weights, from the
  model's own mean per-token loss on them (a model job), squashed to [0, 1];
* **importance** and **utility**: deterministic scores from :mod:`sleep.importance` (facts,
  preferences, corrections and named entities high; greetings and filler low); a message with
  any sentence that discloses something about the user or their world (the general test of
  :func:`sleep.extraction.statements.judge_disclosure`, which knows no list of fact kinds)
  counts as important however the rule scores saw it, so real, chatty conversation is kept
  wherever it tells something, and small talk, questions and reactions are not.

Only exchanges at or above every threshold are kept; the report shows the counts.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from pathlib import Path

from memory.store import Exchange
from runtime.config import SleepConfig
from runtime.generation import turn_prefix
from runtime.scoring import sequence_scores_steps
from runtime.thread import ModelContext
from sleep.extraction.statements import is_disclosure, message_sentences
from sleep.importance import explain, importance, utility
from sleep.types import ScoredExchange

DISCLOSURE_SCORE = 0.5  # importance and utility of a message that discloses something
NOVELTY_SCALE = 3.0  # nats/token; a loss of 3 maps to 1 - 1/e ≈ 0.63


def novelty_from_loss(loss: float) -> float:
    """Novelty in [0, 1]; NaN when the loss was not measured (novelty threshold 0)."""
    if math.isnan(loss):
        return math.nan
    return 1.0 - math.exp(-max(loss, 0.0) / NOVELTY_SCALE)


def _user_text_sequences(ctx: ModelContext, texts: list[str]) -> list[tuple[list[int], int]]:
    """Each text as the model's chat template writes a user turn; scored from the text on."""
    enc = ctx.tokenizer.encode
    head = enc(turn_prefix(ctx.tokenizer), add_special_tokens=False)
    return [(head + enc(t, add_special_tokens=False)[:256], len(head)) for t in texts]


def user_text_losses_steps(ctx: ModelContext, user_id: str, checkpoint: Path | None,
                           texts: list[str]) -> Generator[int, None, list[float]]:
    """Generator job: mean per-token loss of each text as a user turn, under the user's
    weights; a few texts per step, so chat goes first between steps (the user's weights are
    re-applied before each)."""
    seqs = _user_text_sequences(ctx, texts)
    scores = yield from sequence_scores_steps(ctx, seqs, lambda: ctx.use_user(user_id, checkpoint))
    return [-s for s in scores]


def disclosure(text: str) -> str:
    """The first sentence of ``text`` that discloses something, or ""."""
    return next((s for s in message_sentences(text) if is_disclosure(s)), "")


def score(exchanges: list[Exchange], losses: list[float], cfg: SleepConfig
          ) -> list[ScoredExchange]:
    """Combine the three scores and apply the thresholds."""
    out = []
    for ex, loss in zip(exchanges, losses, strict=True):
        nov, imp, uti = novelty_from_loss(loss), importance(ex.user_text), utility(ex.user_text)
        told = disclosure(ex.user_text)
        if told:
            imp, uti = max(imp, DISCLOSURE_SCORE), max(uti, DISCLOSURE_SCORE)
        kept = ((math.isnan(nov) or nov >= cfg.novelty_threshold)
                and imp >= cfg.importance_threshold and uti >= cfg.utility_threshold)
        reason = (explain(ex.user_text) if not told else f"discloses: {told[:80]}") if kept \
            else _why_dropped(nov, imp, uti, cfg)
        out.append(ScoredExchange(ex.id, ex.user_text, nov, imp, uti, kept, reason))
    return out


def _why_dropped(nov: float, imp: float, uti: float, cfg: SleepConfig) -> str:
    if imp < cfg.importance_threshold:
        return f"importance {imp:.2f} < {cfg.importance_threshold}"
    if nov < cfg.novelty_threshold:
        return f"novelty {nov:.2f} < {cfg.novelty_threshold}"
    return f"utility {uti:.2f} < {cfg.utility_threshold}"
