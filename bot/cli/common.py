"""What every CLI verb shares: the user-facing error, JSON output, running a coroutine."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from typing import Any


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def confirm(question: str, yes_flag: str = "--yes") -> bool:
    """Ask on the terminal; a closed or empty stdin (a script, cron) cannot say yes: that is
    a :class:`UserError` naming ``yes_flag``, never a silent no or a traceback."""
    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError):  # stdin closed under us
        answer = ""
    if not answer:
        print()
        raise UserError(f"no answer to {question!r} (stdin is closed or empty): nothing was "
                        f"changed; pass {yes_flag} to go ahead without asking")
    return answer.strip().lower() in ("y", "yes")


def add_queue_arguments(p) -> None:
    """The queue options ``worker`` and ``cluster run`` share."""
    p.add_argument("--enqueue", action="append", default=[], metavar="USER",
                   help="queue a cycle for USER first (repeatable)")
    p.add_argument("--deep", action="store_true", help="queued cycles are deep ones")
    p.add_argument("--until-empty", action="store_true", help="exit once the queue is empty")
    p.add_argument("--json", action="store_true", help="print the cycle reports as JSON")
