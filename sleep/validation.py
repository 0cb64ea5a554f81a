"""Stage 6: validation. Score the user's weights before and after training; gate promotion.

Two gates, both fail closed (a gate that cannot score rejects):

* **general ability**: multiple-choice accuracy on a fixed question set, by log-likelihood of
  each choice (mean per token); accept only if ``post >= tau * pre`` (the paper's rule).
* **drift** (optional, ``max_drift``): how much less likely the weights make the base model's
  own greedy answers to the built-in questions, in nats per token (kin to the KL divergence
  from the base, taken at the base's greedy tokens instead of samples). It sees every token
  of 40 answers, not 40 right-or-wrong picks, so an update cannot pass it by keeping a few
  saturated items right while it drifts.
* **memory** (the paper had none): the cycle's facts (new ones, or the replayed ones in a
  replay-only cycle) must be better recalled than before, measured as the mean answer loss of
  one question per fact: ``post < pre``, or still recalled: ``post <= RECALLED_LOSS``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from runtime.scoring import STEP_TOKENS, sequence_scores, sequence_scores_steps
from runtime.thread import ModelContext
from sleep.types import QAPair

# mean answer loss (nats/token) of facts the model already reproduces word for word (token
# probability ~0.9): a replay-only cycle cannot lower it much, and only has to keep it there
RECALLED_LOSS = 0.1
Steps = Generator[int, None, float]
DRIFT_TOKENS = 48  # length of the base model's greedy answer to each built-in question


@dataclass
class MCItem:
    query: str
    choices: list[str]
    gold: int


@dataclass
class GateResult:
    accepted: bool
    general_pre: float
    general_post: float
    fact_loss_pre: float | None
    fact_loss_post: float | None
    reason: str
    drift: float | None = None
    # what failed: "general" or "drift" (a smaller step of the update may pass), "facts",
    # "unscored"; "" when accepted
    cause: str = ""


class MCFileError(ValueError):
    """A multiple-choice file has a malformed line."""


def load_mc_file(path: Path) -> list[MCItem]:
    """Lines of ``{"query": str, "choices": [str], "gold": int}``."""
    items = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MCFileError(f"cannot read {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            query, choices, gold = row["query"], row["choices"], row["gold"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise MCFileError(f"{path}:{n}: expected query/choices/gold ({exc})") from exc
        # exact types: str() and int() would turn a string of choices into its characters
        # and gold 1.9 into 1 without a word
        if not isinstance(query, str) or not query.strip():
            raise MCFileError(f"{path}:{n}: query must be non-empty text")
        if not isinstance(choices, list) or len(choices) < 2 or not all(
                isinstance(c, str) and c.strip() for c in choices):
            raise MCFileError(f"{path}:{n}: choices must be a list of at least two texts")
        if not isinstance(gold, int) or isinstance(gold, bool):
            raise MCFileError(f"{path}:{n}: gold must be a whole number (the index of the "
                              f"right choice), not {gold!r}")
        item = MCItem(query, choices, gold)
        if not 0 <= item.gold < len(item.choices):
            raise MCFileError(f"{path}:{n}: gold index {item.gold} out of range")
        items.append(item)
    if not items:
        raise MCFileError(f"{path} has no items")
    return items


def builtin_items() -> list[MCItem]:
    """The project's own validation questions as MC items."""
    from sleep.validation_questions import VALIDATION_QUESTIONS

    return [MCItem(f"Question: {v.question}\nAnswer:", list(v.choices), v.gold)
            for v in VALIDATION_QUESTIONS]


def _mc_sequences(ctx: ModelContext, items: list[MCItem]) -> tuple[list, list[int]]:
    enc = ctx.tokenizer.encode
    seqs, owners = [], []
    for n, item in enumerate(items):
        q = enc(item.query, add_special_tokens=False)
        for choice in item.choices:
            seqs.append((q + enc(" " + choice.strip(), add_special_tokens=False), len(q)))
            owners.append(n)
    return seqs, owners


def mc_accuracy(ctx: ModelContext, items: list[MCItem]) -> float:
    """Share of items whose gold choice has the highest mean log-likelihood."""
    seqs, owners = _mc_sequences(ctx, items)
    return _mc_pick(items, owners, sequence_scores(ctx, seqs))


def mc_accuracy_steps(ctx: ModelContext, items: list[MCItem],
                      prepare: Callable[[], None] | None = None,
                      metric: str = "accuracy") -> Steps:
    """Generator job form of :func:`mc_accuracy` (see :func:`sequence_scores_steps`);
    ``metric`` "gold_prob" scores :func:`mc_gold_prob` instead."""
    seqs, owners = _mc_sequences(ctx, items)
    scores = yield from sequence_scores_steps(ctx, seqs, prepare)
    if metric == "gold_prob":
        return mc_gold_prob(items, owners, scores)
    return _mc_pick(items, owners, scores)


def mc_gold_prob(items: list[MCItem], owners: list[int], scores: list[float]) -> float:
    """Mean share of each item's probability on its gold choice (a softmax over the choices'
    mean log-likelihoods). Unlike accuracy it moves before an answer flips: on questions a
    model gets all right, a cycle that erodes what it knows shows here first."""
    by_item: dict[int, list[float]] = {}
    for owner, score in zip(owners, scores, strict=True):
        by_item.setdefault(owner, []).append(score)
    total = 0.0
    for n, item in enumerate(items):
        xs = by_item[n]
        top = max(xs)
        weights = [math.exp(x - top) for x in xs]
        total += weights[item.gold] / sum(weights)
    return total / len(items)


