"""Crash safety: SIGKILL at every kill point, then restart; SIGTERM mid-cycle.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_faults.py

Kill points are chosen by ``SLEEPBOT_KILL_AT`` (see ``runtime/faults.py``), not by timing: the
subprocess (``python -m bot ingest`` or ``python -m bot worker``) sends itself SIGKILL there.
After each kill the data directory is recovered by opening an engine on it (a restart: the
dead process shares nothing in memory with this one) and checked: every exchange logged
before the kill is in SQLite and in the JSONL log, alike; every user's ``CURRENT`` and delta
are byte-identical to their last accepted checkpoint; no half-written or unregistered
checkpoint folder is left. The killed job stays the same job through every restart, and the
last run (which no one asks for a cycle) completes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from bot.engine import open_engine
from memory import checkpoints
from runtime.config import load_config

REPO = Path(__file__).resolve().parents[1]

FAST = """
[chat]
max_tokens = 8
[sleep]
phrasings_per_fact = 1
tau = 0.0
[sleep.lora]
layers = 2
[sleep.train]
learning_rate = 0.001
"""
ALICE = ["My name is Alice and I live in Lisbon.", "My dog is called Biscuit."]
BOB = ["My favourite word is quintessa.", "I work as a carpenter."]
ALICE_NEW = ["My sister is called Mia.", "I work as a nurse.", "My favourite word is zorblax."]
POINTS = ["curation", "training:3", "after-training", "validation", "fusion-written",
          "fusion-switched"]


def conversation(path: Path, texts: list[str]) -> Path:
    lines = []
    for text in texts:
        lines += [{"role": "user", "content": text}, {"role": "assistant", "content": "Noted."}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def on_disk(data: Path, user: str) -> dict:
    """What a user's weights are on disk: the CURRENT pointer and the delta's sha256."""
    root = data / "users" / user / "checkpoints"
    pointer = (root / checkpoints.CURRENT).read_text() if (root / "CURRENT").exists() else ""
    delta = root / pointer / checkpoints.DELTA if pointer else None
    return {"current": pointer,
            "sha256": hashlib.sha256(delta.read_bytes()).hexdigest() if delta else None}


def job_rows(data: Path) -> list[tuple]:
    with sqlite3.connect(data / "sleepbot.db") as db:
        return db.execute("SELECT id, user_id, state FROM sleep_queue ORDER BY id").fetchall()


async def recover_and_check(data: Path, model: Path, runtime, expected: dict, weights: dict,
                            where: str) -> None:
    """Restart on ``data`` (recovery runs in open_engine) and check every invariant."""
    cfg = load_config(data_dir=data, model=str(model), env={})
    async with open_engine(cfg, runtime=runtime) as engine:
        assert not await engine.store.running_cycles(), where
        for user, texts in expected.items():
            rows = await engine.store.exchanges(user)
            logged = engine.conversation_log(user).read()
            assert [e.user_text for e in rows] == texts, f"{where}: {user}'s exchanges"
            assert [(r["id"], r["user"]) for r in logged] == \
                [(e.id, e.user_text) for e in rows], f"{where}: {user}'s log vs SQLite"
            assert on_disk(data, user) == weights[user], f"{where}: {user}'s weights"
            root = engine.paths(user).checkpoints
            registered = {r.version for r in await engine.store.checkpoints(user)}
            for entry in root.iterdir():
                assert not entry.name.startswith(".tmp"), f"{where}: {entry} left over"
                if entry.is_dir():
                    assert checkpoints.is_complete(entry), f"{where}: {entry} incomplete"
                    assert int(entry.name[1:]) in registered, f"{where}: {entry} unregistered"
            current = checkpoints.current_path(root)
            if current is not None:  # the live delta matches its manifest
                checkpoints.load_delta(current, verify=True)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sigkill_at_every_point_loses_nothing(tmp_path, tiny_model_dir, tiny_runtime, cli):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text(FAST)
    run = partial(cli, data_dir=data, model=tiny_model_dir, timeout=600)
    check = partial(recover_and_check, data, tiny_model_dir, tiny_runtime)

    # Both users start from an accepted checkpoint of their own.
    for user, texts in (("alice", ALICE), ("bob", BOB)):
        assert run("ingest", "--user", user, str(conversation(tmp_path / f"{user}.jsonl",
                                                              texts))).returncode == 0
    out = run("worker", "--enqueue", "alice", "--enqueue", "bob", "--until-empty", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert [r["status"] for r in json.loads(out.stdout)["reports"]] == ["accepted", "accepted"]
    weights = {u: on_disk(data, u) for u in ("alice", "bob")}
    assert weights["alice"]["current"] == "v0001" and weights["bob"]["current"] == "v0001"

    # Killed while logging alice's 2nd new exchange: in SQLite, not yet in the JSONL log.
    new = conversation(tmp_path / "alice-new.jsonl", ALICE_NEW)
    out = run("ingest", "--user", "alice", str(new), env={"SLEEPBOT_KILL_AT": "logging:2"})
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    log_file = data / "users" / "alice" / "conversation.jsonl"
    assert len(log_file.read_text().splitlines()) == len(ALICE) + 1  # the 2nd is missing
    expected = {"alice": ALICE + ALICE_NEW[:2], "bob": BOB}
    asyncio.run(check(expected, weights, "logging"))

    # Killed at each stage of alice's next cycle; the same job goes back in the queue.
    job_id = None
    for point in POINTS:
        out = run("worker", "--enqueue", "alice", "--until-empty",
                  env={"SLEEPBOT_KILL_AT": point})
        assert out.returncode == -signal.SIGKILL, f"{point}: {out.stderr[-3000:]}"
        rows = job_rows(data)
        assert rows[-1][1:] == ("alice", "running"), point  # interrupted, not finished
        job_id = job_id or rows[-1][0]
        assert rows[-1][0] == job_id, f"{point}: the job changed"
        if point.startswith("fusion"):  # a complete v0002 that the store never registered
            assert (data / "users" / "alice" / "checkpoints" / "v0002" / "manifest.json").exists()
        if point == "fusion-switched":  # ... and CURRENT already on it
            assert on_disk(data, "alice")["current"] == "v0002"
        asyncio.run(check(expected, weights, point))

    status = run("status", "--json")
    alice = next(u for u in json.loads(status.stdout)["users"] if u["user_id"] == "alice")
    assert alice["state"] == "queued" and alice["checkpoint"] == "alice/v0001"

    # A plain restart finishes the re-queued job.
    out = run("worker", "--until-empty", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    reports = json.loads(out.stdout)["reports"]
    assert [(r["user_id"], r["status"]) for r in reports] == [("alice", "accepted")], \
        reports[0]["reason"]
    assert job_rows(data)[-1] == (job_id, "alice", "done")
    weights["alice"] = on_disk(data, "alice")
    assert weights["alice"]["current"] == "v0002"
    asyncio.run(check(expected, weights, "after the re-queued cycle"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_mid_cycle_keeps_the_queue_and_exits(tmp_path, tiny_model_dir, cli):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text(FAST)
    run = partial(cli, data_dir=data, model=tiny_model_dir, timeout=600)
    assert run("ingest", "--user", "alice",
               str(conversation(tmp_path / "a.jsonl", ALICE))).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--data-dir", str(data), "--model", str(tiny_model_dir),
         "worker", "--enqueue", "alice"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # wait for the event, not for time
            if line.startswith("… training"):
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)  # a hang guard, not a timing assertion
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "1 job(s) left in the queue" in out
    assert [r[1:] for r in job_rows(data)] == [("alice", "queued")]
    assert on_disk(data, "alice") == {"current": "", "sha256": None}
    with sqlite3.connect(data / "sleepbot.db") as db:
        assert db.execute("SELECT status FROM cycles").fetchall() == [("failed",)]
