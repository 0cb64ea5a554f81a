"""The cluster actors' scratch folders hold users' weights: removed when the actor is closed,
and swept by the next actor on the host when it was killed (``ray.kill`` runs no cleanup).
No Ray here: the actors are plain classes.

    pytest tests/test_cluster_scratch.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

from bot.cluster.actors import OWNER_FILE, SleepWorker, sweep_stale_scratch
from runtime.config import load_config


def _folder(root, name, owner):
    folder = root / f"sleepbot-{name}-x1y2"
    (folder / "users" / "alice").mkdir(parents=True)
    (folder / "users" / "alice" / "delta.safetensors").write_bytes(b"weights")
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    return folder


def test_a_dead_actors_scratch_is_swept_and_the_living_are_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    gone = _folder(tmp_path, "sleep-worker-0", f"{host} {dead.pid}")
    alive = _folder(tmp_path, "sleep-worker-1", f"{host} {os.getpid()}")
    elsewhere = _folder(tmp_path, "chat-replica-0", f"not-{host} {dead.pid}")
    unowned = _folder(tmp_path, "bench", None)  # a bench's folder: not an actor's
    assert sweep_stale_scratch(tmp_path) == [gone]
    assert not gone.exists()
    assert alive.exists() and elsewhere.exists() and unowned.exists()


def test_a_worker_marks_its_scratch_and_close_removes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    worker = SleepWorker(load_config(data_dir=tmp_path / "data", env={}), "sleep-worker-0")
    assert worker.scratch.parent == tmp_path
    owner = (worker.scratch / OWNER_FILE).read_text().split()
    assert owner == [socket.gethostname(), str(os.getpid())]
    worker.close()
    assert not worker.scratch.exists()
