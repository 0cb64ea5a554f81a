"""scripts/wording_gap.py: test questions bucketed by their word overlap with the questions a
cycle trains, and recall per bucket.

    .venv/bin/python -m pytest -q tests/test_wording_gap.py
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAYA = ROOT / "sleep" / "factsets" / "persona_maya.json"


def _module():
    spec = importlib.util.spec_from_file_location("wording_gap", ROOT / "scripts" /
                                                  "wording_gap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_buckets_follow_the_overlap():
    gap = _module()
    assert gap.overlap(gap.words("Where do I live?"), gap.words("where do i live")) == 1.0
    assert gap.bucket(1.0) == "verbatim" and gap.bucket(0.5) == "close"
    assert gap.bucket(0.49) == "far"


def test_recall_per_bucket_from_a_sweep(tmp_path):
    gap = _module()
    trained = gap.trained_questions(MAYA, 4)
    assert trained, "extraction made no questions from persona_maya"
    q = trained[0][0]
    row = {"set": "persona_maya", "answers": [
        {"q": q, "a": "x", "hit": True},
        {"q": "Zebra quantum violin?", "a": "y", "hit": False},
        {"q": "Zebra quantum harp?", "a": "z", "hit": True},
    ]}
    results = tmp_path / "sweep.jsonl"
    results.write_text(json.dumps({"summary": {}}) + "\n" + json.dumps(row) + "\n")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "wording_gap.py"),
                          str(results), "--facts", str(MAYA), "--show", "far"],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "verbatim     1 questions, recall 100%" in out
    assert "far          2 questions, recall 50%" in out
    assert "HIT Zebra quantum harp?" in out and "    Zebra quantum violin?" in out
