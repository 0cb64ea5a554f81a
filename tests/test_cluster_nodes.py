"""Real processes around the cluster: two Ray nodes started by the project's own commands,
and a head killed in the middle of a promotion.

    LD_PRELOAD=... .venv/bin/python -m pytest -q tests/test_cluster_nodes.py

``python -m bot cluster head --block`` and ``python -m bot cluster join HOST:PORT --block``
start a head node and a second node on this machine (one CPU each, so one sleep worker lands
on each, as on two hosts), with Ray's token authentication on. ``python -m bot cluster run
--address HOST:PORT`` then runs two users' cycles on them: each is accepted and promoted on
the head's disk, and the two workers ran on different nodes. SIGTERM to each node's process
(the test started them) stops it and everything it started.

A head that SIGKILLs itself between switching a user's CURRENT and registering the promotion
is restarted: the half-done promotion is undone, the job runs again under a new lease, and
the user's checkpoint is promoted exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

FACTS = ["My sister is called Mia.", "I live in Porto.", "I work as a nurse."]
ENV = {"SLEEPBOT_TAU": "0", "SLEEPBOT_PHRASINGS_PER_FACT": "2",
       "SLEEPBOT_LEARNING_RATE": "1e-3", "SLEEPBOT_LORA_LAYERS": "2", "SLEEPBOT_EPOCHS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _node(args: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "bot", "cluster", *args, "--num-cpus",
                                 "1", "--object-store-mb", "120", "--block"], cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for(log: Path, pattern: str, proc: subprocess.Popen, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        match = re.search(pattern, text)
        if match:
            return match.group(1) if match.groups() else match.group(0)
        assert proc.poll() is None, text[-3000:]
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} not seen: {log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_head_and_joined_node_run_the_queue(cli, tmp_path, tiny_model_dir) -> None:
    port = _free_port()
    head = _node(["head", "--port", str(port)], tmp_path / "head.log")
    joined = None
    try:
        ip = _wait_for(tmp_path / "head.log", r"Local node IP: ([0-9.]+)", head)
        _wait_for(tmp_path / "head.log", r"block forever", head)
        joined = _node(["join", f"{ip}:{port}"], tmp_path / "join.log")
        _wait_for(tmp_path / "join.log", r"block forever", joined)

        data = tmp_path / "data"
        convo = tmp_path / "convo.jsonl"
        convo.write_text("".join(json.dumps({"role": r, "content": c}) + "\n" for t in FACTS
                                 for r, c in (("user", t), ("assistant", "Noted!"))))
        for user in ("alice", "bob"):
            out = cli("ingest", "--user", user, str(convo), data_dir=data, model=tiny_model_dir,
                      env=ENV)
            assert out.returncode == 0, out.stderr
        out = cli("cluster", "run", "--address", f"{ip}:{port}", "--workers", "2",
                  "--enqueue", "alice", "--enqueue", "bob", "--until-empty", "--json",
                  data_dir=data, model=tiny_model_dir, env=ENV, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        result = json.loads(out.stdout)
        assert sorted(r["status"] for r in result["reports"]) == ["accepted", "accepted"]
        nodes = {w["node"] for w in result["workers"].values()}
        assert len(nodes) == 2  # one worker on each node: as on two hosts
        for user in ("alice", "bob"):
            assert (data / "users" / user / "checkpoints" / "CURRENT").read_text() == "v0001"
        assert "auth_token" not in out.stderr and "auth_token" not in out.stdout
    finally:
        if joined is not None:
            _stop(joined)
        _stop(head)
        # a node stopped by a signal leaves Ray's pointer to it behind: remove ours only
        pointer = Path("/tmp/ray/ray_current_cluster")
        if pointer.is_file() and pointer.read_text().strip().endswith(f":{port}"):
            pointer.unlink()
    assert head.returncode is not None and (joined is None or joined.returncode is not None)


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (what a killed head leaves behind)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def test_head_killed_at_promotion_promotes_once_after_restart(cli, tmp_path,
                                                             tiny_model_dir) -> None:
    """The head SIGKILLs itself between switching CURRENT and registering the promotion
    (SLEEPBOT_KILL_AT=fusion-switched). At the next `cluster run` the unregistered version
    is removed, the job runs again under a new lease, and it is promoted exactly once."""
    import sqlite3

    from tests.conftest import run_cli

    data = tmp_path / "data"
    convo = tmp_path / "convo.jsonl"
    convo.write_text("".join(json.dumps({"role": r, "content": c}) + "\n" for t in FACTS
                             for r, c in (("user", t), ("assistant", "Noted!"))))
    assert cli("ingest", "--user", "alice", str(convo), data_dir=data, model=tiny_model_dir,
               env=ENV).returncode == 0
    env = dict(os.environ) | ENV | {"SLEEPBOT_KILL_AT": "fusion-switched"}
    env.pop("SLEEPBOT_MODEL", None)
    head = subprocess.Popen(
        [sys.executable, "-m", "bot", "--data-dir", str(data), "--model", str(tiny_model_dir),
         "cluster", "run", "--workers", "1", "--enqueue", "alice", "--until-empty"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        _, err = head.communicate(timeout=300)
    finally:
        # the local cluster it started loses its driver: end what is left of it (its group)
        for pid in _group_members(head.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert head.returncode == -signal.SIGKILL, err[-3000:]
    root = data / "users" / "alice" / "checkpoints"
    assert (root / "CURRENT").read_text() == "v0001"  # switched, never registered
    with sqlite3.connect(data / "sleepbot.db") as db:
        assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 0

    out = run_cli("cluster", "run", "--workers", "1", "--until-empty", "--json",
                  data_dir=data, model=tiny_model_dir, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (report,) = json.loads(out.stdout)["reports"]
    assert report["status"] == "accepted" and report["version"] == 1
    assert report["stages"]["cluster"]["attempts"][0]["lease"] == 2  # the old token is dead
    with sqlite3.connect(data / "sleepbot.db") as db:
        rows = db.execute("SELECT version, cycle_id, is_current FROM checkpoints").fetchall()
        cycles = dict(db.execute("SELECT id, status FROM cycles").fetchall())
    assert rows == [(1, report["cycle_id"], 1)]
    assert cycles == {1: "failed", report["cycle_id"]: "accepted"}
    assert (root / "CURRENT").read_text() == "v0001"
