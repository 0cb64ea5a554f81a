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


def confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")
