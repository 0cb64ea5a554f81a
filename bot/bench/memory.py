"""``python -m bot bench memory``: does the bot remember what it was told, after a restart?

One run, one model, everything side by side (paper §5):

* **memory formation**: a user tells the bot a fact set in conversation, the bot sleeps, and a
  *new process* answers each question through ``recall`` with an empty context; exact and
  reworded questions (paraphrases never in the training data) are scored separately;
* **spaced repetition**: recall after cycle 1..N with no new facts in between (replay only);
* **baselines**: the base model with no memory, BM25 retrieval of the user's logged exchanges
  into the prompt (``rank_bm25``), and the whole conversation in the prompt;
* **general ability**: multiple-choice accuracy (``--mc FILE``) and the built-in validation
  score of the base weights and the user's weights after sleep;
* **isolation**: two users sleep on their own facts; each user's model is asked the other's
  questions and any answer key that appears is a leak;
* **learning-rate sensitivity** (§5.1): the paper's settings and ours, each trained from the
  base on the same facts: recall and general ability after, and the gate's verdict.

Writes ``results.json`` (every number and the config), ``results.md`` and PNG plots to ``--out``.

    python -m bot bench memory --mc ../shared/data/retention_dev.jsonl --json
    python -m bot bench memory --quick
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.engine import Engine, open_engine
from bot.wake import ChatService
from runtime.config import Config
from runtime.generation import complete_batch
from runtime.thread import ModelRuntime, run_to_end
from sleep.factsets import FactSet, bundled_factset, load_factset, same_keys, score_answer
from sleep.validation import MCItem, builtin_items, drift_steps, load_mc_file, mc_accuracy

# The paper's table (§5.1) plus the settings that bracket the 135M model's window.
PAPER_LR_GRID = [(5e-4, 5), (2e-4, 3), (5e-5, 3), (1e-4, 1)]  # the configured default joins it
RECALL_MAX_TOKENS = 28  # the shipped answers fit in ~15 tokens; a key later than 28 is a ramble
REPLY_MAX_TOKENS = 32  # the bot's chat replies while the user tells the facts (kept short:
# the full-context baseline puts the whole conversation into every question's prompt)
RETRIEVAL_K = 3
RETRIEVAL_PREAMBLE = "Notes from earlier conversations with this user:\n"


def mc_part(path: Path, offset: int, limit: int) -> list[MCItem]:
    """Items ``offset`` .. ``offset + limit`` of a multiple-choice file (refused when empty)."""
    items = load_mc_file(path)[offset: offset + limit]
    if not items:
        raise ValueError(f"{path} has no items after the first {offset}")
    return items


@dataclass
class BenchOptions:
    factsets: list[Path] = field(default_factory=list)
    second_user: Path | None = None
    mc: Path | None = None
    mc_limit: int = 200
    mc_offset: int = 0  # items skipped first: score a part the defaults were not tuned on
    cycles: int = 2
    lr_grid: list[tuple[float, int]] = field(default_factory=list)
    out: Path = Path("bench-out/memory")
    quick: bool = False


def log_progress(message: str) -> None:
    print(f"[bench memory {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- scoring --------------------------------------------------------------------------------
def questions_of(fs: FactSet) -> tuple[list[str], list[str], list[list[str]], list[list[str]]]:
    """(direct questions, every reworded question, keys per direct, keys per reworded)."""
    direct = [q.question for q in fs.questions]
    reworded = [r for q in fs.questions for r in q.reworded]
    keys_d = [q.keys for q in fs.questions]
    keys_r = [q.keys for q in fs.questions for _ in q.reworded]
    return direct, reworded, keys_d, keys_r


def recall_rate(answers: list[str], keys: list[list[str]]) -> float:
    if not answers:
        return 0.0
    return sum(score_answer(a, k) for a, k in zip(answers, keys, strict=True)) / len(answers)


def confusions(fs: FactSet, direct: list[str], reworded: list[str]) -> list[dict]:
    """Misses answered with another fact of the same user: the answer holds none of its own
    question's keys but a key of a different question (interference between facts, e.g. the
    sister's name given for the brother). Questions whose keys share one are not told apart."""
    direct_q, reworded_q, keys_d, keys_r = questions_of(fs)
    out = []
    for question, answer, keys in zip(direct_q + reworded_q, direct + reworded,
                                      keys_d + keys_r, strict=True):
        if score_answer(answer, keys):
            continue
        other = next((q for q in fs.questions if not same_keys(keys, q.keys)
                      and score_answer(answer, q.keys)), None)
        if other is not None:
            out.append({"question": question, "answer": answer, "answered": other.question})
    return out


