"""The sleep cycle end to end on the tiny random llama (real engine, SQLite, files and MLX):
empty and greeting-only logs, accepted cycles and their versions, replay priorities, rejected
and diverged cycles leaving the user's weights byte-identical, user isolation, stored reports,
a crash inside fusion, dreaming; plus the validation gate, mc_accuracy and the dream parser.

    LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0 .venv/bin/python -m pytest -q \
        tests/test_pipeline.py
"""

from __future__ import annotations

import hashlib
import json
import math

import mlx.core as mx
import pytest

from bot.engine import open_engine
from bot.wake import ChatService
from memory import checkpoints as ck
from runtime import scoring
from sleep import dreaming, replay, validation
from sleep.factsets import bundled_factset
from sleep.pipeline import run_cycle
from sleep.validation import MCItem
from tests.conftest import quick_sleep

MAYA = bundled_factset("persona_maya").user_turns
TOMASZ = bundled_factset("persona_tomasz").user_turns
FACTS_A = [MAYA[1], MAYA[5]]  # name, Lisbon, Manchester; Biscuit
FACTS_B = [MAYA[7], MAYA[9]]  # cello; bouldering
FACTS_C = [MAYA[4]]  # Leeds; Ifeoma
GREETINGS = [MAYA[0], "Hello there!", MAYA[10]]
STAGES = ("curation", "extraction", "replay", "dreaming", "training", "validation", "fusion")
PROBE = "<|im_start|>user\nWhere do I live?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def cfg(tiny_config):
    """Fast, deterministic settings for the tiny model: accept unless a test says otherwise."""
    return quick_sleep(tiny_config)


async def _say(engine, user: str, turns: list[str]) -> list[int]:
    chat = ChatService(engine)
    return [await chat.save(user, t, "Noted.") for t in turns]


def _listing(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def _digest(root) -> dict[str, str]:
    """Every file under the user's checkpoint folder, by content hash."""
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest()
            for name in _listing(root) if (root / name).is_file()}


async def _logits(engine, user: str) -> mx.array:
    """The user's current weights on a fixed prompt (evaluated on the model thread)."""
    ids = engine.runtime.loaded.tokenizer.encode(PROBE, add_special_tokens=False)
    checkpoint = engine.checkpoint(user)

    def job(ctx):
        ctx.use_user(user, checkpoint)
        out = ctx.model(mx.array([ids]))
        mx.eval(out)
        return out

    return await engine.runtime.run(job)


async def _same(engine, a: mx.array, b: mx.array) -> bool:
    return await engine.runtime.run(lambda ctx: mx.array_equal(a, b).item())


@pytest.mark.asyncio
async def test_empty_log_makes_an_empty_cycle_and_no_checkpoint(cfg):
    async with open_engine(cfg) as engine:
        report = await run_cycle(engine.cycle_context("alice"))
        assert report.status == "empty" and not report.accepted
        assert report.examples == 0 and report.checkpoint == "base"
        assert report.stages["curation"]["exchanges"] == 0
        assert _listing(engine.paths("alice").checkpoints) == []
        assert [c.status for c in await engine.store.cycles("alice")] == ["empty"]


@pytest.mark.asyncio
async def test_only_greetings_give_zero_examples_and_no_checkpoint(cfg):
    async with open_engine(cfg) as engine:
        await _say(engine, "alice", GREETINGS)
        report = await run_cycle(engine.cycle_context("alice"))
        assert report.status == "empty"
        assert report.stages["curation"] == report.stages["curation"] | {
            "exchanges": len(GREETINGS), "kept": 0}
        assert report.stages["extraction"]["pairs"] == 0 and report.examples == 0
        assert engine.checkpoint("alice") is None
        assert ck.versions(engine.paths("alice").checkpoints) == []


