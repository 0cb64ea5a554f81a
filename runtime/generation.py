"""Model-thread jobs for text: chat-template prompts, streamed generation, log-likelihoods.

Every function here takes a :class:`runtime.thread.ModelContext` first and runs on the model
thread (submit it through :class:`runtime.thread.ModelRuntime`); none is called from async code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

from runtime.thread import ModelContext, run_to_end


@dataclass
class GenStats:
    text: str
    prompt_tokens: int
    generation_tokens: int
    prompt_tps: float
    generation_tps: float
    peak_memory_gb: float
    checkpoint: str | None


def chat_prompt(tokenizer, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """The model's chat template applied to ``messages`` (role/content dicts)."""
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=False
    )


_SENTINEL = "SLEEPBOTTURNTEXT"


def turn_prefix(tokenizer, role: str = "user") -> str:
    """What the chat template puts before the text of a lone ``role`` turn (any default
    system turn the template adds included), e.g. ``<|im_start|>user\n`` for ChatML or
    ``...<|start_header_id|>user<|end_header_id|>\n\n`` for Llama 3."""
    text = chat_prompt(tokenizer, [{"role": role, "content": _SENTINEL}], False)
    if _SENTINEL not in text:
        raise ValueError("the chat template drops the message text")
    return text.split(_SENTINEL, 1)[0]


def make_sampler(temperature: float):
    from mlx_lm.sample_utils import make_sampler as _make

    return _make(temp=temperature)


# A greedy small model can fall into a loop ("She's a very special person." to the last of 256
# tokens). A block of tokens repeated back to back is cut there: 2 copies of a block of at least
# LOOP_LONG tokens, 3 of a shorter one (down to LOOP_MIN; shorter repeats can be words), at most
# LOOP_MAX tokens. The text is held back LOOP_HOLD tokens so a cut copy is never shown.
LOOP_MIN, LOOP_LONG, LOOP_MAX, LOOP_HOLD = 3, 8, 64, 24
SENTENCE_ENDS = (".", "!", "?", "…", "。", "！", "？")


