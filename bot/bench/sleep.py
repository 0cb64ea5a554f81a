"""``python -m bot bench sleep [--json]``: one whole sleep cycle, and our trainer vs mlx-lm's.

    python -m bot bench sleep [--json] [--iters 16] [--batch B] [--repeats 3] [--turns 10]

Three measurements on the configured model (default: the bundled one):

* **cycle**: a session of ``--turns`` user turns from a shipped fact set is logged into a
  temporary data directory (``ChatService.save``: no generation) and one deep cycle runs with
  every stage; the report gives ``cycle_seconds`` and each stage's seconds (the pipeline
  counts the gate's pre-training scoring in its "training" stage);
* **training**: the session's fact pairs, as training examples (``--iters`` × ``--batch``,
  default the model's ``batch_size``: 4 for the bundled model), are trained for ``--iters``
  steps by our trainer (:func:`sleep.training.train_lora`, with its shared-prefix and
  stored-lower-block paths, compiled where the configuration says) and by
  ``mlx_lm.tuner.trainer.train`` with the same examples, rank, scale, layers, keys, learning
  rate, batch size and iterations, on the same in-memory weights, in this process, on the
  model thread; ``--repeats`` runs of each, alternating, and the median is reported (the
  machine may be shared: alternation spreads load changes over both). Each run is timed
  wall-clock around the whole call (adapter set-up and any compilation included); tokens are
  the examples' unpadded lengths, so ``train_ratio`` = ours / mlx-lm compares like with like;
* **matmul**: the float32 FLOP rate of a square matmul on this machine. Training FLOPs per
  token are estimated as ``2·P_fwd + 4·P_bwd``: the forward pass touches every matmul weight
  (``P_fwd``: all linear layers and the output head; embedding lookups are free); the backward
  pass computes input gradients (2 FLOPs/weight) and LoRA gradients through the adapted
  blocks and the head only (``P_bwd``; frozen weights need no weight gradients, and the
  LoRA factors are negligible). This is the standard computation's count: our trainer skips
  the head on prompt positions, so ``train_matmul_share`` (training FLOP rate over the matmul
  rate) is an effective share. On a GPU the float32 matmul runs on TF32 tensor cores and a
  small model's step waits on kernel launches, so no share is reported there (null).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import statistics
import tempfile
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn

from runtime.config import Config, LoRAConfig, TrainConfig
from runtime.thread import ModelContext, run_to_end
from sleep.training import compiles

log = logging.getLogger(__name__)

USER = "bench"
REPLY = "Thanks, I'll remember that."


class BenchError(ValueError):
    """The benchmark cannot run with these settings (the message says what to change)."""


# -- model-thread jobs ------------------------------------------------------------------------

def matmul_flops(ctx: ModelContext, n: int = 1024, repeats: int = 10) -> float:
    """Model job: float32 FLOP/s of an ``n × n`` matmul (best of ``repeats``)."""
    a = mx.random.normal((n, n), dtype=mx.float32)
    b = mx.random.normal((n, n), dtype=mx.float32)
    mx.eval(a, b, a @ b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        mx.eval(a @ b)
        best = min(best, time.perf_counter() - tic)
    return 2 * n**3 / best


def _linear_size(m: nn.Module) -> int:
    rows, cols = m.weight.shape
    bits = getattr(m, "bits", None)
    return rows * (cols * 32 // bits if bits else cols)


def flops_per_token(ctx: ModelContext, lora: LoRAConfig) -> float:
    """Model job: ``2·P_fwd + 4·P_bwd`` (see the module docstring)."""
    ctx.use_base()
    model = ctx.model
    first = max(0, len(model.layers) - lora.layers)
    p_fwd = p_bwd = 0
    for i, block in enumerate(model.layers):
        for _, m in block.named_modules():
            if isinstance(m, nn.Linear | nn.QuantizedLinear):
                p_fwd += _linear_size(m)
                p_bwd += _linear_size(m) if i >= first else 0
    inner = getattr(model, "model", model)
    head = getattr(model, "lm_head", None)
    head = inner.embed_tokens if head is None else head  # tied: the embedding matrix
    p_fwd += _linear_size(head)
    p_bwd += _linear_size(head)
    return float(2 * p_fwd + 4 * p_bwd)


def ours_train(ctx: ModelContext, examples: list, lora: LoRAConfig, train: TrainConfig
               ) -> dict:
    """Model job: our trainer, run to completion on the base weights; wall-clock timed."""
    from sleep.training import train_lora

    tic = time.perf_counter()
    result = run_to_end(train_lora(ctx, USER + "-ours", None, examples, lora, train))
    seconds = time.perf_counter() - tic
    return {"seconds": seconds, "tokens": result.tokens, "steps": result.steps,
            "loss_first": result.losses[0], "loss_last": result.losses[-1],
            "trainable_params": result.trainable_params}


def mlx_lm_train(ctx: ModelContext, examples: list, lora: LoRAConfig, train: TrainConfig
                 ) -> dict:
    """Model job: ``mlx_lm.tuner.trainer.train`` on the same weights; restores the model after."""
    import mlx.optimizers as optim
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm.tuner.trainer import TrainingArgs
    from mlx_lm.tuner.trainer import train as mlx_train
    from mlx_lm.tuner.utils import linear_to_lora_layers

    from sleep.training import DEFAULT_KEYS, lora_target_paths

    ctx.use_base()
    model = ctx.model
    targets = set(lora_target_paths(model, lora.layers, lora.keys))
    saved = [(p, m) for p, m in model.named_modules() if p in targets]
    dataset = [(list(e.ids), e.prompt_len) for e in examples]
    mx.random.seed(0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tic = time.perf_counter()
            linear_to_lora_layers(model, lora.layers, {
                "rank": lora.rank, "scale": lora.scale, "dropout": lora.dropout,
                "keys": list(lora.keys or DEFAULT_KEYS)})
            params = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
            bs = train.batch_size
            args = TrainingArgs(batch_size=bs, iters=len(dataset) // bs, val_batches=0,
                                steps_per_report=len(dataset) // bs, steps_per_eval=10**9,
                                steps_per_save=10**9, max_seq_length=train.max_seq_len,
                                adapter_file=str(Path(tmp) / "adapters.safetensors"))
            with contextlib.redirect_stdout(io.StringIO()):  # its progress UI, not our JSON
                mlx_train(model, optim.Adam(learning_rate=train.learning_rate), dataset,
                          None, args)
            seconds = time.perf_counter() - tic
    finally:
        model.update_modules(tree_unflatten(saved))  # the base modules back in place
    return {"seconds": seconds, "tokens": sum(len(e.ids) for e in examples),
            "steps": len(dataset) // train.batch_size, "trainable_params": params}


# -- the benchmark ----------------------------------------------------------------------------

def _examples(engine, turns: list[str], n: int) -> list:
    """The cycle's fact pairs as training examples, cycled to ``n`` (one step each)."""
    from sleep.extraction.formation import extract_turns
    from sleep.training import build_example

    cfg = engine.cfg
    pairs = extract_turns([(t, [i], None) for i, t in enumerate(turns, 1)],
                          cfg.sleep.phrasings_per_fact).pairs
    if not pairs:
        raise BenchError("the session has no facts to train on: give more --turns")
    tok = engine.runtime.loaded.tokenizer
    examples = [build_example(tok, cfg.chat.system_prompt, p, cfg.sleep.train.max_seq_len)
                for p in pairs]
    return [examples[i % len(examples)] for i in range(n)]


