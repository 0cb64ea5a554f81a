"""The model thread (runtime/thread.py): one thread for all MLX work, priorities, streaming,
cancellation, shutdown, load errors, and per-user module swapping with its LRU cache.

Jobs record what happened (thread ids, order) and hand-shake through events; nothing sleeps.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_runtime.py
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import threading
import weakref
from contextlib import aclosing
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import pytest

from bot.engine import model_runtime
from memory.checkpoints import save_checkpoint
from runtime.config import load_config
from runtime.generation import stream_reply
from runtime.models import ModelError
from runtime.thread import (
    BACKGROUND,
    CHAT,
    JobCancelled,
    ModelContext,
    ModelRuntime,
    RuntimeClosed,
)

REPO = Path(__file__).resolve().parents[1]
WAIT = 60  # seconds: only a bound for a hung test, never a pause

Q_PROJ = "model.layers.0.self_attn.q_proj"
DOWN_PROJ = "model.layers.1.mlp.down_proj"


@pytest.fixture
def runtime(tiny_model_dir):
    """A fresh model thread on the tiny model (for tests that change or stop it)."""
    cfg = load_config(data_dir=Path("/nonexistent"), model=str(tiny_model_dir), env={})
    rt = model_runtime(cfg, cache_size=2).start()
    yield rt
    rt.close()


# -- one thread -------------------------------------------------------------------------------


def _ident(ctx: ModelContext) -> int:
    return threading.get_ident()


def _stepped_idents(ctx: ModelContext, n: int):
    for _ in range(n):
        yield threading.get_ident()
    return threading.get_ident()


def _nested(ctx: ModelContext, rt: ModelRuntime) -> tuple[int, int]:
    return threading.get_ident(), rt.call(_ident)  # call() from the model thread runs inline


@pytest.mark.asyncio
async def test_every_job_runs_on_the_same_thread(tiny_runtime):
    idents = [tiny_runtime.call(_ident), tiny_runtime.submit(_ident).result(WAIT)]
    idents.append(await tiny_runtime.run(_ident))
    idents.append(await tiny_runtime.run(_ident, priority=BACKGROUND))
    stepped: list[int] = []
    idents.append(await tiny_runtime.run(_stepped_idents, 3, on_item=stepped.append))
    idents += stepped
    idents += [i async for i in tiny_runtime.stream(_stepped_idents, 2)]
    idents += list(tiny_runtime.call(_nested, tiny_runtime))
    assert len(idents) == 12
    assert len(set(idents)) == 1
    assert idents[0] != threading.get_ident()
    assert idents[0] == tiny_runtime._thread.ident


# -- priorities ---------------------------------------------------------------------------------


def _background(ctx: ModelContext, order: list, n: int, pause_at: int,
                reached: threading.Event, go: threading.Event):
    for i in range(n):
        order.append(("bg", i))
        if i == pause_at:  # hold the thread until the test has queued its chat jobs
            reached.set()
            assert go.wait(WAIT)
        yield i
    return "bg done"


def _chat(ctx: ModelContext, order: list, name: str) -> str:
    order.append(("chat", name))
    return name


def test_chat_jobs_run_before_the_next_background_step(tiny_runtime):
    order: list = []
    reached, go = threading.Event(), threading.Event()
    bg = tiny_runtime.submit(_background, order, 6, 2, reached, go, priority=BACKGROUND)
    assert reached.wait(WAIT)
    chats = [tiny_runtime.submit(_chat, order, name, priority=CHAT) for name in ("a", "b")]
    later_bg = tiny_runtime.submit(_chat, order, "later-background", priority=BACKGROUND)
    go.set()
    assert bg.result(WAIT) == "bg done"
    assert [c.result(WAIT) for c in chats] == ["a", "b"]
    later_bg.result(WAIT)
    assert order[:6] == [("bg", 0), ("bg", 1), ("bg", 2), ("chat", "a"), ("chat", "b"),
                         ("bg", 3)]
    # Equal priority is first come, first served: the earlier background job finishes first.
    assert order[6:] == [("bg", 4), ("bg", 5), ("chat", "later-background")]


# -- streaming and cancellation -------------------------------------------------------------------


def _pieces(ctx: ModelContext, n: int, fail: bool):
    for i in range(n):
        yield f"p{i}"
    if fail:
        raise ValueError("boom after the pieces")
    return "done"


@pytest.mark.asyncio
async def test_stream_yields_pieces_in_order(tiny_runtime):
    got = [p async for p in tiny_runtime.stream(_pieces, 4, False)]
    assert got == ["p0", "p1", "p2", "p3"]


@pytest.mark.asyncio
async def test_stream_reraises_the_jobs_exception(tiny_runtime):
    got = []
    with pytest.raises(ValueError, match="boom after the pieces"):
        async for piece in tiny_runtime.stream(_pieces, 3, True):
            got.append(piece)
    assert got == ["p0", "p1", "p2"]


@pytest.mark.asyncio
async def test_run_returns_the_generators_value_and_reraises(tiny_runtime):
    items: list[str] = []
    assert await tiny_runtime.run(_pieces, 2, False, on_item=items.append) == "done"
    assert items == ["p0", "p1"]
    with pytest.raises(ValueError, match="boom"):
        await tiny_runtime.run(_pieces, 1, True)
    assert await tiny_runtime.run(_ident)  # the thread survives a failed job


def _endless(ctx: ModelContext, steps: list, closed: threading.Event):
    try:
        while len(steps) < 100_000:  # a bound so a broken cancel fails instead of hanging
            steps.append(len(steps))
            yield len(steps)
    finally:
        closed.set()


@pytest.mark.asyncio
async def test_leaving_a_stream_stops_the_generator_job(tiny_runtime):
    steps: list[int] = []
    closed = threading.Event()
    async with aclosing(tiny_runtime.stream(_endless, steps, closed)) as pieces:
        async for n in pieces:
            if n == 3:
                break
    assert closed.wait(WAIT)
    done = len(steps)
    await tiny_runtime.run(_ident, priority=BACKGROUND)  # anything queued has run by now
    assert len(steps) == done < 100_000


@pytest.mark.asyncio
async def test_cancelling_the_awaiting_task_stops_the_generator_job(tiny_runtime):
    loop = asyncio.get_running_loop()
    steps: list[int] = []
    closed = threading.Event()
    third = asyncio.Event()

    def seen(n: int) -> None:
        if n == 3:
            loop.call_soon_threadsafe(third.set)

    task = asyncio.create_task(tiny_runtime.run(_endless, steps, closed, on_item=seen))
    await third.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed.wait(WAIT)
    done = len(steps)
    await tiny_runtime.run(_ident, priority=BACKGROUND)
    assert len(steps) == done < 100_000


def test_a_cancelled_job_fails_with_job_cancelled(tiny_runtime):
    steps: list[int] = []
    closed, second = threading.Event(), threading.Event()
    fut = tiny_runtime.submit(_endless, steps, closed,
                              on_item=lambda n: second.set() if n == 2 else None)
    assert second.wait(WAIT)
    fut.job.cancelled.set()
    assert isinstance(fut.exception(WAIT), JobCancelled)
    assert closed.is_set()


def test_a_consumer_whose_event_loop_closed_fails_only_its_job(runtime):
    """Pieces for a consumer that has gone away must not kill the model thread."""
    gone = asyncio.new_event_loop()
    gone.close()
    steps: list[int] = []
    closed = threading.Event()
    fut = runtime.submit(_endless, steps, closed,
                         on_item=lambda n: gone.call_soon_threadsafe(print, n))
    with pytest.raises(RuntimeError, match="closed"):
        fut.result(WAIT)
    assert closed.is_set() and steps == [0]
    assert runtime.submit(_ident).result(WAIT) == runtime._thread.ident


# -- shutdown and load errors ----------------------------------------------------------------------


def test_close_fails_queued_jobs_with_runtime_closed(runtime):
    started, go, closed = threading.Event(), threading.Event(), threading.Event()

    def midway(ctx: ModelContext):
        try:
            started.set()
            assert go.wait(WAIT)
            yield 1
            yield 2
        finally:
            closed.set()

    running = runtime.submit(midway, priority=BACKGROUND)
    assert started.wait(WAIT)
    queued = [runtime.submit(_ident, priority=p) for p in (CHAT, BACKGROUND, CHAT)]
    runtime.close(timeout=0)  # mark closed without waiting for the busy thread
    with pytest.raises(RuntimeClosed):
        runtime.submit(_ident)
    go.set()
    for fut in [running, *queued]:
        assert isinstance(fut.exception(WAIT), RuntimeClosed)
    assert closed.wait(WAIT)  # the half-run generator was closed (its finally ran)
    runtime.close()
    assert runtime._stopped.is_set()


def test_close_releases_the_model(tiny_model_dir):
    """The stopped thread stays parked (see the next test) but holds nothing of the model."""
    cfg = load_config(data_dir=Path("/nonexistent"), model=str(tiny_model_dir), env={})
    rt = model_runtime(cfg).start()
    model = weakref.ref(rt.loaded.model)
    rt.submit(stream_reply, None, None, [{"role": "user", "content": "hi"}], 3).result(WAIT)
    rt.close()
    del rt
    gc.collect()
    assert model() is None


EXIT_SCRIPT = """
import sys
from pathlib import Path
from runtime.config import load_config
from bot.engine import model_runtime
from runtime.generation import stream_reply
from runtime.generation import stream_reply
from runtime.thread import ModelRuntime
cfg = load_config(data_dir=Path("/nonexistent"), model=sys.argv[1], env={})
rt = model_runtime(cfg).start()
for _ in range(2):
    rt.submit(stream_reply, None, None, [{"role": "user", "content": "hello"}], 4).result()