@pytest.mark.asyncio
async def test_accepted_cycles_versions_replay_dedup_reports_and_a_fusion_crash(cfg, monkeypatch):
    async with open_engine(cfg) as engine:
        store, root = engine.store, engine.paths("alice").checkpoints

        # cycle 1: new facts → v0001; every fact pair enters the replay buffer at priority 1
        ids_a = await _say(engine, "alice", FACTS_A + GREETINGS[:1])
        r1 = await run_cycle(engine.cycle_context("alice"))
        assert r1.status == "accepted", r1.reason
        assert set(STAGES) <= set(r1.stages)
        counts = {"curation": ("exchanges", "kept"), "extraction": ("facts", "pairs"),
                  "replay": ("replayed",), "dreaming": ("proposed", "kept"),
                  "training": ("examples", "steps"), "fusion": ("version", "replay_added")}
        for stage, keys in counts.items():
            assert all(isinstance(r1.stages[stage][k], int) for k in keys), stage
        assert r1.stages["curation"]["exchanges"] == 3 and r1.stages["curation"]["kept"] == 2
        assert r1.examples > 0 and r1.stages["training"]["steps"] == r1.examples
        assert (r1.version, r1.checkpoint) == (1, "alice/v0001")
        assert (root / ck.CURRENT).read_text() == "v0001"
        assert not await store.exchanges("alice", unconsolidated_only=True)
        items = await store.replay_items("alice")
        assert len(items) == r1.stages["fusion"]["replay_added"] > 0
        assert all(i.priority == 1.0 and i.times_replayed == 0 for i in items)
        answers = " ".join(i.answer for i in items).lower()
        assert all(k in answers for k in ("maya", "lisbon", "manchester", "biscuit"))
        assert {i.source_exchange_ids[0] for i in items} <= set(ids_a)
        # the promoted weights' built-in score is remembered as the next cycle's "before"
        v1_key = engine.weights_key(engine.checkpoint("alice"))
        assert engine.general_scores[v1_key] == r1.validation["general_post"]
        assert engine.general_scores["base"] == r1.validation["general_pre"]

        # cycle 2: new facts, ~20% replay; replayed items decay to 0.85; v0002 has parent 1
        await _say(engine, "alice", FACTS_B)
        r2 = await run_cycle(engine.cycle_context("alice"))
        assert r2.status == "accepted", r2.reason
        n_new, k = r2.stages["extraction"]["pairs"], r2.stages["replay"]["replayed"]
        assert k == replay.replay_count(n_new, cfg.sleep.replay_ratio, len(items)) > 0
        assert abs(k / (k + n_new) - cfg.sleep.replay_ratio) <= 0.1
        assert r2.stages["curation"]["exchanges"] == len(FACTS_B)  # cycle 1's not gathered
        by_id = {i.id: i for i in await store.replay_items("alice")}
        decayed = [i for i in by_id.values() if i.times_replayed == 1]
        assert len(decayed) == k and all(i.priority == 0.85 for i in decayed)
        assert all(i.priority == 1.0 for i in by_id.values() if i.times_replayed == 0)
        assert (r2.version, r2.checkpoint) == (2, "alice/v0002")
        records = {c.version: c for c in await store.checkpoints("alice")}
        assert records[1].parent_version is None and records[2].parent_version == 1
        assert records[2].is_current and not records[1].is_current

        # cycle 3: nothing new, a non-empty buffer: trains on replay only; twice → 0.7225
        r3 = await run_cycle(engine.cycle_context("alice"))
        assert r3.status == "accepted", r3.reason
        assert r3.stages["curation"]["exchanges"] == 0
        assert r3.stages["extraction"]["pairs"] == 0
        assert r3.stages["replay"]["replayed"] == len(by_id)  # under the replay-only cap
        identity = r3.examples - r3.stages["replay"]["replayed"]
        assert identity == r1.examples - r1.stages["extraction"]["pairs"]  # only identity
        after = {i.id: i for i in await store.replay_items("alice")}
        for d in decayed:
            assert after[d.id].priority == 0.85 * 0.85 == pytest.approx(0.7225)
            assert after[d.id].times_replayed == 2
        assert r3.checkpoint == "alice/v0003" and ck.versions(root) == [2, 3]  # pruned

        # cycle 4 crashes inside fusion before CURRENT switches: v0003 stays, nothing half-made
        ids_c = await _say(engine, "alice", FACTS_C)

        def crash(root_, version):
            raise OSError("simulated crash before the switch")

        monkeypatch.setattr(ck, "set_current", crash)
        r4 = await run_cycle(engine.cycle_context("alice"))
        monkeypatch.undo()
        assert r4.status == "failed" and "simulated crash" in r4.reason
        assert r4.checkpoint == "alice/v0003" == engine.checkpoint_label("alice")
        await engine.recover()
        assert ck.versions(root) == [2, 3] and ck.current_version(root) == 3
        assert not [n for n in _listing(root) if n.startswith(".tmp") or n.startswith("v0004")]
        left = await store.exchanges("alice", unconsolidated_only=True)
        assert [e.id for e in left] == ids_c  # will be gathered again by the next cycle

        # every report is stored in SQLite with the same fields
        stored = await store.cycles("alice")
        assert [c.status for c in stored] == ["accepted", "accepted", "accepted", "failed"]
        for record, report in zip(stored, (r1, r2, r3, r4), strict=True):
            assert record.id == report.cycle_id
            assert record.report == json.loads(json.dumps(report.to_dict()))


