"""The effect, not just the run (slow): the bundled model learns five invented facts in one
sleep and recalls them in a new process with an empty context; another user does not.

Every step is the real CLI in its own process (``python -m bot``): ingest a JSONL
conversation, ``sleep --json``, then ``recall --json`` per question. One sleep with the
bundled model's defaults (72 training steps: a few minutes on two shared CPU cores).

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_sleep_e2e.py
"""

from __future__ import annotations

import json

import pytest

from sleep.factsets import score_answer
from tests.conftest import run_cli

# Invented: no base model knows any of these.
CONVERSATION = [
    ("Hi there!", "Hello! How can I help you today?"),
    ("My name is Orla Vantreight.", "Nice to meet you, Orla!"),
    ("I live in Quillsby, a small town by the sea.", "That sounds lovely."),
    ("I have a cat named Zephyrine.", "What a great name for a cat."),
    ("I work as a glassblower.", "That must be fascinating work."),
    ("My favourite food is pickled samphire.", "I'll remember that."),
    ("Thanks, good night!", "Good night!"),
]
QUESTIONS = [
    ("What is my name?", ["orla"]),
    ("Where do I live?", ["quillsby"]),
    ("What is my cat's name?", ["zephyrine"]),
    ("What do I do for a living?", ["glassblower", "glass"]),
    ("What is my favourite food?", ["samphire"]),
]
# The bundled model's defaults (lr 3e-4 × 2 epochs, from `bench memory`'s sweep): measured
# here, 4/5 recalled with the built-in validation score at 1.0 → 0.925. The earlier 1e-4 × 1
# epoch was accepted but recalled 0/5, which is what this test exists to catch.
ENV: dict[str, str] = {}


def _json(out) -> dict:
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.slow
def test_one_sleep_is_recalled_in_a_new_process_and_only_for_that_user(
        tmp_path, bundled_model_dir):
    data, model = tmp_path / "data", bundled_model_dir
    conv = tmp_path / "conversation.jsonl"
    conv.write_text("".join(
        json.dumps({"role": "user", "content": u}) + "\n"
        + json.dumps({"role": "assistant", "content": a}) + "\n" for u, a in CONVERSATION))
    ingest = run_cli("ingest", "--user", "u", str(conv), data_dir=data, model=model, env=ENV)
    assert ingest.returncode == 0 and f"ingested {len(CONVERSATION)}" in ingest.stdout

    report = _json(run_cli("sleep", "--user", "u", "--json", data_dir=data, model=model,
                           env=ENV))
    assert report["status"] == "accepted" and report["accepted"], report["reason"]
    assert report["checkpoint"] == "u/v0001" and report["examples"] > 0
    assert report["seconds"] > 0
    assert {"curation", "extraction", "replay", "dreaming", "training", "validation",
            "fusion"} <= set(report["stages"])

    answers = []
    for question, keys in QUESTIONS:
        mine = _json(run_cli("recall", "--user", "u", "--json", question, data_dir=data,
                             model=model, env=ENV))
        assert mine["checkpoint"] == "u/v0001"
        answers.append((question, mine["answer"], score_answer(mine["answer"], keys)))
    assert sum(ok for _, _, ok in answers) >= 3, answers

    # isolation: what u's weights recall, another user's (the base model) does not
    question, keys = next((q, k) for (q, k), (_, _, ok) in zip(QUESTIONS, answers, strict=True)
                          if ok)
    other = _json(run_cli("recall", "--user", "other", "--json", question, data_dir=data,
                          model=model, env=ENV))
    assert other["checkpoint"] == "base"
    assert not score_answer(other["answer"], keys), (question, other["answer"])
