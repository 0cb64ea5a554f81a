"""Stage 5: LoRA training of one user's weights, as a stepped job on the model thread.

Training pairs become chat-template sequences (system prompt, question, answer) and the loss
is taken on the answer tokens only. The configured rank, scale and layer count are passed to
mlx-lm's ``LoRALinear`` directly (the paper's code never passed rank and alpha through), and
:func:`trainable_parameter_count` lets a test check the count they imply. ``train_lora`` is a
generator: it yields after every optimizer step so chat jobs run in between, and re-applies its
own weights each step because a chat job may have swapped in another user's. Prompt positions
skip the output head (they are not in the loss), which keeps it faster than mlx-lm's trainer
(``python -m bot bench sleep``); ``mx.compile`` of the step measured no gain on the CPU.
"""

from __future__ import annotations

import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

from runtime.config import LoRAConfig, TrainConfig
from runtime.generation import common_prefix_len
from runtime.scoring import SharedPrefixKV, head_split
from runtime.thread import ModelContext
from sleep.extraction.grounding import _STOPWORDS, _fold, _stem
from sleep.types import QAPair

log = logging.getLogger(__name__)

DEFAULT_KEYS = (
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
)


LOWER_CHUNK = 8  # examples per step while the frozen blocks' outputs are computed
COMPILE_PAD = 32  # compiled steps: widths rounded up to this, like mlx-lm's trainer
COMPILE_START = 16  # ... and the head's first position down to a multiple of this


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the cycle must be rejected."""


@dataclass
class TrainExample:
    ids: list[int]
    prompt_len: int  # tokens before the answer; the loss skips them
    source_exchange_ids: list[int] = field(default_factory=list)
    # the loss weight of each token from prompt_len on (None: all 1); see answer_weights
    weights: list[float] | None = None
    epochs: int = 0  # trained in this many of the run's epochs (0: every one); see schedule


@dataclass
class TrainProgress:
    step: int
    total: int
    loss: float


@dataclass
class TrainResult:
    steps: int
    losses: list[float]
    tokens: int
    seconds: float
    trainable_params: int
    tensors: dict[str, mx.array]  # fused dense weights of every module the adapter touched

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def build_example(tokenizer, system_prompt: str, pair: QAPair, max_len: int,
                  salient_weight: float = 1.0) -> TrainExample:
    """Token ids for (system, question, answer) with the answer closed by end-of-turn.

    With ``salient_weight`` other than 1, the answer's tokens that carry what the question
    does not already say weigh that much in the loss (:func:`answer_weights`)."""
    head = [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": pair.question},
    ]
    prompt = tokenizer.apply_chat_template(head, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        head + [{"role": "assistant", "content": pair.answer}], tokenize=False
    )
    if not full.startswith(prompt):
        raise ValueError("chat template renders the prompt differently in training mode")
    # The prompt is encoded alone, as generation will see it; encoding the whole text at once
    # can merge tokens across the boundary (Llama 3's "\n\n" before the answer).
    p_ids = tokenizer.encode(prompt, add_special_tokens=False)
    suffix = full[len(prompt):]
    a_ids = tokenizer.encode(suffix, add_special_tokens=False)
    ids = (p_ids + a_ids)[:max_len]
    weights = None
    if salient_weight != 1.0 and len(ids) > len(p_ids):
        weights = answer_weights(tokenizer, pair.question, pair.answer, suffix, a_ids,
                                 salient_weight)
        weights = weights[: len(ids) - len(p_ids)] if weights else None
    return TrainExample(ids, len(p_ids), list(pair.source_exchange_ids), weights)


# Words that carry no fact of their own: restated answers are full of them ("You are ...",
# "Your ... is ..."), and at equal weight they make up most of an answer's loss.
_FUNCTION_WORDS = _STOPWORDS | frozenset(
    "but so yours yourself now then still since until into about".split())


def _words(text: str) -> list[tuple[str, int, int]]:
    """(folded word, start, end) for each run of letters or digits in ``text``."""
    return [(_fold(m.group()), m.start(), m.end()) for m in re.finditer(r"[^\W_]+", text)]


def answer_weights(tokenizer, question: str, answer: str, suffix: str, suffix_ids: list[int],
                   weight: float) -> list[float] | None:
    """Loss weights of the answer's tokens: ``weight`` for tokens of the words that hold the
    fact (content words the question does not contain: names, numbers, places, dates), 1 for
    the rest (the restated frame and the end of turn).

    At equal weight the frame the answer shares with every other answer ("Your ... is")
    makes up most of its loss, and what a question must retrieve is a token or two. Raising
    the weight of those tokens is the idea of salient span masking (Guu et al. 2020, REALM;
    Roberts et al. 2020), applied to the loss here. None when the tokens cannot be mapped
    back onto the text (then every token weighs the same).
    """
    at = suffix.find(answer)
    if at < 0 or not suffix_ids:
        return None
    asked = {w for w, _, _ in _words(question)}
    asked |= {_stem(w) for w in asked}
    spans = [(at + s, at + e) for w, s, e in _words(answer)
             if w not in _FUNCTION_WORDS and w not in asked and _stem(w) not in asked]
    if not spans:
        return None
    # each token's character end, from decoding growing prefixes (byte-level BPE and
    # SentencePiece alike); a decoding that does not rebuild the text gives up
    ends, previous = [], 0
    for k in range(1, len(suffix_ids) + 1):
        end = len(tokenizer.decode(suffix_ids[:k]))
        if end < previous:
            return None
        ends.append(end)
        previous = end
    if tokenizer.decode(suffix_ids) != suffix:
        return None
    out, start = [], 0
    for end in ends:
        hit = any(s < end and start < e for s, e in spans)
        out.append(weight if hit else 1.0)
        start = end
    return out


def lora_target_paths(model: nn.Module, layers: int, keys: list[str] | None) -> list[str]:
    """Module paths of the LoRA targets in the last ``layers`` transformer blocks."""
    blocks = model.layers
    keys = tuple(keys or DEFAULT_KEYS)
    first = max(0, len(blocks) - layers)
    prefix = "model.layers" if hasattr(model, "model") else "layers"
    modules = dict(model.named_modules())
    return [
        f"{prefix}.{i}.{k}"
        for i in range(first, len(blocks))
        for k in keys
        if f"{prefix}.{i}.{k}" in modules
    ]


def trainable_parameter_count(model: nn.Module, lora: LoRAConfig) -> int:
    """The LoRA parameter count the configuration implies: r·(in + out) per target."""
    modules = dict(model.named_modules())
    total = 0
    for path in lora_target_paths(model, lora.layers, lora.keys):
        m = modules[path]
        out_dims, in_dims = m.weight.shape
        if isinstance(m, nn.QuantizedLinear):
            in_dims = in_dims * 32 // m.bits
        total += lora.rank * (in_dims + out_dims)
    return total


def splits_head(model: nn.Module, ids: list[int]) -> bool:
    """Whether the loss may skip the output head on prompt positions (checked numerically).

    The head and the cross-entropy over a 49k vocabulary cost as much as several blocks, and
    only the answer positions are in the loss; models whose forward is not ``head(body(x))``
    (logit scaling, soft-capping) fail the check and keep the full forward.
    """
    split = head_split(model)
    if split is None or len(ids) < 2:
        return False
    x = mx.array([ids[: min(len(ids), 16)]])
    full, parts = model(x), split[1](split[0](x))
    return full.shape == parts.shape and mx.allclose(full, parts, atol=1e-4).item()


def _loss(model: nn.Module, inputs: mx.array, targets: mx.array, mask: mx.array,
          start: int = 0, prefix: mx.array | None = None, first: int = 0) -> mx.array:
    """Mean cross-entropy over the masked (answer) targets, weighted by the mask's values.

    Positions before ``start`` have mask 0 and skip the output head when ``start`` > 0 (see
    :func:`splits_head`). With ``prefix`` (1, P), ``inputs`` are the tokens after it: the
    shared prefix runs once and every row attends to its keys and values (see
    :class:`SharedPrefixKV`). With ``first`` > 0, ``inputs`` (and ``prefix``, if given) are
    the hidden states entering block ``first`` (see :class:`FrozenLower`) and only the blocks
    from there on run.
    """
    if prefix is not None or first:
        body, head = head_split(model)
        blocks = body.layers[first:]
        caches = [SharedPrefixKV() for _ in blocks]
        if first:
            if prefix is not None:  # records each block's prefix keys and values
                _run_blocks(blocks, prefix, caches)
            h = body.norm(_run_blocks(blocks, inputs, caches))
        else:
            body(prefix, cache=caches)
            h = body(inputs, cache=caches)
        logits = head(h[:, start:]).astype(mx.float32)
        targets, mask_in = targets[:, start:], mask[:, start:]
    elif start > 0:
        body, head = head_split(model)
        logits = head(body(inputs)[:, start:]).astype(mx.float32)
        targets, mask_in = targets[:, start:], mask[:, start:]
    else:
        logits, mask_in = model(inputs).astype(mx.float32), mask
    ce = nn.losses.cross_entropy(logits, targets) * mask_in
    return ce.sum() / mx.maximum(mask.sum(), 1)


def _run_blocks(blocks: list[nn.Module], h: mx.array, caches: list) -> mx.array:
    """Transformer blocks over hidden states, the way mlx-lm's llama-family bodies loop."""
    mask = caches[0].make_mask(h.shape[1])
    for block, cache in zip(blocks, caches, strict=True):
        h = block(h, mask, cache=cache)
    return h