@pytest.mark.asyncio
async def test_rejected_and_diverged_cycles_leave_the_weights_byte_identical(cfg):
    async with open_engine(cfg) as engine:
        root = engine.paths("alice").checkpoints
        await _say(engine, "alice", FACTS_A)
        assert (await run_cycle(engine.cycle_context("alice"))).status == "accepted"
        before_logits, before_files = await _logits(engine, "alice"), _digest(root)
        assert "CURRENT" in before_files

        await _say(engine, "alice", FACTS_B)
        cfg.sleep.tau = 10.0  # no update can keep 10× its general ability
        rejected = await run_cycle(engine.cycle_context("alice"))
        assert rejected.status == "rejected" and not rejected.accepted
        assert "general ability fell" in rejected.reason
        assert rejected.checkpoint == "alice/v0001"
        assert _digest(root) == before_files
        assert await _same(engine, await _logits(engine, "alice"), before_logits)

        cfg.sleep.tau = 0.0
        cfg.sleep.train.learning_rate = 1e30  # the loss becomes NaN: TrainingDiverged
        diverged = await run_cycle(engine.cycle_context("alice"))
        assert diverged.status == "rejected" and "loss became" in diverged.reason
        assert _digest(root) == before_files
        assert await _same(engine, await _logits(engine, "alice"), before_logits)
        statuses = [c.status for c in await engine.store.cycles("alice")]
        assert statuses == ["accepted", "rejected", "rejected"]


@pytest.mark.asyncio
async def test_users_are_isolated_and_deep_cycles_dream(cfg):
    async with open_engine(cfg) as engine:
        ids_a = await _say(engine, "alice", FACTS_A)
        ra = await run_cycle(engine.cycle_context("alice"))
        assert ra.status == "accepted"
        a_items = await engine.store.replay_items("alice")
        a_files = _digest(engine.paths("alice").checkpoints)

        await _say(engine, "bob", TOMASZ[1:3])
        rb = await run_cycle(engine.cycle_context("bob"), "deep")
        assert rb.status == "accepted" and rb.kind == "deep"
        assert rb.stages["curation"]["exchanges"] == 2  # only bob's exchanges
        assert rb.stages["replay"]["replayed"] == 0  # alice's buffer is not bob's
        dream = rb.stages["dreaming"]
        assert dream["kept"] <= dream["proposed"]
        facts = " ".join(rb.facts).lower()
        assert "gdansk" in facts and "lisbon" not in facts and "maya" not in facts
        b_items = await engine.store.replay_items("bob")
        assert b_items and not {(i.question, i.answer) for i in b_items} & {
            (i.question, i.answer) for i in a_items}
        assert not {s for i in b_items for s in i.source_exchange_ids} & set(ids_a)
        assert rb.checkpoint == "bob/v0001"
        assert _digest(engine.paths("alice").checkpoints) == a_files  # untouched by bob

        def differ(ctx):
            a = ck.load_delta(engine.checkpoint("alice"))
            b = ck.load_delta(engine.checkpoint("bob"))
            return set(a) == set(b) and any(not mx.array_equal(a[n], b[n]).item() for n in a)

        assert await engine.runtime.run(differ)
        la, lb = await _logits(engine, "alice"), await _logits(engine, "bob")
        assert not await _same(engine, la, lb)


# -- dreaming: the parser and the grounding rule ---------------------------------------------

def test_parse_dreams_reads_q_a_lines_and_skips_the_rest():
    raw = ("Sure! Here are some:\nQ: Where does your dog live? A: Biscuit lives in Lisbon.\n"
           "not a dream\nq:Which city did you leave?  a: Manchester\nQ: no question mark A: x")
    assert dreaming.parse_dreams(raw) == [
        ("Where does your dog live?", "Biscuit lives in Lisbon."),
        ("Which city did you leave?", "Manchester"),
    ]


def test_dreams_are_kept_only_when_grounded_in_stored_facts():
    facts = ["You live in Lisbon.", "You have a dog called Biscuit."]
    assert dreaming.consistent("Biscuit lives in Lisbon.", facts)
    assert not dreaming.consistent("Biscuit lives in Paris.", facts)  # a new claim
    assert not dreaming.consistent("x", facts)


