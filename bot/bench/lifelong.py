"""``python -m bot bench memory --lifelong CHAT.json``: lifelong memory on a real 21-day chat.

One REALTALK speaker (``--speaker``, default the one with the most usable questions) is one
user. Day by day, that day's messages are logged with their own times and the bot sleeps once
that night (a light cycle through the pipeline, as the nightly trigger would queue it). After
each night, every question whose evidence has been said so far is asked with an empty context
(weights only): recall over the nights shows whether memory accumulates or old facts are
pushed out. At the end the questions whose evidence was all said in the first week are asked
again in a new process (the forgetting curve: recall right after they were learned vs at the
end). General ability (the built-in set, and ``--mc FILE`` if given) is scored after every
night, so retention is seen cycle after cycle and not only at the end.

Writes ``results.json``, ``results.md`` and ``lifelong.png`` to ``--out``. The paper's claim
(lifelong conversational memory) measured on real chat; numbers on REALTALK are development
numbers.

    python -m bot bench memory --lifelong ../shared/data/realtalk/Chat_1_Emi_Elise.json \\
        --mc ../shared/data/retention_dev.jsonl --mc-limit 100 --json
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.bench.memory import (
    answer_all,
    general_scores,
    log_progress,
    mc_part,
    recall_in_new_process,
    recall_rate,
)
from bot.bench.realtalk import build_chat, factset_json, meta_json
from bot.engine import model_runtime, open_engine
from bot.wake import ChatService
from runtime.config import Config
from sleep.factsets import FactQuestion, FactSet, score_answer
from sleep.pipeline import run_cycle

USER = "lifelong"
WEEK = 7


@dataclass
class Speaker:
    """One speaker's turns (text, time, dia_id) and questions (with their evidence)."""

    name: str
    factset: FactSet
    times: list[datetime]
    dia_ids: list[str]
    evidence: list[list[str]]

    def days(self) -> list[str]:
        return sorted({t.date().isoformat() for t in self.times})


@dataclass
class LifelongOptions:
    chat: Path
    speaker: str | None = None
    mc: Path | None = None
    mc_limit: int = 100
    out: Path = Path("bench-out/lifelong")
    max_nights: int = 0  # 0: every day of the chat
    mc_offset: int = 0


def load_speakers(chat: Path) -> list[Speaker]:
    """The chat's speakers with usable questions, built as ``scripts/realtalk_factsets.py``
    builds the development sets."""
    results, _ = build_chat(chat)
    out = []
    for r in results:
        if not r.kept:
            continue
        fs_json, meta = factset_json(r), meta_json(r)
        questions = [FactQuestion(q["question"], q["reworded"], q["keys"])
                     for q in fs_json["questions"]]
        fs = FactSet(fs_json["name"], fs_json["user_turns"], questions, fs_json["description"])
        out.append(Speaker(r.speaker, fs, [datetime.fromisoformat(t) for t in meta["turn_times"]],
                           meta["turn_dia_ids"], meta["question_evidence"]))
    return out


def choose(speakers: list[Speaker], name: str | None) -> Speaker:
    if name is not None:
        for s in speakers:
            if name.lower() in (s.name.lower(), s.factset.name.lower()):
                return s
        raise ValueError(f"no speaker {name!r} with usable questions; have: "
                         + ", ".join(s.name for s in speakers))
    if not speakers:
        raise ValueError("no speaker of this chat has usable questions")
    return max(speakers, key=lambda s: len(s.factset.questions))


@dataclass
class Night:
    night: int
    day: str
    turns: int
    status: str
    seconds: float
    asked: int
    direct: float
    reworded: float
    facts: int = 0
    pairs: int = 0
    # questions answered right on an earlier night and wrong tonight (what this night pushed out)
    lost: int = 0
    # general ability of the user's weights after tonight: built-in, and "mc" with --mc
    general: dict = field(default_factory=dict)
    hits: dict[int, bool] = field(default_factory=dict)  # question index -> answered right
    answers: dict[int, str] = field(default_factory=dict)  # question index -> tonight's answer
    reason: str = ""  # the cycle's verdict (why a night was rejected, or at what step)
    scale: float = 1.0  # the step of the update validation kept (1: the whole update)


@dataclass
class LifelongResult:
    chat: str
    speaker: str
    questions: int
    nights: list[Night] = field(default_factory=list)
    week_one: dict = field(default_factory=dict)
    general_base: dict = field(default_factory=dict)
    general_after: dict = field(default_factory=dict)
    seconds: float = 0.0


