"""Soak: three processes on one data directory for five minutes, the queue SIGKILLed at random.

One process chats for four users (``Orchestrator.handle_message``, the Discord and terminal
entry point, without the queue: the turn threshold queues cycles in SQLite), a second runs
the sleep queue (``python -m bot worker``) and is SIGKILLed at random moments and started
again, a third runs ``status`` and ``recall`` in a loop. At the end (after one last worker run
that empties the queue) every exchange the chat process was told was saved is in SQLite and
in the user's log exactly once, every user's ``CURRENT`` is a registered version whose delta
matches its manifest's sha256 (or the base model, with nothing registered as current), no
cycle or job is left running, and every ``status`` and ``recall`` call answered.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_soak.py        (slow: about six minutes)
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memory import checkpoints

REPO = Path(__file__).resolve().parents[1]
SOAK_SECONDS = 300.0  # the issue asks for at least five minutes
USERS = ("ana", "ben", "cy", "dee")
CONFIG = """
[chat]
max_tokens = 6
context_tokens = 512
[sleep]
turn_threshold = 3
phrasings_per_fact = 1
tau = 0.0
deep_every = 0
idle_minutes = 0
[sleep.lora]
layers = 2
[sleep.train]
learning_rate = 0.001
"""

# The chat process: until the stop file appears, one message per user in turn; one JSON
# line per message on stdout (the exchange id the store gave it, and whether it was saved).
CHATTER = r"""
import asyncio, json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bot.engine import open_engine
from bot.orchestrator import Orchestrator
from runtime.config import load_config

async def main(data, model, stop, users):
    cfg = load_config(data_dir=Path(data), model=model)
    facts = ["My favourite number is {n}.", "My dog is called Rex{n}.", "I live in town {n}.",
             "I work as a baker number {n}."]
    async with open_engine(cfg) as engine:
        orch = Orchestrator(engine)  # not started: another process runs the queue
        n = 0
        while not Path(stop).exists():
            for user in users:
                n += 1
                text = f"{user} says: " + facts[n % len(facts)].format(n=n)
                try:
                    stream = orch.handle_message(user, text)
                    async for _ in stream:
                        pass
                    reply = stream.reply
                    row = {"user": user, "text": text, "id": reply.exchange_id,
                           "saved": reply.saved, "warning": reply.warning}
                except Exception as exc:
                    row = {"user": user, "text": text, "error": f"{type(exc).__name__}: {exc}"}
                print(json.dumps(row), flush=True)
                await asyncio.sleep(0.3)  # a brisk human pace, not a flood: cycles stay short

