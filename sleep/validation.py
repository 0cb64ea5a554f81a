"""Stage 6: validation. Score the user's weights before and after training; gate promotion.

Two gates, both fail closed (a gate that cannot score rejects):

* **general ability**: multiple-choice accuracy on a fixed question set, by log-likelihood of
  each choice (mean per token); accept only if ``post >= tau * pre`` (the paper's rule).
* **memory** (the paper had none): the cycle's new facts must be better recalled than before,
  measured as the mean answer loss of one question per fact: ``post < pre``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx

from bot.runtime import ModelContext
from sleep.types import QAPair

STEP_TOKENS = 256  # padded tokens per step of a stepped scoring job: about one training step
MIN_SHARED = 8  # shortest common prefix worth running once for a chunk's rows
Steps = Generator[int, None, float]


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
            item = MCItem(str(row["query"]), [str(c) for c in row["choices"]], int(row["gold"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MCFileError(f"{path}:{n}: expected query/choices/gold ({exc})") from exc
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


def _sequence_scores(ctx: ModelContext, seqs: list[tuple[list[int], int]], batch: int = 16
                     ) -> list[float]:
    """Mean log-prob of each sequence's tokens from index ``start`` on (in one go: the
    stepped form below, run to the end with larger chunks)."""
    steps = sequence_scores_steps(ctx, seqs, tokens=batch * 64)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k


def _chunk(seqs: list[tuple[list[int], int]], i: int, tokens: int, cap: int = 16
           ) -> tuple[int, int]:
    """``(n, shared)``: the next chunk from ``i`` within ``tokens`` padded tokens per row
    computed, and the token prefix its rows share (0: none worth sharing).

    The choices of one multiple-choice item share its question, and answer-loss sequences
    share the system prompt: the shared part runs once (see :func:`_chunk_scores`).
    """
    first, start = seqs[i]
    n, shared, width = 1, start - 1, len(first)
    while i + n < len(seqs) and n < cap:
        ids, s = seqs[i + n]
        q = min(shared, _common(first, ids), s - 1)
        w = max(width, len(ids))
        if n > 1 and (q >= MIN_SHARED) != (shared >= MIN_SHARED):
            break  # a chunk keeps the mode its first two rows set
        if (w - q if q >= MIN_SHARED else w) * (n + 1) > tokens:
            break
        n, shared, width = n + 1, q, w
    return n, (shared if n > 1 and shared >= MIN_SHARED else 0)


def _chunk_scores(ctx: ModelContext, chunk: list[tuple[list[int], int]], shared: int
                  ) -> list[float]:
    """Mean log-prob per sequence; with ``shared`` > 0 the common prefix runs once and the
    rows attend to its keys and values (:class:`sleep.training.SharedPrefixKV`)."""
    from sleep.training import SharedPrefixKV, _head_split

    split = _head_split(ctx.model) if shared else None
    rows = [ids[shared:] if split else ids for ids, _ in chunk]
    skip = shared if split else 0
    width = max(len(r) for r in rows)
    arr = mx.array([r + [0] * (width - len(r)) for r in rows])
    if split:
        body, head = split
        caches = [SharedPrefixKV() for _ in body.layers]
        body(mx.array([chunk[0][0][:skip]]), cache=caches)
        logits = head(body(arr[:, :-1], cache=caches)).astype(mx.float32)
    else:
        logits = ctx.model(arr[:, :-1]).astype(mx.float32)
    logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    tok_lp = mx.take_along_axis(logp, arr[:, 1:, None], axis=-1)[..., 0]
    # row position t predicts token skip + t + 1 of its sequence
    mask = mx.array([[1.0 if start - 1 <= skip + t < len(ids) - 1 else 0.0
                      for t in range(width - 1)] for ids, start in chunk])
    means = (tok_lp * mask).sum(axis=1) / mx.maximum(mask.sum(axis=1), 1)
    return means.tolist()


def sequence_scores_steps(ctx: ModelContext, seqs: list[tuple[list[int], int]],
                          prepare: Callable[[], None] | None = None,
                          tokens: int = STEP_TOKENS) -> Generator[int, None, list[float]]:
    """Generator job form of :func:`_sequence_scores`: about ``tokens`` (padded) per
    ``next()`` (at least one sequence), so a chat job never waits long behind a step.

    Chat jobs run between the steps and may swap in another user's weights, so ``prepare``
    re-applies the weights being scored before every batch.
    """
    scores: list[float] = []
    i = 0
    while i < len(seqs):
        n, shared = _chunk(seqs, i, tokens)
        if prepare is not None:
            prepare()
        scores += _chunk_scores(ctx, seqs[i : i + n], shared)
        i += n
        yield i
    return scores


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
    return _mc_pick(items, owners, _sequence_scores(ctx, seqs))


def mc_accuracy_steps(ctx: ModelContext, items: list[MCItem],
                      prepare: Callable[[], None] | None = None) -> Steps:
    """Generator job form of :func:`mc_accuracy` (see :func:`sequence_scores_steps`)."""
    seqs, owners = _mc_sequences(ctx, items)
    scores = yield from sequence_scores_steps(ctx, seqs, prepare)
    return _mc_pick(items, owners, scores)


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


def answer_loss(ctx: ModelContext, system_prompt: str, pairs: list[QAPair]) -> float:
    """Mean per-token loss of each pair's answer given its question (chat format)."""
    from sleep.training import build_example

    if not pairs:
        return math.nan
    examples = [build_example(ctx.tokenizer, system_prompt, p, 256) for p in pairs]
    scores = _sequence_scores(ctx, [(e.ids, e.prompt_len) for e in examples])
    return -sum(scores) / len(scores)


def answer_loss_steps(ctx: ModelContext, system_prompt: str, pairs: list[QAPair],
                      prepare: Callable[[], None] | None = None) -> Steps:
    """Generator job form of :func:`answer_loss` (see :func:`sequence_scores_steps`)."""
    from sleep.training import build_example

    if not pairs:
        return math.nan
    examples = [build_example(ctx.tokenizer, system_prompt, p, 256) for p in pairs]
    scores = yield from sequence_scores_steps(ctx, [(e.ids, e.prompt_len) for e in examples],
                                              prepare)
    return -sum(scores) / len(scores)


def gate(general_pre: float, general_post: float, tau: float,
         fact_pre: float | None, fact_post: float | None) -> GateResult:
    """Accept only when general ability held and (if facts were trained) memory improved."""
    def result(ok: bool, why: str) -> GateResult:
        return GateResult(ok, general_pre, general_post, fact_pre, fact_post, why)

    if any(v is None or not math.isfinite(v) for v in (general_pre, general_post)):
        return result(False, "general ability could not be scored")
    if general_post < tau * general_pre:
        return result(False, f"general ability fell: {general_post:.3f} < {tau} × "
                             f"{general_pre:.3f}")
    if fact_pre is not None:
        if fact_post is None or not (math.isfinite(fact_pre) and math.isfinite(fact_post)):
            return result(False, "fact recall could not be scored")
        if not fact_post < fact_pre:
            return result(False, f"facts not learned: answer loss {fact_post:.3f} ≥ "
                                 f"{fact_pre:.3f}")
    return result(True, "general ability held" + (" and facts improved" if fact_pre else ""))