async def run_lifelong(cfg: Config, opts: LifelongOptions) -> dict:
    tic = time.perf_counter()
    sp = choose(load_speakers(opts.chat), opts.speaker)
    fs = sp.factset
    mc = mc_part(opts.mc, opts.mc_offset, opts.mc_limit) if opts.mc else None
    result = LifelongResult(opts.chat.name, sp.name, len(fs.questions))
    said: set[str] = set()
    learned_at: dict[int, float] = {}  # question index -> recall right after it was learned
    scored: dict[str, dict] = {}  # weights key -> their general scores
    with tempfile.TemporaryDirectory(prefix="sleepbot-lifelong-") as tmp:
        run_cfg = dataclasses.replace(cfg, data_dir=Path(tmp))
        runtime = model_runtime(run_cfg)
        try:
            async with open_engine(run_cfg, runtime=runtime) as engine:
                result.general_base = await general_scores(engine, None, mc)
                engine.general_scores[engine.weights_key(None)] = result.general_base["builtin"]
                chat = ChatService(engine)
                days = sp.days()[: opts.max_nights or None]
                for night, day in enumerate(days, 1):
                    today = [i for i, t in enumerate(sp.times) if t.date().isoformat() == day]
                    for i in today:
                        await chat.save(USER, fs.user_turns[i], "I see.", source="ingest",
                                        ts=sp.times[i].timestamp())
                        said.add(sp.dia_ids[i])
                    report = await run_cycle(engine.cycle_context(USER))
                    ready = [n for n, ev in enumerate(sp.evidence) if set(ev) <= said]
                    direct, reworded = await _ask(engine, fs, ready)
                    for n, hit in zip(ready, direct[1], strict=True):
                        learned_at.setdefault(n, float(hit))
                    hits = dict(zip(ready, direct[1], strict=True))
                    said_now = dict(zip(ready, direct[2], strict=True))
                    known = {n for prev in result.nights for n, h in prev.hits.items() if h}
                    lost = sum(1 for n in known if not hits.get(n))
                    ex = report.stages.get("extraction", {})
                    # every night, not only at the end: retention must hold cycle after cycle
                    # (a rejected night left the weights as they were: their scores stand)
                    key = engine.weights_key(engine.checkpoint(USER))
                    if key not in scored:
                        scored[key] = await general_scores(engine, USER, mc)
                    general = scored[key]
                    result.nights.append(Night(night, day, len(today), report.status,
                                               report.seconds, len(ready), direct[0],
                                               reworded[0], ex.get("facts", 0),
                                               ex.get("pairs", 0), lost, general, hits,
                                               said_now, report.reason,
                                               report.stages.get("validation", {}).get("scale",
                                                                                        1.0)))
                    log_progress(f"lifelong night {night} ({day}): {len(today)} turns, cycle "
                                 f"{report.status} in {report.seconds:.0f}s, recall "
                                 f"{direct[0]:.0%} of {len(ready)} questions, {lost} of "
                                 f"{len(known)} once recalled now missed, general "
                                 f"{_general_text(general)} ({report.reason})")
                    # so far, every night: a run cut short still leaves its nights
                    opts.out.mkdir(parents=True, exist_ok=True)
                    (opts.out / "partial.json").write_text(json.dumps(_to_dict(result)))
                result.general_after = (result.nights[-1].general if result.nights else
                                        await general_scores(engine, USER, mc))
        finally:
            await runtime.aclose()
        first_week = set(sp.days()[:WEEK])
        early = [n for n, ev in enumerate(sp.evidence) if n in learned_at and all(
            sp.times[sp.dia_ids.index(e)].date().isoformat() in first_week
            for e in ev if e in sp.dia_ids)]
        if early:  # a new process: nothing shared but the data dir
            answers = recall_in_new_process(run_cfg, USER, [fs.questions[n].question
                                                            for n in early])
            end = [score_answer(a["answer"], fs.questions[n].keys)
                   for a, n in zip(answers, early, strict=True)]
            result.week_one = {"questions": len(early),
                               "when_learned": sum(learned_at[n] for n in early) / len(early),
                               "at_the_end": sum(end) / len(end)}
    result.seconds = round(time.perf_counter() - tic, 1)
    out = _to_dict(result)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "results.json").write_text(json.dumps(out, indent=2))
    (opts.out / "results.md").write_text(format_table(out) + "\n")
    out["plot"] = str(plot(out, opts.out / "lifelong.png"))
    return out


