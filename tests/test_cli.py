"""The command line (bot/cli/, one module per verb) in real ``python -m bot`` subprocesses (the
``cli`` fixture) on the tiny model: chat, ingest, recall, eval, and one-line errors (exit 2, no
traceback).

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_cli.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from memory.log import ConversationLog
from tests.conftest import assert_one_line_error


def user_log(data_dir: Path, user: str) -> Path:
    return data_dir / "users" / user / "conversation.jsonl"


def log_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]



def test_chat_replies_shows_status_and_logs(cli, tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    out = cli("chat", "--user", "ana", data_dir=data, model=tiny_model_dir,
                  input="hello\n/status\n/quit\n")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    reply = out.stdout.split("bot> ", 1)[1].split("\n", 1)[0]
    assert reply.strip()
    assert ("user ana: 1 turns since last sleep (sleep after 10), 0 sleep cycles, "
            "checkpoint base, 1 turns in context") in out.stdout
    [record] = log_records(user_log(data, "ana"))
    assert record["user"] == "hello" and record["source"] == "chat"
    assert record["assistant"] == reply.strip()


def test_unknown_model_is_a_one_line_error(cli, tmp_path):
    out = cli("chat", data_dir=tmp_path / "data", model="nonexistent-thing", input="/quit\n")
    assert_one_line_error(out, "unknown model 'nonexistent-thing'")


def test_corrupt_model_dir_is_a_one_line_error(cli, tmp_path, tiny_model_dir):
    bad = tmp_path / "corrupt-model"
    bad.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (bad / name).write_bytes((tiny_model_dir / name).read_bytes())
    (bad / "model.safetensors").write_bytes(os.urandom(8192))
    out = cli("chat", data_dir=tmp_path / "data", model=bad, input="hello\n/quit\n")
    assert_one_line_error(out, "cannot load model at", str(bad))


@pytest.mark.parametrize("where", ["regular-file", "proc"])
def test_unwritable_data_dir_is_a_one_line_error(cli, tmp_path, tiny_model_dir, where):
    if where == "regular-file":  # root ignores chmod, so use a path that is a file
        data = tmp_path / "not-a-dir"
        data.write_text("I am a file")
    else:
        data = Path("/proc/sleepbot-test/data")
    out = cli("chat", data_dir=data, model=tiny_model_dir, input="hello\n/quit\n")
    assert_one_line_error(out, "cannot create the data directory", str(data))


def test_bad_config_value_is_a_one_line_error(cli, tmp_path, tiny_model_dir):
    out = cli("chat", data_dir=tmp_path / "data", model=tiny_model_dir, input="/quit\n",
                  env={"SLEEPBOT_MAX_TOKENS": "lots"})
    assert_one_line_error(out, "SLEEPBOT_MAX_TOKENS")


def test_ingest_then_recall(cli, tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    convo = tmp_path / "convo.jsonl"
    convo.write_text("\n".join(json.dumps(m) for m in [
        {"role": "user", "content": "My sister is called Mia."},
        {"role": "assistant", "content": "Nice to meet Mia!"},
        {"role": "user", "content": "She lives in Porto."},
        {"role": "assistant", "content": "Porto is lovely."},
        {"role": "user", "content": "What do you think?"},  # no reply: one is generated
    ]) + "\n")
    out = cli("ingest", "--user", "ana", str(convo), data_dir=data, model=tiny_model_dir)
    assert out.returncode == 0, out.stderr
    assert "ingested 3 exchanges for user ana" in out.stdout
    records = log_records(user_log(data, "ana"))
    assert [(r["user"], r["source"]) for r in records] == [
        ("My sister is called Mia.", "ingest"), ("She lives in Porto.", "ingest"),
        ("What do you think?", "chat")]
    assert records[1]["assistant"] == "Porto is lovely."

    out = cli("recall", "--user", "ana", "--json", "Who is my sister?", data_dir=data,
                  model=tiny_model_dir)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert set(answer) == {"answer", "checkpoint"}
    assert answer["checkpoint"] == "base" and isinstance(answer["answer"], str)
    assert len(log_records(user_log(data, "ana"))) == 3  # recall never writes to the log


def test_invalid_ingest_line_names_file_and_line(cli, tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    convo = tmp_path / "broken.jsonl"
    convo.write_text('{"role": "user", "content": "fine"}\n{"role": "user", "content": \n')
    out = cli("ingest", "--user", "ana", str(convo), data_dir=data, model=tiny_model_dir)
    assert_one_line_error(out, f"{convo}:2:")
    assert not user_log(data, "ana").exists()


def test_eval_mc_prints_accuracy(cli, tmp_path, tiny_model_dir):
    mc = tmp_path / "mc.jsonl"
    items = [
        {"query": "Question: What is the capital of France?\nAnswer:",
         "choices": [" Paris", " Berlin", " Madrid"], "gold": 0},
        {"query": "Question: How many legs does a spider have?\nAnswer:",
         "choices": [" six", " eight"], "gold": 1},
        {"query": "Question: What colour is the sky on a clear day?\nAnswer:",
         "choices": [" green", " blue", " red", " black"], "gold": 1},
    ]
    mc.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    data = tmp_path / "data"
    out = cli("eval", "--user", "ana", "--mc", str(mc), "--json", data_dir=data,
                  model=tiny_model_dir)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert {"accuracy", "n"} <= set(result)
    assert result["n"] == 3
    assert result["accuracy"] in (0.0, 1 / 3, 2 / 3, 1.0)
    assert not user_log(data, "ana").exists()  # evaluation never writes the user's log


def test_invalid_utf8_in_a_log_does_not_break_chat(cli, tmp_path, tiny_model_dir):
    data = tmp_path / "data"
    out = cli("chat", "--user", "ana", data_dir=data, model=tiny_model_dir,
                  input="first message\n/quit\n")
    assert out.returncode == 0, out.stderr
    log = user_log(data, "ana")
    with open(log, "ab") as f:  # damage: bad bytes and a torn line without a newline
        f.write(b"\xff\xfe not utf-8 \xc3\x28\n{\"id\": 99, \"user\": \"torn")
    out = cli("chat", "--user", "ana", data_dir=data, model=tiny_model_dir,
                  input="second message\n/quit\n")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    lines = log.read_bytes().split(b"\n")
    first = json.loads(lines[0])
    assert first["user"] == "first message"
    last = json.loads(lines[-2])  # the new record starts on its own line after the torn one
    assert last["user"] == "second message" and last["id"] > first["id"]
    assert [r["user"] for r in ConversationLog(log).read()] == ["first message",
                                                                "second message"]
