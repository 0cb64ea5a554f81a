"""Log-likelihood scoring on the model thread, shared by curation, training and validation.

* :func:`head_split` splits an mlx-lm model into ``(body, head)``, so positions that are not
  scored can skip the output head;
* :class:`SharedPrefixKV` lets rows that start with the same tokens (the system prompt, a
  multiple-choice question) run that prefix once; :class:`GroupedPrefixKV` does it for
  several prefixes side by side;
* :func:`sequence_scores` / :func:`sequence_scores_steps` give the mean log-probability of
  each sequence's tokens from a start index on, in chunks of about ``STEP_TOKENS`` tokens, so
  a scoring job yields to chat between chunks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator

import mlx.core as mx
import mlx.nn as nn

from runtime.generation import common_prefix_len
from runtime.thread import ModelContext, run_to_end

STEP_TOKENS = 256  # padded tokens per step of a stepped scoring job: about one training step
MIN_SHARED = 8  # shortest common prefix worth running once for a chunk's rows
MAX_PADDING = 1.25  # no new group joins a chunk when padding would add more than a quarter


def head_split(model: nn.Module):
    """``(body, head)`` with ``model(x) == head(body(x))`` for mlx-lm's usual layout, or None."""
    body = getattr(model, "model", None)
    if body is None:
        return None
    head = getattr(model, "lm_head", None)
    if head is None:  # tied embeddings
        emb = getattr(body, "embed_tokens", None)
        head = getattr(emb, "as_linear", None)
    return (body, head) if head is not None else None


class SharedPrefixKV:
    """A layer's KV cache for training on rows that share a token prefix.

    Every training sequence starts with the same system prompt (about 40 of its ~70 tokens
    for the bundled model): the first call records the prefix's keys and values for one row,
    later calls put them, broadcast to the batch, in front of each row's own. The gradient
    flows through the prefix once per step instead of once per row.
    """

    def __init__(self) -> None:
        self.keys: mx.array | None = None
        self.values: mx.array | None = None
        self.offset = 0  # read by the model for RoPE before update_and_fetch

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None:
            self.keys, self.values, self.offset = keys, values, keys.shape[2]
            return keys, values
        k, v = self._prefix_for(keys.shape[0])
        return mx.concatenate([k, keys], axis=2), mx.concatenate([v, values], axis=2)

    def _prefix_for(self, rows: int) -> tuple[mx.array, mx.array]:
        """The prefix's keys and values in front of each of ``rows`` rows."""
        return (mx.broadcast_to(self.keys, (rows, *self.keys.shape[1:])),
                mx.broadcast_to(self.values, (rows, *self.values.shape[1:])))

    def make_mask(self, n: int, window_size: int | None = None, return_array: bool = False):
        from mlx_lm.models.base import create_causal_mask

        if self.offset == 0 and not return_array and window_size is None:
            return "causal" if n > 1 else None
        return create_causal_mask(n, self.offset, window_size=window_size)


def sequence_scores(ctx: ModelContext, seqs: list[tuple[list[int], int]], batch: int = 16
                     ) -> list[float]:
    """Mean log-prob of each sequence's tokens from index ``start`` on (in one go: the
    stepped form below, run to the end with larger chunks)."""
    return run_to_end(sequence_scores_steps(ctx, seqs, tokens=batch * 64))


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
    split = head_split(ctx.model)
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
    """Generator job form of :func:`sequence_scores`: about ``tokens`` (padded) per
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
