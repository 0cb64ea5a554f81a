"""Stage 5, LoRA training, on the tiny random llama: what reaches the trainer, the exact token
sequence and loss mask of a training example, the schedule, and divergence.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_training.py
"""

from __future__ import annotations

import math
import random

import mlx.core as mx
import mlx.nn as nn
import pytest

from runtime.config import LoRAConfig, TrainConfig
from sleep.training import (
    FrozenLower,
    TrainingDiverged,
    _batch,
    _loss,
    answer_weights,
    build_example,
    epoch_members,
    lora_target_paths,
    schedule,
    shared_prefix_len,
    shares_prefix,
    splits_head,
    train_lora,
    trainable_parameter_count,
)
from sleep.types import QAPair

SYSTEM = "You are a test assistant."
PAIRS = [
    QAPair("Where do I live?", "You live in Lisbon."),
    QAPair("What is my dog's name?", "Your dog is called Biscuit."),
    QAPair("What instrument do I play?", "You play the cello."),
]


def _examples(runtime, pairs=PAIRS, max_len: int = 256):
    tok = runtime.loaded.tokenizer
    return [build_example(tok, SYSTEM, p, max_len) for p in pairs]


def _train(runtime, examples, lora: LoRAConfig, train: TrainConfig, user: str = "t"):
    """Run the generator job to completion on the model thread; returns its TrainResult."""
    return runtime.call(train_lora, user, None, examples, lora, train)


@pytest.mark.parametrize(("rank", "layers"), [(2, 1), (6, 3)])
def test_configured_rank_and_layers_reach_the_trainer(tiny_runtime, rank, layers):
    lora = LoRAConfig(rank=rank, layers=layers)
    expected = tiny_runtime.call(lambda ctx: trainable_parameter_count(ctx.model, lora))
    result = _train(tiny_runtime, _examples(tiny_runtime)[:1], lora, TrainConfig())
    assert result.trainable_params == expected
    # and the count is r·(in + out) over exactly the targets of the last `layers` blocks
    paths = tiny_runtime.call(lambda ctx: lora_target_paths(ctx.model, layers, None))
    assert {p.split(".")[2] for p in paths} == {str(i) for i in range(4 - layers, 4)}
    dims = tiny_runtime.call(lambda ctx: [dict(ctx.model.named_modules())[p].weight.shape
                                          for p in paths])
    assert expected == sum(rank * (i + o) for o, i in dims)


def test_fresh_adapter_fuses_back_to_the_base_weights_bit_identically(tiny_runtime):
    lora = LoRAConfig(rank=4, layers=2)
    result = _train(tiny_runtime, _examples(tiny_runtime), lora, TrainConfig(learning_rate=0.0))
    assert result.steps == len(PAIRS)

    def base_weights(ctx):
        return {f"{p}.weight": ctx.base_module(p).weight
                for p in lora_target_paths(ctx.model, lora.layers, lora.keys)}

    def differing(ctx):  # MLX work stays on the model thread
        base = base_weights(ctx)
        assert set(result.tensors) == set(base)
        return [n for n, w in base.items() if result.tensors[n].dtype != w.dtype
                or not mx.array_equal(result.tensors[n], w).item()]

    assert tiny_runtime.call(differing) == []


def test_training_sequence_ends_with_the_answer_and_end_of_turn(tiny_runtime):
    tok = tiny_runtime.loaded.tokenizer
    pair = PAIRS[0]
    ex = build_example(tok, SYSTEM, pair, 256)
    end_of_turn = tok.encode("<|im_end|>\n", add_special_tokens=False)
    header = tok.encode("<|im_start|>assistant\n", add_special_tokens=False)
    assert ex.ids[-len(end_of_turn):] == end_of_turn
    assert ex.ids[-len(header):] != header  # the paper's bug: an empty assistant header last
    text = tok.decode(ex.ids)
    assert text.endswith(pair.answer + "<|im_end|>\n")
    assert not text.rstrip().endswith("<|im_start|>assistant")
    # the prompt part is exactly the generation prompt the bot answers from
    prompt = tok.apply_chat_template(
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": pair.question}],
        add_generation_prompt=True, tokenize=False)
    assert ex.ids[: ex.prompt_len] == tok.encode(prompt, add_special_tokens=False)
    assert tok.decode(ex.ids[ex.prompt_len:]) == pair.answer + "<|im_end|>\n"


def test_loss_mask_covers_exactly_the_answer_and_end_of_turn(tiny_runtime):
    examples = _examples(tiny_runtime)
    inputs, targets, mask = _batch(examples)  # padded batch: the padding is masked too
    for row, ex in enumerate(examples):
        on = [t for t, m in enumerate(mask[row].tolist()) if m == 1.0]
        trained = [targets[row, t].item() for t in on]
        assert trained == ex.ids[ex.prompt_len:]  # the answer + <|im_end|> + "\n"
        assert all(t + 1 >= ex.prompt_len for t in on)  # no prompt token is a target
        assert inputs[row, : len(ex.ids) - 1].tolist() == ex.ids[:-1]


