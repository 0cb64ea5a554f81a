"""CLI verbs for the Discord bot and for forgetting (registered into :mod:`bot.cli`).

    python -m bot run                                       start the Discord bot
    python -m bot forget --user U (--all | --match PHRASE) [--yes]

``run`` takes the token from ``DISCORD_TOKEN`` (environment or ``.env``) only, and never
prints or logs it. ``forget`` asks for confirmation unless ``--yes``; stop the bot first, so
no sleep cycle of that user runs meanwhile (the bot's /forget coordinates by itself).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bot.cli import UserError, command, print_json, run_async
from bot.config import Config

log = logging.getLogger(__name__)

NO_TOKEN = (
    "error: DISCORD_TOKEN is not set. Get a token at https://discord.com/developers/applications"
    " → your application → Bot → Reset Token, and enable 'Message Content Intent' on the same"
    " page; then put DISCORD_TOKEN=... in .env (see .env.example) or the environment."
)


def add_parsers(sub, bench_sub) -> None:
    sub.add_parser("run", help="start the Discord bot (token from DISCORD_TOKEN)")
    fg = sub.add_parser("forget", help="remove a user's exchanges and rebuild their weights")
    fg.add_argument("--user", required=True)
    what = fg.add_mutually_exclusive_group()
    what.add_argument("--all", action="store_true", help="everything the user said")
    what.add_argument("--match", metavar="PHRASE", help="exchanges containing PHRASE (any case)")
    fg.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    fg.add_argument("--json", action="store_true")


@command("run")
def run_cmd(args: argparse.Namespace, cfg: Config) -> int:
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    from bot.discord_bot import run_bot

    return run_bot(cfg, token)


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


@command("forget")
def forget_cmd(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from sleep.forget import ForgetError, forget, plan

    if not args.all and args.match is None:
        raise UserError("say what to forget: --all or --match PHRASE")

    def show(stage: str, info: dict) -> None:
        if not args.json and stage in ("records", "weights", "compact", "done"):
            print(f"… {stage}", file=sys.stderr)

    async def main() -> int:
        async with open_engine(cfg) as engine:
            try:
                p = await plan(engine, args.user, phrase=args.match, everything=args.all)
            except ForgetError as exc:
                raise UserError(str(exc)) from exc
            print(p.describe())
            if p.empty:
                return 0
            if not args.yes and not _confirm("Go ahead?"):
                print("Cancelled: nothing was forgotten.")
                return 1
            result = await forget(engine, args.user, phrase=args.match, everything=args.all,
                                  progress=show)
        print_json(result.to_dict()) if args.json else print(result.summary())
        return 0

    return run_async(main())
