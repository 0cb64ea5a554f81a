"""The compiled training step (sleep/training.py ``make_step``; on by default on CUDA only)
trains like the plain one, also when other weights are swapped in between its steps.

    .venv/bin/python -m pytest -q tests/test_train_compile.py
"""

from __future__ import annotations

import mlx.core as mx
import pytest

from runtime.config import LoRAConfig, TrainConfig
from sleep.training import (
    TrainExample,
    _batch,
    build_example,
    compiles,
    learning_rate,
    make_optimizer,
    step_width,
    train_lora,
)
from sleep.types import QAPair

SYSTEM = "You are a test assistant."
PAIRS = [
    QAPair("Where do I live?", "You live in Lisbon."),
    QAPair("What is my dog's name?", "Your dog is called Biscuit."),
    QAPair("What instrument do I play?", "You play the cello."),
    QAPair("Which city was I born in, and in what year?", "You were born in Porto in 1990."),
    QAPair("Who is Mia?", "Mia is your sister."),
]


def _run(ctx, examples, lora, train, swap: bool):
    """Drive the generator job here on the model thread; with ``swap``, the base weights go
    back in between steps (as a chat job for another user would do)."""
    gen = train_lora(ctx, "c", None, examples, lora, train)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
        if swap:
            ctx.use_base()


@pytest.mark.parametrize(("layers", "lr_schedule", "ratio"), [
    (2, "constant", 1), (4, "constant", 1), (2, "cosine", 1), (2, "cosine", 8)])
def test_compiled_step_trains_like_the_plain_one(tiny_runtime, layers, lr_schedule, ratio):
    """4 layers: every block trained, no stored lower blocks; cosine: the rate changes each
    step inside the compiled function's optimizer state; ratio 8: two optimizers (LoRA+)."""
    tok = tiny_runtime.loaded.tokenizer
    examples = [build_example(tok, SYSTEM, p, 256) for p in PAIRS]
    lora = LoRAConfig(rank=4, layers=layers)
    base = TrainConfig(learning_rate=1e-3, batch_size=2, epochs=2, lr_schedule=lr_schedule,
                       warmup=0.2, lora_plus_ratio=ratio)
    plain = tiny_runtime.call(_run, examples, lora, TrainConfig(**{**base.__dict__,
                                                                 "compile": "off"}), False)
    comp = tiny_runtime.call(_run, examples, lora, TrainConfig(**{**base.__dict__,
                                                                "compile": "on"}), True)
    assert comp.steps == plain.steps and comp.tokens == plain.tokens
    assert comp.losses == pytest.approx(plain.losses, rel=1e-3, abs=1e-4)
    assert comp.losses[-1] < comp.losses[0]
    assert comp.tensors.keys() == plain.tensors.keys()
    for name, w in plain.tensors.items():
        assert mx.allclose(comp.tensors[name], w, rtol=1e-3, atol=1e-4).item(), name


def test_cosine_schedule_warms_up_then_decays_to_a_tenth():
    rate = learning_rate(TrainConfig(learning_rate=1e-3, lr_schedule="cosine", warmup=0.1), 50)
    steps = [rate(mx.array(i)).item() for i in range(50)]
    assert steps[0] == pytest.approx(2e-4) and max(steps) == pytest.approx(1e-3)
    assert steps.index(max(steps)) == 5  # after the 5 warmup steps
    assert all(a >= b for a, b in zip(steps[5:], steps[6:], strict=False))
    assert steps[-1] == pytest.approx(1e-4, rel=0.05)
    assert learning_rate(TrainConfig(learning_rate=1e-3), 50) == 1e-3


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_lora_plus_steps_the_b_matrices_ratio_times_faster(schedule):
    """Adam's step size does not depend on the gradient's scale, so the only way B moves
    faster is its own rate: on the first step every entry of B moves ratio × as far as A's."""
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.lora import LoRALinear

    mx.random.seed(0)
    layer = LoRALinear.from_base(nn.Linear(16, 16), r=4)
    layer.lora_b = mx.random.normal(layer.lora_b.shape) * 0.1  # A gets a gradient too
    layer.freeze(keys=["linear"], strict=False)
    x = mx.random.normal((8, 16))
    before = dict(tree_flatten(layer.trainable_parameters()))
    _, grads = nn.value_and_grad(layer, lambda m, x: (m(x) ** 2).sum())(layer, x)
    opt = make_optimizer(TrainConfig(learning_rate=1e-3, lora_plus_ratio=6,
                                     lr_schedule=schedule), 20)
    opt.update(layer, grads)
    after = dict(tree_flatten(layer.trainable_parameters()))
    step = {k: mx.abs(after[k] - before[k]).max().item() for k in before}
    assert step["lora_b"] == pytest.approx(6 * step["lora_a"], rel=1e-3)
    assert not hasattr(make_optimizer(TrainConfig(), 20), "optimizers")  # ratio 1: plain Adam


def test_compile_setting_defaults_to_cuda_only():
    assert compiles(TrainConfig(), "cuda") and not compiles(TrainConfig(), "cpu")
    assert not compiles(TrainConfig(), "metal")
    assert compiles(TrainConfig(compile="on"), "cpu")
    assert not compiles(TrainConfig(compile="off"), "cuda")