def loop_period(ids: list[int]) -> int:
    """The period of a loop at the end of ``ids``, 0 if there is none.

    A loop is ``ids`` ending in 2 back-to-back copies of a block of ``LOOP_LONG``..``LOOP_MAX``
    tokens, or 3 copies of a block of ``LOOP_MIN``..``LOOP_LONG - 1``.
    """
    n, last = len(ids), ids[-1] if ids else None
    for p in range(LOOP_MIN, min(LOOP_MAX, n // 2) + 1):
        if ids[-1 - p] != last or ids[-p:] != ids[-2 * p:-p]:
            continue
        if p >= LOOP_LONG or (n >= 3 * p and ids[-3 * p:-2 * p] == ids[-p:]):
            return p
    return 0


def loop_keep(ids: list[int], period: int, ends_sentence: Callable[[int], bool]) -> int:
    """How many tokens of ``ids`` to keep when it ends in a loop of ``period`` tokens.

    The tail that repeats with that period begins at ``s``; whatever follows one whole period
    of it is repetition. The cut goes at the first sentence end (a token for which
    ``ends_sentence`` holds) from there on, so the reply keeps one copy and does not stop
    mid-sentence; without one, right after the first period.
    """
    s = len(ids) - period
    while s > 0 and ids[s - 1] == ids[s - 1 + period]:
        s -= 1
    for keep in range(s + period, min(s + 2 * period, len(ids) + 1)):
        if ends_sentence(ids[keep - 1]):
            return keep
    return s + period


def sentence_ends(tokenizer) -> Callable[[int], bool]:
    """Whether a token ends a sentence (its text ends in . ! ? …), remembered per token."""
    ends: dict[int, bool] = {}

    def ends_sentence(token: int) -> bool:
        if token not in ends:
            ends[token] = tokenizer.decode([token]).rstrip().endswith(SENTENCE_ENDS)
        return ends[token]

    return ends_sentence


def cut_at_loop(ids: list[int], ends_sentence: Callable[[int], bool]) -> int:
    """How many of ``ids`` a reply decoded token by token keeps: all, or up to the cut of
    the first loop (:func:`loop_period`, :func:`loop_keep`) that appears as it grows."""
    for n in range(2 * LOOP_MIN, len(ids) + 1):
        period = loop_period(ids[:n])
        if period:
            return loop_keep(ids[:n], period, ends_sentence)
    return len(ids)


def stream_reply(
    ctx: ModelContext,
    user_id: str | None,
    checkpoint: Path | None,
    messages: list[dict],
    max_tokens: int,
    temperature: float = 0.0,
    stop_loops: bool = True,
) -> Iterator[str]:
    """Generator job: yields text segments of the reply; returns :class:`GenStats`.

    With ``stop_loops`` a reply that falls into a loop (:func:`loop_period`) ends with the
    loop's first copy (:func:`loop_keep`); the segments then trail the model by ``LOOP_HOLD``
    tokens, so the copies cut were never yielded.
    """
    from mlx_lm import stream_generate

    if user_id is None:
        ctx.use_base()
    else:
        ctx.use_user(user_id, checkpoint)
    prompt = chat_prompt(ctx.tokenizer, messages)
    text: list[str] = []
    ids: list[int] = []
    ends_sentence = sentence_ends(ctx.tokenizer)
    held: list[str] = []  # the segments of the last tokens, not yet yielded
    hold = LOOP_HOLD if stop_loops else 0
    last = None
    for last in stream_generate(
        ctx.model, ctx.tokenizer, prompt, max_tokens=max_tokens,
        sampler=make_sampler(temperature),
    ):
        ids.append(last.token)
        held.append(last.text)
        period = loop_period(ids) if stop_loops else 0
        if period:
            # Stop here; cut the repeats when none of them has been shown. Segments trail the
            # tokens (a word is written when the next one starts), so decode what stays.
            keep = loop_keep(ids, period, ends_sentence)
            kept, shown = ctx.tokenizer.decode(ids[:keep]), "".join(text)
            if len(ids) - keep <= len(held) and kept.startswith(shown):
                held = [kept[len(shown):]]
            break
        if len(held) > hold:
            piece = held.pop(0)
            if piece:
                text.append(piece)
                yield piece
    for piece in held:
        if piece:
            text.append(piece)
            yield piece
    return GenStats(
        text="".join(text),
        prompt_tokens=last.prompt_tokens if last else 0,
        generation_tokens=last.generation_tokens if last else 0,
        prompt_tps=last.prompt_tps if last else 0.0,
        generation_tps=last.generation_tps if last else 0.0,
        peak_memory_gb=last.peak_memory if last else 0.0,
        checkpoint=ctx.active_checkpoint,
    )


def complete(ctx: ModelContext, user_id: str | None, checkpoint: Path | None,
             messages: list[dict], max_tokens: int, temperature: float = 0.0,
             stop_loops: bool = True) -> GenStats:
    """Run :func:`stream_reply` to the end (a plain job, not streamed)."""
    return run_to_end(stream_reply(ctx, user_id, checkpoint, messages, max_tokens, temperature,
                                   stop_loops))


def complete_batch(ctx: ModelContext, user_id: str | None, checkpoint: Path | None,
                   conversations: list[list[dict]], max_tokens: int) -> list[str]:
    """Greedy replies to many independent conversations at once (mlx-lm's batch decoding),
    each cut at its first loop as :func:`stream_reply` cuts it.

    Decoding a batch turns the per-token matrix-vector products into matrix products, which
    is several times faster on the CPU than answering one question after another. The start
    the prompts share (system prompt, a whole conversation) is run through the model once.
    """
    from mlx_lm.generate import batch_generate

    if user_id is None:
        ctx.use_base()
    else:
        ctx.use_user(user_id, checkpoint)
    if not conversations:
        return []
    prompts = [ctx.tokenizer.encode(chat_prompt(ctx.tokenizer, m), add_special_tokens=False)
               for m in conversations]
    shared = shared_prefix_len(prompts)
    caches = None
    if len(prompts) > 1 and shared >= MIN_SHARED_PREFILL:
        caches = [prefill(ctx.model, prompts[0][:shared])] * len(prompts)  # merged, not mutated
        prompts = [p[shared:] for p in prompts]
    out = batch_generate(ctx.model, ctx.tokenizer, prompts, prompt_caches=caches,
                         max_tokens=max_tokens, return_token_ids=True)
    ends_sentence = sentence_ends(ctx.tokenizer)
    texts = []
    for text, ids in zip(out.texts, out.token_ids, strict=True):
        keep = cut_at_loop(ids, ends_sentence)  # the same cut as a reply streamed alone
        texts.append((text if keep == len(ids) else ctx.tokenizer.decode(ids[:keep])).strip())
    return texts


def base_replies(ctx: ModelContext, conversations: list[list[dict]], max_tokens: int
                 ) -> list[str]:
    """The base model's greedy replies (:func:`complete_batch`), each made once per loaded
    model and kept in ``ctx.memo``: greedy decoding would give the same reply again. What
    later jobs compare other weights with, or train them to keep."""
    memo = ctx.memo.setdefault("base replies", {})
    keys = [(json.dumps(c, sort_keys=True), max_tokens) for c in conversations]
    todo = {k: c for k, c in zip(keys, conversations, strict=True) if k not in memo}
    if todo:
        memo.update(zip(todo, complete_batch(ctx, None, None, list(todo.values()), max_tokens),
                        strict=True))
    return [memo[k] for k in keys]


MIN_SHARED_PREFILL = 16  # below this, one more prefill call costs more than it saves


def common_prefix_len(seqs: list[list[int]], limit: int | None = None) -> int:
    """Tokens all of ``seqs`` start with, at most ``limit`` (0 when none, or no sequence)."""
    if not seqs:
        return 0
    n = min(len(s) for s in seqs) if limit is None else min(limit, *(len(s) for s in seqs))
    first = seqs[0]
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def shared_prefix_len(prompts: list[list[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one token of its own."""
    if not prompts:
        return 0
    return common_prefix_len(prompts, min(len(p) for p in prompts) - 1)


def prefill(model: nn.Module, tokens: list[int]) -> list:
    """A KV cache holding ``tokens`` (the common start of a batch's prompts, run once)."""
    from mlx_lm.models.cache import make_prompt_cache

    cache = make_prompt_cache(model)
    model(mx.array(tokens)[None], cache=cache)
    mx.eval([c.state for c in cache])
    return cache
