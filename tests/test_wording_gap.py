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
    assert "verbatim        1 questions, recall 100%" in out
    assert "far             2 questions, recall 50%" in out
    assert "HIT Zebra quantum harp?" in out and "    Zebra quantum violin?" in out


def test_nearest_trained_question_and_answer_length_splits():
    """A test question is "right" when the trained question closest in content words answers
    with a key, "wrong" when another fact's question is closer; answers are bucketed by the
    length of the shortest trained answer that holds a key."""
    gap = _module()
    pairs = [("What is my dog called?", "Your dog is called Grub."),
             ("What is my partner's job?", "Your partner is a pharmacist."),
             ("What did I tell you about Ruairi?", "Ruairi restores old furniture for a living, "
              "in a shed at the bottom of the garden that he built himself, and he loves it.")]
    # words are compared as written: "dog's" is not "dog", so no trained question is nearer
    assert gap.nearest_verdict("What's my dog's name?", pairs, ["grub"]) == "tie"
    assert gap.nearest_verdict("What do I call my dog?", pairs, ["grub"]) == "right"
    assert gap.nearest_verdict("What is my partner's job?", pairs, ["furniture"]) == "wrong"
    assert gap.nearest_verdict("Zebra?", pairs, ["grub"]) == "tie"
    assert gap.length_bucket(pairs, ["grub"]) == "1-8 words"
    assert gap.length_bucket(pairs, ["furniture"]) == "17-30 words"
    assert gap.length_bucket(pairs, ["zebra"]) == "not trained"