def test_salient_weight_raises_exactly_the_tokens_the_question_does_not_give(tiny_runtime):
    tok = tiny_runtime.loaded.tokenizer
    pair = QAPair("Who is my partner?", "Your partner is Thijs, a baker since 2019.")
    ex = build_example(tok, SYSTEM, pair, 256, salient_weight=3.0)
    answer = ex.ids[ex.prompt_len:]
    assert len(ex.weights) == len(answer)
    heavy = tok.decode([t for t, w in zip(answer, ex.weights, strict=True) if w == 3.0])
    light = tok.decode([t for t, w in zip(answer, ex.weights, strict=True) if w == 1.0])
    # the name, the job and the year weigh 3; the frame the question already holds, the
    # function words, punctuation and the end of turn weigh 1
    assert heavy.replace(" ", "") == "Thijsbaker2019"
    assert "partner" in light and "Your" in light and "<|im_end|>" in light
    assert set(ex.weights) == {1.0, 3.0}
    # at weight 1 nothing is stored and the example is the unweighted one
    plain = build_example(tok, SYSTEM, pair, 256)
    assert plain.weights is None and plain.ids == ex.ids
    # an answer the question gives whole has nothing to raise
    assert answer_weights(tok, "Am I 35?", "You're 35.", "You're 35.",
                          tok.encode("You're 35.", add_special_tokens=False), 3.0) is None


def test_weighted_loss_is_the_weighted_mean_of_token_losses(tiny_runtime):
    tok = tiny_runtime.loaded.tokenizer
    examples = [build_example(tok, SYSTEM, p, 256, salient_weight=4.0) for p in PAIRS]
    inputs, targets, mask = _batch(examples)
    plain_mask = _batch([build_example(tok, SYSTEM, p, 256) for p in PAIRS])[2]

    def losses(ctx):
        ctx.use_base()
        logits = ctx.model(inputs).astype(mx.float32)
        ce = nn.losses.cross_entropy(logits, targets)
        want = ((ce * mask).sum() / mask.sum()).item()
        return _loss(ctx.model, inputs, targets, mask).item(), want, \
            _loss(ctx.model, inputs, targets, plain_mask).item()

    weighted, want, plain = tiny_runtime.call(losses)
    assert weighted == pytest.approx(want, rel=1e-5)
    assert weighted != pytest.approx(plain, rel=1e-3)  # the weights do change the loss
    # the weighted mask is the plain one with the salient tokens raised, nothing else
    assert ((mask > 0) == (plain_mask > 0)).all().item()
    assert mx.max(mask).item() == 4.0


def test_skipping_the_head_on_prompt_positions_gives_the_same_loss(tiny_runtime):
    ex = _examples(tiny_runtime)[0]
    inputs, targets, mask = _batch([ex])

    def losses(ctx):
        ctx.use_base()
        assert splits_head(ctx.model, ex.ids)
        full = _loss(ctx.model, inputs, targets, mask)
        sliced = _loss(ctx.model, inputs, targets, mask, ex.prompt_len - 1)
        return full.item(), sliced.item()

    full, sliced = tiny_runtime.call(losses)
    assert sliced == pytest.approx(full, rel=1e-5)


def test_shared_prefix_stops_before_the_first_answer_target(tiny_runtime):
    examples = _examples(tiny_runtime)
    n = shared_prefix_len(examples)
    assert 0 < n <= min(e.prompt_len for e in examples) - 1
    assert len({tuple(e.ids[:n]) for e in examples}) == 1  # really shared
    assert len({tuple(e.ids[: n + 1]) for e in examples}) > 1  # and the longest such
    # two examples with the same question share it all: the prefix still ends before the
    # first answer target
    same = _examples(tiny_runtime, [PAIRS[0], QAPair(PAIRS[0].question, "Porto.")])
    assert shared_prefix_len(same) == min(e.prompt_len for e in same) - 1


def _use_random_adapters(ctx, layers: int) -> None:
    """Swap in rank-4 adapters with a non-zero B, so they change the forward."""
    from mlx_lm.tuner.lora import LoRALinear

    ctx.use_base()
    modules = dict(ctx.model.named_modules())
    adapters = {p: LoRALinear.from_base(modules[p], r=4)
                for p in lora_target_paths(ctx.model, layers, None)}
    for a in adapters.values():
        a.lora_b = mx.random.normal(a.lora_b.shape) * 0.1
    ctx.use(adapters)