rt.close()
print("closed")
"""


def test_process_exits_cleanly_right_after_close(tiny_model_dir):
    """Regression: a model thread exiting as the interpreter shut down aborted the process
    ("terminate called without an active exception", exit 134) about one run in three."""
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(tiny_model_dir)],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
        assert (out.returncode, out.stdout.strip()) == (0, "closed"), out.stderr


def test_a_load_error_surfaces_from_start():
    def broken_loader():
        raise ModelError("the model file is corrupt")

    with pytest.raises(ModelError, match="the model file is corrupt"):
        ModelRuntime(broken_loader).start()


@pytest.mark.asyncio
async def test_a_load_error_surfaces_from_astart(tmp_path):
    (tmp_path / "not-a-model").mkdir()
    cfg = load_config(data_dir=tmp_path, model=str(tmp_path / "not-a-model"), env={})
    with pytest.raises(ModelError, match="no config.json"):
        await model_runtime(cfg).astart()


# -- per-user weights ------------------------------------------------------------------------------


def _make_checkpoints(ctx: ModelContext, root: Path) -> dict[str, Path]:
    """Checkpoints for alice (changes q_proj of layer 0) and bob (down_proj of layer 1)."""
    mods = dict(ctx.model.named_modules())
    mx.random.seed(1)
    out = {}
    for user, path in (("alice", Q_PROJ), ("bob", DOWN_PROJ), ("carol", Q_PROJ)):
        w = mods[path].weight
        delta = {f"{path}.weight": w + 0.5 * mx.random.normal(w.shape, dtype=w.dtype)}
        out[user] = save_checkpoint(root / user, 1, delta, {"base_model": "tiny"})
    return out


def _swap_job(ctx: ModelContext, ckpts: dict[str, Path]) -> dict:
    ids = mx.array([[1, 9906, 11, 905, 17, 2]])
    before = dict(ctx.model.named_modules())
    base_logits = ctx.model(ids)
    ctx.use_user("alice", ckpts["alice"])
    alice = dict(ctx.model.named_modules())
    alice_logits = ctx.model(ids)
    ctx.use_user("bob", ckpts["bob"])
    bob = dict(ctx.model.named_modules())
    ctx.use_base()
    after = dict(ctx.model.named_modules())
    mx.eval(base_logits, alice_logits)
    return {
        "q_swapped": alice[Q_PROJ] is not before[Q_PROJ],
        "q_is_linear": type(alice[Q_PROJ]) is nn.Linear,
        "q_weight_from_ckpt": mx.array_equal(
            alice[Q_PROJ].weight, mx.load(str(ckpts["alice"] / "delta.safetensors"))[
                f"{Q_PROJ}.weight"]).item(),
        "alice_others_base": all(alice[p] is m for p, m in before.items() if p != Q_PROJ),
        "alice_changes_logits": not mx.allclose(alice_logits, base_logits).item(),
        "bob_restores_q": bob[Q_PROJ] is before[Q_PROJ],
        "bob_swaps_down": bob[DOWN_PROJ] is not before[DOWN_PROJ],
        "identity_after_base": all(after[p] is m for p, m in before.items()),
        "same_logits_after_base": mx.array_equal(ctx.model(ids), base_logits).item(),
        "active": (ctx.active_user, ctx.active_checkpoint),
    }


def test_use_user_swaps_modules_and_use_base_restores_them(runtime, tmp_path):
    ckpts = runtime.call(_make_checkpoints, tmp_path / "ckpt")
    got = runtime.call(_swap_job, ckpts)
    assert got.pop("active") == (None, None)
    assert got == {k: True for k in got}, got


def _cache_job(ctx: ModelContext, ckpts: dict[str, Path]) -> list[bool]:
    a1 = ctx.user_overrides("alice", ckpts["alice"])
    b1 = ctx.user_overrides("bob", ckpts["bob"])
    a2 = ctx.user_overrides("alice", ckpts["alice"])  # a hit; alice is now the newest
    ctx.user_overrides("carol", ckpts["carol"])  # cache size 2: bob, the oldest, goes
    b2 = ctx.user_overrides("bob", ckpts["bob"])  # reloaded from disk; alice goes
    a3 = ctx.user_overrides("alice", ckpts["alice"])
    ctx.forget_cached("alice")
    a4 = ctx.user_overrides("alice", ckpts["alice"])
    return [a2 is a1, b2 is not b1, a3 is not a1, a4 is not a3, len(ctx._cache) <= 2,
            ctx.user_overrides("nobody", None) == {}]


def test_the_lru_cache_is_bounded(runtime, tmp_path):
    ckpts = runtime.call(_make_checkpoints, tmp_path / "ckpt")
    assert runtime.call(_cache_job, ckpts) == [True] * 6
