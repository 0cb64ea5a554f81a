"""CLI verbs of the orchestrator: the sleep queue's state, a queue worker, the load benchmark.

    python -m bot status [--user U] [--json]        each user's state and the queue
    python -m bot worker [--enqueue U ...] [--deep] [--until-empty] [--json]
    python -m bot bench load [--tiny] [--users N] [--messages M] [--rate R] [--json]

``status`` reads SQLite and ``<data_dir>/orchestrator.json`` only (no model is loaded), so it
is safe next to a running bot. ``worker`` runs the persistent sleep queue without chat (e.g.
from cron, or to finish jobs a crash left behind) until SIGINT/SIGTERM, or until the queue
is empty with ``--until-empty``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

from bot.cli import command, print_json
from bot.config import Config, load_config


def add_parsers(sub, bench_sub) -> None:
    st = sub.add_parser("status", help="users' sleep states and the sleep queue")
    st.add_argument("--user", default=None, help="one user only")
    st.add_argument("--json", action="store_true")

    wk = sub.add_parser("worker", help="run queued sleep cycles (no chat)")
    wk.add_argument("--enqueue", action="append", default=[], metavar="USER",
                    help="queue a cycle for USER first (repeatable)")
    wk.add_argument("--deep", action="store_true", help="queued cycles are deep ones")
    wk.add_argument("--until-empty", action="store_true", help="exit once the queue is empty")
    wk.add_argument("--json", action="store_true", help="print the cycle reports as JSON")

    ld = bench_sub.add_parser("load", help="many users chatting while sleep cycles run")
    ld.add_argument("--users", type=int, default=50)
    ld.add_argument("--messages", type=int, default=1000)
    ld.add_argument("--rate", type=float, default=0.0,
                    help="messages per second, all users (0: chat fills ~40%% of the model)")
    ld.add_argument("--window", type=float, default=30.0,
                    help="seconds; the sleep queue is paused every other window (0: never)")
    ld.add_argument("--context-tokens", type=int, default=512,
                    help="working-memory budget of each simulated conversation")
    ld.add_argument("--max-tokens", type=int, default=24)
    ld.add_argument("--threshold", type=int, default=10, help="turns before a light cycle")
    ld.add_argument("--seed", type=int, default=0)
    ld.add_argument("--tiny", action="store_true", help="a random tiny llama (seconds to build)")
    ld.add_argument("--model", dest="bench_model", default=None,
                    help="model for this run (same as the global --model)")
    ld.add_argument("--json", action="store_true")


# -- status -----------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status_file(data_dir: Path) -> dict | None:
    """The running orchestrator's snapshot, or None when no live process wrote one."""
    from bot.orchestrator import STATUS_FILE

    try:
        snap = json.loads((data_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return snap if isinstance(snap, dict) and _alive(int(snap.get("pid", 0))) else None


async def collect_status(cfg: Config, user: str | None) -> dict:
    """Users' states and the queue, from SQLite and the live process's status file."""
    from bot.orchestrator import next_sleep_text, user_status_dict
    from memory.paths import store_path
    from memory.store import Store

    live = read_status_file(cfg.data_dir)
    running = (live or {}).get("running") or None
    async with await Store.open(store_path(cfg.data_dir)) as store:
        queue = await store.queue_snapshot()
        users = [user] if user else await store.list_users()
        out_users = []
        queued = [q for q in queue if q["state"] == "queued" or not live]
        for u in users:
            info = await user_status_dict(store, cfg.data_dir, u)
            position = next((n for n, q in enumerate(queued, 1) if q["user_id"] == u), None)
            if running and running["user_id"] == u:
                info.update(state="sleeping", stage=running["stage"], job_id=running["job_id"],
                            queue_position=0)
            elif position is not None:
                info.update(state="queued", stage=None, job_id=queued[position - 1]["id"],
                            queue_position=position)
            else:
                info.update(state="awake", stage=None, job_id=None, queue_position=None)
            info["next_sleep"] = next_sleep_text(cfg.sleep, info["state"], info["stage"],
                                                 position, info["turns_since_sleep"])
            out_users.append(info)
    return {"orchestrator": {"running": bool(live), "pid": live and live.get("pid"),
                             "cycle": running},
            "queue": [{"position": n, "job_id": q["id"], "user_id": q["user_id"],
                       "kind": q["kind"], "state": q["state"],
                       "waiting_s": round(time.time() - q["requested_at"], 1)}
                      for n, q in enumerate(queue, 1)],
            "users": out_users}


def format_status(s: dict) -> str:
    o = s["orchestrator"]
    lines = [f"orchestrator: running (pid {o['pid']})" if o["running"]
             else "orchestrator: not running (queued jobs run at the next start)"]
    if o["cycle"]:
        c = o["cycle"]
        lines.append(f"  sleeping now: {c['user_id']} ({c['kind']}, job {c['job_id']}) "
                     f"stage {c['stage']}, {c['seconds']:.0f}s in")
    lines.append(f"queue: {len(s['queue'])} pending job(s)")
    for q in s["queue"]:
        lines.append(f"  {q['position']:3d}. {q['user_id']} {q['kind']} job {q['job_id']} "
                     f"({q['state']}, waiting {q['waiting_s']:.0f}s)")
    for u in s["users"]:
        state = u["state"] + (f" ({u['stage']})" if u["stage"] else "")
        lines.append(f"{u['user_id']}: {state}; {u['turns_since_sleep']} turns since sleep, "
                     f"{u['cycles_done']} cycles, {u['facts_consolidated']} facts consolidated, "
                     f"checkpoint {u['checkpoint']} ({u['checkpoint_bytes']} bytes); "
                     f"next sleep {u['next_sleep']}")
    return "\n".join(lines)


@command("status")
def status_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.cli import UserError, run_async
    from memory.paths import store_path

    if not store_path(cfg.data_dir).is_file():
        raise UserError(f"no database in {cfg.data_dir} yet (chat first)")
    status = run_async(collect_status(cfg, args.user))
    print_json(status) if args.json else print(format_status(status))
    return 0


# -- worker -----------------------------------------------------------------------------------

@command("worker")
def worker_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.cli import run_async

    return run_async(_worker(args, cfg))


async def _worker(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.orchestrator import Orchestrator, install_shutdown_handlers

    stop = asyncio.Event()
    install_shutdown_handlers(stop)
    reports = []

    def show(stage: str, info: dict) -> None:
        print(f"… {stage}: {json.dumps(info, default=str)}", file=sys.stderr, flush=True)

    async with open_engine(cfg) as engine:
        orch = Orchestrator(engine)
        await orch.start()
        kind = "deep" if args.deep else "light"
        for user in args.enqueue:
            await orch.request_sleep(user, kind, progress=show)
        print(f"worker ready (pid {os.getpid()})", file=sys.stderr, flush=True)
        idle = asyncio.create_task(orch.wait_idle(), name="wait-idle")
        stopped = asyncio.create_task(stop.wait(), name="wait-signal")
        waits = {stopped} | ({idle} if args.until_empty else set())
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in (idle, stopped):
            task.cancel()
        await orch.stop()
        reports = [r.to_dict() for r in orch.reports()]
        left = len(await engine.store.queue_snapshot())
    if args.json:
        print_json({"reports": reports, "jobs_left": left})
    else:
        for r in reports:
            print(f"job for {r['user_id']}: {r['status']} ({r['reason']}) → {r['checkpoint']}")
        print(f"{left} job(s) left in the queue")
    return 0


# -- bench load -------------------------------------------------------------------------------

@command("bench load")
def bench_load_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.bench_load import LoadOptions, format_result, run_load_bench

    if args.bench_model:
        cfg = load_config(args.config, args.data_dir, args.bench_model)
    opts = LoadOptions(users=args.users, messages=args.messages, rate=args.rate,
                       max_tokens=args.max_tokens, threshold=args.threshold, seed=args.seed,
                       window=args.window, context_tokens=args.context_tokens)
    result = run_load_bench(cfg, opts, tiny=args.tiny)
    print_json(result.to_dict()) if args.json else print(format_result(result))
    return 0 if result.lost == 0 and result.leaks == 0 else 1
