"""``bench coverage``: the share of fact-set answers that reach the training data, from a dry
run on a fresh data dir (the tiny model: curation scores no novelty, so no model output
matters), with the turns' own times read from a meta file.

    .venv/bin/python -m pytest -q tests/test_bench_coverage.py
"""

from __future__ import annotations

import json

import pytest

from bot.bench.coverage import format_table, load_timed, run_coverage_bench
from sleep.factsets import bundled_factset


@pytest.mark.asyncio
async def test_coverage_of_a_shipped_set_and_a_timed_one(tiny_config, tmp_path):
    timed = tmp_path / "dated.json"
    timed.write_text(json.dumps({
        "name": "dated", "user_turns": ["hi!", "I adopted a kitten yesterday."],
        "questions": [{"question": "When did I adopt a kitten?", "reworded": [],
                       "keys": ["march 2"]},
                      {"question": "What is my dog called?", "reworded": [],
                       "keys": ["rex"]}]}))
    (tmp_path / "dated.meta.json").write_text(json.dumps(
        {"turn_times": ["2025-03-03T10:00:00", "2025-03-03T10:01:00"]}))
    assert load_timed(timed).times is not None
    result = await run_coverage_bench(tiny_config, [bundled_factset("andre_patandre").path,
                                                    timed])
    andre, dated = result["sets"]
    assert andre["coverage"] == 1.0 and andre["pairs"] > 0 and andre["kept"] <= andre["turns"]
    assert dated["kept"] == 1 and dated["coverage"] == 0.5
    assert dated["uncovered"] == ["What is my dog called?"]
    assert "dated" in format_table(result)
    assert not (tiny_config.data_dir / "sleepbot.db").exists()  # a temporary data dir only
