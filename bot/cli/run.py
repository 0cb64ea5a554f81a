"""``python -m bot run``: start the Discord bot.

The token comes from ``DISCORD_TOKEN`` (environment or ``.env``) only, and is never printed
or logged.
"""

from __future__ import annotations

import argparse
import os
import sys

from runtime.config import Config

NO_TOKEN = (
    "error: DISCORD_TOKEN is not set. Get a token at https://discord.com/developers/applications"
    " → your application → Bot → Reset Token, and enable 'Message Content Intent' on the same"
    " page; then put DISCORD_TOKEN=... in .env (see .env.example) or the environment."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="start the Discord bot (token from DISCORD_TOKEN)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace, cfg: Config) -> int:
    token = os.environ.get("DISCORD_TOKEN", "").strip()
    if not token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    from bot.discord.client import run_bot

    return run_bot(cfg, token)
