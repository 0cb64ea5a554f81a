"""Bounded retries (tenacity) for transient failures of our own file and database calls.

    result = await retry_io("rewrite the log", log.rewrite, keep)

Only errors that can pass by themselves are retried: SQLite "database is locked/busy" and
"statements in progress", and OS errors such as EAGAIN/EBUSY/EINTR. A full disk, a read-only
directory or a bad value is raised at once. Model work (training, fusion) is never wrapped:
a failed cycle is reported, not repeated blindly.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 4
_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT}
_TRANSIENT_SQLITE = ("locked", "busy", "statements in progress")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` after a short wait can succeed."""
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(word in message for word in _TRANSIENT_SQLITE)
    if isinstance(exc, OSError):
        return exc.errno in _TRANSIENT_ERRNOS
    return False


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (%s: %s); retry %d of %d", what, type(exc).__name__, exc,
                    state.attempt_number, ATTEMPTS - 1)

    return before_sleep


async def retry_io(what: str, fn: Callable[..., Awaitable[T]], *args: Any,
                   attempts: int = ATTEMPTS, **kwargs: Any) -> T:
    """Await ``fn(*args, **kwargs)``, retrying transient errors up to ``attempts`` times."""
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception(is_transient),
        before_sleep=_log_retry(what),
        reraise=True,
    ):
        with attempt:
            return await fn(*args, **kwargs)
    raise AssertionError("unreachable")  # AsyncRetrying either returns or re-raises