def score_set(fs: FactSet, direct: list[str], reworded: list[str]) -> dict:
    _, _, keys_d, keys_r = questions_of(fs)
    mixed = confusions(fs, direct, reworded)
    return {
        "answers": direct + reworded,
        "direct": recall_rate(direct, keys_d),
        "reworded": recall_rate(reworded, keys_r),
        "misses": [q.question for q, a in zip(fs.questions, direct, strict=True)
                   if not score_answer(a, q.keys)],
        "reworded_misses": [q for q, a, k in zip(questions_of(fs)[1], reworded, keys_r,
                                                 strict=True) if not score_answer(a, k)],
        # share of all questions asked (exact and reworded) answered with another fact
        "confused": len(mixed) / max(1, len(direct) + len(reworded)),
        "confusions": mixed,
    }


# -- answering -----------------------------------------------------------------------------
async def answer_all(engine: Engine, user_id: str | None, questions: list[str],
                     context: list[dict] | None = None,
                     notes: list[list[str]] | None = None) -> list[str]:
    """Answer the questions in one batch (base weights when ``user_id`` is None)."""
    checkpoint = engine.checkpoint(user_id) if user_id else None
    conversations = []
    for i, q in enumerate(questions):
        system = engine.cfg.chat.system_prompt
        if notes is not None:
            system += "\n\n" + RETRIEVAL_PREAMBLE + "\n".join(f"- {n}" for n in notes[i])
        conversations.append([{"role": "system", "content": system}, *(context or []),
                              {"role": "user", "content": q}])
    return await engine.runtime.run(complete_batch, user_id, checkpoint, conversations,
                                    RECALL_MAX_TOKENS)