@dataclass
class DriftReference:
    """The base model's greedy answers to the built-in questions (chat format, as the bot is
    used), as scored sequences, and the mean log-probability the base gives each."""

    seqs: list[tuple[list[int], int]]
    base: list[float]


def drift_reference(ctx: ModelContext) -> DriftReference:
    """Model job: the reference :func:`drift_steps` measures against, made once per loaded
    model (greedy decoding and the base weights make it the same every time)."""
    ref = ctx.memo.get("drift_reference")
    if isinstance(ref, DriftReference):
        return ref
    from runtime.generation import base_replies, chat_prompt
    from sleep.validation_questions import VALIDATION_QUESTIONS

    conversations = [[{"role": "user", "content": v.question}] for v in VALIDATION_QUESTIONS]
    answers = base_replies(ctx, conversations, DRIFT_TOKENS)
    enc = ctx.tokenizer.encode
    seqs = []
    for conversation, answer in zip(conversations, answers, strict=True):
        if answer:
            prompt = enc(chat_prompt(ctx.tokenizer, conversation), add_special_tokens=False)
            seqs.append((prompt + enc(answer, add_special_tokens=False), len(prompt)))
    # scored in the chunks drift_steps scores other weights in, so the base's own drift is 0
    ctx.use_base()
    ref = DriftReference(seqs, sequence_scores(ctx, seqs, batch=STEP_TOKENS // 64))
    ctx.memo["drift_reference"] = ref
    return ref


def drift_steps(ctx: ModelContext, prepare: Callable[[], None] | None = None) -> Steps:
    """Generator job: mean over the reference answers of how much lower their per-token
    log-probability is under the weights ``prepare`` applies than under the base (nats per
    token; 0 for the base itself, NaN when the base answered nothing)."""
    ref = drift_reference(ctx)
    if not ref.seqs:
        return math.nan
    post = yield from sequence_scores_steps(ctx, ref.seqs, prepare)
    return sum(b - p for b, p in zip(ref.base, post, strict=True)) / len(post)


def _mc_pick(items: list[MCItem], owners: list[int], scores: list[float]) -> float:
    best: dict[int, tuple[float, int]] = {}
    idx_in_item: dict[int, int] = {}
    for owner, score in zip(owners, scores, strict=True):
        k = idx_in_item.get(owner, 0)
        idx_in_item[owner] = k + 1
        if owner not in best or score > best[owner][0]:
            best[owner] = (score, k)
    correct = sum(1 for n, item in enumerate(items) if best[n][1] == item.gold)
    return correct / len(items)


def pair_losses_steps(ctx: ModelContext, system_prompt: str, pairs: list[QAPair],
                      prepare: Callable[[], None] | None = None
                      ) -> Generator[int, None, list[float]]:
    """Generator job: each pair's mean per-token answer loss given its question (chat
    format), a few pairs per step (see :func:`runtime.scoring.sequence_scores_steps`)."""
    from sleep.training import build_example

    examples = [build_example(ctx.tokenizer, system_prompt, p, 256) for p in pairs]
    scores = yield from sequence_scores_steps(ctx, [(e.ids, e.prompt_len) for e in examples],
                                              prepare)
    return [-x for x in scores]


def below_base(general_post: float, general_base: float | None, tau_base: float) -> bool:
    """Whether the score is under the floor set by the base model's (never with no floor)."""
    return bool(tau_base) and general_base is not None and general_post < tau_base * general_base


def gate(general_pre: float, general_post: float, tau: float,
         fact_pre: float | None, fact_post: float | None,
         general_base: float | None = None, tau_base: float = 0.0,
         drift: float | None = None, max_drift: float = 0.0) -> GateResult:
    """Accept only when general ability held (against the user's current weights, with
    ``tau_base`` against the base model's, and with ``max_drift`` the drift from the base at
    most that) and (if facts were trained) memory improved."""
    def result(ok: bool, why: str, cause: str = "") -> GateResult:
        return GateResult(ok, general_pre, general_post, fact_pre, fact_post, why, drift, cause)

    if any(v is None or not math.isfinite(v) for v in (general_pre, general_post)):
        return result(False, "general ability could not be scored", "unscored")
    if general_post < tau * general_pre:
        return result(False, f"general ability fell: {general_post:.3f} < {tau} × "
                             f"{general_pre:.3f}", "general")
    if below_base(general_post, general_base, tau_base):
        return result(False, f"general ability fell below the base model's: "
                             f"{general_post:.3f} < {tau_base} × {general_base:.3f}", "general")
    if max_drift:
        if drift is None or not math.isfinite(drift):
            return result(False, "drift from the base model could not be scored", "unscored")
        if drift > max_drift:
            return result(False, f"drifted from the base model: {drift:.4f} > {max_drift} "
                                 f"nats/token on its own answers", "drift")
    if fact_pre is not None:
        if fact_post is None or not (math.isfinite(fact_pre) and math.isfinite(fact_post)):
            return result(False, "fact recall could not be scored", "unscored")
        if fact_post < fact_pre:
            return result(True, "general ability held and facts improved")
        if fact_post <= RECALLED_LOSS:
            return result(True, f"general ability held and facts still recalled (answer loss "
                                f"{fact_post:.3f} ≤ {RECALLED_LOSS})")
        return result(False, f"facts not learned: answer loss {fact_post:.3f} ≥ "
                             f"{fact_pre:.3f}", "facts")
    return result(True, "general ability held")