async def _ask(engine, fs: FactSet, ready: list[int]) -> tuple[tuple, tuple]:
    """Recall of the ready questions: (share, per-question hits, answers) for the exact
    questions, (share, [], []) for the reworded ones."""
    if not ready:
        return (0.0, [], []), (0.0, [], [])
    direct_q = [fs.questions[n].question for n in ready]
    reworded_q = [fs.questions[n].reworded[0] for n in ready]
    answers = await answer_all(engine, USER, direct_q + reworded_q)
    keys = [fs.questions[n].keys for n in ready]
    hits_d = [score_answer(a, k) for a, k in zip(answers[: len(ready)], keys, strict=True)]
    return ((recall_rate(answers[: len(ready)], keys), hits_d, answers[: len(ready)]),
            (recall_rate(answers[len(ready):], keys), [], []))


def _to_dict(r: LifelongResult) -> dict:
    from dataclasses import asdict

    return asdict(r)


def _general_text(g: dict) -> str:
    """"0.950 / MC 0.480 / drift 0.012": built-in score, and the MC accuracy and the drift
    from the base when there are ("" for a night of a results file written before nights
    were scored)."""
    if "builtin" not in g:
        return ""
    return (f"{g['builtin']:.3f}" + (f" / MC {g['mc']:.3f}" if "mc" in g else "")
            + (f" / drift {g['drift']:.3f}" if "drift" in g else ""))


def format_table(r: dict) -> str:
    lines = [f"Lifelong memory: {r['chat']}, speaker {r['speaker']} ({r['questions']} questions)",
             "", "| night | day | turns | cycle | s | questions said so far | recall exact / "
             "reworded | once recalled, now missed | general ability |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n in r["nights"]:
        lines.append(f"| {n['night']} | {n['day']} | {n['turns']} | {n['status']} | "
                     f"{n['seconds']:.0f} | {n['asked']} | {n['direct']:.0%} / "
                     f"{n['reworded']:.0%} | {n.get('lost', 0)} | "
                     f"{_general_text(n.get('general') or {})} |")
    rejected = [n.get("reason", "").split(":")[0] for n in r["nights"]
                if n["status"] == "rejected"]
    scaled = sum(1 for n in r["nights"] if n["status"] == "accepted" and n.get("scale", 1) < 1)
    why = ", ".join(f"{k or 'no reason recorded'}: {v}" for k, v in Counter(rejected).items())
    lines.append(f"\nNights rejected: {len(rejected)}{f' ({why})' if why else ''}; accepted at "
                 f"a smaller step: {scaled}.")
    w = r["week_one"]
    if w:
        lines.append(f"Week-one facts ({w['questions']}): recall {w['when_learned']:.0%} right "
                     f"after they were learned, {w['at_the_end']:.0%} at the end (new process).")
    gb, ga = r["general_base"], r["general_after"]
    if gb:
        mc = (f"; MC {ga['mc']:.3f} vs {gb['mc']:.3f} ({ga['mc'] / gb['mc']:.1%})"
              if gb.get("mc") else "")
        lines.append(f"General ability: built-in {ga.get('builtin', 0):.3f} vs base "
                     f"{gb['builtin']:.3f}{mc}.")
        low = [n for n in r["nights"] if "mc" in (n.get("general") or {})]
        if gb.get("mc") and low:
            worst = min(low, key=lambda n: n["general"]["mc"])
            lines.append(f"Lowest MC over the nights: {worst['general']['mc']:.3f} after night "
                         f"{worst['night']} ({worst['general']['mc'] / gb['mc']:.1%} of the "
                         f"base); nights at >= 98% of it: "
                         f"{sum(n['general']['mc'] >= 0.98 * gb['mc'] for n in low)} of "
                         f"{len(low)}.")
        drifts = [g["drift"] for g in (n.get("general") or {} for n in r["nights"])
                  if "drift" in g]
        if drifts:
            lines.append(f"Drift from the base (nats/token on its own answers): "
                         f"{drifts[-1]:.4f} at the end, {max(drifts):.4f} at most.")
    return "\n".join(lines)


def plot(r: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nights = [n["night"] for n in r["nights"]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(nights, [n["direct"] for n in r["nights"]], marker="o", label="exact questions")
    ax.plot(nights, [n["reworded"] for n in r["nights"]], marker="s", label="reworded")
    ax2 = ax.twinx()
    ax2.bar(nights, [n["asked"] for n in r["nights"]], alpha=0.15, color="grey")
    ax2.set_ylabel("questions said so far")
    ax.set_xlabel("night")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.05)
    base = r.get("general_base") or {}
    for key, style, label in (("builtin", ":", "general (built-in), share of base"),
                              ("mc", "--", "general (MC), share of base")):
        points = [(n["night"], n["general"][key] / base[key]) for n in r["nights"]
                  if key in (n.get("general") or {}) and base.get(key)]
        if points:
            ax.plot(*zip(*points, strict=True), linestyle=style, color="black", alpha=0.6,
                    label=label)
    ax.set_title(f"{r['chat']} / {r['speaker']}: recall after each night")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
