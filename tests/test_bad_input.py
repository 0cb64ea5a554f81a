"""Bad input gets one clear line and loses nothing already saved (issue 12, items 7-10).

Every case runs the real command line (``python -m bot`` in a subprocess, the ``cli``
fixture) on a real data directory and asserts the line the user reads, not only the exit
code: settings (environment and config file), user ids, ``recall`` questions and batch files,
``ingest`` files, multiple-choice files for ``eval``, ``forget`` without a terminal, a full
disk during ingest, messages past the input bound, a damaged or stale ``orchestrator.json``,
and Discord out of reach at start.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_bad_input.py
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lock_held_elsewhere

REPO = Path(__file__).resolve().parents[1]
QUIET = {"SLEEPBOT_MAX_TOKENS": "4"}


def one_line_error(out, *needles: str) -> str:
    """Exit 2, no traceback, one stderr line starting with "error: " holding ``needles``."""
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def exchanges(data: Path, user: str) -> list[tuple[str, str]]:
    with sqlite3.connect(data / "sleepbot.db") as db:
        return db.execute("SELECT user_text, source FROM exchanges WHERE user_id = ? "
                          "ORDER BY id", (user,)).fetchall()


def log_lines(data: Path, user: str) -> list[dict]:
    path = data / "users" / user / "conversation.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- settings: every one is checked at load, and the message names where it came from ------

ENV_CASES = {
    "nightly time 99:99": ({"SLEEPBOT_NIGHTLY_TIME": "99:99"},
                           "SLEEPBOT_NIGHTLY_TIME='99:99': sleep.nightly_time must be a time "
                           "of day HH:MM (00:00 to 23:59)"),
    "nightly time in words": ({"SLEEPBOT_NIGHTLY_TIME": "3pm"}, "sleep.nightly_time must be"),
    "temperature NaN": ({"SLEEPBOT_TEMPERATURE": "nan"},
                        "chat.temperature must be a finite number"),
    "no reply tokens": ({"SLEEPBOT_MAX_TOKENS": "0"}, "chat.max_tokens must be at least 1"),
    "tokens not a number": ({"SLEEPBOT_MAX_TOKENS": "lots"}, "SLEEPBOT_MAX_TOKENS='lots'"),
    "tau above 1": ({"SLEEPBOT_TAU": "1.5"}, "sleep.tau must be at most 1"),
    "negative learning rate": ({"SLEEPBOT_LEARNING_RATE": "-0.001"},
                               "sleep.train.learning_rate must be above 0"),
    "unknown log level": ({"SLEEPBOT_LOG_LEVEL": "LOUD"},
                          "log_level must be one of DEBUG, INFO, WARNING"),
    "guild ids with letters": ({"SLEEPBOT_DISCORD_GUILDS": "12, abc"},
                               "SLEEPBOT_DISCORD_GUILDS='12, abc'"),
    "yes/no that is neither": ({"SLEEPBOT_DISCORD_DMS": "maybe"},
                               "expected 1/0, true/false, yes/no or on/off"),
    "turn threshold 0": ({"SLEEPBOT_TURN_THRESHOLD": "0"},
                         "sleep.turn_threshold must be at least 1"),
}


@pytest.mark.parametrize("case", sorted(ENV_CASES))
def test_a_bad_environment_setting_is_refused_at_load(cli, tmp_path, case):
    env, needle = ENV_CASES[case]
    out = cli("status", data_dir=tmp_path / "data", env=env)
    one_line_error(out, needle)
    assert not (tmp_path / "data" / "sleepbot.db").exists()  # nothing opened, nothing written


FILE_CASES = {
    "a boolean for a number": ("[sleep]\nturn_threshold = true\n",
                               "sleep.turn_threshold must be a whole number (got True)"),
    "an unknown mode": ('[sleep]\nextraction = "magic"\n',
                        "sleep.extraction must be one of patterns, model, both"),
    "an unknown key": ("[sleep]\nturn_treshold = 5\n", "unknown setting 'turn_treshold'"),
    "a value for a table": ("chat = 3\n", "'chat' must be a table"),
    "not TOML": ("[sleep\nturn_threshold = 5\n", "config.toml"),
    "a model that is a number": ("model = 3\n", "'model' must be a model name or path"),
    "ids that are text": ('[discord]\nallowed_guilds = ["a"]\n',
                          "discord.allowed_guilds must be a list of ids"),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_a_bad_config_file_is_refused_at_load_naming_the_file(cli, tmp_path, case):
    text, needle = FILE_CASES[case]
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text(text)
    line = one_line_error(cli("status", data_dir=data), needle)
    assert str(data / "config.toml") in line


def test_a_config_file_that_is_not_utf8_is_refused(cli, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_bytes(b"[chat]\nbot_name = \"\xff\xfe\"\n")
    one_line_error(cli("status", data_dir=data), str(data / "config.toml"), "utf-8")


def test_a_missing_config_file_is_named(cli, tmp_path):
    out = cli("--config", str(tmp_path / "nope.toml"), "status", data_dir=tmp_path / "data")
    one_line_error(out, f"config file not found: {tmp_path / 'nope.toml'}")


# -- user ids --------------------------------------------------------------------------------

USER_CASES = {
    "empty": ("", "the user id is empty"),
    "spaces only": ("   ", "the user id is empty"),
    "a control character": ("ana\x07", "holds control characters"),
    "too long": ("a" * 300, "the user id is 300 characters long; the limit is 256"),
}


@pytest.mark.parametrize("case", sorted(USER_CASES))
@pytest.mark.parametrize("verb", ["recall", "ingest", "sleep"])
def test_a_bad_user_id_is_refused_by_every_verb(cli, tmp_path, case, verb):
    user, needle = USER_CASES[case]
    extra = {"recall": ["hello?"], "ingest": [str(tmp_path / "x.jsonl")], "sleep": []}[verb]
    out = cli(verb, "--user", user, *extra, data_dir=tmp_path / "data")
    one_line_error(out, needle)
    assert not (tmp_path / "data").exists()


def test_a_user_id_that_is_not_utf8_is_refused(tmp_path):
    """Bytes from a shell (``--user $'\\xff'``) arrive as surrogate escapes: SQLite cannot
    store them (it was a UnicodeEncodeError traceback)."""
    out = subprocess.run([sys.executable, "-m", "bot", "--data-dir", str(tmp_path / "data"),
                          "chat", "--user", b"ana\xff"], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    one_line_error(out, "is not valid UTF-8 text")


def test_the_worker_checks_the_users_it_queues(cli, tmp_path):
    one_line_error(cli("worker", "--enqueue", " ", data_dir=tmp_path / "data"),
                   "the user id is empty")


# -- recall: questions and batch files -------------------------------------------------------

BATCH_CASES = {
    "an object": ({"q": "Who is my sister?"}, "expected a JSON list of questions, not a dict"),
    "a string": ("Who is my sister?", "expected a JSON list of questions, not a str"),
    "an empty list": ([], "the list of questions is empty"),
    "a blank question": (["Who is my sister?", "   "], "question 2 is empty"),
    "a number": (["Who is my sister?", 5], "question 2 is a int, not text"),
    "a question past the bound": (["x" * 9000], "question 1: the text is 9,000 characters "
                                                "long; the limit is 8,000"),
}


@pytest.mark.parametrize("case", sorted(BATCH_CASES))
def test_a_bad_recall_batch_is_refused_naming_the_item(cli, tmp_path, case):
    """An object or a string was iterated as keys or characters, and blank questions were
    answered."""
    payload, needle = BATCH_CASES[case]
    batch = tmp_path / "questions.json"
    batch.write_text(json.dumps(payload))
    out = cli("recall", "--user", "ana", "--batch", str(batch), data_dir=tmp_path / "data")
    one_line_error(out, f"--batch {batch}", needle)


def test_a_recall_batch_that_is_not_json_is_refused(cli, tmp_path):
    batch = tmp_path / "questions.json"
    batch.write_text("['single quotes']")
    one_line_error(cli("recall", "--user", "ana", "--batch", str(batch),
                       data_dir=tmp_path / "data"), "cannot read it as JSON")


def test_a_blank_recall_question_is_refused(cli, tmp_path):
    one_line_error(cli("recall", "--user", "ana", " \t ", data_dir=tmp_path / "data"),
                   "the question is empty")


def test_a_huge_recall_question_is_cut_and_the_user_told(cli, tmp_path, tiny_model_dir):
    """54,000 characters (past the model's context) ran for minutes at 1.8 GB: the question
    is bounded like a chat message, and the user is told so."""
    out = cli("recall", "--user", "ana", "--json", "Who is my sister? " * 3000,
              data_dir=tmp_path / "data", model=tiny_model_dir, env=QUIET)
    assert out.returncode == 0, out.stderr[-3000:]
    assert ("(your message was longer than 8,000 characters: I read only the first 8,000, "
            "the limit set by chat.max_message_chars)") in out.stderr
    assert json.loads(out.stdout)["checkpoint"] == "base"


# -- ingest files: checked whole before anything is saved ----------------------------------

U, A = "user", "assistant"
INGEST_CASES = {
    "content that is a number": ([{"role": U, "content": 42}], ":1: content must be text, "
                                                               "not int 42"),
    "content that is an object": ([{"role": U, "content": "hi"}, {"role": A,
                                                                 "content": {"t": "x"}}],
                                  ":2: content must be text, not dict"),
    "an assistant line first": ([{"role": A, "content": "Hello!"}, {"role": U, "content": "Hi"}],
                                ":1: an assistant line must follow a user line (this one "
                                "follows the start of the file)"),
    "two assistant lines": ([{"role": U, "content": "Hi"}, {"role": A, "content": "Hello"},
                             {"role": A, "content": "Still there?"}],
                            ":3: an assistant line must follow a user line (this one follows "
                            "another assistant line)"),
    "an empty user message": ([{"role": U, "content": " \u200b "}],
                              ":1: the user message is empty"),
    "a 1 MB message": ([{"role": U, "content": "a" * 1_000_000}],
                       ":1: the text is 1,000,000 characters long; the limit is 8,000"),
    "a system line": ([{"role": "system", "content": "Be nice."}],
                      ":1: role must be user or assistant, not 'system'"),
    "a line without content": ([{"role": U}], ':1: expected {"role": ..., "content": ...}'),
}


@pytest.mark.parametrize("case", sorted(INGEST_CASES))
def test_a_bad_ingest_line_is_refused_and_nothing_is_saved(cli, tmp_path, case):
    """Non-text content was stored as its Python repr, assistant lines without a user line
    were dropped and 1 MB messages cut to 8,000 characters, all without a word."""
    rows, needle = INGEST_CASES[case]
    convo = jsonl(tmp_path / "convo.jsonl", rows)
    out = cli("ingest", "--user", "ana", str(convo), data_dir=tmp_path / "data")
    one_line_error(out, f"{convo}{needle}")
    assert not (tmp_path / "data").exists()  # refused before the data dir was even opened


def test_ingest_files_that_cannot_be_read_are_named(cli, tmp_path):
    data = tmp_path / "data"
    binary = tmp_path / "photo.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    one_line_error(cli("ingest", "--user", "ana", str(binary), data_dir=data),
                   f"cannot read {binary}: it is not UTF-8 text")
    one_line_error(cli("ingest", "--user", "ana", str(tmp_path / "absent.jsonl"),
                       data_dir=data), f"cannot read {tmp_path / 'absent.jsonl'}")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    one_line_error(cli("ingest", "--user", "ana", str(empty), data_dir=data),
                   f"{empty} holds no messages")


CONVO = [{"role": U, "content": "My dog is called Biscuit."}, {"role": A, "content": "Nice!"},
         {"role": U, "content": "I live in Porto."}, {"role": A, "content": "Lovely city."},
         {"role": U, "content": "My sister is Mia."}, {"role": A, "content": "Hello Mia!"}]


def test_the_same_file_twice_is_refused_unless_asked_again(cli, tmp_path, tiny_model_dir):
    """Ingesting the same file twice duplicated every exchange."""
    data = tmp_path / "data"
    convo = jsonl(tmp_path / "convo.jsonl", CONVO)
    out = cli("ingest", "--user", "ana", str(convo), data_dir=data, model=tiny_model_dir)
    assert out.returncode == 0 and "ingested 3 exchanges for user ana" in out.stdout
    again = cli("ingest", "--user", "ana", str(convo), data_dir=data, model=tiny_model_dir)
    one_line_error(again, f"{convo} was already ingested for user ana on ",
                   "(3 exchanges); nothing was added. Pass --again to log it a second time")
    assert len(exchanges(data, "ana")) == 3 and len(log_lines(data, "ana")) == 3
    forced = cli("ingest", "--user", "ana", "--again", str(convo), data_dir=data,
                 model=tiny_model_dir)
    assert forced.returncode == 0 and len(exchanges(data, "ana")) == 6
    other = cli("ingest", "--user", "bob", str(convo), data_dir=data, model=tiny_model_dir)
    assert other.returncode == 0, other.stderr  # another user's copy is not a duplicate


def test_a_full_disk_during_ingest_says_how_many_were_saved_and_resumes(cli, tmp_path,
                                                                      tiny_model_dir):
    """Disk full during ingest was a traceback; now: how many were saved, and running the
    same command again continues where it stopped: every exchange exactly once."""
    data = tmp_path / "data"
    convo = jsonl(tmp_path / "convo.jsonl", CONVO)
    log_path = data / "users" / "ana" / "conversation.jsonl"
    log_path.parent.mkdir(parents=True)
    log_path.symlink_to("/dev/full")  # every write to the log fails with ENOSPC
    out = cli("ingest", "--user", "ana", str(convo), data_dir=data, model=tiny_model_dir)
    one_line_error(out, "No space left on device",
                   "1 of 3 exchanges saved; free some space or make the data directory "
                   "writable, then run the same command again: it continues where it stopped")
    log_path.unlink()  # space again
    out = cli("ingest", "--user", "ana", str(convo), data_dir=data, model=tiny_model_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "continuing an earlier ingest of convo.jsonl that stopped after 1 of 3" in out.stdout
    assert "ingested 2 exchanges for user ana" in out.stdout
    texts = [m["content"] for m in CONVO if m["role"] == U]
    assert [t for t, _ in exchanges(data, "ana")] == texts  # each exactly once
    assert [r["user"] for r in log_lines(data, "ana")] == texts  # the first, restored


# -- eval: multiple-choice files -------------------------------------------------------------

MC_CASES = {
    "choices as a string": ({"query": "Q?", "choices": "ABCD", "gold": 1},
                            ":1: choices must be a list of at least two texts"),
    "a fractional gold": ({"query": "Q?", "choices": ["a", "b"], "gold": 1.9},
                          ":1: gold must be a whole number (the index of the right choice), "
                          "not 1.9"),
    "a boolean gold": ({"query": "Q?", "choices": ["a", "b"], "gold": True},
                       ":1: gold must be a whole number"),
    "a gold out of range": ({"query": "Q?", "choices": ["a", "b"], "gold": 2},
                            ":1: gold index 2 out of range"),
    "a query past the bound": ({"query": "q" * 9000, "choices": ["a", "b"], "gold": 0},
                               "item 1 (query): the text is 9,000 characters long"),
}


@pytest.mark.parametrize("case", sorted(MC_CASES))
def test_a_bad_multiple_choice_file_is_refused(cli, tmp_path, case):
    """Choices given as a string were split into characters and gold 1.9 became 1."""
    row, needle = MC_CASES[case]
    mc = jsonl(tmp_path / "mc.jsonl", [row])
    out = cli("eval", "--user", "ana", "--mc", str(mc), data_dir=tmp_path / "data")
    one_line_error(out, f"{mc}", needle)


# -- forget without a terminal ---------------------------------------------------------------

@pytest.mark.parametrize("stdin", ["closed", "empty"])
def test_forget_without_an_answer_forgets_nothing_and_says_what_to_do(cli, tmp_path,
                                                                     tiny_model_dir, stdin):
    """``forget --all`` with stdin closed was a traceback (sys.stdin is None)."""
    data = tmp_path / "data"
    convo = jsonl(tmp_path / "convo.jsonl", CONVO)
    assert cli("ingest", "--user", "ana", str(convo), data_dir=data,
               model=tiny_model_dir).returncode == 0
    cmd = [sys.executable, "-m", "bot", "--data-dir", str(data), "--model",
           str(tiny_model_dir), "forget", "--user", "ana", "--all"]
    if stdin == "closed":
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                             preexec_fn=lambda: os.close(0))
    else:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                             stdin=subprocess.DEVNULL)
    one_line_error(out, "no answer to 'Go ahead?' (stdin is closed or empty): nothing was "
                        "changed; pass --yes to go ahead without asking")
    assert "This will forget everything you told me" in out.stdout
    assert len(exchanges(data, "ana")) == 3 and len(log_lines(data, "ana")) == 3


# -- chat: a message past the bound ----------------------------------------------------------

def test_a_huge_chat_message_is_cut_and_the_user_told(cli, tmp_path, tiny_model_dir):
    """A 1 MB message was cut to 8,000 characters with no notice in the terminal."""
    data = tmp_path / "data"
    out = cli("chat", "--user", "ana", data_dir=data, model=tiny_model_dir, env=QUIET,
              input="My name is Ana. " * 1300 + "\n/quit\n")
    assert out.returncode == 0, out.stderr[-3000:]
    assert ("(your message was longer than 8,000 characters: I read only the first 8,000, "
            "the limit set by chat.max_message_chars)") in out.stdout
    [(text, _)] = exchanges(data, "ana")
    assert len(text) == 8000


# -- status: a damaged or stale orchestrator.json --------------------------------------------

def seed_user(data: Path) -> None:
    from memory.paths import store_path
    from memory.store import Store

    async def go():
        async with await Store.open(store_path(data)) as store:
            await store.add_exchange("ana", "hello", "hi")
    asyncio.run(go())


def snapshot(pid: int, running: dict | None) -> str:
    return json.dumps({"pid": pid, "updated": 0, "stopping": False, "paused": False,
                       "running": running, "queued": []})


def test_status_ignores_a_live_pid_that_does_not_hold_the_queue_lock(cli, tmp_path):
    """``status`` trusted any live pid in orchestrator.json: a reused pid showed a running
    cycle that did not exist."""
    data = tmp_path / "data"
    seed_user(data)
    (data / "orchestrator.json").write_text(snapshot(os.getpid(), {  # alive, but no queue
        "job_id": 7, "user_id": "ana", "kind": "light", "stage": "training", "seconds": 3}))
    out = cli("status", data_dir=data)
    assert out.returncode == 0, out.stderr
    assert "orchestrator: not running (queued jobs run at the next start)" in out.stdout
    assert "sleeping now" not in out.stdout and "ana: awake;" in out.stdout


@pytest.mark.parametrize("damage", ["a missing field", "not JSON", "a wrong type"])
def test_status_survives_a_damaged_status_file_of_a_live_orchestrator(cli, tmp_path, damage):
    """orchestrator.json missing a field was a KeyError traceback."""
    data = tmp_path / "data"
    seed_user(data)
    with lock_held_elsewhere(data, role="queue") as holder:
        text = {"a missing field": snapshot(holder.pid, {"job_id": 7, "user_id": "ana"}),
                "not JSON": '{"pid": ',
                "a wrong type": snapshot(holder.pid, {"job_id": "7", "user_id": "ana",
                                                      "kind": "light", "stage": "training",
                                                      "seconds": 3})}[damage]
        (data / "orchestrator.json").write_text(text)
        out = cli("status", data_dir=data)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert (f"orchestrator: running (pid {holder.pid}); its status file is missing or "
            "damaged, so its stage is not shown") in out.stdout
    assert "ana: awake;" in out.stdout


# -- Discord out of reach at start -------------------------------------------------------------

def test_discord_out_of_reach_is_retried_then_one_line(tmp_path, monkeypatch, capsys, caplog):
    """Discord unreachable at start was a traceback: now a few retries with backoff, then a
    one-line error (here Discord's address is a closed local port)."""
    import socket

    import discord

    from bot.discord import client
    from runtime.config import load_config

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    monkeypatch.setattr(client, "CONNECT_FIRST_WAIT_S", 0.01)
    monkeypatch.setattr(client, "CONNECT_ATTEMPTS", 3)
    cfg = load_config(data_dir=tmp_path / "data", env={})
    token = "MTIz.secret-token-value"
    assert client.run_bot(cfg, token) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Discord (")
    assert "after 3 attempts" in lines[0] and "check the network connection" in lines[0]
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert [r.getMessage().split("retry ")[1][:6] for r in retries] == ["1 of 2", "2 of 2"]
    assert token not in err and all(token not in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "data" / "sleepbot.db").exists()  # nothing opened before login