async def _train_rates(rt, examples: list, lora: LoRAConfig, train: TrainConfig,
                       repeats: int) -> tuple[list[dict], list[dict]]:
    """Both trainers, interleaved ``repeats`` times (a shared machine's load shifts between
    runs; alternating spreads it evenly), after one short untimed warm-up each."""
    warm = examples[: max(4, train.batch_size)]  # first calls allocate buffers
    await rt.run(ours_train, warm, lora, train)
    await rt.run(mlx_lm_train, warm, lora, train)
    ours, plain = [], []
    for _ in range(repeats):
        ours.append(await rt.run(ours_train, examples, lora, train))
        plain.append(await rt.run(mlx_lm_train, examples, lora, train))
    return ours, plain


def _rate(run: dict) -> float:
    return run["tokens"] / run["seconds"]


async def _bench(cfg: Config, turns: list[str], iters: int, repeats: int,
                 matmul_size: int, batch: int) -> dict:
    from bot.engine import open_engine
    from bot.wake import ChatService
    from sleep.pipeline import run_cycle

    async with open_engine(cfg) as engine:
        chat = ChatService(engine)
        session = (await chat.conversation(USER)).session_id
        for text in turns:
            await chat.save(USER, text, REPLY, session, "ingest")
        report = await run_cycle(engine.cycle_context(USER), "deep")
        examples = _examples(engine, turns, iters * batch)
        train = dataclasses.replace(cfg.sleep.train, batch_size=batch, epochs=1)
        lora, rt = cfg.sleep.lora, engine.runtime
        ours, plain = await _train_rates(rt, examples, lora, train, repeats)
        flops = await rt.run(matmul_flops, matmul_size)
        per_token = await rt.run(flops_per_token, lora)
        compute = rt.loaded.compute
        device = rt.ctx.device
    ours_tps = statistics.median(_rate(r) for r in ours)
    plain_tps = statistics.median(_rate(r) for r in plain)
    # On a GPU a float32 matmul runs on TF32 tensor cores at hundreds of TFLOP/s while a small
    # model's step is bound by kernel launches: that share would say nothing, so it is left out
    share = ours_tps * per_token / flops if device == "cpu" else None
    return {
        "model": cfg.model, "device": device, "compute": compute, "turns": len(turns),
        "batch_size": batch, "train_compiled": compiles(train, device),
        "cycle_status": report.status, "cycle_seconds": report.seconds,
        "cycle_examples": report.examples, "facts": len(report.facts),
        "stage_seconds": {k: v.get("seconds", 0.0) for k, v in report.stages.items()},
        "iters": iters, "repeats": repeats, "train_tokens": ours[0]["tokens"],
        "train_tokens_per_s": ours_tps, "mlx_lm_tokens_per_s": plain_tps,
        "train_ratio": ours_tps / plain_tps,
        "train_tokens_per_s_runs": [round(_rate(r), 2) for r in ours],
        "mlx_lm_tokens_per_s_runs": [round(_rate(r), 2) for r in plain],
        "trainable_params": ours[0]["trainable_params"],
        "mlx_lm_trainable_params": plain[0]["trainable_params"],
        "train_loss_first": ours[0]["loss_first"], "train_loss_last": ours[0]["loss_last"],
        "matmul_size": matmul_size, "matmul_gflops": flops / 1e9,
        "matmul_kind": "float32" if device == "cpu" else "float32 (TF32 on CUDA)",
        "train_flops_per_token": per_token,
        "train_gflops": ours_tps * per_token / 1e9,
        "train_matmul_share": share,
    }


