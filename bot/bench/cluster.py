"""``python -m bot bench cluster``: users' sleep cycles through a pool of Ray workers while
workers are killed, and how throughput scales from 1 to N workers.

    python -m bot bench cluster --tiny --json                       # 2 workers, 6 users
    python -m bot bench cluster --workers 3 --users 12 --kills 2 --stalls 1 --tiny

Runs in a temporary data directory on a local Ray cluster (``ray.init`` here: real worker
processes, no broker). Every user is told a few facts (stored exchanges) and gets one light
cycle. Phases:

* ``scaling``: the same users' cycles with 1 worker, then with N workers, nothing killed
  (fresh data each time): wall time and cycles per minute;
* ``faults``: N workers while a killer SIGKILLs a busy worker's process ``--kills`` times
  and freezes (SIGSTOP) one ``--stalls`` times until its lease has expired, then lets it go
  on (SIGCONT): its result comes back late and must be refused.

Reported: cycles done, lost jobs (a job that did not end in a finished cycle, or an exchange
neither consolidated nor waiting in the queue), duplicate promotions (a cycle registered
more than one checkpoint, a user with more versions than accepted cycles, or a late result
promoted), fenced results, per-worker throughput. On a 2-core machine use ``--tiny``: the
figures show correctness; real scaling comes from docs/capacity.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.bench.load import machine_info, prepare_config
from runtime.config import Config

log = logging.getLogger(__name__)

FACTS = [
    "My sister is called {name}.", "I live in {city}.", "I work as a {job}.",
    "My favourite food is {food}.", "My dog is named {pet}.",
]
NAMES = ["Mia", "Olek", "Sunniva", "Tariq", "Ines", "Bruno", "Kaito", "Lena", "Ravi", "Zofia"]
CITIES = ["Porto", "Tromsø", "Ghent", "Leeds", "Kraków", "Valencia", "Tartu", "Lyon"]
JOBS = ["nurse", "baker", "welder", "pilot", "teacher", "plumber", "chemist", "librarian"]
FOODS = ["pierogi", "ramen", "paella", "dal", "goulash", "sushi", "falafel", "risotto"]
PETS = ["Biscuit", "Pixel", "Noodle", "Gustavo", "Pepper", "Mochi", "Rolo", "Ziggy"]


@dataclass
class ClusterOptions:
    workers: int = 2
    users: int = 6
    kills: int = 1
    stalls: int = 1
    turns: int = 4
    lease_seconds: float = 8.0
    seed: int = 0
    scaling: bool = True


@dataclass
class PhaseResult:
    name: str
    workers: int
    users: int
    seconds: float = 0.0
    cycles_done: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    cycles_per_minute: float = 0.0
    lost_jobs: int = 0
    unconsolidated_left: int = 0
    duplicate_promotions: int = 0
    kills: list[dict] = field(default_factory=list)
    stalls: list[dict] = field(default_factory=list)
    workers_lost: int = 0
    attempts: int = 0
    fenced_results: int = 0
    late_results: int = 0
    late_promoted: int = 0
    replaced_workers: int = 0
    per_worker: dict[str, dict] = field(default_factory=dict)


@dataclass
class ClusterResult:
    model: str = ""
    options: dict = field(default_factory=dict)
    phases: list[PhaseResult] = field(default_factory=list)
    scaling: dict = field(default_factory=dict)
    lost_jobs: int = 0
    duplicate_promotions: int = 0
    machine: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def bench_sleep_settings(cfg: Config) -> Config:
    """Tiny-model settings under which cycles are quick and pass validation (as the tests'
    ``quick_sleep``): two phrasings, two LoRA layers, no general-ability gate."""
    cfg.sleep.tau = 0.0
    cfg.sleep.phrasings_per_fact = 2
    cfg.sleep.deep_every = 0
    cfg.sleep.train.learning_rate = 1e-3
    cfg.sleep.train.epochs = 1
    cfg.sleep.lora.layers = 2
    cfg.sleep.idle_minutes = 0
    cfg.chat.max_tokens = 8
    return cfg


def user_turns(rng: random.Random, turns: int) -> list[str]:
    picks = [NAMES, CITIES, JOBS, FOODS, PETS]
    out = []
    for i in range(turns):
        template, pool = FACTS[i % len(FACTS)], picks[i % len(picks)]
        key = template[template.index("{") + 1:template.index("}")]
        out.append(template.format(**{key: rng.choice(pool)}))
    return out


async def seed_users(engine, users: list[str], turns: int, seed: int) -> None:
    """Each user's turns, saved as chat saves them (SQLite, then the user's log)."""
    from bot.wake import ChatService

    chat, rng = ChatService(engine), random.Random(seed)
    for user in users:
        for text in user_turns(rng, turns):
            await chat.save(user, text, "Noted!", source="ingest")


async def _killer(orch, opts: ClusterOptions, phase: PhaseResult, rng: random.Random,
                  done: asyncio.Event) -> None:
    """SIGKILL a busy worker ``kills`` times, and SIGSTOP one ``stalls`` times until its
    lease expired (then SIGCONT: it finishes late and its result must be refused); stops
    injecting once ``done`` is set (a frozen worker is always resumed)."""
    pool = orch.pool
    todo = ["stall"] * opts.stalls + ["kill"] * opts.kills  # popped from the end: kills first
    while todo and not done.is_set():
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        busy = [s for s in pool.slots if s.busy and s.pid]
        if not busy:
            continue
        await asyncio.sleep(rng.uniform(0.3, 1.5))  # mid-cycle, not at its first instant
        slot = rng.choice([s for s in pool.slots if s.busy and s.pid] or busy)
        what, pid, name = todo.pop(), slot.pid, slot.name
        if what == "kill":
            os.kill(pid, signal.SIGKILL)
            phase.kills.append({"worker": name, "pid": pid, "at": round(time.monotonic(), 1)})
            log.warning("bench: SIGKILL %s (pid %d)", name, pid)
        else:
            os.kill(pid, signal.SIGSTOP)
            phase.stalls.append({"worker": name, "pid": pid, "at": round(time.monotonic(), 1)})
            log.warning("bench: SIGSTOP %s (pid %d)", name, pid)
            try:
                await asyncio.sleep(opts.lease_seconds * 1.6 + 2)
            finally:
                os.kill(pid, signal.SIGCONT)
                log.warning("bench: SIGCONT %s (pid %d)", name, pid)


async def _duplicates(store, users: list[str]) -> int:
    """Promotions beyond one per accepted cycle."""
    dup = 0
    for user in users:
        records = await store.checkpoints(user)
        per_cycle: dict[int | None, int] = {}
        for r in records:
            per_cycle[r.cycle_id] = per_cycle.get(r.cycle_id, 0) + 1
        dup += sum(n - 1 for n in per_cycle.values() if n > 1)
        accepted = [c for c in await store.cycles(user) if c.status == "accepted"]
        dup += max(0, len(records) - len(accepted) - sum(n - 1 for n in per_cycle.values()
                                                           if n > 1))
    return dup


async def run_phase(cfg: Config, opts: ClusterOptions, name: str, workers: int, *,
                    faults: bool) -> PhaseResult:
    from bot.cluster.head import ClusterOrchestrator, WorkerPool
    from bot.engine import open_engine

    cfg.cluster.workers = workers
    cfg.cluster.lease_seconds = opts.lease_seconds
    cfg.cluster.max_attempts = 2 + opts.kills + opts.stalls
    users = [f"user{i:03d}" for i in range(opts.users)]
    phase = PhaseResult(name, workers, opts.users)
    async with open_engine(cfg) as engine:
        await seed_users(engine, users, opts.turns, opts.seed)
        pool = WorkerPool(cfg, workers)
        await pool.start()
        orch = ClusterOrchestrator(engine, pool, poll_seconds=0.5)
        try:
            await orch.start(triggers=False)
            orch.pause()  # queue everything first: the clock starts with a full queue
            jobs = [await orch.request_sleep(u, "light") for u in users]
            killer, all_done = None, asyncio.Event()
            tic = time.perf_counter()
            orch.resume()
            if faults and (opts.kills or opts.stalls):
                killer = asyncio.create_task(
                    _killer(orch, opts, phase, random.Random(opts.seed + 1), all_done))
            reports = await asyncio.gather(*(orch.wait_for_job(j, timeout=1800) for j in jobs))
            phase.seconds = round(time.perf_counter() - tic, 2)
            all_done.set()
            if killer is not None:  # a frozen worker is resumed before the phase ends
                await asyncio.gather(killer, return_exceptions=True)
            await orch.late_results(timeout=opts.lease_seconds * 4 + 30)
            await orch.wait_idle()
        finally:
            await orch.stop()
            pool.shutdown()
        store = engine.store
        for r in reports:
            status = r.status if r is not None else "lost"
            phase.statuses[status] = phase.statuses.get(status, 0) + 1
        phase.cycles_done = sum(n for s, n in phase.statuses.items()
                                if s in ("accepted", "rejected", "empty"))
        left = await store.queue_snapshot()
        pending = {j.user_id for j in left if j.state in ("queued", "running")}
        unconsolidated = 0
        for user in users:
            rows = await store.exchanges(user, unconsolidated_only=True)
            if user not in pending:
                unconsolidated += len(rows) if any(
                    c.status == "accepted" for c in await store.cycles(user)) else 0
        phase.unconsolidated_left = unconsolidated
        phase.lost_jobs = (len(users) - phase.cycles_done) + unconsolidated
        phase.duplicate_promotions = await _duplicates(store, users) + orch.stats.late_promoted
        phase.attempts, phase.workers_lost = orch.stats.attempts, orch.stats.workers_lost
        phase.fenced_results, phase.late_results = orch.stats.fenced, orch.stats.late_results
        phase.late_promoted, phase.replaced_workers = orch.stats.late_promoted, pool.replaced
        phase.cycles_per_minute = round(60 * phase.cycles_done / max(phase.seconds, 1e-9), 2)
        phase.per_worker = {
            name: {"pid": h["pid"], "jobs": h["jobs"], "busy_seconds": round(h["seconds"], 2),
                   "cycles_per_minute": round(60 * h["jobs"] / phase.seconds, 2)
                   if phase.seconds else 0.0}
            for name, h in pool.history.items()}
    return phase


async def run_cluster(cfg: Config, opts: ClusterOptions, workdir: Path) -> ClusterResult:
    import ray

    from bot.cluster.head import connect

    result = ClusterResult(options=asdict(opts))
    started = connect(cfg.cluster, num_cpus=max(2, 2 * opts.workers + 2))
    base_dir = cfg.data_dir
    if Path(cfg.model).exists():  # worker processes may start in another directory
        cfg.model = str(Path(cfg.model).resolve())
    try:
        plan = [("faults", opts.workers, True)]
        if opts.scaling:
            plan = [("scaling-1", 1, False), (f"scaling-{opts.workers}", opts.workers, False)
                    ] + plan
        for name, workers, faults in plan:
            cfg.data_dir = workdir / name / "data"
            result.phases.append(await run_phase(cfg, opts, name, workers, faults=faults))
    finally:
        cfg.data_dir = base_dir
        if started:
            ray.shutdown()
    by_name = {p.name: p for p in result.phases}
    one, many = by_name.get("scaling-1"), by_name.get(f"scaling-{opts.workers}")
    if one and many and many.seconds:
        result.scaling = {"workers": [1, opts.workers],
                          "cycles_per_minute": [one.cycles_per_minute, many.cycles_per_minute],
                          "speedup": round(one.seconds / many.seconds, 2),
                          "note": "a 2-core machine shared with other work: the workers compete "
                                  "for two cores, so this shows correctness, not scaling"}
    result.lost_jobs = sum(p.lost_jobs for p in result.phases)
    result.duplicate_promotions = sum(p.duplicate_promotions for p in result.phases)
    result.machine = machine_info()
    return result


def run_cluster_bench(cfg: Config, opts: ClusterOptions, tiny: bool) -> ClusterResult:
    label = "tiny (random 4-layer llama, bundled tokenizer)" if tiny else cfg.model
    with tempfile.TemporaryDirectory(prefix="sleepbot-cluster-") as tmp:
        prepare_config(cfg, tiny, Path(tmp))
        if tiny:  # a real model keeps its own sleep settings
            bench_sleep_settings(cfg)
        # Ray prints its workers' deaths (the bench's own kills) on stdout: keep it for the
        # result
        with contextlib.redirect_stdout(sys.stderr):
            result = asyncio.run(run_cluster(cfg, opts, Path(tmp)))
    result.model = label
    return result


def format_result(r: ClusterResult) -> str:
    lines = [f"cluster bench on {r.model}: lost jobs {r.lost_jobs}, duplicate promotions "
             f"{r.duplicate_promotions}"]
    for p in r.phases:
        lines.append(
            f"  {p.name:10} {p.workers} worker(s), {p.users} users: {p.cycles_done} cycles "
            f"{p.statuses} in {p.seconds:.1f}s ({p.cycles_per_minute}/min); kills "
            f"{len(p.kills)}, stalls {len(p.stalls)}, attempts {p.attempts}, workers lost "
            f"{p.workers_lost}, fenced {p.fenced_results} (late {p.late_results}, promoted "
            f"{p.late_promoted}), lost {p.lost_jobs}, duplicates {p.duplicate_promotions}")
        for name, w in p.per_worker.items():
            lines.append(f"      {name:18} pid {w['pid']:>7}  {w['jobs']} job(s), "
                         f"{w['busy_seconds']:.1f}s busy")
    if r.scaling:
        lines.append(f"  scaling 1 → {r.scaling['workers'][1]} workers: "
                     f"{r.scaling['speedup']}× ({r.scaling['note']})")
    lines.append(f"  machine: {r.machine.get('cpus')} CPUs, load {r.machine.get('load_avg_1m')}")
    return "\n".join(lines)
