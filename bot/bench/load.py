"""``python -m bot bench load``: many simulated users chat while sleep cycles run.

    python -m bot bench load --tiny [--users 50] [--messages 1000] [--rate R] [--json]
    python -m bot bench load --users 10 --messages 100          (the bundled model)

Every simulated user is a task calling :meth:`Orchestrator.handle_message` (the Discord
layer's entry point) at random moments spread over ``messages / rate`` seconds (a message
waits for the user's previous reply). ``--rate 0`` (default) picks the rate at which chat
fills about 40% of the model thread, from a few warm-up replies. Half the users are chatty
(past the turn threshold: light cycles queue by themselves), the other half are quiet and
ask for sleep by hand after their last message. Each user states a unique secret word ("My
favourite word is qzvkrtma.") that ends up in their log, exchanges and, after an accepted
cycle, their replay buffer.

The queue is paused every other ``--window`` seconds, so that messages answered with and
without a cycle running are spread over the whole run: on a shared machine the load drifts,
and conversations grow, so comparing the start of a run with its end would be unfair.

Reported: reply latency (request to saved reply) p50/p95/p99 for messages answered while no
cycle ran (``idle``) and while one ran (``sleep``); messages lost (a sent message without its
exchange in SQLite and the JSONL log: must be 0); cross-user leaks (a user's secret in another
user's log, exchanges or replay buffer: must be 0); cycles finished, their mean length and
cycles per hour. Runs in a temporary data directory; ``--tiny`` builds a random 4-layer llama
with the bundled tokenizer there (the test suite's tiny model), so no fixture is needed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import platform
import random
import string
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runtime.config import Config
from runtime.tiny import build_tiny_model

log = logging.getLogger(__name__)

CITIES = ["Lisbon", "Porto", "Krakow", "Lyon", "Bergen", "Tartu", "Ghent", "Turin", "Cork"]
PETS = ["Biscuit", "Pepper", "Miso", "Luna", "Rocket", "Noodle", "Juniper", "Waffle"]
JOBS = ["nurse", "carpenter", "teacher", "baker", "pilot", "librarian", "chemist"]
CHAT_SHARE = 0.4  # --rate 0: messages per second = CHAT_SHARE / median reply seconds
WARMUP_USER = "bench-warmup"
FILLER = ["How are you today?", "Tell me something interesting.", "What should I cook tonight?",
          "Any idea for the weekend?", "I had a long day.", "Can you suggest a good book?"]


@dataclass
class LoadOptions:
    users: int = 50
    messages: int = 1000
    rate: float = 0.0  # messages per second over the whole run; 0: chat fills ~40% of the
    # model thread (measured from a few warm-up replies), leaving room for cycles
    max_tokens: int = 24
    context_tokens: int = 512  # the sliding window's budget (summaries keep prompts short)
    window: float = 30.0  # seconds; the queue is paused every other window (0: never)
    threshold: int = 10
    seed: int = 0


@dataclass
class SimUser:
    user_id: str
    secret: str
    messages: list[str]
    manual_at: int | None  # request sleep after this many messages (quiet users)
    times: list[float]  # when to send each message, seconds from the start


@dataclass
class Sample:
    user_id: str
    seconds: float
    during_sleep: bool


@dataclass
class LoadResult:
    model: str
    users: int
    messages: int
    seconds: float
    n_idle: int
    n_sleep: int
    p50_idle: float
    p95_idle: float
    p99_idle: float
    p50_sleep: float
    p95_sleep: float
    p99_sleep: float
    p95_ratio: float
    lost: int
    errors: int
    leaks: int
    own_secret_found: int
    cycles: int
    cycle_statuses: dict[str, int]
    cycles_per_hour: float  # cycles finished per hour of the queue working (a cycle running)
    cycles_per_wall_hour: float  # ... per hour of the run (the queue was paused half of it)
    cycle_seconds_mean: float
    jobs_left_queued: int
    longest_background_step: float = 0.0
    background_seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def secret_word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(10))


def plan_users(opts: LoadOptions) -> list[SimUser]:
    """Chatty users (past the threshold) and quiet users (manual sleep), ``messages`` total."""
    rng = random.Random(opts.seed)
    n_chatty = max(1, opts.users // 2)
    quiet_each = max(1, min(opts.threshold - 1, opts.messages // opts.users))
    quiet_total = quiet_each * (opts.users - n_chatty)
    chatty_total = max(n_chatty, opts.messages - quiet_total)
    duration = opts.messages / opts.rate
    counts = _split(chatty_total, n_chatty, rng)
    users, secrets = [], set()
    for n in range(opts.users):
        chatty = n < n_chatty
        count = counts[n] if chatty else quiet_each
        secret = secret_word(rng)
        while secret in secrets:
            secret = secret_word(rng)
        secrets.add(secret)
        times = sorted(rng.uniform(0, duration) for _ in range(count))
        users.append(SimUser(f"sim{n:03d}", secret, _messages(rng, count, secret),
                             None if chatty else count, times))
    return users


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` as ``parts`` counts that vary ±40% around the mean (each at least 1)."""
    mean = total / parts
    counts = [max(1, round(mean * rng.uniform(0.6, 1.4))) for _ in range(parts)]
    while sum(counts) != total:  # nudge to the exact total
        i = rng.randrange(parts)
        step = 1 if sum(counts) < total else -1
        if counts[i] + step >= 1:
            counts[i] += step
    return counts