def shared_prefix_len(examples: list[TrainExample]) -> int:
    """Tokens every example starts with, stopping before the first answer target."""
    if not examples:
        return 0
    return common_prefix_len([e.ids for e in examples],
                             min(e.prompt_len for e in examples) - 1)


def _width(examples: list[TrainExample], skip: int = 0, pad_to: int = 1) -> int:
    """The padded width of ``examples`` from position ``skip`` on, a multiple of ``pad_to``."""
    width = max(len(e.ids) for e in examples) - 1 - skip
    return -(-width // pad_to) * pad_to


def step_width(batch: list[TrainExample], skip: int, widest: int) -> int:
    """A compiled step's width: the cycle's ``widest`` batch where that at most doubles this
    one's, else its own (0: no compiled step). ``mx.compile`` traces the step once per
    shape, and on a GPU a small model's step waits on kernel launches, not on padded
    positions: a cycle of similar lengths traces once (bench sleep: 2-3 shapes a cycle had
    cost more than the padding), and no step pays more than twice its own width (a larger
    model's step is bound by its arithmetic)."""
    if not widest:
        return 0
    own = _width(batch, skip, COMPILE_PAD)
    return widest if widest <= 2 * own else own


def _batch(examples: list[TrainExample], skip: int = 0, pad_to: int = 1, width: int = 0
           ) -> tuple[mx.array, mx.array, mx.array]:
    """Padded (inputs, targets, answer mask) from position ``skip`` on; the width rounded up
    to a multiple of ``pad_to`` (a compiled step is traced once per shape), at least
    ``width``."""
    width = max(width, _width(examples, skip, pad_to))
    inputs, targets, mask = [], [], []
    for e in examples:
        n = len(e.ids) - 1 - skip
        pad = width - n
        inputs.append(e.ids[skip:-1] + [0] * pad)
        targets.append(e.ids[skip + 1:] + [0] * pad)
        # input position t predicts token t+1: answer targets start at prompt_len - 1; the
        # mask holds each answer token's loss weight (1 unless the example weighs its tokens)
        w = e.weights
        mask.append([(w[skip + t + 1 - e.prompt_len] if w else 1.0)
                     if skip + t + 1 >= e.prompt_len else 0.0 for t in range(n)]
                    + [0.0] * pad)
    return mx.array(inputs), mx.array(targets), mx.array(mask)


class FrozenLower:
    """Hidden states entering the first trained block, computed once for all epochs.

    The blocks below the adapters are frozen, so their output for a given example never
    changes: every step would recompute it (22 of SmolLM2's 30 blocks). Stored once, a step
    runs only the trained blocks forward and back.
    """

    def __init__(self, model: nn.Module, first: int, prefix: mx.array | None = None):
        self.body = head_split(model)[0]
        self.first = first
        # with a prefix, its keys and values stay in front of every row's; without, each row
        # is computed whole
        self.caches = [SharedPrefixKV() for _ in range(first)] if prefix is not None else None
        self.prefix = self._lower(prefix) if prefix is not None else None
        self.rows: list[mx.array] = []

    def _lower(self, ids: mx.array) -> mx.array:
        caches = self.caches or [SharedPrefixKV() for _ in range(self.first)]
        h = _run_blocks(self.body.layers[: self.first], self.body.embed_tokens(ids), caches)
        return mx.stop_gradient(h)

    def add(self, examples: list[TrainExample], skip: int) -> None:
        """Compute and keep the rows of ``examples`` (the tokens after the first ``skip``, the
        shared prefix; 0 without one)."""
        inputs, _, _ = _batch(examples, skip)
        h = self._lower(inputs)
        mx.eval(h)
        self.rows += [h[i, : len(e.ids) - 1 - skip] for i, e in enumerate(examples)]

    def batch(self, idx: list[int], width: int = 0) -> mx.array:
        width = max(width, *(self.rows[i].shape[0] for i in idx))
        return mx.stack([mx.pad(self.rows[i], [(0, width - self.rows[i].shape[0]), (0, 0)])
                         for i in idx])


def shares_prefix(model: nn.Module, examples: list[TrainExample], prefix_len: int,
                  first: int = 0) -> bool:
    """Whether the shared-prefix loss (with the frozen blocks below ``first`` stored, if
    ``first`` > 0; ``prefix_len`` 0: stored blocks, no shared prefix) equals the plain one on
    the first examples, checked numerically like :func:`splits_head`; architectures it does
    not fit keep the plain loss."""
    if (prefix_len < 2 and not (first and prefix_len == 0)) or head_split(model) is None:
        return False
    sample = examples[:2]
    try:
        full = _loss(model, *_batch(sample))
        prefix = mx.array([sample[0].ids[:prefix_len]]) if prefix_len else None
        _, targets, mask = _batch(sample, prefix_len)
        if first:
            lower = FrozenLower(model, first, prefix)
            lower.add(sample, prefix_len)
            shared = _loss(model, lower.batch(list(range(len(sample)))), targets, mask, 0,
                           lower.prefix, first)
        else:
            shared = _loss(model, *_batch(sample, prefix_len), 0, prefix)
        return bool(mx.allclose(full, shared, rtol=1e-3, atol=1e-4).item())
    except Exception:  # an architecture whose blocks or body take no cache this way
        return False


def compiles(train: TrainConfig, device: str) -> bool:
    """Whether to ``mx.compile`` the step: on CUDA, where a step of a small model is a few
    thousand short kernels and compiling fuses the optimizer's and the loss's element-wise
    ones (mlx-lm's trainer does the same); not on the CPU, where it measured no gain."""
    return train.compile == "on" or (train.compile == "auto" and device == "cuda")


def make_step(model: nn.Module, optimizer: optim.Optimizer, grad_clip: float,
              compiled: bool) -> Callable[..., mx.array]:
    """``step(*loss_args) -> loss``: loss and gradients, clipping, one optimizer update.

    The compiled step reads and writes the model's and the optimizer's arrays as they are at
    each call, so the modules :meth:`ModelContext.use` swaps back in between steps are the
    ones it updates.
    """
    loss_and_grad = nn.value_and_grad(model, _loss)

    def step(*args) -> mx.array:
        loss, grads = loss_and_grad(model, *args)
        if grad_clip:
            grads, _ = optim.clip_grad_norm(grads, grad_clip)
        optimizer.update(model, grads)
        return loss

    if not compiled:
        return step
    optimizer.init(model.trainable_parameters())  # the state exists before the first trace
    state = [model.state, optimizer.state, mx.random.state]
    return mx.compile(step, inputs=state, outputs=state)


def schedule(n_examples: int, train: TrainConfig, seed: int,
             lengths: list[int] | None = None,
             answers: list[object] | None = None,
             epochs_of: list[int] | None = None) -> list[list[int]]:
    """Batches of example indices: N = |D| × epochs examples, shuffled per epoch.

    With ``epochs_of``, an example with a count c between 1 and ``train.epochs`` is trained
    in c epochs only, taken round-robin with the other such examples (:func:`epoch_members`).

    With ``answers`` (one key per example) and ``train.distinct_answers``, a batch takes the
    next examples of the shuffled order whose answers it does not hold yet: phrasings of one
    fact are averaged into one step less often (in random batches of 4, 17% of the batches
    held one answer twice). With ``lengths`` and ``train.length_pool`` > 1, each epoch's
    shuffled order is first cut into pools of that many batches, each sorted by length, and
    the epoch's batches are shuffled after: a batch holds examples of about one length, so
    little of a step is padding (random batches of 4 were ~27% padding).
    """
    rng = random.Random(seed)
    bs = max(1, train.batch_size)
    pool = bs * train.length_pool if lengths is not None else 0
    spread = answers is not None and train.distinct_answers and bs > 1
    members = epoch_members(n_examples, train.epochs, epochs_of)
    if pool <= bs and not spread:  # plain: one shuffled order, a batch may span two epochs
        order: list[int] = []
        for epoch in members:
            rng.shuffle(epoch)
            order += epoch
        return [order[i : i + bs] for i in range(0, len(order), bs)]
    batches: list[list[int]] = []
    for epoch in members:
        rng.shuffle(epoch)
        if pool > bs:
            epoch = [i for k in range(0, len(epoch), pool)
                     for i in sorted(epoch[k : k + pool], key=lambda i: lengths[i])]
        chunk = _distinct_batches(epoch, bs, answers) if spread else \
            [epoch[i : i + bs] for i in range(0, len(epoch), bs)]
        if pool > bs:
            rng.shuffle(chunk)
        batches += chunk
    return batches


def epoch_members(n_examples: int, epochs: int,
                  epochs_of: list[int] | None = None) -> list[list[int]]:
    """The example indices each of ``epochs`` epochs trains, in index order: every example,
    except that one whose ``epochs_of`` count c is below ``epochs`` (and above 0) is in c of
    them, the next free ones in turn, so such examples are spread evenly over the run."""
    members: list[list[int]] = [[] for _ in range(epochs)]
    turn = 0
    for i in range(n_examples):
        c = epochs_of[i] if epochs_of else 0
        if 0 < c < epochs:
            for j in range(c):
                members[(turn + j) % epochs].append(i)
            turn += c
        else:
            for m in members:
                m.append(i)
    return members


def _distinct_batches(order: list[int], bs: int, answers: list[object]) -> list[list[int]]:
    """``order`` in batches of ``bs``, each taking the earliest examples whose answers it does
    not hold yet (a batch repeats an answer only when nothing else is left)."""
    left = list(order)
    out: list[list[int]] = []
    while left:
        batch, seen, rest = [], set(), []
        for i in left:
            if len(batch) < bs and answers[i] not in seen:
                batch.append(i)
                seen.add(answers[i])
            else:
                rest.append(i)
        while len(batch) < bs and rest:  # only repeated answers are left
            batch.append(rest.pop(0))
        out.append(batch)
        left = rest
    return out


def learning_rate(train: TrainConfig, n_steps: int) -> float | Callable[[mx.array], mx.array]:
    """The optimizer's rate: a constant, or warmup then cosine decay to a tenth over the run."""
    if train.lr_schedule == "constant" or n_steps < 2:
        return train.learning_rate
    warm = min(n_steps - 1, int(round(train.warmup * n_steps)))
    decay = optim.cosine_decay(train.learning_rate, n_steps - warm, train.learning_rate / 10)
    if not warm:
        return decay
    return optim.join_schedules([optim.linear_schedule(train.learning_rate / warm,
                                                       train.learning_rate, warm), decay],
                                [warm])


def make_optimizer(train: TrainConfig, n_steps: int) -> optim.Optimizer:
    """Adam at the configured rate; with ``lora_plus_ratio`` > 1 the adapters' B matrices
    step that many times faster than their A matrices (LoRA+, Hayou et al. 2024: with one
    rate for both, B, which starts at zero, learns too slowly for the width)."""
    rate = learning_rate(train, n_steps)
    ratio = train.lora_plus_ratio
    if ratio == 1:
        return optim.Adam(learning_rate=rate)
    fast = (lambda step: ratio * rate(step)) if callable(rate) else ratio * rate
    return optim.MultiOptimizer([optim.Adam(learning_rate=fast), optim.Adam(learning_rate=rate)],
                                [lambda path, _: path.endswith("lora_b")])


def train_lora(
    ctx: ModelContext,
    user_id: str,
    checkpoint: Path | None,
    examples: list[TrainExample],
    lora: LoRAConfig,
    train: TrainConfig,
    seed: int = 0,
) -> Iterator[TrainProgress]:
    """Generator job: one optimizer step per ``next()``; returns a :class:`TrainResult`."""
    from mlx_lm.tuner.lora import LoRALinear

    mx.random.seed(seed)
    ctx.use_user(user_id, checkpoint)
    user_state = dict(ctx.user_overrides(user_id, checkpoint))
    current = dict(ctx.model.named_modules())
    adapters = {
        path: LoRALinear.from_base(current[path], r=lora.rank, dropout=lora.dropout,
                                   scale=lora.scale)
        for path in lora_target_paths(ctx.model, lora.layers, lora.keys)
    }
    state = {**user_state, **adapters}
    ctx.use(state)
    n_params = sum(v.size for _, v in tree_flatten(ctx.model.trainable_parameters()))
    batches = schedule(len(examples), train, seed, [len(e.ids) for e in examples],
                       [tuple(e.ids[e.prompt_len:]) for e in examples],
                       [e.epochs for e in examples])
    optimizer = make_optimizer(train, len(batches))
    compiled = compiles(train, ctx.device)
    step_fn = make_step(ctx.model, optimizer, train.grad_clip, compiled)
    pad_to, round_start = (COMPILE_PAD, COMPILE_START) if compiled else (1, 1)
    losses: list[float] = []
    tokens, seconds = 0, 0.0
    sliced = bool(examples) and splits_head(ctx.model, examples[0].ids)
    share = train.share_prefix == "on" or (train.share_prefix == "auto" and not compiled)
    skip = shared_prefix_len(examples) if sliced and share else 0
    prefix = mx.array([examples[0].ids[:skip]]) if skip else None
    first = max(0, len(ctx.model.layers) - lora.layers)
    lower: FrozenLower | None = None
    if examples and not sliced:  # the fast paths check themselves and say when they are off
        log.info("training: this model's output head cannot be split off; every position "
                 "runs it (slower)")
    if examples and first and shares_prefix(ctx.model, examples, skip, first):
        lower = FrozenLower(ctx.model, first, prefix)
        # chat may go between chunks; a launch-bound GPU computes 8x the rows in about the
        # time of one chunk
        chunk = LOWER_CHUNK * (8 if compiled else 1)
        for i in range(0, len(examples), chunk):
            ctx.use(state)
            tic = time.perf_counter()
            lower.add(examples[i : i + chunk], skip)
            seconds += time.perf_counter() - tic  # part of the training time
            yield TrainProgress(0, len(batches), math.nan)
    elif prefix is not None and shares_prefix(ctx.model, examples, skip):
        if first:
            log.info("training: the frozen lower blocks' outputs cannot be stored for this "
                     "model; they run every step (slower)")
    elif prefix is not None:
        log.info("training: the shared system prompt cannot run once for this model; every "
                 "row runs it (slower)")
        skip, prefix = 0, None
    widest = _width(examples, skip, pad_to) if compiled and examples else 0
    # compiled, every step starts the head at the cycle's earliest answer (one slice shape)
    earliest = min(e.prompt_len for e in examples) if widest else 0
    for step, idx in enumerate(batches, 1):
        ctx.use(state)  # a chat job may have swapped weights since the last step
        tic = time.perf_counter()
        batch = [examples[i] for i in idx]
        inputs, targets, mask = _batch(batch, skip, pad_to, step_width(batch, skip, widest))
        # input t predicts token t+1: the first answer target is at prompt_len - 1
        first_answer = earliest or min(e.prompt_len for e in batch)
        start = min(first_answer - 1 - skip, inputs.shape[1] - 1)
        start = max(start, 0) // round_start * round_start if sliced else 0
        if lower is not None:
            loss = step_fn(lower.batch(idx, inputs.shape[1]), targets, mask, start,
                           lower.prefix, first)
        else:
            loss = step_fn(inputs, targets, mask, start, prefix, 0)
        mx.eval(loss, ctx.model.trainable_parameters(), optimizer.state)
        seconds += time.perf_counter() - tic
        value = loss.item()
        if not math.isfinite(value):
            ctx.use_user(user_id, checkpoint)
            raise TrainingDiverged(f"loss became {value} at step {step}")
        losses.append(value)
        tokens += int(sum(len(examples[i].ids) for i in idx))
        yield TrainProgress(step, len(batches), value)
    fused = {}
    for path, adapter in adapters.items():
        linear = adapter.fuse(dequantize=True)
        fused[f"{path}.weight"] = linear.weight
        if "bias" in linear:
            fused[f"{path}.bias"] = linear.bias
    for path, module in user_state.items():  # keep earlier cycles' changes outside the targets
        if path not in adapters:
            fused[f"{path}.weight"] = module.weight
            if "bias" in module:
                fused[f"{path}.bias"] = module.bias
    mx.eval(fused)
    ctx.use_user(user_id, checkpoint)
    return TrainResult(len(batches), losses, tokens, seconds, n_params, fused)


def _dense_weight(module: nn.Module) -> mx.array:
    if isinstance(module, nn.QuantizedLinear):
        return mx.dequantize(module.weight, module.scales, module.get("biases"),
                             module.group_size, module.bits)
    return module.weight


def scale_update(ctx: ModelContext, user_id: str, checkpoint: Path | None,
                 tensors: dict[str, mx.array], alpha: float) -> dict[str, mx.array]:
    """Model job: the cycle's weights moved only ``alpha`` of the way from the user's current
    weights to the trained ``tensors`` (``W0 + alpha * (W1 - W0)``, the interpolation of
    WiSE-FT, Wortsman et al. 2022): a smaller step keeps more general ability and part of what
    was learned."""
    current = ctx.user_overrides(user_id, checkpoint)
    out: dict[str, mx.array] = {}
    for name, w1 in tensors.items():
        path, _, leaf = name.rpartition(".")
        module = current.get(path) or ctx.base_module(path)
        w0 = _dense_weight(module) if leaf == "weight" else module.get(leaf)
        if w0 is None:  # a bias the trained module has and the old one lacks: keep it
            out[name] = w1
            continue
        out[name] = (w0.astype(w1.dtype) + alpha * (w1 - w0.astype(w1.dtype))).astype(w1.dtype)
    mx.eval(out)
    return out