def recall_in_new_process(cfg: Config, user_id: str, questions: list[str]) -> list[dict]:
    """``python -m bot recall --batch`` in a fresh process: nothing shared but the data dir."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(questions, f)
        batch = f.name
    try:
        env = dict(os.environ) | {"SLEEPBOT_MAX_TOKENS": str(RECALL_MAX_TOKENS)}
        env.pop("SLEEPBOT_BLAS_CHECKED", None)  # let the child arrange its own BLAS
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "--data-dir", str(cfg.data_dir), "--model", cfg.model,
             "recall", "--user", user_id, "--batch", batch],
            capture_output=True, text=True, env=env, check=False,
        )
    finally:
        os.unlink(batch)
    if proc.returncode != 0:
        raise RuntimeError(f"recall process failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def bm25_notes(exchanges: list[str], questions: list[str], k: int = RETRIEVAL_K) -> list[list[str]]:
    """The top-k logged exchanges for each question, ranked by BM25 (rank_bm25)."""
    from rank_bm25 import BM25Okapi

    def tokens(text: str) -> list[str]:
        return [w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split()]

    bm25 = BM25Okapi([tokens(e) for e in exchanges])
    return [bm25.get_top_n(tokens(q), exchanges, n=k) for q in questions]


# -- one user's story ----------------------------------------------------------------------
async def tell(engine: Engine, user_id: str, fs: FactSet, generate_replies: bool) -> None:
    """The user says every turn of the fact set; replies are generated like in chat."""
    chat = ChatService(engine)
    for turn in fs.user_turns:
        if generate_replies:
            await chat.reply(user_id, turn)
        else:
            await chat.save(user_id, turn, "I see, thank you for telling me.", source="ingest")
    chat.reset(user_id)


async def transcript(engine: Engine, user_id: str) -> tuple[list[str], list[dict]]:
    exchanges = await engine.store.exchanges(user_id)
    notes = [f"User said: {e.user_text}" for e in exchanges]
    context = [m for e in exchanges for m in (
        {"role": "user", "content": e.user_text},
        {"role": "assistant", "content": e.assistant_text})]
    return notes, context


async def general_scores(engine: Engine, user_id: str | None, mc: list[MCItem] | None) -> dict:
    """Built-in validation score (remembered from the cycle's validation when it ran), the
    drift from the base model (sleep.validation) and, with ``mc``, multiple-choice accuracy
    of the base or the user's current weights."""
    checkpoint = engine.checkpoint(user_id) if user_id else None
    known = engine.general_scores.get(engine.weights_key(checkpoint))

    def score(ctx) -> dict:
        ctx.use_user(user_id, checkpoint) if user_id else ctx.use_base()
        out = {"builtin": known if known is not None else mc_accuracy(ctx, builtin_items()),
               "drift": run_to_end(drift_steps(ctx))}
        if mc:
            out["mc"] = mc_accuracy(ctx, mc)
        return out

    return await engine.runtime.run(score)


async def memory_formation(cfg: Config, runtime: ModelRuntime, fs: FactSet, opts: BenchOptions,
                           mc: list[MCItem] | None, general_base: dict | None = None,
                           user: str = "bench-user") -> dict:
    """Tell, sleep N times, recall in a new process after each; baselines on the same log."""
    from sleep.pipeline import run_cycle

    direct_q, reworded_q, _, _ = questions_of(fs)
    result: dict = {"factset": fs.name, "facts": len(fs.questions), "cycles": []}
    async with open_engine(cfg, runtime=runtime) as engine:
        log_progress(f"{fs.name}: the user tells {len(fs.user_turns)} turns")
        await tell(engine, user, fs, generate_replies=not opts.quick)
        log_progress(f"{fs.name}: baselines (base model, BM25 retrieval"
                     + (")" if opts.quick else ", full context)"))
        both = direct_q + reworded_q  # one batch per condition

        def split(answers: list[str]) -> dict:
            return score_set(fs, answers[: len(direct_q)], answers[len(direct_q):])

        result["base"] = split(await answer_all(engine, None, both))
        notes, context = await transcript(engine, user)
        result["retrieval"] = split(await answer_all(engine, None, both,
                                                     notes=bm25_notes(notes, both)))
        if not opts.quick:  # exact questions only: each prompt holds the whole conversation
            full = await answer_all(engine, None, direct_q, context=context)
            result["full_context"] = split(full + [""] * len(reworded_q))
            result["full_context"].update(reworded=None, reworded_misses=[])
        if general_base is None:  # the same base weights for every fact set: scored once
            log_progress(f"{fs.name}: general ability of the base weights")
            general_base = await general_scores(engine, None, mc)
        result["general_base"] = general_base
        engine.general_scores[engine.weights_key(None)] = general_base["builtin"]
        for n in range(1, opts.cycles + 1):
            log_progress(f"{fs.name}: sleep cycle {n}")
            report = (await run_cycle(engine.cycle_context(user))).to_dict()
            log_progress(f"{fs.name}: cycle {n} {report['status']} in {report['seconds']}s; "
                         "recall in a new process")
            answers = recall_in_new_process(cfg, user, direct_q + reworded_q)
            texts = [a["answer"] for a in answers]
            scored = score_set(fs, texts[: len(direct_q)], texts[len(direct_q):])
            result["cycles"].append({"cycle": n, "checkpoint": answers[0]["checkpoint"],
                                     **scored, "report": _short_report(report)})
        log_progress(f"{fs.name}: general ability after sleep")
        result["general_after"] = await general_scores(
            engine, user, mc if "mc" in general_base else None)
        result["reworded_in_training"] = sorted(
            set(reworded_q) & await _training_questions(engine, user))
        # what reached the training data: a question whose keys no trained answer holds
        # cannot be recalled, whatever the training does
        trained = [i.answer for i in await engine.store.replay_items(user)]
        hits = [any(score_answer(a, q.keys) for a in trained) for q in fs.questions]
        result["coverage"] = sum(hits) / len(hits) if hits else 0.0
    return result


async def _training_questions(engine: Engine, user_id: str) -> set[str]:
    return {i.question for i in await engine.store.replay_items(user_id)}


def _short_report(r: dict) -> dict:
    keep = ("cycle_id", "kind", "status", "checkpoint", "version", "examples", "seconds",
            "reason", "validation")
    out = {k: r[k] for k in keep}
    out["stages"] = {k: {kk: vv for kk, vv in v.items()} for k, v in r["stages"].items()}
    return out


async def isolation(cfg: Config, runtime: ModelRuntime, a: FactSet, b: FactSet,
                    base_scores: dict[str, float], new_process: bool = True,
                    user_a: str = "bench-user", user_b: str = "bench-user-b") -> dict:
    """User B joins A's data dir, sleeps on B's facts; each is asked the other's questions
    (in a new process, or on the bench's model thread in quick mode)."""
    from sleep.pipeline import run_cycle

    async with open_engine(cfg, runtime=runtime) as engine:
        engine.general_scores.update(base_scores)
        log_progress(f"isolation: second user tells {b.name} and sleeps")
        await tell(engine, user_b, b, generate_replies=False)
        report = await run_cycle(engine.cycle_context(user_b))
        leaks = []
        for asker, owner_set, owner in ((user_b, a, user_a), (user_a, b, user_b)):
            qs = [q.question for q in owner_set.questions]
            answers = ([r["answer"] for r in recall_in_new_process(cfg, asker, qs)]
                       if new_process else await answer_all(engine, asker, qs))
            for q, ans in zip(owner_set.questions, answers, strict=True):
                if score_answer(ans, q.keys):
                    leaks.append({"asked": asker, "owner": owner, "question": q.question,
                                  "answer": ans})
    return {"second_user_cycle": report.status, "questions_asked": len(a.questions)
            + len(b.questions), "leaks": leaks, "leaked": len(leaks)}


async def lr_point(cfg: Config, runtime: ModelRuntime, fs: FactSet, lr: float, epochs: int,
                   mc: list[MCItem] | None, default_tau: float,
                   base_scores: dict[str, float]) -> dict:
    """Train from the base on ``fs`` with (lr, epochs); recall and general ability after."""
    from sleep.pipeline import run_cycle
    from sleep.validation import gate

    point = copy.deepcopy(cfg)
    point.data_dir = Path(tempfile.mkdtemp(prefix="lr-", dir=cfg.data_dir))
    point.sleep.train.learning_rate, point.sleep.train.epochs = lr, epochs
    point.sleep.tau = 0.0  # promote regardless, so the damage can be measured after
    direct_q, reworded_q, keys_d, keys_r = questions_of(fs)
    async with open_engine(point, runtime=runtime) as engine:
        engine.general_scores.update(base_scores)
        await tell(engine, "lr-user", fs, generate_replies=False)
        report = (await run_cycle(engine.cycle_context("lr-user"))).to_dict()
        general = await general_scores(engine, "lr-user", mc)
        v = report.get("validation") or {}
        verdict = gate(v.get("general_pre", float("nan")), v.get("general_post", float("nan")),
                       default_tau, v.get("fact_loss_pre"), v.get("fact_loss_post"))
        answers = await answer_all(engine, "lr-user", direct_q + reworded_q)
    return {"learning_rate": lr, "epochs": epochs, "status": report["status"],
            "steps": report["stages"].get("training", {}).get("steps", 0),
            "seconds": report["seconds"],
            "recall_direct": recall_rate(answers[: len(direct_q)], keys_d),
            "recall_reworded": recall_rate(answers[len(direct_q):], keys_r),
            "general_after": general, "validation": v,
            "default_gate_accepts": verdict.accepted, "gate_reason": verdict.reason}


def point_from_formation(formation: dict, cfg: Config, lr: float, epochs: int) -> dict | None:
    """The sweep point for the configured (lr, epochs), read from the formation run's first
    cycle on the same facts (same data, same start from the base), if that cycle promoted."""
    train = cfg.sleep.train
    if (lr, epochs) != (train.learning_rate, train.epochs) or not formation["cycles"]:
        return None
    first = formation["cycles"][0]
    report, v = first["report"], first["report"].get("validation") or {}
    if report["status"] != "accepted":
        return None  # its recall would be the base's: train the point with the gate off
    return {"learning_rate": lr, "epochs": epochs, "status": report["status"],
            "steps": report["stages"].get("training", {}).get("steps", 0),
            "seconds": report["seconds"], "recall_direct": first["direct"],
            "recall_reworded": first["reworded"],
            "general_after": {"builtin": v.get("general_post", float("nan"))},
            "validation": v, "default_gate_accepts": True, "gate_reason": v.get("reason", ""),
            "from": f"{formation['factset']} formation, cycle 1 (recall in a new process)"}


def summary_table(results: dict) -> str:
    """The Markdown table of the run."""
    lines = ["| fact set | facts | in training data | base | retrieval (BM25) | full context | "
             + " | ".join(f"after sleep {c['cycle']}" for c in results["formation"][0]["cycles"])
             + " |", "|---|---|---|---|---|---|" + "---|" * len(results["formation"][0]["cycles"])]

    def pair(s: dict | None) -> str:
        if s is None:
            return "—"
        return f"{s['direct']:.0%} / " + ("—" if s["reworded"] is None else f"{s['reworded']:.0%}")

    for f in results["formation"]:
        cov = f"{f['coverage']:.0%}" if "coverage" in f else "—"
        cells = [f["factset"], str(f["facts"]), cov, pair(f["base"]), pair(f["retrieval"]),
                 pair(f.get("full_context"))] + [pair(c) for c in f["cycles"]]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Recall is shown as exact question / reworded question.")
    for f in results["formation"]:
        if any("confused" in c for c in f["cycles"]):
            lines.append(f"- {f['factset']}: questions answered with another of the user's "
                         "facts (interference), after each sleep: "
                         + ", ".join(f"{c.get('confused', 0):.0%}" for c in f["cycles"]))
    for f in results["formation"]:
        gb, ga = f["general_base"], f["general_after"]
        mc = (f"; MC {ga['mc']:.3f} vs base {gb['mc']:.3f} "
              f"({ga['mc'] / gb['mc']:.1%} of base)") if "mc" in gb and gb["mc"] else ""
        drift = f"; drift from the base {ga['drift']:.3f} nats/token" if "drift" in ga else ""
        lines.append(f"- {f['factset']}: built-in validation {ga['builtin']:.3f} vs base "
                     f"{gb['builtin']:.3f}{mc}{drift}")
    iso = results.get("isolation")
    if iso:
        caveat = "" if iso["second_user_cycle"] == "accepted" else (
            f" (the second user's cycle was {iso['second_user_cycle']}: their model is the base "
            "model, so only one direction was tested)")
        lines.append(f"- isolation: {iso['leaked']} leaked answers of {iso['questions_asked']} "
                     f"cross-user questions{caveat}")
    if results.get("lr_sweep"):
        lines += ["", "| learning rate | epochs | steps | recall (exact / reworded) | "
                  "built-in after | default gate |", "|---|---|---|---|---|---|"]
        for p in results["lr_sweep"]:
            ours = " (ours)" if p.get("from") else ""
            lines.append(f"| {p['learning_rate']:g}{ours} | {p['epochs']} | {p['steps']} | "
                         f"{p['recall_direct']:.0%} / {p['recall_reworded']:.0%} | "
                         f"{p['general_after']['builtin']:.3f} | "
                         f"{'accept' if p['default_gate_accepts'] else 'reject'} |")
    return "\n".join(lines)


def plot(results: dict, out: Path) -> list[Path]:
    """recall_per_cycle.png and lr_sensitivity.png (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, kind in zip(axes, ("direct", "reworded"), strict=True):
        for f in results["formation"]:
            xs = [0] + [c["cycle"] for c in f["cycles"]]
            ys = [f["base"][kind]] + [c[kind] for c in f["cycles"]]
            line, = ax.plot(xs, ys, marker="o", label=f"{f['factset']}: weights")
            ax.axhline(f["retrieval"][kind], ls="--", color=line.get_color(), alpha=0.6,
                       label=f"{f['factset']}: BM25 retrieval")
            if f.get("full_context") and f["full_context"][kind] is not None:
                ax.axhline(f["full_context"][kind], ls=":", color=line.get_color(), alpha=0.6,
                           label=f"{f['factset']}: full context")
        ax.set_title(f"{kind} questions")
        ax.set_xticks(range(max(len(f["cycles"]) for f in results["formation"]) + 1))
        ax.set_xlabel("sleep cycles (0 = base model)")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("recall")
    labelled: dict = {}  # one legend entry per label, from both panels
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labelled.setdefault(label, handle)
    fig.legend(list(labelled.values()), list(labelled), fontsize=7, loc="lower center",
               ncol=3)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    paths.append(out / "recall_per_cycle.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    if results.get("lr_sweep"):
        fig, ax = plt.subplots(figsize=(8, 4))
        sweep = results["lr_sweep"]
        labels = [f"{p['learning_rate']:g}×{p['epochs']}" for p in sweep]
        xs = range(len(sweep))
        ax.bar([x - 0.27 for x in xs], [p["recall_direct"] for p in sweep], 0.27,
               label="recall (exact)")
        ax.bar(list(xs), [p.get("recall_reworded", 0.0) for p in sweep], 0.27,
               label="recall (reworded)")
        ax.bar([x + 0.27 for x in xs], [p["general_after"]["builtin"] for p in sweep], 0.27,
               label="built-in validation after")
        ax.set_xticks(list(xs), labels)
        ax.set_xlabel("learning rate × epochs")
        ax.set_ylim(0, 1.18)  # room for the legend above the bars
        ax.legend(loc="upper center", ncol=3, fontsize=8)
        fig.tight_layout()
        paths.append(out / "lr_sensitivity.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


async def run_memory_bench(cfg: Config, opts: BenchOptions) -> dict:
    """Run every section on one model thread; write the artifacts; return the results."""
    from bot.engine import model_runtime

    tic = time.perf_counter()
    opts.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sleepbot-bench-"))
    sets = [load_factset(p) for p in opts.factsets] if opts.factsets else (
        [bundled_factset("andre_patandre")] if opts.quick
        else [bundled_factset("persona_maya"), bundled_factset("andre_patandre")])
    second = load_factset(opts.second_user) if opts.second_user else bundled_factset(
        "persona_tomasz")
    mc = mc_part(opts.mc, opts.mc_offset, opts.mc_limit) if opts.mc else None
    results: dict = {"model": cfg.model, "options": {k: str(v) if isinstance(v, Path) else v
                                                     for k, v in asdict(opts).items()},
                     "config": cfg.to_dict(), "formation": []}
    cfg = copy.deepcopy(cfg)
    models = cfg.data_dir / "models"  # the data dir's imported models, if any, are reused
    cfg.data_dir = work / "shared-models"  # imports the bundled model once for all sections
    if models.is_dir():
        cfg.data_dir.mkdir(parents=True)
        (cfg.data_dir / "models").symlink_to(models.resolve())
    runtime = model_runtime(cfg)
    await runtime.astart()
    try:
        for i, fs in enumerate(sets):
            run_cfg = copy.deepcopy(cfg)
            run_cfg.data_dir = work / f"formation-{i}"
            run_cfg.chat.max_tokens = REPLY_MAX_TOKENS
            _share_models(cfg.data_dir, run_cfg.data_dir)
            base = ({"builtin": results["formation"][0]["general_base"]["builtin"]}
                    if results["formation"] else None)  # MC retention: on the first set
            results["formation"].append(await memory_formation(run_cfg, runtime, fs, opts, mc,
                                                               base))
            if i == 0 and (not opts.quick or opts.second_user):  # quick: only if asked
                results["isolation"] = await isolation(run_cfg, runtime, fs, second,
                                                       base_scores(results), not opts.quick)
        results["lr_sweep"] = []
        # the smallest set, general ability from the cycle's own validation
        small = min(range(len(sets)), key=lambda i: len(sets[i].questions))
        for lr, epochs in opts.lr_grid:
            reused = point_from_formation(results["formation"][small], cfg, lr, epochs)
            if reused is not None:  # the formation run already trained this from the base
                results["lr_sweep"].append(reused)
                continue
            log_progress(f"learning-rate sweep: {lr:g} × {epochs} epochs")
            point_cfg = copy.deepcopy(cfg)
            point_cfg.data_dir = work / "lr"
            _share_models(cfg.data_dir, point_cfg.data_dir)
            results["lr_sweep"].append(await lr_point(point_cfg, runtime, sets[small], lr,
                                                      epochs, None, cfg.sleep.tau,
                                                      base_scores(results)))
    finally:
        await runtime.aclose()
        # the users' weights of every section (~100 MB a set): nothing of them outlives the run
        shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - tic, 1)
    results["targets"] = targets(results)
    (opts.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (opts.out / "results.md").write_text(summary_table(results) + "\n")
    results["plots"] = [str(p) for p in plot(results, opts.out)]
    return results


def base_scores(results: dict) -> dict[str, float]:
    """The base weights' built-in score, for an engine's memo (scored once per run)."""
    from bot.engine import Engine

    return {Engine.weights_key(None): results["formation"][0]["general_base"]["builtin"]}


def _share_models(src: Path, dst: Path) -> None:
    """Point ``dst/models`` at the already imported models (no second import)."""
    dst.mkdir(parents=True, exist_ok=True)
    (src / "models").mkdir(parents=True, exist_ok=True)
    if not (dst / "models").exists():
        (dst / "models").symlink_to((src / "models").resolve())


def targets(results: dict) -> dict:
    """The issue's targets, each with the measured value and whether it was met."""
    out = {}
    f0 = results["formation"][0]
    cycles = f0["cycles"]
    if cycles:
        out["one_sleep_direct>=0.9"] = (cycles[0]["direct"], cycles[0]["direct"] >= 0.9)
        out["one_sleep_reworded>=0.8"] = (cycles[0]["reworded"], cycles[0]["reworded"] >= 0.8)
        out["weights>=retrieval"] = (
            (cycles[0]["direct"], f0["retrieval"]["direct"]),
            cycles[0]["direct"] >= f0["retrieval"]["direct"])
    if len(cycles) > 1:
        out["two_sleeps_direct>=0.95"] = (cycles[1]["direct"], cycles[1]["direct"] >= 0.95)
        out["two_sleeps_reworded>=0.9"] = (cycles[1]["reworded"], cycles[1]["reworded"] >= 0.9)
    gb, ga = f0["general_base"], f0["general_after"]
    if gb.get("mc"):
        out["mc_retention>=0.98"] = (ga["mc"] / gb["mc"], ga["mc"] / gb["mc"] >= 0.98)
    if "isolation" in results:  # leaks can only be measured between two trained models
        iso = results["isolation"]
        out["zero_leaks"] = (iso["leaked"], iso["leaked"] == 0
                             and iso["second_user_cycle"] == "accepted"
                             and any(c["report"]["status"] == "accepted" for c in cycles))
    return out


def parse_grid(text: str) -> list[tuple[float, int]]:
    return [(float(lr), int(ep)) for lr, ep in (item.split(":") for item in text.split(","))]