def test_padding_to_a_bucket_masks_the_extra_positions(tiny_runtime):
    tok = tiny_runtime.loaded.tokenizer
    examples = [build_example(tok, SYSTEM, p, 256) for p in PAIRS[:2]]
    inputs, targets, mask = _batch(examples)
    wide_in, wide_t, wide_m = _batch(examples, 0, 32)
    assert wide_in.shape[1] % 32 == 0 and wide_in.shape[1] >= inputs.shape[1]
    n = inputs.shape[1]
    assert mx.array_equal(wide_in[:, :n], inputs).item()
    assert mx.array_equal(wide_m[:, :n], mask).item() and wide_m[:, n:].sum().item() == 0


@pytest.mark.parametrize(("repeat", "shapes"), [(2, 1), (8, 3)])
def test_a_compiled_cycle_traces_few_step_shapes(tiny_runtime, monkeypatch, repeat, shapes):
    """Rows 31-63 tokens wide (two 32-token buckets) make one step shape, so ``mx.compile``
    traces the step once per cycle; with one row of 153, the short batches keep their own
    widths (no step pays more than twice its width): 32, 64 and 160. Uncompiled, the loss
    runs every step."""
    import sleep.training as training

    calls: list[tuple[int, ...]] = []
    loss = training._loss

    def counted(model, inputs, *args):
        calls.append(tuple(inputs.shape))
        return loss(model, inputs, *args)

    monkeypatch.setattr(training, "_loss", counted)
    tok = tiny_runtime.loaded.tokenizer
    long = QAPair("What happened on my trip through the mountains last spring?",
                  "You hiked for nine days from Chamonix to Zermatt, " * repeat)
    examples = [build_example(tok, SYSTEM, p, 512) for p in [*PAIRS, long]]
    lora = LoRAConfig(rank=4, layers=2)

    def traced(ctx, compile_: str) -> tuple[int, list]:
        gen = train_lora(ctx, "c", None, examples, lora,
                         TrainConfig(batch_size=2, epochs=4, compile=compile_))
        in_steps = []  # loss calls while steps ran (the checks before them are not counted)
        while True:
            before = len(calls)
            try:
                progress = next(gen)
            except StopIteration as stop:
                return stop.value.steps, in_steps
            if progress.step >= 1:
                in_steps += calls[before:]

    steps, plain = tiny_runtime.call(traced, "off")
    assert len(plain) == steps > 2
    assert len({w // 32 for _, w, _ in plain}) > 1  # several buckets after the shared prefix
    steps, compiled = tiny_runtime.call(traced, "on")
    assert len(compiled) == len(set(compiled)) == shapes
    assert max(w for _, w, _ in compiled) == 64 if repeat == 2 else 160


def test_step_width_pads_to_the_widest_batch_at_most_twice():
    def rows(*widths):
        return [TrainExample(list(range(w + 1)), 1) for w in widths]

    assert step_width(rows(31, 36), 0, 0) == 0  # not compiled: each batch its own width
    assert step_width(rows(31, 36), 0, 64) == 64  # 64 <= 2 x 64
    assert step_width(rows(20, 31), 0, 64) == 64  # 64 <= 2 x 32
    assert step_width(rows(20, 31), 0, 96) == 32  # 96 > 2 x 32: its own
    assert step_width(rows(70, 81), 0, 160) == 160
    assert step_width(rows(81), 16, 96) == 96  # the shared prefix's 16 tokens are not rows'


def test_whole_rows_train_like_a_shared_prefix(tiny_runtime, monkeypatch):
    """``share_prefix`` off (the compiled GPU default): each row carries the system prompt
    through the stored lower blocks and the trained ones; same losses and weights as the
    shared prefix, and the trained blocks run once per step instead of twice."""
    import sleep.training as training

    runs: list[bool] = []  # per pass of blocks: whether they are the trained ones
    run_blocks = training._run_blocks
    top = tiny_runtime.loaded.model.layers[-2]

    def counted(blocks, h, caches):
        runs.append(blocks[0] is top)
        return run_blocks(blocks, h, caches)

    monkeypatch.setattr(training, "_run_blocks", counted)
    tok = tiny_runtime.loaded.tokenizer
    examples = [build_example(tok, SYSTEM, p, 256) for p in PAIRS]
    lora = LoRAConfig(rank=4, layers=2)
    base = TrainConfig(learning_rate=1e-3, batch_size=2, epochs=2, compile="off")
    shared = tiny_runtime.call(_run, examples, lora, base, False)
    shared_passes = runs.count(True)
    runs.clear()
    whole = tiny_runtime.call(_run, examples, lora,
                              TrainConfig(**{**base.__dict__, "share_prefix": "off"}), False)
    assert whole.losses == pytest.approx(shared.losses, rel=1e-3, abs=1e-4)
    for name, w in shared.tensors.items():
        assert mx.allclose(whole.tensors[name], w, rtol=1e-3, atol=1e-4).item(), name
    assert len(tiny_runtime.loaded.model.layers) > 2  # the lower blocks were stored
    # each counts one pass of the numerical check before training
    assert shared_passes == 2 * shared.steps + 2 and runs.count(True) == whole.steps + 1
