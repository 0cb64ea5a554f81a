"""Users' sleep states and the queue, read from another process: SQLite plus the running
orchestrator's ``<data>/orchestrator.json``. No model is loaded, so it is safe next to a
running bot (``python -m bot status``)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bot.orchestrator import STATUS_FILE, next_sleep_text, user_status_dict
from memory.paths import store_path
from memory.store import Store
from runtime.config import Config


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_status_file(data_dir: Path) -> dict | None:
    """The running orchestrator's snapshot, or None when no live process wrote one."""
    try:
        snap = json.loads((data_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return snap if isinstance(snap, dict) and _alive(int(snap.get("pid", 0))) else None


async def collect_status(cfg: Config, user: str | None) -> dict:
    """Users' states and the queue, from SQLite and the live process's status file."""
    live = read_status_file(cfg.data_dir)
    running = (live or {}).get("running") or None
    async with await Store.open(store_path(cfg.data_dir)) as store:
        queue = await store.queue_snapshot()
        users = [user] if user else await store.list_users()
        out_users = []
        queued = [q for q in queue if q.state == "queued" or not live]
        for u in users:
            info = await user_status_dict(store, cfg.data_dir, u)
            position = next((n for n, q in enumerate(queued, 1) if q.user_id == u), None)
            if running and running["user_id"] == u:
                info.update(state="sleeping", stage=running["stage"], job_id=running["job_id"],
                            queue_position=0)
            elif position is not None:
                info.update(state="queued", stage=None, job_id=queued[position - 1].id,
                            queue_position=position)
            else:
                info.update(state="awake", stage=None, job_id=None, queue_position=None)
            info["next_sleep"] = next_sleep_text(cfg.sleep, info["state"], info["stage"],
                                                 position, info["turns_since_sleep"])
            out_users.append(info)
    return {"orchestrator": {"running": bool(live), "pid": live and live.get("pid"),
                             "cycle": running},
            "queue": [{"position": n, "job_id": q.id, "user_id": q.user_id,
                       "kind": q.kind, "state": q.state,
                       "waiting_s": round(time.time() - q.requested_at, 1)}
                      for n, q in enumerate(queue, 1)],
            "users": out_users}