def _messages(rng: random.Random, count: int, secret: str) -> list[str]:
    facts = [f"My favourite word is {secret}.", f"I live in {rng.choice(CITIES)}.",
             f"My dog is called {rng.choice(PETS)}.", f"I work as a {rng.choice(JOBS)}.",
             f"Remember: my favourite word is {secret}."]
    out = []
    for i in range(count):
        out.append(facts[i // 2 % len(facts)] if i % 2 == 0 else rng.choice(FILLER))
    if secret not in " ".join(out):  # every user says their secret at least once
        out[0] = facts[0]
    return out


async def reply_seconds(engine, n: int = 10) -> float:
    """Median seconds of a reply on this machine once the working memory is as full as in the
    run (the last half of ``n`` turns of a warm-up user, who is not part of the checks)."""
    from bot.wake import ChatService

    chat, times = ChatService(engine), []
    for i in range(n):
        tic = time.perf_counter()
        await chat.reply(WARMUP_USER, FILLER[i % len(FILLER)])
        times.append(time.perf_counter() - tic)
    steady = sorted(times[n // 2:])
    return steady[len(steady) // 2]


def time_background_steps(runtime) -> dict:
    """Wrap the runtime's step so the run can report how long sleep held the model thread."""
    from runtime.thread import CHAT

    stats = {"longest": 0.0, "seconds": 0.0}
    step = runtime._step  # noqa: SLF001 (bench instrumentation of this process's runtime)

    def timed(job) -> None:
        tic = time.perf_counter()
        step(job)
        if job.priority > CHAT:
            took = time.perf_counter() - tic
            stats["longest"] = max(stats["longest"], took)
            stats["seconds"] += took

    runtime._step = timed  # noqa: SLF001
    return stats


async def _alternate(orch, window: float) -> None:
    """Pause the queue every other window, so that messages answered with and without a
    cycle running are spread over the whole run (a shared machine's load drifts)."""
    if window <= 0:
        return
    while True:
        orch.pause()
        await asyncio.sleep(window)
        orch.resume()
        await asyncio.sleep(window)


def overlaps(spans, t0: float, t1: float) -> bool:
    return any(start < t1 and (end is None or end > t0) for _user, start, end in spans)


async def _simulate(orch, user: SimUser, samples: list[Sample], sent: dict[str, list],
                    errors: list[str]) -> None:
    start = time.monotonic()
    for n, (text, at) in enumerate(zip(user.messages, user.times, strict=True), 1):
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        t0 = time.monotonic()
        stream = orch.handle_message(user.user_id, text)
        try:
            async for _ in stream:
                pass
        except Exception as exc:  # counted as lost; the run goes on
            errors.append(f"{user.user_id}: {type(exc).__name__}: {exc}")
            continue
        t1 = time.monotonic()
        samples.append(Sample(user.user_id, t1 - t0, overlaps(list(orch.spans), t0, t1)))
        sent[user.user_id].append((text, stream.reply))
        if user.manual_at == n:
            await orch.request_sleep(user.user_id, "light")


async def _lost(engine, user: SimUser, sent: list) -> int:
    """Sent messages whose exchange is missing from SQLite or from the JSONL log."""
    rows = {e.id: e.user_text for e in await engine.store.exchanges(user.user_id)}
    logged = {r.get("id"): r.get("user") for r in await engine.conversation_log(
        user.user_id).aread()}
    lost = 0
    for text, reply in sent:
        ok = (reply is not None and reply.saved and rows.get(reply.exchange_id) == text
              and logged.get(reply.exchange_id) == text)
        lost += not ok
    return lost


async def _leaks(engine, users: list[SimUser]) -> tuple[int, int]:
    """(other users' secrets found in a user's data, own secrets found)."""
    leaks = own = 0
    for user in users:
        texts = [f"{e.user_text}\n{e.assistant_text}" for e in
                 await engine.store.exchanges(user.user_id)]
        texts += [json.dumps(r) for r in await engine.conversation_log(user.user_id).aread()]
        texts += [f"{i.question}\n{i.answer}" for i in
                  await engine.store.replay_items(user.user_id)]
        blob = "\n".join(texts)
        own += user.secret in blob
        leaks += sum(1 for other in users if other is not user and other.secret in blob)
    return leaks, own


async def run_load(cfg: Config, opts: LoadOptions) -> LoadResult:
    """Run the simulation on ``cfg`` (its data dir should be a fresh one)."""
    from bot.engine import open_engine
    from bot.orchestrator import Orchestrator

    cfg.chat.max_tokens = opts.max_tokens
    # Bounded working memory: without it later messages (more often answered during a cycle)
    # carry longer prompts, and the comparison would measure prompt length, not sleep.
    cfg.chat.context_tokens = opts.context_tokens
    cfg.chat.keep_recent_turns = 2
    cfg.sleep.turn_threshold = opts.threshold
    cfg.sleep.idle_minutes = 0  # only the turn threshold and manual requests in this run
    samples: list[Sample] = []
    errors: list[str] = []
    async with open_engine(cfg) as engine:
        if opts.rate <= 0:
            opts.rate = round(CHAT_SHARE / await reply_seconds(engine), 3)
        users = plan_users(opts)
        sent: dict[str, list] = {u.user_id: [] for u in users}
        background = time_background_steps(engine.runtime)
        orch = Orchestrator(engine)
        await orch.start()
        tic = time.monotonic()
        toggler = asyncio.create_task(_alternate(orch, opts.window), name="bench-windows")
        try:
            await asyncio.gather(*(_simulate(orch, u, samples, sent, errors) for u in users))
        finally:
            seconds = time.monotonic() - tic
            toggler.cancel()
            await orch.stop()
        lost = sum([await _lost(engine, u, sent[u.user_id]) for u in users])
        leaks, own = await _leaks(engine, users)
        statuses: dict[str, int] = {}
        done_spans = []  # seconds of each finished (not interrupted) cycle
        for u in users:
            for c in await engine.store.cycles(u.user_id):
                if c.status != "running" and c.report.get("error") != "interrupted":
                    statuses[c.status] = statuses.get(c.status, 0) + 1
                    done_spans.append(c.finished_at - c.started_at)
        left = len(await engine.store.queue_snapshot())
    busy = sum(done_spans)
    idle = [s.seconds for s in samples if not s.during_sleep]
    asleep = [s.seconds for s in samples if s.during_sleep]
    cycles = sum(statuses.values())
    p95_idle, p95_sleep = percentile(idle, 95), percentile(asleep, 95)
    for e in errors[:5]:
        log.warning("message failed: %s", e)
    return LoadResult(
        model=cfg.model, users=len(users), messages=sum(len(u.messages) for u in users),
        seconds=round(seconds, 1), n_idle=len(idle), n_sleep=len(asleep),
        p50_idle=_r(percentile(idle, 50)), p95_idle=_r(p95_idle), p99_idle=_r(percentile(idle, 99)),
        p50_sleep=_r(percentile(asleep, 50)), p95_sleep=_r(p95_sleep),
        p99_sleep=_r(percentile(asleep, 99)),
        p95_ratio=_r(p95_sleep / p95_idle) if idle and asleep else float("nan"),
        lost=lost + len(errors), errors=len(errors), leaks=leaks, own_secret_found=own,
        cycles=cycles, cycle_statuses=statuses,
        cycles_per_hour=round(cycles / (busy / 3600), 1) if busy else 0.0,
        cycles_per_wall_hour=round(cycles / (seconds / 3600), 1) if seconds else 0.0,
        cycle_seconds_mean=round(busy / len(done_spans), 1) if done_spans else 0.0,
        jobs_left_queued=left, longest_background_step=_r(background["longest"]),
        background_seconds=round(background["seconds"], 1), machine=machine_info(),
        settings=asdict(opts))


def _r(x: float) -> float:
    return round(x, 4)


def machine_info() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "note": "shared machine: other processes ran at the same time"}


def format_result(r: LoadResult) -> str:
    ratio = f"{r.p95_ratio:.2f}×" if r.p95_ratio == r.p95_ratio else "n/a"
    return "\n".join([
        f"load: {r.users} users, {r.messages} messages in {r.seconds:.0f}s "
        f"({r.settings.get('rate')} msg/s) on {r.model}",
        "  reply latency   n     p50     p95     p99   (seconds, request → saved reply)",
        f"  idle        {r.n_idle:5d} {r.p50_idle:7.3f} {r.p95_idle:7.3f} {r.p99_idle:7.3f}",
        f"  sleep       {r.n_sleep:5d} {r.p50_sleep:7.3f} {r.p95_sleep:7.3f} {r.p99_sleep:7.3f}",
        f"  p95 during sleep / idle: {ratio} (target ≤ 1.5×)",
        f"  messages lost: {r.lost}   cross-user leaks: {r.leaks} "
        f"(own secret found for {r.own_secret_found}/{r.users} users)",
        f"  cycles finished: {r.cycles} {r.cycle_statuses}, {r.cycle_seconds_mean:.0f}s each → "
        f"{r.cycles_per_hour:.0f}/hour while the queue works ({r.cycles_per_wall_hour:.0f} per "
        f"hour of this run, paused half the time); {r.jobs_left_queued} job(s) left queued",
        f"  model thread: {r.background_seconds:.0f}s of sleep work, longest sleep step "
        f"{r.longest_background_step:.3f}s",
        f"  machine: {r.machine.get('cpus')} CPUs, load {r.machine.get('load_avg_1m')} "
        f"({r.machine.get('note')})",
    ])


def prepare_config(cfg: Config, tiny: bool, workdir: Path) -> Config:
    """Point ``cfg`` at a fresh data dir under ``workdir`` (and the tiny model if asked)."""
    from memory.paths import models_dir
    from runtime.models import resolve_model

    if tiny:
        tokenizer = resolve_model("bundled:smollm2-135m", models_dir(cfg.data_dir))
        cfg.model = str(build_tiny_model(workdir / "tiny-llama", tokenizer))
    else:
        cfg.model = str(resolve_model(cfg.model, models_dir(cfg.data_dir)))
    cfg.data_dir = workdir / "data"
    return cfg


def run_load_bench(cfg: Config, opts: LoadOptions, tiny: bool) -> LoadResult:
    label = "tiny (random 4-layer llama, bundled tokenizer)" if tiny else cfg.model
    with tempfile.TemporaryDirectory(prefix="sleepbot-load-") as tmp:
        prepare_config(cfg, tiny, Path(tmp))
        result = asyncio.run(run_load(cfg, opts))
    result.model = label
    return result
