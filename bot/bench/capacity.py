"""The capacity plan's simulation (docs/capacity.md): hosts for nightly sleep at 1k / 10k /
100k users, queue delays, the head's commit load, chat capacity, storage.

    python -m bot bench capacity [--json] [--seed 0] [--batched-speedup 5.36]

Deterministic (a seeded random draw of each user's day) and quick (seconds). Driven by costs
measured in this repository, each named where it is defined (``MEASURED``); what was not
measured is an assumption with its own name (``ASSUMED``) and can be changed from the
command line or by editing it. For every population and host kind it:

1. draws which users talked today and how many turns each (heavy-tailed),
2. gives each of them one nightly deep cycle whose cost grows with its turns,
3. finds the fewest hosts whose workers finish every cycle within the nightly window (list
   scheduling, longest first, as the queue's FIFO does on average no better), and reports
   the queue delay percentiles (cycle start after the nightly trigger) at that size,
4. adds up the head's serial commit work (every promotion is written and registered by the
   one process that owns the store) and the checkpoint bytes moved and kept,
5. sizes chat for the peak hour from measured reply times.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

# -- measured in this repository (seconds unless named otherwise) -------------------------
MEASURED = {
    # README "Results": a 12-turn held-out cycle with the current bundled defaults, and a
    # 204-turn REALTALK cycle, on this 2-core CPU (float32 + OpenBLAS)
    "cpu_cycle_12_turns": 93.0,
    "cpu_cycle_204_turns": 624.0,
    "cpu_cycle_10_turns_light": 35.0,  # an earlier 10-turn persona cycle (fewer facts/turn)
    # one H200, float32, compiled step (README, "Many users per GPU"): `bench throughput
    # --procs 1` ran 1,090 light 10-turn cycles per hour (3.3 s each, overheads included);
    # the first figure, ~10 s warm, predates the float32 and compiled-step changes
    "h200_cycle_10_turns": 3600 / 1090,
    # several worker processes on one H200 (bot/cyclepool.py, workers_per_gpu): 3,003 / 5,847
    # / 7,700 cycles per hour with 4 / 8 / 12 processes, i.e. 2.8x / 5.4x / 7.1x one process
    "h200_batched_speedup_8_procs": 5847 / 1090,
    "h200_batched_speedup_12_procs": 7700 / 1090,
    "h200_decode_tok_s": 298.0,  # bench generate on the H200, bundled model, float32
    # one bundled-model checkpoint: the changed modules of 8 layers, dense float32
    "checkpoint_bytes": 113_252_391,
    # head side, per promotion, this box: write + fsync (0.28) + sha256 verify (0.11) +
    # safetensors bytes -> tensors (~0.1) + SQLite commit and board publish (~0.1)
    "head_commit": 0.6,
    # bundled model, one CPU model thread (bench generate, loaded machine)
    "cpu_decode_tok_s": 12.4,
    "cpu_prefill_tok_s": 184.0,
}

# -- assumed (not measured here; change them as measurements come) ------------------------
ASSUMED = {
    "active_share": 0.30,  # users who say anything on a given day (Discord DAU/MAU-like)
    "turns_median": 8.0,  # turns per active user per day, log-normal
    "turns_sigma": 1.0,
    "turns_cap": 400,
    "deep_factor": 1.15,  # dreaming in the nightly deep cycle
    "window_hours": 6.0,  # 03:30 to 09:30
    "cpu_workers_per_host": 1,  # one cycle per 2-core box (a cycle uses both cores)
    "gpu_workers_per_host": 1,  # one H200; see batched_speedup for several per GPU
    # the batched path's throughput per GPU relative to one process: measured 5.4x with 8
    # processes (MEASURED); 12 gave 7.1x with 14-18 s worker start-ups. Assumed: 8 processes
    # hold it for cycles of every size (it was measured on light 10-turn cycles)
    "batched_speedup": round(5847 / 1090, 2),
    "h200_prefill_tok_s": 5000.0,  # not measured (bench generate gave only a ratio there)
    "reply_tokens": 64,
    "context_tokens": 500,
    "chat_utilisation": 0.4,  # bench load: chat fills ~40% of a model thread beside sleep
    "peak_factor": 3.0,  # the peak hour's message rate over the waking-hours mean
    "waking_hours": 16.0,
}

POPULATIONS = (1_000, 10_000, 100_000)


def cpu_cycle_seconds(turns: int) -> float:
    """A cycle's cost on the 2-core CPU with the current defaults: linear through the two
    measured cycles (12 and 204 turns): a fixed ~60 s (validation, anchors, identity) plus
    ~2.8 s per turn (extraction, training examples)."""
    t1, c1 = 12, MEASURED["cpu_cycle_12_turns"]
    t2, c2 = 204, MEASURED["cpu_cycle_204_turns"]
    per_turn = (c2 - c1) / (t2 - t1)
    return c1 + per_turn * (turns - t1) if turns >= 1 else 0.0


def gpu_cycle_seconds(turns: int) -> float:
    """One H200: the measured 10-turn cycle, grown with turns as the CPU cost grows."""
    return MEASURED["h200_cycle_10_turns"] * cpu_cycle_seconds(turns) / cpu_cycle_seconds(10)


@dataclass(frozen=True)
class HostKind:
    name: str
    workers: int  # cycles at once per host
    cycle: object  # turns -> seconds for one worker
    speed: float = 1.0  # throughput multiplier per worker (batched GPU)


def host_kinds(batched_speedup: float) -> list[HostKind]:
    return [
        HostKind("cpu-2core", ASSUMED["cpu_workers_per_host"], cpu_cycle_seconds),
        HostKind("h200", ASSUMED["gpu_workers_per_host"], gpu_cycle_seconds),
        HostKind("h200-batched", ASSUMED["gpu_workers_per_host"], gpu_cycle_seconds,
                 batched_speedup),
    ]


def draw_turns(users: int, rng: random.Random) -> list[int]:
    """Turns each active user said today (users who said nothing get no nightly cycle)."""
    mu = math.log(ASSUMED["turns_median"])
    out = []
    for _ in range(users):
        if rng.random() < ASSUMED["active_share"]:
            turns = int(round(rng.lognormvariate(mu, ASSUMED["turns_sigma"])))
            out.append(max(1, min(turns, ASSUMED["turns_cap"])))
    return out


def schedule(costs: list[float], workers: int) -> tuple[float, list[float]]:
    """List scheduling in queue order on ``workers``: (makespan, start delay of each job)."""
    free = [0.0] * workers
    heapq.heapify(free)
    starts = []
    end = 0.0
    for cost in costs:
        start = heapq.heappop(free)
        starts.append(start)
        end = max(end, start + cost)
        heapq.heappush(free, start + cost)
    return end, starts


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def hosts_needed(costs: list[float], per_host: int, window: float) -> int:
    """The fewest hosts whose workers finish ``costs`` (queue order) within ``window``."""
    if not costs:
        return 0
    lo = max(1, math.ceil(sum(costs) / window / per_host))
    hi = lo
    while schedule(costs, hi * per_host)[0] > window:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if schedule(costs, mid * per_host)[0] <= window:
            hi = mid
        else:
            lo = mid + 1
    return lo


def chat_capacity() -> dict:
    """Replies per hour one model thread gives at the utilisation chat may use."""
    out = {}
    for kind, decode, prefill in (("cpu-2core", MEASURED["cpu_decode_tok_s"],
                                   MEASURED["cpu_prefill_tok_s"]),
                                  ("h200", MEASURED["h200_decode_tok_s"],
                                   ASSUMED["h200_prefill_tok_s"])):
        reply = ASSUMED["context_tokens"] / prefill + ASSUMED["reply_tokens"] / decode
        out[kind] = {"seconds_per_reply": round(reply, 2),
                     "replies_per_hour": round(3600 / reply * ASSUMED["chat_utilisation"])}
    return out


def plan_population(users: int, kinds: list[HostKind], rng: random.Random) -> dict:
    turns = draw_turns(users, rng)
    rng.shuffle(turns)  # the queue's order: when each user was queued, not by size
    window = ASSUMED["window_hours"] * 3600
    chat = chat_capacity()
    messages = sum(turns)
    peak_per_hour = messages / ASSUMED["waking_hours"] * ASSUMED["peak_factor"]
    row = {"users": users, "nightly_cycles": len(turns), "turns": messages,
           "turns_p50": percentile(turns, 50), "turns_p99": percentile(turns, 99),
           "head_commit_hours": round(len(turns) * MEASURED["head_commit"] / 3600, 2),
           "checkpoint_storage_tb": round(users * 2 * MEASURED["checkpoint_bytes"] / 1e12, 2),
           "nightly_transfer_tb": round(len(turns) * 2 * MEASURED["checkpoint_bytes"] / 1e12,
                                        2),
           "chat_peak_replies_per_hour": round(peak_per_hour),
           "kinds": {}}
    for kind in kinds:
        costs = [kind.cycle(t) * ASSUMED["deep_factor"] / kind.speed for t in turns]
        hosts = hosts_needed(costs, kind.workers, window)
        makespan, starts = schedule(costs, max(1, hosts) * kind.workers)
        chat_kind = "h200" if kind.name.startswith("h200") else kind.name
        row["kinds"][kind.name] = {
            "compute_hours": round(sum(costs) / 3600, 1),
            "hosts": hosts,
            "makespan_hours": round(makespan / 3600, 2),
            "delay_p50_min": round(percentile(starts, 50) / 60, 1),
            "delay_p95_min": round(percentile(starts, 95) / 60, 1),
            "delay_p99_min": round(percentile(starts, 99) / 60, 1),
            "one_host_days": round(sum(costs) / kind.workers / 86400, 1),
            "chat_hosts_at_peak": math.ceil(peak_per_hour
                                            / chat[chat_kind]["replies_per_hour"]),
        }
    row["head_commit_fits_window"] = row["head_commit_hours"] <= ASSUMED["window_hours"]
    return row


def run_plan(seed: int = 0, batched_speedup: float | None = None) -> dict:
    speedup = ASSUMED["batched_speedup"] if batched_speedup is None else batched_speedup
    kinds = host_kinds(speedup)
    rows = [plan_population(n, kinds, random.Random(seed * 1_000_003 + n))
            for n in POPULATIONS]
    return {"measured": dict(MEASURED), "assumed": ASSUMED | {"batched_speedup": speedup},
            "cycle_seconds": {f"{t} turns": {"cpu-2core": round(cpu_cycle_seconds(t), 1),
                                             "h200": round(gpu_cycle_seconds(t), 1)}
                              for t in (1, 10, 50, 204)},
            "chat": chat_capacity(), "populations": rows, "seed": seed}


def format_plan(plan: dict) -> str:
    a = plan["assumed"]
    lines = [f"nightly window {a['window_hours']} h; {a['active_share']:.0%} of users active, "
             f"median {a['turns_median']:g} turns; batched GPU speedup "
             f"{a['batched_speedup']}x (bench throughput: 8 processes, light cycles)",
             "users    cycles  kind          compute h  hosts  delay p50/p95/p99 min   "
             "chat hosts  head commit h  storage TB"]
    for row in plan["populations"]:
        for name, k in row["kinds"].items():
            lines.append(
                f"{row['users']:>7} {row['nightly_cycles']:>7}  {name:12} "
                f"{k['compute_hours']:>9} {k['hosts']:>6}  {k['delay_p50_min']:>6}/"
                f"{k['delay_p95_min']}/{k['delay_p99_min']:<10} {k['chat_hosts_at_peak']:>10}"
                f"  {row['head_commit_hours']:>13}  {row['checkpoint_storage_tb']:>10}")
    c = plan["chat"]
    lines.append(f"chat per model thread: cpu {c['cpu-2core']['replies_per_hour']}/h, "
                 f"h200 {c['h200']['replies_per_hour']}/h (at "
                 f"{a['chat_utilisation']:.0%} utilisation)")
    return "\n".join(lines)
