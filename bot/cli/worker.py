"""``python -m bot worker [--enqueue U ...] [--deep] [--until-empty] [--json]``: run the
persistent sleep queue without chat (from cron, or to finish jobs a crash left behind), until
SIGINT/SIGTERM, or until the queue is empty with ``--until-empty``. With ``cluster.enabled``
(``SLEEPBOT_CLUSTER=1``; or ``python -m bot cluster run``) the cycles run on Ray workers."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys

from bot.cli.common import add_queue_arguments, print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run queued sleep cycles (no chat)")
    add_queue_arguments(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    return run_async(_worker(args, cfg))


async def _worker(args: argparse.Namespace, cfg: Config) -> int:
    from bot.cluster.head import orchestrator_for
    from bot.engine import open_engine
    from bot.orchestrator import install_shutdown_handlers

    stop = asyncio.Event()
    install_shutdown_handlers(stop)
    reports = []

    def show(stage: str, info: dict) -> None:
        print(f"… {stage}: {json.dumps(info, default=str)}", file=sys.stderr, flush=True)

    # Ray prints its workers' deaths on stdout: keep stdout for the reports
    quiet = (contextlib.redirect_stdout(sys.stderr) if cfg.cluster.enabled
             else contextlib.nullcontext())
    with quiet:
        async with open_engine(cfg) as engine:
            orch = await orchestrator_for(engine)
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
            workers = getattr(getattr(orch, "pool", None), "history", None)
    if args.json:
        print_json({"reports": reports, "jobs_left": left}
                   | ({"workers": workers} if workers is not None else {}))
    else:
        for r in reports:
            print(f"job for {r['user_id']}: {r['status']} ({r['reason']}) → {r['checkpoint']}")
        print(f"{left} job(s) left in the queue")
    return 0
