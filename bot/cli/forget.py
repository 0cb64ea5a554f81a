"""``python -m bot forget --user U (--all | --match PHRASE) [--yes] [--json]``.

Removes the matching exchanges from the log, the store, the replay buffer and the weights,
then rebuilds the user's weights from what remains with one cycle through the sleep queue.
Asks for confirmation unless ``--yes``. It needs the data directory's queue lock: while a bot
runs, use its ``/forget`` (which coordinates with its own queue) or stop it first.
"""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import UserError, confirm, print_json, run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forget", help="remove a user's exchanges and rebuild their weights")
    p.add_argument("--user", required=True)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", help="everything the user said")
    what.add_argument("--match", metavar="PHRASE", help="exchanges containing PHRASE (any case)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.forget import ForgetError, forget_and_rebuild, plan
    from bot.orchestrator import Orchestrator, QueueBusy

    if not args.all and args.match is None:
        raise UserError("say what to forget: --all or --match PHRASE")

    def show(stage: str, info: dict) -> None:
        if not args.json and stage in ("records", "weights", "compact", "done"):
            print(f"… {stage}", file=sys.stderr)

    async def run() -> int:
        async with open_engine(cfg) as engine:
            try:
                p = await plan(engine, args.user, phrase=args.match, everything=args.all)
            except ForgetError as exc:
                raise UserError(str(exc)) from exc
            print(p.describe())
            if p.empty:
                return 0
            if not args.yes and not confirm("Go ahead?"):
                print("Cancelled: nothing was forgotten.")
                return 1
            orch = Orchestrator(engine)
            try:
                await orch.start(worker=False, triggers=False)
            except QueueBusy as exc:
                raise UserError(f"{exc}: use the bot's /forget, or stop it first") from exc
            try:
                result = await forget_and_rebuild(orch, args.user, phrase=args.match,
                                                  everything=args.all, progress=show)
            finally:
                await orch.stop()
        print_json(result.to_dict()) if args.json else print(result.summary())
        return 0

    return run_async(run())