asyncio.run(main(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")))
"""


def bot(data: Path, model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bot", "--data-dir", str(data), "--model", str(model), *args]


class Prober(threading.Thread):
    """``status`` and ``recall`` in a loop until stopped; keeps every failure."""

    def __init__(self, data: Path, model: Path):
        super().__init__(daemon=True)
        self.data, self.model = data, model
        self.stop = threading.Event()
        self.calls, self.failures = 0, []

    def run(self) -> None:
        rng = random.Random(1)
        while not self.stop.is_set():
            user = rng.choice(USERS)
            for args in (["status", "--json"],
                         ["recall", "--user", user, "--json", "What is my favourite number?"]):
                out = subprocess.run(bot(self.data, self.model, *args), capture_output=True,
                                     text=True, cwd=REPO, timeout=300,
                                     env={**_env(), "SLEEPBOT_MAX_TOKENS": "4"})
                self.calls += 1
                try:
                    ok = out.returncode == 0 and "Traceback" not in out.stderr
                    json.loads(out.stdout)
                except ValueError:
                    ok = False
                if not ok:
                    self.failures.append((args, out.returncode, out.stderr[-2000:]))


def _env() -> dict:
    import os
    env = dict(os.environ)
    env.pop("SLEEPBOT_MODEL", None)
    return env


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_soak_chat_queue_kills_and_probes_lose_nothing(tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text(CONFIG)
    stop_file = tmp_path / "stop"
    rng = random.Random(12)
    kills, worker_logs = 0, []

    def start_worker() -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(worker_logs)}.log", "w")
        worker_logs.append(log)
        return subprocess.Popen(bot(data, tiny_model_dir, "worker"), cwd=REPO, env=_env(),
                                stdout=log, stderr=subprocess.STDOUT)

    worker = start_worker()
    chatter = subprocess.Popen(
        [sys.executable, "-c", CHATTER, str(REPO), str(data), str(tiny_model_dir),
         str(stop_file), ",".join(USERS)],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    chat_out: list[str] = []
    first_saved = threading.Event()

    def read_chat() -> None:
        for line in chatter.stdout:
            chat_out.append(line)
            first_saved.set()

    reader = threading.Thread(target=read_chat, daemon=True)
    reader.start()
    assert first_saved.wait(timeout=300), chatter.stderr.read()[-3000:]  # the database exists
    prober = Prober(data, tiny_model_dir)
    prober.start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < SOAK_SECONDS:
            # the queue process dies at a random moment: mid-cycle, mid-recovery, or idle
            deadline = time.monotonic() + rng.uniform(4.0, 40.0)
            while time.monotonic() < deadline and worker.poll() is None:
                time.sleep(0.2)
            assert worker.poll() is None, (tmp_path / f"worker-{kills}.log").read_text()[-3000:]
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
            worker = start_worker()
    finally:
        stop_file.touch()
        prober.stop.set()
        chatter_rc = chatter.wait(timeout=300)
        reader.join(timeout=60)
        prober.join(timeout=300)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        for log in worker_logs:
            log.close()
    assert chatter_rc == 0, chatter.stderr.read()[-3000:]

    # one last worker run (a restart after the last kill) finishes what is queued
    final = subprocess.run(bot(data, tiny_model_dir, "worker", "--until-empty", "--json"),
                           capture_output=True, text=True, cwd=REPO, env=_env(), timeout=900)
    assert final.returncode == 0, final.stderr[-3000:]

    rows = [json.loads(line) for line in chat_out]
    assert not [r for r in rows if "error" in r], [r for r in rows if "error" in r][:3]
    assert all(r["saved"] for r in rows), [r for r in rows if not r["saved"]][:3]
    assert not prober.failures, prober.failures[:2]
    assert kills >= 5 and prober.calls >= 10 and len(rows) >= 40, (kills, prober.calls,
                                                                    len(rows))
    with sqlite3.connect(data / "sleepbot.db") as db:
        stored = db.execute("SELECT id, user_id, user_text FROM exchanges ORDER BY id").fetchall()
        registry = db.execute("SELECT user_id, version FROM checkpoints WHERE is_current = 1"
                              ).fetchall()
        running = db.execute("SELECT COUNT(*) FROM cycles WHERE status = 'running'").fetchone()
        jobs = db.execute("SELECT COUNT(*) FROM sleep_queue WHERE state = 'running'").fetchone()
        accepted = db.execute("SELECT COUNT(*) FROM cycles WHERE status = 'accepted'"
                              ).fetchone()[0]
    # every exchange sent is in SQLite exactly once, and nothing else is
    assert sorted((r["id"], r["user"], r["text"]) for r in rows) == stored
    for user in USERS:
        mine = [(i, text) for i, u, text in stored if u == user]
        log_path = data / "users" / user / "conversation.jsonl"
        logged = [json.loads(line) for line in log_path.read_text().splitlines() if line]
        assert sorted((r["id"], r["user"]) for r in logged) == mine, user  # exactly once
        root = data / "users" / user / "checkpoints"
        pointer = checkpoints.read_pointer(root)
        current = dict(registry).get(user)
        if pointer.state == "version":
            assert pointer.version == current, (user, pointer, current)
            checkpoints.verify_checkpoint(root / checkpoints.version_name(pointer.version))
        else:
            assert pointer.state in ("base", "missing") and current is None, (user, pointer)
    assert running == (0,) and jobs == (0,)
    assert accepted >= 1  # cycles did run to the end between the kills
    print(f"soak: {len(rows)} exchanges, {kills} SIGKILLs, {prober.calls} status/recall "
          f"calls, {accepted} cycles accepted")
