"""Model-thread jobs for text: chat-template prompts, streamed generation, log-likelihoods.

Every function here takes a :class:`runtime.thread.ModelContext` first and runs on the model
thread (submit it through :class:`runtime.thread.ModelRuntime`); none is called from async code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

from runtime.thread import ModelContext


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


def stream_reply(
    ctx: ModelContext,
    user_id: str | None,
    checkpoint: Path | None,
    messages: list[dict],
    max_tokens: int,
    temperature: float = 0.0,
) -> Iterator[str]:
    """Generator job: yields text segments of the reply; returns :class:`GenStats`."""
    from mlx_lm import stream_generate

    if user_id is None:
        ctx.use_base()
    else:
        ctx.use_user(user_id, checkpoint)
    prompt = chat_prompt(ctx.tokenizer, messages)
    text, last = [], None
    for last in stream_generate(
        ctx.model, ctx.tokenizer, prompt, max_tokens=max_tokens,
        sampler=make_sampler(temperature),
    ):
        if last.text:
            text.append(last.text)
            yield last.text
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
             messages: list[dict], max_tokens: int, temperature: float = 0.0) -> GenStats:
    """Run :func:`stream_reply` to the end (a plain job, not streamed)."""
    gen = stream_reply(ctx, user_id, checkpoint, messages, max_tokens, temperature)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def complete_batch(ctx: ModelContext, user_id: str | None, checkpoint: Path | None,
                   conversations: list[list[dict]], max_tokens: int) -> list[str]:
    """Greedy replies to many independent conversations at once (mlx-lm's batch decoding).

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
    return [t.strip() for t in batch_generate(ctx.model, ctx.tokenizer, prompts,
                                              prompt_caches=caches, max_tokens=max_tokens).texts]


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
