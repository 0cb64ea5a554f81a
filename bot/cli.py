"""The command-line verbs: thin wrappers that open an engine and call services.

    python -m bot chat --user NAME          chat in the terminal
    python -m bot bench generate [--json]   our runtime vs plain mlx_lm.generate
    python -m bot model import [FILE.gguf]  import the bundled (or any llama) GGUF model
    python -m bot ingest --user U FILE      log a JSONL conversation (replies generated)
    python -m bot sleep --user U [--deep]   run one sleep cycle now and print its report
    python -m bot recall --user U "Q?"      answer from the user's weights, empty context
    python -m bot eval --user U --mc FILE   multiple-choice accuracy of the user's weights

Global options: ``--data-dir`` (env ``SLEEPBOT_DATA_DIR``, default ./data), ``--model``
(default: the bundled SmolLM2-135M-Instruct), ``--config FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from bot.config import Config, ConfigError, load_config, load_dotenv_file

log = logging.getLogger("bot")

COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {}


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sleepbot", description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=None, help="runtime data (default ./data)")
    p.add_argument("--model", default=None, help="bundled:smollm2-135m, a .gguf, a dir or hub id")
    p.add_argument("--config", type=Path, default=None, help="a TOML config file")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="chat in the terminal")
    chat.add_argument("--user", default="local", help="whose memory to use")
    chat.add_argument("--banner", action="store_true", help="print what to try first")

    model = sub.add_parser("model", help="model files")
    msub = model.add_subparsers(dest="model_command", required=True)
    imp = msub.add_parser("import", help="import a GGUF file (default: the bundled model)")
    imp.add_argument("gguf", nargs="?", type=Path, default=None)
    imp.add_argument("--out", type=Path, default=None)

    bench = sub.add_parser("bench", help="benchmarks")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    gen = bsub.add_parser("generate", help="decode/prefill speed vs plain mlx_lm.generate")
    gen.add_argument("--json", action="store_true")
    gen.add_argument("--max-tokens", type=int, default=128)
    gen.add_argument("--repeats", type=int, default=3)
    gen.add_argument("--no-stock", action="store_true", help="skip the stock-setup baseline")

    ingest = sub.add_parser("ingest", help="log a JSONL conversation as a user's exchanges")
    ingest.add_argument("--user", required=True)
    ingest.add_argument("file", type=Path)

    sleep = sub.add_parser("sleep", help="run one sleep cycle for a user now")
    sleep.add_argument("--user", required=True)
    sleep.add_argument("--deep", action="store_true", help="with dreaming")
    sleep.add_argument("--json", action="store_true")

    recall = sub.add_parser("recall", help="answer from the user's weights, empty context")
    recall.add_argument("--user", required=True)
    recall.add_argument("--json", action="store_true")
    recall.add_argument("question", nargs="?", default=None)
    recall.add_argument("--batch", type=Path, default=None,
                        help="a JSON list of questions; prints a JSON list of answers")

    ev = sub.add_parser("eval", help="multiple-choice accuracy of the user's weights")
    ev.add_argument("--user", required=True)
    ev.add_argument("--mc", type=Path, required=True)
    ev.add_argument("--json", action="store_true")

    for name in VERB_MODULES:  # each adds its parsers and registers its @command functions
        importlib.import_module(name).add_parsers(sub, bsub)
    return p


# Modules with more verbs; each defines ``add_parsers(sub, bench_sub)`` (top-level and
# ``bench`` subparsers) and registers ``@command("verb")`` / ``@command("bench name")`` functions.
VERB_MODULES: list[str] = ["bot.bench_memory", "bot.bench_sleep", "bot.cmd_discord",
                            "bot.cmd_orchestrator"]


def setup_logging(cfg: Config, verbose: bool) -> None:
    level = logging.DEBUG if verbose else getattr(logging, cfg.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # keep terminal chat readable: only warnings from the libraries
        for name in ("bot", "memory", "sleep"):
            logging.getLogger(name).setLevel(max(level, logging.WARNING))


def run_cli(argv: list[str]) -> int:
    from bot import commands  # noqa: F401  (registers the verbs)

    load_dotenv_file()
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config, args.data_dir, args.model)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg, args.verbose)
    key = args.command
    if hasattr(args, f"{key}_command"):  # nested verbs: "bench generate", "model import"
        key = f"{key} {getattr(args, key + '_command')}"
    from bot.engine import DataDirError
    from bot.models import ModelError
    from memory.log import MemoryWriteError
    from memory.store import StoreError
    from sleep.validation import MCFileError

    try:
        return COMMANDS[key](args, cfg)
    except (UserError, ModelError, DataDirError, StoreError, MemoryWriteError,
            MCFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def run_async(coro) -> int:
    return asyncio.run(coro)
