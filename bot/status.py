"""Users' sleep states and the queue, read from another process: SQLite plus the running
orchestrator's ``<data>/orchestrator.json``. No model is loaded, so it is safe next to a
running bot (``python -m bot status``).

An orchestrator counts as running only while it holds the data directory's queue lock, and
its status file is believed only when it names that lock holder's pid and has every field:
a pid alone may belong to an unrelated process by now, and a damaged file shows nothing.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from bot import recovery
from bot.orchestrator import STATUS_FILE, next_sleep_text, user_status_dict
from memory.paths import store_path
from memory.store import Store
from runtime.config import Config

log = logging.getLogger(__name__)

_RUNNING_FIELDS = {"job_id": int, "user_id": str, "kind": str, "stage": str,
                   "seconds": (int, float)}


def _valid_snapshot(snap: Any) -> bool:
    """Whether ``snap`` has what ``bot status`` reads, with the right types."""
    if not isinstance(snap, dict) or not isinstance(snap.get("pid"), int):
        return False
    running = snap.get("running")
    return running is None or (isinstance(running, dict) and all(
        isinstance(running.get(k), t) and not isinstance(running.get(k), bool)
        for k, t in _RUNNING_FIELDS.items()))


def read_status_file(data_dir: Path) -> dict | None:
    """The running orchestrator's snapshot; None when no live process holds the queue lock.
    When one does but its file is missing, damaged or stale, the snapshot says only its pid
    (``"running": None``, ``"unreadable": True``)."""
    holder = recovery.queue_holder(data_dir)
    if holder is None:
        return None
    try:
        snap = json.loads((Path(data_dir) / STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        snap = None
    if not _valid_snapshot(snap) or snap["pid"] != holder:
        log.warning("%s is missing, damaged or stale: not showing the running cycle",
                    Path(data_dir) / STATUS_FILE)
        return {"pid": holder, "running": None, "unreadable": True}
    return snap


async def collect_status(cfg: Config, user: str | None) -> dict:
    """Users' states and the queue, from SQLite and the live process's status file."""
    live = read_status_file(cfg.data_dir)
    running = (live or {}).get("running") or None
    # the distributed mode runs several cycles at once: "cycles" lists them all
    cycles = [c for c in (live or {}).get("cycles") or [] if isinstance(c, dict)
              and isinstance(c.get("user_id"), str)] or ([running] if running else [])
    async with await Store.open(store_path(cfg.data_dir)) as store:
        queue = await store.queue_snapshot()
        users = [user] if user else await store.list_users()
        out_users = []
        queued = [q for q in queue if q.state == "queued" or not live]
        for u in users:
            info = await user_status_dict(store, cfg.data_dir, u)
            position = next((n for n, q in enumerate(queued, 1) if q.user_id == u), None)
            cycle = next((c for c in cycles if c["user_id"] == u), None)
            if cycle is not None:
                info.update(state="sleeping", stage=cycle.get("stage"),
                            job_id=cycle.get("job_id"), queue_position=0)
            elif position is not None:
                info.update(state="queued", stage=None, job_id=queued[position - 1].id,
                            queue_position=position)
            else:
                info.update(state="awake", stage=None, job_id=None, queue_position=None)
            info["next_sleep"] = next_sleep_text(cfg.sleep, info["state"], info["stage"],
                                                 position, info["turns_since_sleep"])
            out_users.append(info)
    return {"orchestrator": {"running": bool(live), "pid": live and live.get("pid"),
                             "cycle": running,
                             "status_file_unreadable": bool((live or {}).get("unreadable"))},
            "queue": [{"position": n, "job_id": q.id, "user_id": q.user_id,
                       "kind": q.kind, "state": q.state,
                       "waiting_s": round(time.time() - q.requested_at, 1)}
                      for n, q in enumerate(queue, 1)],
            "users": out_users}