def test_dream_needs_two_facts(tiny_runtime):
    assert tiny_runtime.call(dreaming.dream, "u", None, ["You live in Lisbon."]) == ([], 0)


# -- validation: the gate and mc_accuracy ----------------------------------------------------

@pytest.mark.parametrize("bad", [None, math.nan, math.inf])
def test_gate_fails_closed_when_a_score_is_missing(bad):
    assert not validation.gate(bad, 0.5, 0.9, None, None).accepted
    assert not validation.gate(0.5, bad, 0.9, None, None).accepted
    assert not validation.gate(0.5, 0.5, 0.9, 2.0, bad).accepted
    assert not validation.gate(0.5, 0.5, 0.9, bad if bad is not None else math.nan,
                               1.0).accepted


def test_gate_boundary_is_post_equal_tau_times_pre():
    pre, tau = 0.5, 0.9
    assert validation.gate(pre, tau * pre, tau, None, None).accepted
    assert not validation.gate(pre, math.nextafter(tau * pre, 0), tau, None, None).accepted
    assert validation.gate(pre, 1.0, tau, None, None).accepted


def test_base_floor_gate():
    """tau_base: a floor at the base model's score that accepted cycles cannot walk down."""
    assert validation.gate(0.9, 0.9, 0.9, None, None, 1.0, 0.9).accepted
    held = validation.gate(0.9, 0.85, 0.9, None, None, 1.0, 0.9)  # 0.85 ≥ 0.9 × 0.9, < 0.9
    assert not held.accepted and "below the base model's" in held.reason
    assert validation.gate(0.9, 0.85, 0.9, None, None, 1.0, 0.0).accepted  # off: paper's rule
    assert validation.gate(0.9, 0.85, 0.9, None, None, None, 0.9).accepted  # no reference


@pytest.mark.asyncio
async def test_the_base_floor_is_scored_once_and_gates_later_cycles(cfg):
    async with open_engine(cfg) as engine:
        await _say(engine, "alice", FACTS_A)
        cfg.sleep.tau_base = 0.01
        first = await run_cycle(engine.cycle_context("alice"))
        assert first.status == "accepted"
        v1 = first.stages["validation"]
        assert v1["general_base"] == v1["general_pre"]  # the first cycle starts from the base
        await _say(engine, "alice", FACTS_B)
        cfg.sleep.tau_base = 10.0  # no update keeps 10× the base model's score
        second = await run_cycle(engine.cycle_context("alice"))
        assert second.status == "rejected" and "below the base model's" in second.reason
        v2 = second.stages["validation"]
        assert v2["general_base"] == v1["general_base"]  # cached: not the user's weights
        assert v2["scale"] < 1  # smaller steps of the update were validated first


def test_fact_gate_needs_a_strictly_lower_answer_loss():
    assert validation.gate(0.5, 0.5, 0.9, 2.0, 1.9).accepted
    assert not validation.gate(0.5, 0.5, 0.9, 2.0, 2.0).accepted
    assert not validation.gate(0.5, 0.5, 0.9, 2.0, 2.1).accepted


def test_fact_gate_lets_a_replay_cycle_keep_facts_already_recalled():
    limit = validation.RECALLED_LOSS
    held = validation.gate(0.5, 0.5, 0.9, 0.03, 0.04)  # a second sleep on known facts
    assert held.accepted and "still recalled" in held.reason
    assert validation.gate(0.5, 0.5, 0.9, 0.03, limit).accepted
    assert not validation.gate(0.5, 0.5, 0.9, 0.03, math.nextafter(limit, 1)).accepted
    assert not validation.gate(0.4, 0.3, 0.9, 0.03, 0.04).accepted  # general ability still rules


MC = [
    MCItem("Question: What colour is the sky?\nAnswer:", ["blue", "green", "a loud noise"], 0),
    MCItem("Question: How many legs does a cat have?\nAnswer:", ["three", "four"], 1),
    MCItem("Question: Which is a fruit?\nAnswer:", ["apple", "hammer", "cloud", "bridge"], 0),
]


def _direct_choice(ctx, item: MCItem) -> int:
    """The choice with the highest mean log-prob of its own tokens, one sequence at a time."""
    enc = ctx.tokenizer.encode
    q = enc(item.query, add_special_tokens=False)
    means = []
    for choice in item.choices:
        c = enc(" " + choice, add_special_tokens=False)
        logits = ctx.model(mx.array([q + c])[:, :-1]).astype(mx.float32)[0]
        logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        lp = [logp[len(q) - 1 + j, tok].item() for j, tok in enumerate(c)]
        means.append(sum(lp) / len(lp))
    return max(range(len(means)), key=means.__getitem__)


