"""``python -m bot sleep --user U [--deep] [--json]``: run one sleep cycle now.

The cycle goes through the orchestrator's queue like every other one: this process takes the
data directory's queue lock, queues the job and runs it in the foreground. While a bot, a
worker or a terminal chat holds the lock, it refuses (exit 2) and touches nothing.
"""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import UserError, print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sleep", help="run one sleep cycle for a user now")
    p.add_argument("--user", required=True)
    p.add_argument("--deep", action="store_true", help="with dreaming")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.orchestrator import Orchestrator, QueueBusy
    from sleep.pipeline import format_report

    def show(stage: str, info: dict) -> None:
        if not args.json:
            print(f"… {stage}: {info}", file=sys.stderr)

    async def run() -> int:
        async with open_engine(cfg) as engine:
            orch = Orchestrator(engine)
            try:
                await orch.start(worker=False, triggers=False)
            except QueueBusy as exc:
                raise UserError(f"{exc}: it will run this user's cycles itself (ask it with "
                                "/sleep), or stop it and run this again") from exc
            try:
                report = await orch.run_now(args.user, "deep" if args.deep else "light", show)
            finally:
                await orch.stop()
        if report is None:
            raise UserError("the cycle was interrupted; it stays queued for the next run")
        out = report.to_dict()
        print_json(out) if args.json else print(format_report(out))
        return 0 if report.status != "failed" else 1

    return run_async(run())
