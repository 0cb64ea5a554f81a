"""``python -m bot bench throughput``: user-cycles per hour with several workers on one GPU.

    python -m bot bench throughput [--users 16] [--procs P] [--turns 10] [--alone K] [--json]

``--users`` users each log ``--turns`` turns of a shipped fact set (in turn: persona_maya,
persona_tomasz, andre_patandre) and get one light cycle, run by a :class:`bot.cyclepool.
CyclePool` of ``--procs`` worker processes (default ``workers_per_gpu``). Reported: the
workers' start-up (model load, kernel compiles), the wall-clock time of all the cycles, user-
cycles per hour (``users / run_seconds · 3600``), each cycle's own seconds, and, with
``--alone K``, the first K users' cycles again one at a time in this process: the same gate
decisions, and how far the checkpoints' weights are from each other.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from pathlib import Path

import mlx.core as mx

from bot.cyclepool import CycleJob, CyclePool, CycleResult
from runtime.config import Config

FACTSETS = ("persona_maya", "persona_tomasz", "andre_patandre")


def make_jobs(users: int, turns: int, factsets: tuple[str, ...] = FACTSETS) -> list[CycleJob]:
    from sleep.factsets import bundled_factset

    sets = [bundled_factset(name).user_turns[:turns] for name in factsets]
    return [CycleJob(f"user{i:03d}", "light", list(sets[i % len(sets)])) for i in range(users)]


def _numbers(d: dict) -> dict[str, float]:
    return {k: float(v) for k, v in d.items()
            if isinstance(v, int | float) and not isinstance(v, bool)}


def compare(pooled: CycleResult, alone: CycleResult) -> dict:
    """Gate decisions and weights of one user's cycle in the pool and alone."""
    from memory.checkpoints import load_delta

    same = pooled.status == alone.status and pooled.accepted == alone.accepted
    a, b = _numbers(pooled.validation), _numbers(alone.validation)
    score_diff = max((abs(a[k] - b[k]) for k in a.keys() & b.keys()), default=0.0)
    weight_diff = 0.0
    if pooled.checkpoint and alone.checkpoint:
        wa, wb = load_delta(Path(pooled.checkpoint)), load_delta(Path(alone.checkpoint))
        same &= wa.keys() == wb.keys()
        for name in wa.keys() & wb.keys():
            diff = mx.abs(wa[name].astype(mx.float32) - wb[name].astype(mx.float32)).max()
            weight_diff = max(weight_diff, diff.item())
    elif pooled.checkpoint or alone.checkpoint:
        same = False
    return {"user": pooled.user_id, "status": pooled.status, "alone_status": alone.status,
            "same_decision": same, "max_score_diff": score_diff,
            "max_weight_diff": weight_diff}


def run_throughput_bench(cfg: Config, users: int = 16, procs: int | None = None,
                         turns: int = 10, alone: int = 0) -> dict:
    """Run the benchmark in a temporary directory; returns one flat dict."""
    from memory.paths import models_dir
    from runtime.models import resolve_model
    from runtime.platform import backend

    procs = procs or cfg.workers_per_gpu
    jobs = make_jobs(users, turns)
    model_path = resolve_model(cfg.model, models_dir(cfg.data_dir))  # import once, not per run
    with tempfile.TemporaryDirectory(prefix="sleepbot-throughput-") as tmp:
        base = dataclasses.replace(cfg, model=str(model_path))
        with CyclePool(base, procs, Path(tmp) / "pool") as pool:
            results = pool.run(jobs)
            startup, seconds = pool.startup_seconds, pool.run_seconds
        checks = []
        if alone:
            with CyclePool(base, 1, Path(tmp) / "alone") as single:
                lone = single.run(jobs[:alone])
            checks = [compare(p, a) for p, a in zip(results, lone, strict=False)]
    cycle = [r.seconds for r in results]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {
        "model": cfg.model, "device": backend(), "users": users, "procs": procs,
        "turns": turns, "startup_seconds": round(startup, 2), "run_seconds": round(seconds, 2),
        "cycles_per_hour": users / seconds * 3600 if seconds else 0.0,
        "cycle_seconds_median": statistics.median(cycle), "cycle_seconds_max": max(cycle),
        "examples_median": statistics.median(r.examples for r in results),
        "statuses": statuses, "alone": checks,
        "alone_same_decisions": all(c["same_decision"] for c in checks) if checks else None,
        "alone_max_weight_diff": max((c["max_weight_diff"] for c in checks), default=None),
    }


def format_table(r: dict) -> str:
    lines = [
        f"model {r['model']} on {r['device']}: {r['users']} users x one light cycle of "
        f"{r['turns']} turns, {r['procs']} worker process(es)",
        f"start-up {r['startup_seconds']:.1f}s; cycles {r['run_seconds']:.1f}s wall -> "
        f"{r['cycles_per_hour']:.0f} user-cycles/hour",
        f"each cycle: median {r['cycle_seconds_median']:.1f}s, max {r['cycle_seconds_max']:.1f}s"
        f", median {r['examples_median']} examples; {r['statuses']}",
    ]
    if r["alone"]:
        lines.append(f"alone vs pooled ({len(r['alone'])} users): same gate decisions "
                     f"{r['alone_same_decisions']}, max weight difference "
                     f"{r['alone_max_weight_diff']:.2e}")
    return "\n".join(lines)