def test_mc_accuracy_matches_a_direct_computation(tiny_runtime):
    def job(ctx):
        ctx.use_base()
        acc = validation.mc_accuracy(ctx, MC)
        direct = [_direct_choice(ctx, item) for item in MC]
        return acc, direct

    acc, direct = tiny_runtime.call(job)
    assert 0.0 <= acc <= 1.0
    assert acc == sum(d == item.gold for d, item in zip(direct, MC, strict=True)) / len(MC)
    # with gold set to the model's own choice, the accuracy is exactly 1
    own = [MCItem(i.query, i.choices, d) for i, d in zip(MC, direct, strict=True)]
    assert tiny_runtime.call(lambda ctx: validation.mc_accuracy(ctx, own)) == 1.0


def test_gold_prob_is_the_mean_softmax_share_of_the_gold_choice():
    items = [MCItem("q1", ["a", "b"], 0), MCItem("q2", ["a", "b", "c"], 2)]
    owners = [0, 0, 1, 1, 1]
    scores = [-1.0, -1.0, -2.0, -2.0, -2.0 + math.log(2)]  # 1/2 ; 2/4
    assert validation.mc_gold_prob(items, owners, scores) == pytest.approx(0.5)
    # it falls when the gold choice loses ground, before the argmax flips
    worse = [-1.0, -0.9, -2.0, -2.0, -2.0 + math.log(2)]
    assert validation.mc_gold_prob(items, owners, worse) < 0.5


def test_the_gate_can_compare_the_gold_choices_probability(tiny_runtime):
    from runtime.thread import run_to_end

    def job(ctx):
        ctx.use_base()
        return run_to_end(validation.mc_accuracy_steps(ctx, MC, None, "gold_prob"))

    prob = tiny_runtime.call(job)
    assert 0.0 < prob < 1.0  # a probability, not an accuracy (the tiny model is unsure)


def test_drift_gate_rejects_beyond_its_bound_and_says_it_may_scale():
    held = validation.gate(0.9, 0.9, 0.9, None, None, drift=0.05, max_drift=0.05)
    assert held.accepted and held.drift == 0.05 and held.cause == ""
    over = validation.gate(0.9, 0.9, 0.9, None, None, drift=0.0501, max_drift=0.05)
    assert not over.accepted and over.cause == "drift" and "drifted from the base" in over.reason
    assert validation.gate(0.9, 0.9, 0.9, None, None, drift=9.0).accepted  # off
    blind = validation.gate(0.9, 0.9, 0.9, None, None, drift=math.nan, max_drift=0.05)
    assert not blind.accepted and blind.cause == "unscored"  # fails closed
    # the cause tells the cycle whether a smaller step can help
    assert validation.gate(0.9, 0.1, 0.9, None, None).cause == "general"
    assert validation.gate(0.5, 0.5, 0.9, 2.0, 2.1).cause == "facts"


def test_drift_is_zero_for_the_base_and_grows_with_the_change(tiny_runtime):
    """The base model's own greedy answers: scored by the base they drift exactly 0; by
    weights moved away from it, by more the further they moved."""
    from runtime.thread import modules_from_tensors, run_to_end
    from sleep.training import _dense_weight

    def job(ctx):
        ref = validation.drift_reference(ctx)
        assert ref.seqs and validation.drift_reference(ctx) is ref  # made once per model
        base = run_to_end(validation.drift_steps(ctx, ctx.use_base))
        path = "model.layers.0.mlp.down_proj"
        w0 = _dense_weight(ctx.base_module(path))
        noise = mx.random.normal(w0.shape, key=mx.random.key(0)) * 0.05
        drifts = []
        for step in (0.5, 1.0, 2.0):
            moved = modules_from_tensors({path + ".weight": w0 + step * noise})
            drifts.append(run_to_end(validation.drift_steps(ctx, lambda m=moved: ctx.use(m))))
        ctx.use_base()
        return base, drifts

    base, drifts = tiny_runtime.call(job)
    assert base == 0.0
    assert 0 < drifts[0] < drifts[1] < drifts[2]


