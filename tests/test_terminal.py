"""Terminal chat (bot/terminal.py) runs the orchestrator: it sleeps by itself at the turn
threshold and says when the cycle starts and ends; `/sleep` goes through the same queue.

    .venv/bin/python -m pytest -q tests/test_terminal.py
"""

from __future__ import annotations

import asyncio

import pytest

from bot import terminal
from bot.engine import open_engine

FACTS = ["My name is Ines.", "I live in Ghent.", "I keep a tortoise called Pebbles."]


def fast(cfg):
    cfg.sleep.turn_threshold = 3
    cfg.sleep.phrasings_per_fact = 1
    cfg.sleep.lora.layers = 2
    cfg.sleep.tau = 0.0
    cfg.sleep.deep_every = 0
    cfg.sleep.train.learning_rate = 1e-3
    return cfg


def scripted(engine, lines: list[str], until_cycles: int):
    """A read_line that types ``lines``; before the last one, it waits (as a person would)
    until ``until_cycles`` cycles of the user have finished."""
    queue = list(lines)

    async def read_line(prompt: str) -> str | None:
        if len(queue) == 1:
            for _ in range(600):
                cycles = await engine.store.cycles("ines")
                if len([c for c in cycles if c.status != "running"]) >= until_cycles:
                    break
                await asyncio.sleep(0.5)
        return queue.pop(0) if queue else None

    return read_line


@pytest.mark.asyncio
async def test_terminal_sleeps_by_itself_at_the_threshold(tiny_config, tiny_runtime,
                                                          monkeypatch, capsys):
    cfg = fast(tiny_config)
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        monkeypatch.setattr(terminal, "read_line", scripted(engine, [*FACTS, "/quit"], 1))
        await terminal.chat_loop(engine, "ines", banner=True)
        [cycle] = await engine.store.cycles("ines")
        assert (cycle.kind, cycle.status) == ("light", "accepted")
        assert engine.checkpoint_label("ines") == "ines/v0001"
    out = capsys.readouterr().out
    assert "sleeps by itself after 3 turns" in out
    assert "3 turns: sleeping now" in out
    assert "sleep cycle finished: accepted; now answering from ines/v0001" in out


@pytest.mark.asyncio
async def test_terminal_sleep_command_goes_through_the_queue(tiny_config, tiny_runtime,
                                                             monkeypatch, capsys):
    cfg = fast(tiny_config)
    cfg.sleep.turn_threshold = 100
    async with open_engine(cfg, runtime=tiny_runtime) as engine:
        monkeypatch.setattr(terminal, "read_line",
                            scripted(engine, [*FACTS, "/sleep", "/status", "/quit"], 1))
        await terminal.chat_loop(engine, "ines", banner=False)
        assert [c.status for c in await engine.store.cycles("ines")] == ["accepted"]
        assert await engine.store.queue_snapshot() == []  # the job ran and closed
    out = capsys.readouterr().out
    assert "sleep cycle 1 (light) for ines: accepted" in out
    assert "0 turns since last sleep (sleep after 100), 1 sleep cycles, checkpoint ines/v0001" \
        in out
