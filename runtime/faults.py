"""Kill points for the fault tests: named places where the process may SIGKILL itself.

Kill points are named places in the code (``faults.checkpoint("curation")``). When the
environment variable ``SLEEPBOT_KILL_AT`` names one, the process sends itself SIGKILL there:
no cleanup handler runs, exactly like a power cut or ``kill -9``. ``NAME:N`` kills at the
N-th time the point is reached (default the first). Unset, a kill point costs one dict lookup.

    SLEEPBOT_KILL_AT=fusion-written python -m bot worker --enqueue alice --until-empty

What a kill leaves behind is repaired at the next start by :mod:`bot.recovery`.

``SLEEPBOT_STOP_AT`` names a point the same way, where the process SIGSTOPs itself instead:
frozen there, holding its locks and files, until SIGCONT (a test then knows the process is
exactly there, alive, whatever the machine's speed).
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

ENV = "SLEEPBOT_KILL_AT"
STOP_ENV = "SLEEPBOT_STOP_AT"
# Every kill point in the code, in the order a message and a cycle reach them.
POINTS = (
    "logging",          # bot/wake.py: exchange in SQLite, not yet in the JSONL log
    "curation",         # sleep/pipeline.py: curation scored, nothing trained yet
    "training",         # sleep/pipeline.py: during training (after a step's progress report)
    "after-training",   # sleep/pipeline.py: adapter trained, validation not started
    "validation",       # sleep/pipeline.py: between the general and the fact gate
    "fusion-written",   # sleep/fusion.py: version folder complete, CURRENT not switched
    "fusion-switched",  # sleep/fusion.py: CURRENT switched, store not yet registered
)
_hits: dict[str, int] = {}


def _target(env: str = ENV) -> tuple[str, int] | None:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return None
    name, _, count = raw.partition(":")
    return name, int(count) if count.isdigit() else 1


def checkpoint(name: str) -> None:
    """A kill point: SIGKILL this process if ``SLEEPBOT_KILL_AT`` selects it (SIGSTOP if
    ``SLEEPBOT_STOP_AT`` does)."""
    for env, sig in ((ENV, signal.SIGKILL), (STOP_ENV, signal.SIGSTOP)):
        target = _target(env)
        if target is None or target[0] != name:
            continue
        key = f"{env}:{name}"
        _hits[key] = _hits.get(key, 0) + 1
        if _hits[key] == target[1]:
            log.warning("kill point %s reached: sending %s to myself", name, sig.name)
            os.kill(os.getpid(), sig)