@pytest.mark.asyncio
async def test_a_cycle_over_its_drift_bound_tries_smaller_steps_then_is_rejected(cfg):
    async with open_engine(cfg) as engine:
        await _say(engine, "d", FACTS_A)
        cfg.sleep.max_drift = 1e-9  # any update drifts more
        report = await run_cycle(engine.cycle_context("d"))
        v = report.stages["validation"]
        assert report.status == "rejected" and "drifted from the base" in report.reason
        assert v["drift"] > 1e-9 and v["scale"] == pytest.approx(
            cfg.sleep.gate_retry_scale ** cfg.sleep.gate_retries)
        assert engine.checkpoint("d") is None  # nothing promoted
        cfg.sleep.max_drift = 100.0
        report = await run_cycle(engine.cycle_context("d"))
        assert report.status == "accepted" and 0 < report.stages["validation"]["drift"] < 100


def _item(i: int, answer: str, priority: float = 1.0):
    from memory.store import ReplayItem

    return ReplayItem(i, "u", f"q{i}", answer, priority, 0, 1, [])


def test_replay_goes_round_robin_over_facts_not_down_the_oldest_ones():
    # four phrasings each of three facts, the oldest fact first: top-k by priority alone
    # would replay fact A's phrasings only
    items = [_item(n * 4 + k, ans) for n, ans in enumerate(("A.", "B.", "C.")) for k in range(4)]
    chosen = replay.spread_over_facts(items, 5)
    assert [i.answer for i in chosen] == ["A.", "B.", "C.", "A.", "B."]
    assert [i.id for i in chosen] == [0, 4, 8, 1, 5]  # the oldest phrasing of each first
    # decayed (already replayed) phrasings wait for a fact's fresh ones
    items[0].priority = items[4].priority = 0.85
    assert [i.id for i in replay.spread_over_facts(items, 3)] == [1, 5, 8]
    assert sorted(i.id for i in replay.spread_over_facts(items, 100)) == list(range(12))


def test_replay_can_put_the_facts_being_forgotten_first():
    items = [_item(n * 4 + k, ans) for n, ans in enumerate(("A.", "B.", "C.")) for k in range(4)]
    # answer losses on the current weights: C is the most forgotten, A unscored
    chosen = replay.spread_over_facts(items, 4, {"b.": 0.4, "c.": 2.5})
    assert [i.answer for i in chosen] == ["C.", "B.", "A.", "C."]
    # one probe per fact (its highest-priority phrasing), spread evenly when capped
    items[0].priority = 0.85
    assert [i.id for i in replay.fact_probes(items, 10)] == [1, 4, 8]
    assert [i.id for i in replay.fact_probes(items, 2)] == [1, 4]


@pytest.mark.asyncio
async def test_a_scored_replay_replays_the_facts_with_the_highest_answer_loss(cfg):
    from sleep.pipeline import _pair_losses

    cfg.sleep.replay_scored = 64
    cfg.sleep.replay_ratio = 0.2
    async with open_engine(cfg) as engine:
        await _say(engine, "alice", FACTS_A + FACTS_B)
        assert (await run_cycle(engine.cycle_context("alice"))).status == "accepted"
        items = await engine.store.replay_items("alice")
        probes = replay.fact_probes(items, 64)
        # what the next cycle will see: the losses on the user's current weights
        losses = await engine.runtime.run(
            _pair_losses, "alice", engine.checkpoint("alice"),
            engine.cycle_context("alice").system_prompt, replay.as_pairs(probes))
        ranked = [replay.fact_key(p.answer) for _, p in sorted(
            zip(losses, probes, strict=True), key=lambda x: -x[0])]
        await _say(engine, "alice", FACTS_C)
        r2 = await run_cycle(engine.cycle_context("alice"))
        assert r2.status == "accepted", r2.reason
        k = r2.stages["replay"]["replayed"]
        assert 0 < k < len(probes) == r2.stages["replay"]["scored"]
        replayed = [i for i in await engine.store.replay_items("alice") if i.times_replayed]
        # exactly one phrasing of each of the k most forgotten facts
        assert sorted(replay.fact_key(i.answer) for i in replayed) == sorted(ranked[:k])


