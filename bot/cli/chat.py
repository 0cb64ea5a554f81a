"""``python -m bot chat --user NAME [--banner]``: chat in the terminal (``make demo``)."""

from __future__ import annotations

import argparse

from bot.cli.common import run_async
from runtime.config import Config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="chat in the terminal")
    p.add_argument("--user", default="local", help="whose memory to use")
    p.add_argument("--banner", action="store_true", help="print what to try first")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    from bot.engine import open_engine
    from bot.terminal import chat_loop

    async def run() -> int:
        async with open_engine(cfg) as engine:
            await chat_loop(engine, args.user, args.banner)
        return 0

    return run_async(run())
