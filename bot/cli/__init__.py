"""The command line: ``python -m bot VERB`` (also installed as ``sleepbot``).

One module per verb in this package; each adds its parser and opens an engine (or only the
store) and calls services. Nothing below the front ends imports from here.

    python -m bot chat --user NAME                     chat in the terminal
    python -m bot ingest --user U FILE                 log a JSONL conversation
    python -m bot sleep --user U [--deep] [--json]     one sleep cycle now, through the queue
    python -m bot recall --user U "Q?"                 answer from the user's weights only
    python -m bot eval --user U --mc FILE              multiple-choice accuracy of the weights
    python -m bot forget --user U (--all | --match P)  forget, then rebuild the weights
    python -m bot status [--user U]                    users' states and the sleep queue
    python -m bot worker [--enqueue U] [--until-empty] run the sleep queue without chat
    python -m bot cluster run|head|join|stop           the distributed mode (Ray workers)
    python -m bot run                                  the Discord bot
    python -m bot model import [FILE.gguf]             import a GGUF model
    python -m bot bench generate|sleep|memory|load     the benchmarks

Global options: ``--data-dir`` (env ``SLEEPBOT_DATA_DIR``, default ./data), ``--model``
(default: the bundled SmolLM2-135M-Instruct), ``--config FILE``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from bot.cli.common import UserError
from runtime.config import ConfigError, load_config, load_dotenv_file

log = logging.getLogger("bot")

# One module per verb (each defines ``add_parser(subparsers)``), in --help order.
VERBS = ("chat", "ingest", "sleep", "recall", "eval", "forget", "status", "worker", "cluster",
         "run", "model", "bench")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sleepbot", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=None, help="runtime data (default ./data)")
    p.add_argument("--model", default=None, help="bundled:smollm2-135m, a .gguf, a dir or hub id")
    p.add_argument("--config", type=Path, default=None, help="a TOML config file")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        importlib.import_module(f"bot.cli.{verb}").add_parser(sub)
    return p


def setup_logging(level_name: str, verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, level_name.upper(), logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # keep terminal chat readable: only warnings from the libraries
        for name in ("bot", "memory", "sleep", "runtime"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


def run_cli(argv: list[str]) -> int:
    load_dotenv_file()
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config, args.data_dir, args.model)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level, args.verbose)
    from memory.paths import BadUserId, check_user_id

    try:  # every verb's user ids: --user, and the worker's --enqueue
        for user in [getattr(args, "user", None), *(getattr(args, "enqueue", None) or [])]:
            if user is not None:
                check_user_id(user)
    except BadUserId as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from bot.engine import DataDirError
    from bot.orchestrator import QueueBusy
    from memory.log import MemoryWriteError
    from memory.store import StoreError
    from runtime.models import ModelError
    from sleep.validation import MCFileError

    try:
        return args.func(args, cfg)
    except (UserError, ModelError, DataDirError, StoreError, MemoryWriteError,
            MCFileError, QueueBusy) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