def test_scoring_runs_a_shared_prefix_once_with_the_same_scores(tiny_runtime):
    from sleep.training import build_example
    from sleep.types import QAPair

    items = [MCItem("Question: What colour is a ripe lemon?\nAnswer:",
                    ["yellow", "blue", "purple"], 0),
             MCItem("Question: Which animal says moo?\nAnswer:", ["cow", "dog"], 0),
             MCItem("Question: What do bees make?\nAnswer:", ["honey", "a very dark paint"], 0)]

    def scores(ctx):
        ctx.use_base()
        tok = ctx.tokenizer
        mc, _ = validation._mc_sequences(ctx, items)
        qa = [(e.ids, e.prompt_len) for e in (
            build_example(tok, "You are a careful test assistant with a long system prompt.",
                          QAPair(q, a), 256)
            for q, a in (("Where do I live?", "In Lisbon."), ("My dog?", "Biscuit.")))]
        seqs = mc + qa
        one_by_one = [scoring._chunk_scores(ctx, [s], [(1, 0)])[0] for s in seqs]

        def chunked(budget: int) -> tuple[list[float], list]:
            out, plan, i = [], [], 0
            while i < len(seqs):
                groups = scoring._chunk(seqs, i, budget)
                n = sum(rows for rows, _ in groups)
                out += scoring._chunk_scores(ctx, seqs[i : i + n], groups)
                plan.append(groups)
                i += n
            return out, plan

        return one_by_one, chunked(10_000), chunked(40)

    one_by_one, (together, plan), (small, _) = tiny_runtime.call(scores)
    # one group per MC item (its choices share the question), one for the two QA pairs;
    # prefixes of a chunk are left-padded to the longest and each runs once
    groups = [g for chunk in plan for g in chunk]
    assert [n for n, _ in groups] == [3, 2, 2, 2] and all(s >= 8 for _, s in groups)
    assert len(plan[0]) > 1  # items side by side in one chunk
    assert together == pytest.approx(one_by_one, abs=1e-4)
    assert small == pytest.approx(one_by_one, abs=1e-4)
    assert together == pytest.approx(one_by_one, abs=1e-4)


@pytest.mark.asyncio
async def test_anchor_pairs_ride_along_in_every_cycle(cfg):
    from sleep.anchors import ANCHORS
    from sleep.validation_questions import VALIDATION_QUESTIONS

    # the rehearsal set never contains a validation question (the gate stays held-out)
    held_out = {v.question.lower() for v in VALIDATION_QUESTIONS}
    assert not {q.lower() for q, _ in ANCHORS} & held_out
    async with open_engine(cfg) as engine:
        await _say(engine, "a", FACTS_A)
        without = await run_cycle(engine.cycle_context("a"))
        cfg.sleep.anchor_pairs = 5
        await _say(engine, "b", FACTS_A)
        with_anchors = await run_cycle(engine.cycle_context("b"))
    assert with_anchors.status == without.status == "accepted"
    assert with_anchors.examples == without.examples + 5


@pytest.mark.asyncio
async def test_anchors_can_be_trained_on_the_base_models_own_answers(cfg, monkeypatch):
    """anchor_answers "base": each anchor's answer is the base model's greedy reply after the
    bot's system prompt (made once per model and prompt), not the written one."""
    from runtime.generation import complete_batch
    from sleep import anchors, pipeline

    trained: list = []
    real_build = pipeline.build_example

    def spy(tok, system_prompt, pair, *args):
        trained.append(pair)
        return real_build(tok, system_prompt, pair, *args)

    cfg.sleep.anchor_pairs, cfg.sleep.anchor_answers = 3, "base"
    questions = [q for q, _ in anchors.ANCHORS[:3]]
    async with open_engine(cfg) as engine:
        prompt = cfg.chat.system_prompt
        said = await engine.runtime.run(anchors.base_answers, prompt, questions)
        assert said == await engine.runtime.run(complete_batch, None, None, [
            [{"role": "system", "content": prompt}, {"role": "user", "content": q}]
            for q in questions], anchors.ANSWER_TOKENS)
        assert await engine.runtime.run(anchors.base_answers, prompt, questions[:1]) == said[:1]
        await _say(engine, "s", FACTS_A)
        monkeypatch.setattr(pipeline, "build_example", spy)
        report = await run_cycle(engine.cycle_context("s"))
    assert report.status == "accepted"
    got = {p.question: p.answer for p in trained if p.kind == "anchor"}
    expect = {q: a or w for q, a, (_, w) in zip(questions, said, anchors.ANCHORS, strict=False)}
    assert got == expect


