"""The orchestrator on the tiny model: queue, triggers, chat during sleep, stop and restart.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_orchestrator.py

Real SQLite, real logs, real MLX (the shared tiny runtime); cycles run the whole pipeline.
Users without exchanges give "empty" cycles, which are quick: they test the queue itself.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot.engine import open_engine
from bot.orchestrator import Orchestrator, next_nightly
from memory import checkpoints
from memory.store import Store
from runtime.thread import CHAT
from tests.conftest import lock_held_elsewhere

FACTS = ["My name is Alice and I live in Lisbon.", "My dog is called Biscuit.",
         "My favourite word is zorblaxen."]


def fast(cfg):
    """Small, decisive cycles: one phrasing per fact, two LoRA layers, a gate that only asks
    for the facts to improve."""
    cfg.sleep.phrasings_per_fact = 1
    cfg.sleep.lora.layers = 2
    cfg.sleep.tau = 0.0
    cfg.sleep.train.learning_rate = 1e-3
    return cfg


class Events:
    """Progress events of one job as an awaitable log."""

    def __init__(self):
        self.seen: list[tuple[str, dict]] = []
        self._cond = asyncio.Condition()

    def __call__(self, stage: str, info: dict) -> None:
        self.seen.append((stage, info))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self):
        async with self._cond:
            self._cond.notify_all()

    async def wait(self, stage: str, timeout: float = 300) -> dict:
        async def has():
            async with self._cond:
                await self._cond.wait_for(lambda: any(s == stage for s, _ in self.seen))
        await asyncio.wait_for(has(), timeout)
        return next(i for s, i in self.seen if s == stage)

    def stages(self) -> list[str]:
        return [s for s, _ in self.seen]


async def say(orch: Orchestrator, user: str, text: str):
    stream = orch.handle_message(user, text)
    async for _ in stream:
        pass
    return stream.reply


async def log_facts(engine, user: str, facts=FACTS) -> None:
    """Log exchanges without generating (as `bot ingest` does with given replies)."""
    from bot.wake import ChatService

    chat = ChatService(engine)
    for text in facts:
        await chat.save(user, text, "Noted.", None, "ingest")


@pytest.mark.asyncio
async def test_queue_merges_per_user_and_keeps_fifo(tiny_config, tiny_runtime):
    async with open_engine(tiny_config, runtime=tiny_runtime) as engine:
        orch = Orchestrator(engine)  # not started: the queue alone
        events = Events()
        a = await orch.request_sleep("ann", "light", progress=events)
        b = await orch.request_sleep("ben", "light")
        again = await orch.request_sleep("ann", "deep")
        assert again == a and b != a
        assert events.seen[0] == ("queued", {"position": 1, "job_id": a})
        assert (orch.queue_position("ann"), orch.queue_position("ben")) == (1, 2)
        assert orch.state("ann").state == "queued" and orch.state("ann").job_id == a
        assert orch.state("cy").state == "awake"
        snap = await engine.store.queue_snapshot()
        assert [(r.user_id, r.kind) for r in snap] == [("ann", "deep"), ("ben", "light")]
        with pytest.raises(ValueError):
            await orch.request_sleep("ann", "nap")


@pytest.mark.asyncio
async def test_cycles_run_one_at_a_time_and_deep_never_starves_light(tiny_config, tiny_runtime):
    order: list[tuple[str, str]] = []
    async with open_engine(tiny_config, runtime=tiny_runtime) as engine:
        orch = Orchestrator(engine)
        jobs = []
        for user, kind in [("d1", "deep"), ("d2", "deep"), ("d3", "deep"), ("l1", "light")]:
            def record(stage, info, user=user):
                if stage == "done":
                    order.append((user, info["status"]))
            jobs.append(await orch.request_sleep(user, kind, progress=record))
        await orch.start()
        reports = [await orch.wait_for_job(j, timeout=300) for j in jobs]
        await orch.stop()
    # users without exchanges: quick "empty" cycles, strictly one after another
    assert all(r is not None and r.status == "empty" for r in reports)
    assert [u for u, _ in order] == ["d1", "l1", "d2", "d3"]
    spans = list(orch.spans)  # [user, start, end] of each cycle run
    assert [user for user, _, _ in spans] == ["d1", "l1", "d2", "d3"]
    assert all(prev[2] <= nxt[1] for prev, nxt in zip(spans, spans[1:], strict=False))


async def probe_model_thread(orch: Orchestrator, user: str, done: asyncio.Future,
                             chatting: list[bool]) -> dict:
    """Until ``done``: submit a chat job at once, again and again, and count how many sleep
    steps ran between its submission and its start (at most the one already running).
    Probes that overlap a real chat (``chatting[0]``, whose own steps count too) are skipped."""
    runtime, worst, per_stage = orch.engine.runtime, 0, {}
    while not done.done():
        stage, quiet = orch.state(user).stage, not chatting[0]
        before = runtime.steps_run
        at = await runtime.run(lambda ctx: runtime.steps_run, priority=CHAT)
        if quiet and not chatting[0]:
            worst = max(worst, at - before)
            per_stage[stage] = per_stage.get(stage, 0) + 1
    return {"worst": worst, "per_stage": per_stage}


@pytest.mark.asyncio
async def test_threshold_cycle_runs_between_chat_jobs_and_chat_keeps_old_weights(
        tiny_config, tiny_runtime):
    cfg = fast(tiny_config)
    cfg.sleep.turn_threshold = 3
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        orch = Orchestrator(engine)
        await orch.start()
        events = Events()
        replies = [await say(orch, "alice", t) for t in FACTS[:2]]
        assert orch.state("alice").state == "awake"
        replies.append(await say(orch, "alice", FACTS[2]))
        state = orch.state("alice")
        assert state.state in ("queued", "sleeping") and state.job_id is not None
        job = await orch.request_sleep("alice", progress=events)  # merges into that job
        assert job == state.job_id
        waited = asyncio.ensure_future(orch.wait_for_job(job, timeout=600))
        chatting = [False]
        probes = asyncio.create_task(probe_model_thread(orch, "alice", waited, chatting))
        await events.wait("training")  # validation (many steps) and fusion are still ahead
        # asleep: alice is answered, with her weights from before the cycle
        assert orch.state("alice").state == "sleeping"
        chatting[0] = True
        during = await say(orch, "alice", "What is my dog called?")
        chatting[0] = False
        assert during.checkpoint == "base" and during.saved
        report = await waited
        probed = await probes
        await orch.stop()
        assert report is not None and report.status == "accepted", report and report.reason
        assert "done" in events.stages() and events.stages().index("training") < \
            events.stages().index("done")
        status = await orch.status("alice")
        assert status["checkpoint"] == "alice/v0001" and status["facts_consolidated"] > 0
        assert status["checkpoint_bytes"] > 0 and status["turns_since_sleep"] <= 1
        assert (await say(orch, "alice", "Hi")).checkpoint == "alice/v0001"
        assert status["state"] == "awake" and status["next_sleep"].startswith("after ")
    assert all(r.saved and r.exchange_id for r in replies)
    # sleep never held the model thread for more than the step it was in, and scoring is
    # stepped too: chat got in many times during validation, not once (each step scores up
    # to STEP_TOKENS tokens, several built-in items side by side: ~10 steps on this model)
    assert probed["worst"] <= 1
    assert probed["per_stage"].get("validation", 0) >= 5
    assert probed["per_stage"].get("training", 0) >= 5


@pytest.mark.asyncio
async def test_stop_keeps_the_job_and_a_restart_finishes_it(tiny_config, tiny_runtime):
    cfg = fast(tiny_config)
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        await log_facts(engine, "alice")
        root = engine.paths("alice").checkpoints
        orch = Orchestrator(engine)
        await orch.start()
        events = Events()
        job = await orch.request_sleep("alice", progress=events)
        await events.wait("training")  # a step report from inside training
        await orch.stop(timeout=30)
        assert "interrupted" in events.stages() and "done" not in events.stages()
        snap = await engine.store.queue_snapshot()
        assert [(r.id, r.state) for r in snap] == [(job, "queued")]
        assert [c.status for c in await engine.store.cycles("alice")] == ["failed"]
        assert checkpoints.current_path(root) is None  # never touched before promotion
        assert orch.state("alice").state == "queued"
        # the model thread is alive and free: chat still works after stop
        assert (await say(orch, "alice", "Hello again")).saved

        again = Orchestrator(engine)
        await again.start()
        report = await again.wait_for_job(job, timeout=600)
        await again.stop()
    assert report is not None and report.status == "accepted", report and report.reason
    assert report.checkpoint == "alice/v0001"


@pytest.mark.asyncio
async def test_run_exclusive_waits_for_the_users_cycle_and_holds_their_queue(
        tiny_config, tiny_runtime):
    cfg = fast(tiny_config)
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        await log_facts(engine, "alice")
        orch = Orchestrator(engine)
        await orch.start()
        events = Events()
        first = await orch.request_sleep("alice", progress=events)
        await events.wait("curation")
        release, inside = asyncio.Event(), asyncio.Event()
        seen: list[str] = []

        async def forget_like() -> str:
            seen.append(orch.state("alice").state)  # the first cycle is over by now
            second = await orch.request_sleep("alice")
            seen.append(orch.state("alice").state)
            inside.set()
            await release.wait()
            return f"job {second}"

        task = asyncio.create_task(orch.run_exclusive("alice", forget_like))
        first_report = await orch.wait_for_job(first, timeout=600)
        assert first_report is not None
        await asyncio.wait_for(inside.wait(), 60)
        assert seen == ["awake", "queued"] and orch.state("alice").state == "queued"
        released_at = time.monotonic()
        release.set()
        label = await task
        second = int(label.split()[1])
        assert (await orch.wait_for_job(second, timeout=600)) is not None
        await orch.stop()
    # alice's second cycle started only once forget_like had returned
    starts = [start for user, start, _ in orch.spans if user == "alice"]
    assert len(starts) == 2 and starts[1] >= released_at


@pytest.mark.asyncio
async def test_idle_and_nightly_triggers(tiny_config, tiny_runtime):
    cfg = tiny_config
    cfg.sleep.idle_minutes = 30
    cfg.sleep.nightly_time = "03:30"
    now = [time.time()]
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        await log_facts(engine, "quiet")
        await log_facts(engine, "night", FACTS[:1])
        orch = Orchestrator(engine, clock=lambda: now[0])  # triggers checked by hand
        assert await orch.check_triggers() == []  # nobody idle yet, no night yet
        now[0] += 31 * 60
        first = await orch.check_triggers()
        assert len(first) == 2  # both went quiet 31 minutes ago
        assert await orch.check_triggers() == []  # once per silence
        for job in first:
            await engine.store.set_job_state(job, "done")
        await orch._sync_queue()  # noqa: SLF001 (as the worker would)
        assert await orch.check_triggers() == []
        now[0] = next_nightly(now[0], "03:30") + 1
        nightly = await orch.check_triggers()
        snap = await engine.store.queue_snapshot()
        assert len(nightly) == 2 and {r.kind for r in snap} == {"deep"}
        assert orch.state("night").state == "queued"


def test_next_nightly_is_the_next_local_time():
    import datetime as dt

    base = dt.datetime(2030, 5, 4, 2, 0).timestamp()
    assert dt.datetime.fromtimestamp(next_nightly(base, "03:30")) == dt.datetime(2030, 5, 4, 3, 30)
    later = dt.datetime(2030, 5, 4, 3, 30).timestamp()
    assert dt.datetime.fromtimestamp(next_nightly(later, "03:30")) == dt.datetime(2030, 5, 5, 3,
                                                                                    30)


@pytest.mark.asyncio
async def test_cancelling_a_running_model_job_leaves_the_model_thread_alive(tiny_runtime):
    """stop() cancels the cycle while a plain job may be running on the model thread."""
    import threading

    started, release = threading.Event(), threading.Event()

    def slow(ctx):
        started.set()
        release.wait(30)
        return 1

    task = asyncio.create_task(tiny_runtime.run(slow))
    while not started.is_set():
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert await asyncio.wait_for(tiny_runtime.run(lambda ctx: 2), 30) == 2


def test_cli_status_shows_queue_and_states(tiny_config, tiny_runtime, cli):
    async def setup():
        async with open_engine(tiny_config, runtime=tiny_runtime) as engine:
            await log_facts(engine, "alice")
            await log_facts(engine, "bob", FACTS[:1])
            orch = Orchestrator(engine)
            await orch.request_sleep("bob", "deep")

    asyncio.run(setup())
    out = cli("status", "--json", data_dir=tiny_config.data_dir)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    users = {u["user_id"]: u for u in status["users"]}
    assert users["bob"]["state"] == "queued" and users["bob"]["queue_position"] == 1
    assert users["alice"]["state"] == "awake" and users["alice"]["turns_since_sleep"] == 3
    assert "7 more turns" in users["alice"]["next_sleep"]
    assert status["queue"][0]["kind"] == "deep" and not status["orchestrator"]["running"]
    text = cli("status", "--user", "alice", data_dir=tiny_config.data_dir)
    assert text.returncode == 0 and "alice: awake" in text.stdout


@pytest.mark.asyncio
async def test_one_queue_per_data_dir_and_no_recovery_under_a_live_one(tiny_config,
                                                                       tiny_runtime):
    """A second process must not 'recover' the cycle a live bot is running."""
    from bot.orchestrator import QueueBusy

    async with open_engine(tiny_config, runtime=tiny_runtime) as engine:
        first = Orchestrator(engine)
        await first.start()
        with pytest.raises(QueueBusy):
            await Orchestrator(engine).start()
        await first.stop()

        cycle = await engine.store.start_cycle("alice", "light")  # as a live bot's cycle
        with lock_held_elsewhere(tiny_config.data_dir):
            await engine.recover()
            assert [c.status for c in await engine.store.cycles("alice")] == ["running"]
            with pytest.raises(QueueBusy):
                await Orchestrator(engine).start()
        await engine.recover()  # the holder died: now it is a crash leftover
        assert [(c.id, c.status) for c in await engine.store.cycles("alice")] == \
            [(cycle, "failed")]


def test_cli_sleep_refuses_while_another_process_runs_the_queue(tiny_config, tiny_model_dir,
                                                                 cli):
    """`python -m bot sleep` goes through the queue: it needs the queue lock, and while a live
    bot holds it, it says so, exits non-zero and leaves the live cycle alone."""

    async def seed() -> int:
        async with open_engine(tiny_config) as engine:
            await log_facts(engine, "alice")
            return await engine.store.start_cycle("alice", "light")  # the live bot's cycle

    cycle = asyncio.run(seed())
    with lock_held_elsewhere(tiny_config.data_dir):
        out = cli("sleep", "--user", "alice", data_dir=tiny_config.data_dir,
                  model=tiny_model_dir)
    assert out.returncode == 2, out.stderr
    assert "runs the sleep queue" in out.stderr and "Traceback" not in out.stderr

    async def after() -> list:
        async with await Store.open(tiny_config.data_dir / "sleepbot.db") as store:
            return [(c.id, c.status) for c in await store.cycles("alice")]

    assert asyncio.run(after()) == [(cycle, "running")]  # not "recovered", not touched


@pytest.mark.asyncio
async def test_every_deep_every_th_cycle_is_deep_and_recorded(tiny_config, tiny_runtime):
    cfg = fast(tiny_config)
    cfg.sleep.deep_every = 2
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        orch = Orchestrator(engine)
        await orch.start(worker=False, triggers=False)  # as the CLI runs it
        await log_facts(engine, "alice", FACTS[:2])
        first = await orch.run_now("alice", "light")
        await log_facts(engine, "alice", FACTS[2:])
        second = await orch.run_now("alice", "light")
        await orch.stop()
        assert (first.kind, first.status) == ("light", "accepted")
        assert (second.kind, second.status) == ("deep", "accepted")
        assert [c.kind for c in await engine.store.cycles("alice")] == ["light", "deep"]