def run_sleep_bench(cfg: Config, iters: int = 16, turns: int = 10,
                    factset: str = "persona_maya", matmul_size: int = 1024,
                    repeats: int = 3, batch: int | None = None) -> dict:
    """Run the benchmark in a temporary data directory; returns one flat dict."""
    from memory.paths import models_dir
    from runtime.models import resolve_model
    from sleep.factsets import bundled_factset

    session = bundled_factset(factset).user_turns[:turns]
    model_path = resolve_model(cfg.model, models_dir(cfg.data_dir))  # import once, not per run
    with tempfile.TemporaryDirectory(prefix="sleepbot-bench-") as tmp:
        bench_cfg = dataclasses.replace(cfg, data_dir=Path(tmp), model=str(model_path))
        batch = batch or cfg.sleep.train.batch_size
        result = asyncio.run(_bench(bench_cfg, session, iters, repeats, matmul_size, batch))
    result["model"] = cfg.model
    return result


def format_table(r: dict) -> str:
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in r["stage_seconds"].items())
    return "\n".join([
        f"model {r['model']} ({r['compute']}), {r['turns']} turns, {r['facts']} facts, "
        f"{r['cycle_examples']} examples",
        f"cycle: {r['cycle_status']} in {r['cycle_seconds']:.1f}s ({stages})",
        f"training, {r['iters']} steps of batch {r['batch_size']} ({r['train_tokens']} tokens"
        f"{', compiled' if r['train_compiled'] else ''}), median of "
        f"{r['repeats']} interleaved runs:",
        f"  ours    {r['train_tokens_per_s']:8.1f} tok/s  {r['train_tokens_per_s_runs']}",
        f"  mlx-lm  {r['mlx_lm_tokens_per_s']:8.1f} tok/s  {r['mlx_lm_tokens_per_s_runs']}",
        f"  ratio ours/mlx-lm {r['train_ratio']:.2f}",
        f"matmul {r['matmul_size']}² {r['matmul_kind']}: {r['matmul_gflops']:.1f} GFLOP/s; "
        f"training reaches {r['train_gflops']:.1f} GFLOP/s"
        + (f" ({100 * r['train_matmul_share']:.0f}%)" if r["train_matmul_share"] is not None
           else " (launch-bound on the GPU: no share of the matmul rate)"),
    ])
