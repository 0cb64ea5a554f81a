"""Stage 6: validation. Score the user's weights before and after training; gate promotion.

Two gates, both fail closed (a gate that cannot score rejects):

* **general ability**: multiple-choice accuracy on a fixed question set, by log-likelihood of
  each choice (mean per token); accept only if ``post >= tau * pre`` (the paper's rule).
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

import mlx.core as mx

from bot.generation import common_prefix_len
from bot.runtime import ModelContext
from sleep.training import SharedPrefixKV
from sleep.types import QAPair

STEP_TOKENS = 256  # padded tokens per step of a stepped scoring job: about one training step
MIN_SHARED = 8  # shortest common prefix worth running once for a chunk's rows
MAX_PADDING = 1.25  # no new group joins a chunk when padding would add more than a quarter
# mean answer loss (nats/token) of facts the model already reproduces word for word (token
# probability ~0.9): a replay-only cycle cannot lower it much, and only has to keep it there
RECALLED_LOSS = 0.1
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


Group = tuple[int, int]  # (rows, prefix tokens they share)


def _chunk(seqs: list[tuple[list[int], int]], i: int, tokens: int, cap: int = 32
           ) -> list[Group]:
    """The next chunk from ``i``: consecutive groups of sequences sharing a prefix, as many as
    fit in about ``tokens`` computed tokens (each prefix once, plus every row's own part).

    The choices of one multiple-choice item share its question, and answer-loss sequences
    share the system prompt: each group's prefix runs once (see :func:`_chunk_scores`), and
    several groups (items) run side by side, so the matrix products are not tiny.
    """
    groups: list[list] = []  # [rows, shared, first sequence's ids, widest row]
    n = real = 0  # sequences taken; tokens they need without padding
    while i + n < len(seqs) and n < cap:
        ids, start = seqs[i + n]
        trial = [g[:] for g in groups]
        last = trial[-1] if trial else None
        q = min(last[1], common_prefix_len([last[2], ids]), start - 1) if last else 0
        if last is not None and q >= MIN_SHARED:
            widest = max(last[3] + last[1] - q, len(ids) - q)  # its rows grow by the shrink
            last[:] = [last[0] + 1, q, last[2], widest]
        else:
            shared = max(start - 1, 0)
            trial.append([1, shared, ids, len(ids) - shared])
        cost = len(trial) * max(g[1] for g in trial) + (n + 1) * max(g[3] for g in trial)
        opens = len(trial) > len(groups)  # padding may end a chunk only between groups
        real += len(ids) - (0 if opens else q)
        if n and (cost > tokens or (opens and cost > MAX_PADDING * real)):
            break
        groups, n = trial, n + 1
    return [(rows, shared) for rows, shared, _, _ in groups]


class GroupedPrefixKV(SharedPrefixKV):
    """A layer's KV cache for scoring rows that each continue one of several prefixes.

    The first call runs the prefixes, left-padded to one length (pads masked out; RoPE is
    relative, so the padding shifts nothing); later calls put each row's prefix keys and
    values, picked by ``owner``, in front of the row's own.
    """

    def __init__(self, pads: list[int], owners: list[int]) -> None:
        super().__init__()
        self.pads, self.owners = mx.array(pads), mx.array(owners)

    def _prefix_for(self, rows: int) -> tuple[mx.array, mx.array]:
        return self.keys[self.owners], self.values[self.owners]

    def make_mask(self, n: int, window_size: int | None = None, return_array: bool = False):
        q = mx.arange(n)[:, None]
        causal = mx.arange(n)[None] <= q
        if self.keys is None:  # prefixes: causal, no pads (a pad attends to itself: no NaN)
            k = mx.arange(n)[None]
            real = k >= self.pads[:, None, None]
            return ((causal & real) | (k == q))[:, None]
        prefix = mx.arange(self.offset)[None, None] >= self.pads[self.owners][:, None, None]
        rows = self.owners.shape[0]
        return mx.concatenate([mx.broadcast_to(prefix, (rows, n, self.offset)),
                               mx.broadcast_to(causal, (rows, n, n))], axis=-1)[:, None]


def _chunk_scores(ctx: ModelContext, chunk: list[tuple[list[int], int]], groups: list[Group]
                  ) -> list[float]:
    """Mean log-prob per sequence of ``chunk``; each group's prefix runs once and its rows
    attend to its keys and values (:class:`GroupedPrefixKV`)."""
    from sleep.training import _head_split

    split = _head_split(ctx.model)
    width = max(shared for _, shared in groups)
    if split is None or width == 0:
        groups = [(len(chunk), 0)]
    skips = [shared for rows, shared in groups for _ in range(rows)]
    rows = [ids[skip:] for (ids, _), skip in zip(chunk, skips, strict=True)]
    longest = max(len(r) for r in rows)
    arr = mx.array([r + [0] * (longest - len(r)) for r in rows])
    if split is None or width == 0:
        logits = ctx.model(arr[:, :-1]).astype(mx.float32)
    else:
        body, head = split
        firsts = [sum(r for r, _ in groups[:g]) for g in range(len(groups))]
        prefixes = [[0] * (width - shared) + chunk[f][0][:shared]
                    for f, (_, shared) in zip(firsts, groups, strict=True)]
        owners = [g for g, (r, _) in enumerate(groups) for _ in range(r)]
        caches = [GroupedPrefixKV([width - shared for _, shared in groups], owners)
                  for _ in body.layers]
        body(mx.array(prefixes), cache=caches)
        logits = head(body(arr[:, :-1], cache=caches)).astype(mx.float32)
    logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
    tok_lp = mx.take_along_axis(logp, arr[:, 1:, None], axis=-1)[..., 0]
    # row position t predicts token skip + t + 1 of its sequence
    mask = mx.array([[1.0 if start - 1 <= skip + t < len(ids) - 1 else 0.0
                      for t in range(longest - 1)]
                     for (ids, start), skip in zip(chunk, skips, strict=True)])
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
    order = _by_length(seqs)
    ordered = [seqs[k] for k in order]
    scores: list[float] = [math.nan] * len(seqs)
    i = 0
    while i < len(ordered):
        groups = _chunk(ordered, i, tokens)
        n = sum(rows for rows, _ in groups)
        if prepare is not None:
            prepare()
        for k, score in zip(order[i : i + n], _chunk_scores(ctx, ordered[i : i + n], groups),
                            strict=True):
            scores[k] = score
        i += n
        yield i
    return scores


def _by_length(seqs: list[tuple[list[int], int]]) -> list[int]:
    """An order of ``seqs`` that keeps each run sharing a prefix together and puts runs of
    similar lengths side by side, so a chunk pads little."""
    runs: list[list[int]] = []
    for k, (ids, start) in enumerate(seqs):
        if runs and min(common_prefix_len([seqs[runs[-1][0]][0], ids]), start - 1) >= MIN_SHARED:
            runs[-1].append(k)
        else:
            runs.append([k])
    runs.sort(key=lambda r: (seqs[r[0]][1], max(len(seqs[k][0]) for k in r)))
    return [k for run in runs for k in run]


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
        if fact_post < fact_pre:
            return result(True, "general ability held and facts improved")
        if fact_post <= RECALLED_LOSS:
            return result(True, f"general ability held and facts still recalled (answer loss "
                                f"{fact_post:.3f} ≤ {RECALLED_LOSS})")
        return result(False, f"facts not learned: answer loss {fact_post:.3f} ≥ "
                             f"{fact_pre:.3f}")
    return result(True, "general ability held")