@pytest.mark.asyncio
async def test_a_cycle_can_gate_on_the_gold_choices_probability(cfg):
    cfg.sleep.general_metric = "gold_prob"
    async with open_engine(cfg) as engine:
        await _say(engine, "p", FACTS_A)
        report = await run_cycle(engine.cycle_context("p"))
    v = report.stages["validation"]
    assert report.status in ("accepted", "rejected")
    # probabilities of the gold choice, not a share of 40 items right
    assert 0 < v["general_pre"] < 1 and 0 < v["general_post"] < 1
    assert v["general_pre"] * 40 != round(v["general_pre"] * 40)


@pytest.mark.asyncio
async def test_a_failed_general_gate_retries_a_smaller_step_of_the_same_update(cfg, monkeypatch):
    """General ability 'falls' for the full update (scripted score), so the cycle validates the
    update scaled by 0.7 and promotes exactly base + 0.7 × (what the same training learned)."""
    from sleep import pipeline

    real = pipeline._score_general
    candidates: list[float] = []

    def scripted(ctx, user_id, checkpoint, overrides=None, metric="accuracy"):
        score = yield from real(ctx, user_id, checkpoint, overrides, metric)  # the real job
        if overrides is None:
            return 1.0
        candidates.append(score)
        return 0.0 if len(candidates) == 1 else 1.0

    cfg.sleep.tau, cfg.sleep.gate_retries, cfg.sleep.gate_retry_scale = 0.9, 2, 0.7
    async with open_engine(cfg) as engine:
        await _say(engine, "scaled", FACTS_A)
        monkeypatch.setattr(pipeline, "_score_general", scripted)
        scaled = await run_cycle(engine.cycle_context("scaled"))
        monkeypatch.setattr(pipeline, "_score_general", real)
        assert scaled.status == "accepted" and len(candidates) == 2
        assert scaled.validation["scale"] == 0.7 and "scaled by 0.70" in scaled.reason
        assert scaled.stages["validation"]["scale"] == 0.7

        cfg.sleep.tau = 0.0
        await _say(engine, "full", FACTS_A)
        full = await run_cycle(engine.cycle_context("full"))
        assert full.status == "accepted" and full.validation["scale"] == 1.0

        def compare(ctx):
            from sleep.training import _dense_weight

            a = ck.load_delta(engine.checkpoint("scaled"))
            b = ck.load_delta(engine.checkpoint("full"))
            assert a.keys() == b.keys()
            for name, w_full in b.items():
                path, _, leaf = name.rpartition(".")
                w0 = _dense_weight(ctx.base_module(path)) if leaf == "weight" else None
                if w0 is None:
                    continue
                expect = w0 + 0.7 * (w_full - w0)
                assert mx.allclose(a[name], expect, atol=1e-5).item(), name
            return len(b)

        assert await engine.runtime.run(compare) > 0


@pytest.mark.asyncio
async def test_scale_update_moves_from_the_users_current_weights(cfg):
    """alpha 1 is the trained weights, 0 the user's current ones (a previous checkpoint's,
    not the base's), and 0.5 the midpoint."""
    from sleep.training import scale_update

    async with open_engine(cfg) as engine:
        await _say(engine, "u", FACTS_A)
        assert (await run_cycle(engine.cycle_context("u"))).status == "accepted"
        checkpoint = engine.checkpoint("u")

        def check(ctx):
            current = ck.load_delta(checkpoint)
            trained = {k: v * 1.5 + 0.01 for k, v in current.items()}
            one = scale_update(ctx, "u", checkpoint, trained, 1.0)
            zero = scale_update(ctx, "u", checkpoint, trained, 0.0)
            half = scale_update(ctx, "u", checkpoint, trained, 0.5)
            for k in trained:
                assert mx.allclose(one[k], trained[k], atol=1e-6).item()
                assert mx.allclose(zero[k], current[k], atol=1e-6).item()
                assert mx.allclose(half[k], (current[k] + trained[k]) / 2, atol=1e-6).item()
            return len(trained)

        assert await engine.runtime.run(check) > 0


def test_the_memory_probe_is_one_question_per_answer_spread_over_a_long_cycle():
    from sleep.pipeline import _probe_pairs
    from sleep.types import QAPair

    pairs = [QAPair(f"q{i}{k}", f"answer {i}", [i], "fact") for i in range(300) for k in "ab"]
    few = _probe_pairs(pairs[:20])
    assert [p.question for p in few] == [f"q{i}a" for i in range(10)]
    many = _probe_pairs(pairs, limit=128)
    answers = [p.answer for p in many]
    assert len(many) == 128 == len(set(answers))
    assert answers[0] == "answer 0" and answers[-1] in {f"answer {i}" for i in range(295, 300)}