def _worst_relative_diff(g1, g2) -> float:
    """Largest |a - b| of two gradient trees, relative to each tensor's largest entry."""
    from mlx.utils import tree_flatten

    return max((mx.abs(a - b).max() / mx.maximum(mx.abs(a).max(), 1e-6)).item()
               for (_, a), (_, b) in zip(tree_flatten(g1), tree_flatten(g2), strict=True))


def test_the_shared_prefix_loss_and_gradients_equal_the_plain_ones(tiny_runtime):
    examples = _examples(tiny_runtime)
    n = shared_prefix_len(examples)
    lora = LoRAConfig(rank=4, layers=2)

    def both(ctx):
        _use_random_adapters(ctx, lora.layers)
        assert shares_prefix(ctx.model, examples, n)
        grad = nn.value_and_grad(ctx.model, _loss)
        plain, g1 = grad(ctx.model, *_batch(examples))
        shared, g2 = grad(ctx.model, *_batch(examples, n), 0,
                          mx.array([examples[0].ids[:n]]))
        ctx.use_base()
        return plain.item(), shared.item(), _worst_relative_diff(g1, g2)

    plain, shared, worst = tiny_runtime.call(both)
    assert shared == pytest.approx(plain, rel=1e-4)
    assert worst < 1e-3  # relative to the largest gradient entry


def test_batched_training_with_a_shared_prefix_learns_like_one_at_a_time(tiny_runtime):
    examples = _examples(tiny_runtime)
    lora = LoRAConfig(rank=4, layers=2)
    one = _train(tiny_runtime, examples, lora, TrainConfig(learning_rate=1e-3, batch_size=1))
    batched = _train(tiny_runtime, examples, lora,
                     TrainConfig(learning_rate=1e-3, batch_size=3, epochs=3))
    assert batched.steps == 3 and one.steps == 3
    assert batched.losses[-1] < batched.losses[0]  # the batched steps learn
    assert batched.tokens == 3 * one.tokens


