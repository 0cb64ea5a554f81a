"""How far the benchmark's questions are worded from the questions a cycle trains, and recall
at each distance.

Reads the JSON lines of ``scripts/formation_sweep.py --answers`` (each question, its answer
and whether it hit), rebuilds the questions extraction makes from the same fact sets (the
general path and the rules, before curation and the cycle budget; deterministic), and puts
every test question in a bucket by its word overlap (Jaccard) with the nearest trained
question: "verbatim" (all words shared), "close" (at least half), "far" (less). Then two
more splits: whether the trained question nearest in content words (function words left out)
is answered with the fact the test question asks for ("right": its answer holds a key), with
another fact ("wrong") or ties between both; and the length of the shortest trained answer
that holds a key. Development diagnostics: where recall is lost, memorising what was trained,
reaching it from other words, or telling it from its neighbours.

    python scripts/formation_sweep.py --answers --grid 4:2:3e-4 --facts sleep/factsets/heldout \
        > sweep.jsonl
    python scripts/wording_gap.py sweep.jsonl --facts sleep/factsets/heldout [--show far]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.bench.coverage import factset_paths, load_timed  # noqa: E402
from bot.bench.memory import score_answer  # noqa: E402
from sleep.extraction.formation import extract_turns  # noqa: E402

BUCKETS = ("verbatim", "close", "far")
NEAREST = ("right", "tie", "wrong")
LENGTHS = ("1-8 words", "9-16 words", "17-30 words", "over 30", "not trained")
_FUNCTION = frozenset("a an the is are was were do does did i my me you your what who where when "
                      "how which of to in on for and or at be been have has had am it that this "
                      "with".split())


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def content(text: str) -> set[str]:
    return words(text) - _FUNCTION


def nearest_verdict(question: str, pairs: list[tuple[str, str]], keys: list[str]) -> str:
    """Whether the trained question closest in content words answers with the asked fact."""
    q = content(question)
    best = {True: 0.0, False: 0.0}  # the nearest question whose answer holds a key, and not
    for tq, a in pairs:
        holds = score_answer(a, keys)
        best[holds] = max(best[holds], overlap(q, content(tq)))
    right, wrong = best[True], best[False]
    return "right" if right > wrong else "tie" if right == wrong else "wrong"


def length_bucket(pairs: list[tuple[str, str]], keys: list[str]) -> str:
    n = min((len(a.split()) for _, a in pairs if score_answer(a, keys)), default=0)
    return ("not trained" if n == 0 else "1-8 words" if n <= 8 else "9-16 words" if n <= 16
            else "17-30 words" if n <= 30 else "over 30")


def bucket(similarity: float) -> str:
    return "verbatim" if similarity >= 1.0 else "close" if similarity >= 0.5 else "far"


def trained_questions(path: Path, phrasings: int) -> list[tuple[str, str]]:
    """(question, answer) pairs extraction makes from the set's turns, timed as the sweep logs
    them (the set's own times, else now)."""
    timed = load_timed(path)
    now = datetime.now()
    turns = [(text, [i], datetime.fromtimestamp(timed.times[i]) if timed.times else now)
             for i, text in enumerate(timed.factset.user_turns)]
    return [(p.question, p.answer) for p in extract_turns(turns, phrasings).pairs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="formation_sweep --answers output (JSON lines)")
    ap.add_argument("--facts", type=Path, action="append", required=True,
                    help="the fact set files or folders the sweep ran")
    ap.add_argument("--phrasings", type=int, default=4)
    ap.add_argument("--show", choices=BUCKETS, default=None,
                    help="print each question of this bucket with its nearest trained one")
    args = ap.parse_args()
    paths = {}
    for f in args.facts:
        for p in (factset_paths(f) if f.is_dir() else [f]):
            paths[p.name.removesuffix(".json")] = p
    hits: dict[str, list[bool]] = {b: [] for b in BUCKETS + NEAREST + LENGTHS}
    for line in args.results.read_text().splitlines():
        row = json.loads(line)
        if "answers" not in row or row["set"] not in paths:
            continue
        pairs = trained_questions(paths[row["set"]], args.phrasings)
        if not pairs:
            continue
        fs = load_timed(paths[row["set"]]).factset
        keys = {q: item.keys for item in fs.questions for q in [item.question, *item.reworded]}
        for a in row["answers"]:
            if a["q"] in keys:
                hits[nearest_verdict(a["q"], pairs, keys[a["q"]])].append(bool(a["hit"]))
                hits[length_bucket(pairs, keys[a["q"]])].append(bool(a["hit"]))
            q = words(a["q"])
            near_q, near_a = max(pairs, key=lambda p: overlap(q, words(p[0])))
            b = bucket(overlap(q, words(near_q)))
            hits[b].append(bool(a["hit"]))
            if b == args.show:
                print(f"{'HIT ' if a['hit'] else '    '}{a['q']} ~ {near_q} => {near_a[:70]}"
                      f" | answered: {a['a'][:70]}")
    for title, group in (("word overlap with the nearest trained question", BUCKETS),
                         ("the nearest trained question (content words) answers", NEAREST),
                         ("the shortest trained answer holding a key", LENGTHS)):
        print(title)
        for b in group:
            h = hits[b]
            print(f"  {b:12s} {len(h):4d} questions, recall {sum(h) / len(h):.0%}" if h else
                  f"  {b:12s}    0 questions")


if __name__ == "__main__":
    main()