class _Scaled(nn.Module):
    """A model whose logits are not head(body(x)): the trainer must not split it."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale
        self.model = nn.Embedding(10, 4)
        self.lm_head = nn.Linear(4, 10)

    def __call__(self, x):
        return self.scale * self.lm_head(self.model(x))


def test_head_split_is_refused_when_the_forward_differs():
    assert splits_head(_Scaled(1.0), [1, 2, 3])
    assert not splits_head(_Scaled(2.0), [1, 2, 3])
    assert not splits_head(nn.Linear(4, 4), [1, 2, 3])  # no body/head layout at all


@pytest.mark.parametrize(("n", "epochs", "batch"), [(7, 1, 1), (5, 3, 2), (4, 2, 4)])
def test_schedule_yields_every_example_once_per_epoch(n, epochs, batch):
    batches = schedule(n, TrainConfig(epochs=epochs, batch_size=batch), seed=3)
    flat = [i for b in batches for i in b]
    assert len(flat) == n * epochs
    assert sorted(flat) == sorted(list(range(n)) * epochs)
    assert all(1 <= len(b) <= batch for b in batches)
    assert schedule(n, TrainConfig(epochs=epochs, batch_size=batch), seed=3) == batches


@pytest.mark.parametrize(("pool", "distinct"), [(0, True), (8, False), (8, True), (3, True)])
def test_pooled_and_distinct_schedules_yield_every_example_once_per_epoch(pool, distinct):
    rng = random.Random(5)
    n, epochs = 61, 2
    lengths = [rng.randint(10, 60) for _ in range(n)]
    answers = [i // 4 for i in range(n)]  # four phrasings per fact
    train = TrainConfig(epochs=epochs, batch_size=4, length_pool=pool, distinct_answers=distinct)
    batches = schedule(n, train, 3, lengths, answers)
    per_epoch = -(-n // 4)
    assert len(batches) == epochs * per_epoch
    for e in range(epochs):  # an epoch's batches hold every example once
        flat = [i for b in batches[e * per_epoch:(e + 1) * per_epoch] for i in b]
        assert sorted(flat) == list(range(n))
    assert schedule(n, train, 3, lengths, answers) == batches
    assert schedule(n, train, 4, lengths, answers) != batches


@pytest.mark.parametrize(("pool", "distinct"), [(0, False), (8, True)])
def test_examples_of_fewer_epochs_are_trained_that_often_spread_over_the_run(pool, distinct):
    n, epochs = 30, 2
    once = set(range(20, 30))  # e.g. ten profiles trained in one of the two epochs
    counts = [1 if i in once else 0 for i in range(n)]
    train = TrainConfig(epochs=epochs, batch_size=4, length_pool=pool, distinct_answers=distinct)
    lengths, answers = [10 + i % 7 for i in range(n)], list(range(n))
    batches = schedule(n, train, 3, lengths, answers, counts)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == sorted(list(range(20)) * 2 + sorted(once))
    members = epoch_members(n, epochs, counts)
    assert [len(set(m) & once) for m in members] == [5, 5]  # half in each epoch
    assert all(set(range(20)) <= set(m) for m in members)
    # counts of 0 or of every epoch leave the schedule exactly as it was
    assert schedule(n, train, 3, lengths, answers, [0] * n) == schedule(n, train, 3, lengths,
                                                                        answers)
    assert schedule(n, train, 3, lengths, answers, [2] * n) == schedule(n, train, 3, lengths,
                                                                        answers)
    assert epoch_members(4, 3, [2, 0, 2, 1]) == [[0, 1, 2], [0, 1, 3], [1, 2]]


def test_distinct_batches_never_repeat_an_answer_while_others_are_left():
    n = 40
    answers = [i // 4 for i in range(n)]  # 10 facts × 4 phrasings: a perfect split exists
    for pool in (0, 8):
        train = TrainConfig(epochs=3, batch_size=4, length_pool=pool, distinct_answers=True)
        for seed in range(5):
            batches = schedule(n, train, seed, [10 + i % 7 for i in range(n)], answers)
            repeats = sum(len({answers[i] for i in b}) < len(b) for b in batches)
            assert repeats <= 3  # at most the last batch of an epoch, when one fact is left
    plain = schedule(n, TrainConfig(epochs=3, batch_size=4), 0)
    assert sum(len({answers[i] for i in b}) < len(b) for b in plain) > 3


def test_length_pools_cut_the_padding():
    rng = random.Random(0)
    lengths = [rng.randint(8, 64) for _ in range(200)]

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    plain = schedule(200, TrainConfig(epochs=2, batch_size=4, length_pool=0), 1, lengths)
    pooled = schedule(200, TrainConfig(epochs=2, batch_size=4, length_pool=8), 1, lengths)
    assert padded(pooled) < 0.85 * padded(plain)
    # the pools are cut from a shuffled order: the batches are not one global sort by length
    firsts = [max(lengths[i] for i in b) for b in pooled[:50]]
    assert firsts != sorted(firsts)


def test_steps_and_tokens_follow_the_schedule(tiny_runtime):
    examples = _examples(tiny_runtime)
    result = _train(tiny_runtime, examples, LoRAConfig(rank=2, layers=1),
                    TrainConfig(epochs=2, batch_size=1))
    assert result.steps == len(result.losses) == 2 * len(examples)
    assert result.tokens == 2 * sum(len(e.ids) for e in examples)
    assert all(math.isfinite(v) for v in result.losses)


@pytest.mark.parametrize("lr", [1e30, math.inf])
def test_nan_loss_raises_training_diverged_and_restores_the_weights(tiny_runtime, lr):
    examples = _examples(tiny_runtime) * 2
    ids = examples[0].ids

    def logits(ctx):
        ctx.use_user("t", None)
        out = ctx.model(mx.array([ids]))
        mx.eval(out)
        return out

    before = tiny_runtime.call(logits)
    with pytest.raises(TrainingDiverged):
        _train(tiny_runtime, examples, LoRAConfig(rank=2, layers=2),
               TrainConfig(learning_rate=lr, grad_clip=0.0))
    assert tiny_runtime.call(lambda ctx: not ctx._active)  # no adapter left swapped in
    assert tiny_runtime.call(lambda ctx: mx.array_equal(logits(ctx), before).item())


def test_stored_frozen_blocks_give_the_plain_loss_and_gradients(tiny_runtime):
    examples = _examples(tiny_runtime)
    n = shared_prefix_len(examples)
    lora = LoRAConfig(rank=4, layers=2)

    def both(ctx):
        _use_random_adapters(ctx, lora.layers)
        first = len(ctx.model.layers) - lora.layers
        assert shares_prefix(ctx.model, examples, n, first)
        lower = FrozenLower(ctx.model, first, mx.array([examples[0].ids[:n]]))
        lower.add(examples, n)
        _, targets, mask = _batch(examples, n)
        grad = nn.value_and_grad(ctx.model, _loss)
        plain, g1 = grad(ctx.model, *_batch(examples))
        stored, g2 = grad(ctx.model, lower.batch([0, 1, 2]), targets, mask, 0, lower.prefix,
                          first)
        ctx.use_base()
        return plain.item(), stored.item(), _worst_relative_diff(g1, g2)

    plain, stored, worst = tiny_runtime.call(both)
    assert stored == pytest.approx(plain, rel=1e-4)
    assert worst < 1e-3  # relative to the largest gradient entry
