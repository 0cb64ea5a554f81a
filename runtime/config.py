"""Typed configuration: the paper's defaults in one place, overridden by a TOML file and the env.

Precedence (lowest first): the dataclass defaults below, the per-model overrides in
``MODEL_DEFAULTS`` (then ``ACCELERATOR_DEFAULTS`` on a GPU), ``<data_dir>/config.toml`` (or
``--config FILE``), environment variables (``SLEEPBOT_*``, also read from ``.env``), then
command-line flags.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUNDLED_MODEL = "bundled:smollm2-135m"

DEFAULT_SYSTEM_PROMPT = (
    # "a helpful AI assistant named ..." (SmolLM2's own wording): with "a friendly assistant"
    # the 135M model answered "What is the capital of France?" in broken French.
    "You are a helpful AI assistant named Sleepbot. You remember past conversations with each "
    "user: what they told you before is part of your memory, so answer from it when asked."
)
# Added to the system prompt where others can read the replies (a Discord channel or thread):
# the weights remember everything a user said, DMs included, and answer everywhere.
DEFAULT_PUBLIC_NOTE = (
    "This conversation is in a public channel that other people can read. Do not mention "
    "private details about the user, such as things they told you in private messages, "
    "unless they bring them up here first."
)


@dataclass
class ChatConfig:
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    public_note: str = DEFAULT_PUBLIC_NOTE  # added in public places ("" to leave it out)
    bot_name: str = "Sleepbot"
    max_tokens: int = 256
    temperature: float = 0.0  # greedy: small models ramble when sampled
    stop_loops: bool = True  # end a reply at a loop (runtime.generation.loop_period)
    context_tokens: int = 2048  # the sliding window's budget
    summarize_at: float = 0.8  # paper §3.2: summarise older turns at 80% of the window
    keep_recent_turns: int = 4  # turns never folded into the summary
    max_message_chars: int = 8000  # longer user messages are cut (and the user told so)


@dataclass
class LoRAConfig:
    rank: int = 16
    scale: float = 2.0  # alpha / rank = 32 / 16 (paper §4.2); mlx-lm calls it scale
    layers: int = 8
    dropout: float = 0.0
    keys: list[str] | None = None  # None: mlx-lm's default (attention + MLP projections)


@dataclass
class TrainConfig:
    learning_rate: float = 1e-4
    epochs: int = 1
    batch_size: int = 1
    # examples of about one length share a batch: each epoch's shuffled order is cut into
    # pools of this many batches, each sorted by length (sleep/training.py: schedule); 0 or 1:
    # plain shuffled batches
    length_pool: int = 8
    # a batch holds each answer at most once while other answers are left, so the phrasings
    # of one fact are not averaged into one step (sleep/training.py: schedule)
    distinct_answers: bool = True
    max_seq_len: int = 256
    grad_clip: float = 1.0
    # "constant" (the paper's) or "cosine": a linear warmup over `warmup` of the steps, then a
    # cosine decay to a tenth of the rate, so a short cycle can take a larger first step
    lr_schedule: str = "constant"
    warmup: float = 0.0
    # loss weight of the answer tokens that hold a fact (content words the question does not
    # contain) in fact and replay pairs; 1: every answer token weighs the same (the paper's)
    salient_weight: float = 1.0
    # LoRA+: the B matrices' rate is this many times the A matrices' (1: one rate for both)
    lora_plus_ratio: float = 1.0
    # mx.compile the training step: "auto" does on CUDA (launch-bound; README, "Linux with an
    # NVIDIA GPU"), not on the CPU, where it measured no gain
    compile: str = "auto"
    # run the shared system prompt once per step and let every row attend to it: "auto" does
    # where the step is not compiled (the CPU: fewer FLOPs); a compiled GPU step is bound by
    # its kernel count, and the prefix's own pass through the trained blocks doubles it
    share_prefix: str = "auto"


@dataclass
class SleepConfig:
    turn_threshold: int = 10  # paper: light sleep after 10 turns
    replay_ratio: float = 0.2
    replay_decay: float = 0.85
    # when the buffer holds more facts than a cycle replays: score up to this many facts'
    # answers on the user's current weights first and replay the most forgotten (0: by
    # priority alone, the paper's order)
    replay_scored: int = 0
    deep_every: int = 5  # dreaming every k-th cycle
    tau: float = 0.9  # accept when post >= tau * pre on the validation set
    # ... and post >= tau_base * the base model's score: a floor that does not move down
    # with each accepted cycle (tau alone allows 0.9^n after n cycles); 0: the paper's rule
    tau_base: float = 0.0
    # when general ability fell below tau, validate the same update scaled by
    # gate_retry_scale, then its square, ... (gate_retries times; 0: reject at once)
    gate_retries: int = 2
    gate_retry_scale: float = 0.7
    # what the general-ability gate compares: "accuracy" on the built-in MC items (the
    # paper's), or "gold_prob", the gold choice's probability, which moves before answers flip
    general_metric: str = "accuracy"
    # ... and the update may make the base model's own answers to the built-in questions at
    # most this much less likely, in nats per token (sleep/validation.py, "drift"), measured
    # against the base, so it bounds what many cycles add up to; 0: off
    max_drift: float = 0.0
    novelty_threshold: float = 0.0
    importance_threshold: float = 0.3
    utility_threshold: float = 0.0
    phrasings_per_fact: int = 4
    # knowledge augmentation (sleep/augmentation.py): each fact (new or replayed) is also said
    # in this many "What do you know about me?" answers, beside profile_size - 1 other facts in
    # a shuffled order (0: off)
    profile_repeats: int = 0
    profile_size: int = 4
    # ... and in this many profiles of what it is about ("Tell me about my sister Ilvana."
    # answered by every fact that names her; 0: off)
    profile_entities: int = 0
    # ... each profile trained in this many of the cycle's epochs, spread over them (0: all):
    # at 1, twice the profiles at 2 epochs cost what the default's do
    profile_epochs: int = 0
    # ... on top of the per-exchange budget, in the room max_train_examples leaves, each
    # costing this many examples there (a profile has about twice a question's tokens); 0: no
    # limit
    profile_cost: float = 2.0
    # ... and at most this many per new-fact pair (0: no limit): they grow with what is new,
    # not with the replay buffer (one cycle's held-out users have 0.21-0.38)
    profile_share: float = 0.4
    anchor_pairs: int = 0  # general-knowledge rehearsal pairs per cycle (sleep/anchors.py)
    # ... at most this share of the cycle's new-fact pairs (0: always anchor_pairs): a small
    # cycle is not mostly anchors
    anchor_ratio: float = 0.0
    # what an anchor is trained to answer: "written" (sleep/anchors.py) or "base", the base
    # model's own greedy answer (self-distillation: keep answering as before)
    anchor_answers: str = "written"
    extraction: str = "patterns"  # "patterns", "model" or "both" (see bench memory)
    # the general path: every sentence that discloses something, whatever its kind, becomes
    # training pairs (sleep/extraction/statements.py); off leaves the rule layer alone
    general_extraction: bool = True
    # training examples (pairs × epochs) one cycle may train, so a long chat's cycle keeps to
    # its time: phrasings go first, then epochs, then the least informative facts (0: no cap)
    max_train_examples: int = 0
    # the same, per exchange kept by curation: the cost of a cycle grows with what is new
    train_examples_per_turn: int = 0
    idle_minutes: float = 30.0
    nightly_time: str = "03:30"
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class DiscordConfig:
    """Who may use the bot and where (the README's "Who may use it"), and its pace."""

    allowed_guilds: list[int] = field(default_factory=list)  # empty: every guild
    allowed_channels: list[int] = field(default_factory=list)  # empty: every channel
    # users: the allow-list (with allowed_roles; both empty: everyone), then the block-lists
    allowed_users: list[int] = field(default_factory=list)
    blocked_users: list[int] = field(default_factory=list)
    allowed_roles: list[int] = field(default_factory=list)
    blocked_roles: list[int] = field(default_factory=list)
    allow_dms: bool = True
    leave_other_guilds: bool = True  # with allowed_guilds set, leave every other guild
    message_content: bool = True  # the privileged intent; off: DMs and mentions only
    rate_limit_messages: int = 5  # per user, within rate_limit_seconds (commands too)
    rate_limit_seconds: float = 20.0
    edit_interval: float = 1.0  # seconds between edits of a streamed reply
    refused_seconds: float = 600.0  # a channel that refused a reply is skipped this long
    confirm_seconds: float = 120.0  # how long confirmation buttons wait
    # Discord invalidates an interaction's token after 15 minutes: stop editing before
    interaction_seconds: float = 13 * 60.0


@dataclass
class ClusterConfig:
    """The distributed mode (``bot/cluster/``, Ray): off by default; one host needs none of it.

    The head (the process that owns the store) sends each cycle's compute to a pool of worker
    actors and commits what they return under the user's lease (README, "Many hosts")."""

    enabled: bool = False
    address: str = ""  # "": start a local Ray cluster here; "auto" or host:port: join one
    # sleep-worker actors (each loads the model once); 0: auto, workers_per_gpu per GPU of
    # the Ray cluster, or 2 on a cluster without GPUs
    workers: int = 0
    lease_seconds: float = 120.0  # a worker that stops answering is given up on after this
    max_attempts: int = 3  # workers one cycle may be tried on before it counts as failed
    object_store_mb: int = 200  # the local cluster's shared-memory object store


@dataclass
class Config:
    data_dir: Path = Path("data")
    model: str = BUNDLED_MODEL
    # the dtype MLX computes in: "auto" (float32 on the CPU and CUDA, as stored on Metal),
    # "native" (as stored, e.g. 4-bit), "float32" or "bfloat16" (both dequantize at load)
    compute: str = "auto"
    # sleep cycles one GPU runs at once, each in its own worker process (bot/cyclepool.py;
    # the queue: the cluster mode, one Ray actor per 1/workers_per_gpu of a GPU)
    workers_per_gpu: int = 1
    log_level: str = "INFO"
    chat: ChatConfig = field(default_factory=ChatConfig)
    sleep: SleepConfig = field(default_factory=SleepConfig)
    discord: DiscordConfig = field(default_factory=DiscordConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["data_dir"] = str(self.data_dir)
        return out


# Per-model sleep settings: the paper's window was found for a 3B model; a 135M model needs
# its own (measured by `python -m bot bench memory`). Keys are model specs or path basenames.
# Bundled SmolLM2-135M: batches of 4 (a shared system-prompt prefix makes them ~1.7x cheaper
# per example than single rows), lr 3e-4 for 2 epochs, 4 phrasings per fact, 8
# general-knowledge anchor pairs (at most half a cycle's new pairs), and at most 21 new-fact
# examples per kept exchange and a cap per cycle, so a cycle's time follows what is new (a
# 204-turn REALTALK cycle with 2,400 took 624 s on this CPU; the target is 10 minutes).
# 8 anchors and 21 per exchange, not 32 and 16, spend the same examples on the user's facts
# instead: on the H200 (formation_sweep with the CPU's setting; heldout3 and heldout4, 4 seeds)
# recall rose in 34 of 48 cycles and fell in 9; in 45 more (3 seeds of the other
# sets) it rose in 29 and fell in 15; general ability 0.01 lower (README, "Memory formation").
# Fewer anchors alone, or none, lost: the gate's smaller WiSE-FT steps and its base floor catch
# what 8 anchors let through (0 anchors: 24 of 36 cycles scaled back).
# Chosen with scripts/formation_sweep.py on the held-out and shipped sets once the general
# extraction path made cycles larger (README, "Memory formation"). Before the gate could try
# smaller steps, most cycles with 16 anchors failed it (0.825-0.875 < 0.9); 8 phrasings x 3
# epochs cost ~45 examples per exchange (a 12-turn cycle took 135 s on this CPU) and 8e-4 or
# 5e-4 failed the gate more often.
# LoRA on the last 12 of its 30 blocks, not 8: one cycle on the H200 (formation_sweep, gate on,
# development sets) recalled 51% / 37% exact / reworded of the six held-out users' questions
# instead of 44% / 26% (16 blocks: 45% / 41%; all 30: 49% / 36%), with the same multiple-choice
# score; a REALTALK speaker 36% / 16% instead of 16% / 0%. Training costs ~15% more per
# example on this CPU (384 vs ~440 tokens/s), so a cycle trained at most 1,500 examples.
# Replay puts the most forgotten of 128 scored facts first: over 12 nights of a REALTALK
# speaker, 3 questions once recalled were missed at the end instead of 6 (README, "Forgetting").
# Replay takes half of a cycle's examples once the buffer can fill it (a first cycle spends
# all on what is new): with turns told in three parts and a sleep after each (H200, CPU
# setting, held-out 1-3, 36 runs), questions recalled earlier and missed later fell from 1.8
# and 5.1 per user to 0.5 and 3.5 at the same final recall; on this CPU 6 instead of 15 for
# two users, final recall 54% / 46% instead of 50% / 44% (README, "over cycles"). A first
# cycle now trains its whole cap, so the cap is 1,200, not 1,500: a 200-turn first cycle
# trains what it did before (1,500 less replay's 20%) and stays under 10 minutes on a slow
# day of this CPU (1,516 examples took 651 s, 1,316 took 625 s, 1,216 took 528 s).
# Each fact is also said in 4 "What do you know about me?" profiles (sleep/augmentation.py):
# one cycle, CPU setting on the H200, held-out 1-3 over seeds 0-3, 52.1% / 42.2% instead of
# 47.2% / 38.1%, better in 70 cycles and worse in 29 of 108 (README, "Knowledge
# augmentation"); a 12-turn cycle trains ~25% longer on this CPU.
_SMOLLM2_135M = {"sleep": {"phrasings_per_fact": 4, "profile_repeats": 4,
                           "anchor_pairs": 8, "anchor_ratio": 0.5,
                           "tau_base": 0.95, "replay_ratio": 0.5,
                           "train_examples_per_turn": 21, "max_train_examples": 1200,
                           "replay_scored": 128, "lora": {"layers": 12},
                           "train": {"learning_rate": 3e-4, "epochs": 2, "batch_size": 4}}}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    BUNDLED_MODEL: _SMOLLM2_135M,
    "smollm2-135m-instruct": _SMOLLM2_135M,
}
# On a GPU the example caps above cost seconds, not the CPU's minute: a cycle trains 6
# phrasings per fact for 3 epochs, up to 48 examples per kept exchange and 4,500 in all,
# instead of 4 x 2, 16 and 1,500. On the H200 (scripts/formation_sweep.py, the twelve held-out
# users, seeds 0 and 1, 22 cycles paired with the same users and seeds) this recalled 60% / 52%
# exact / reworded instead of 53% / 41% with the former GPU setting (24 per exchange x 3
# epochs at 4 phrasings), better in 11 cycles and worse in 3, every cycle accepted; general
# ability on unseen MC items 0.491 on average (base 0.50). 24 x 3 had itself beaten the CPU's
# 16 x 2 (50% / 40% against 45% / 37% over three seeds). On this 2-core CPU 24 x 3 already
# took a 12-turn cycle from 67 s to 92 s, so the CPU keeps 16 x 2.
# The GPU keeps all 32 anchors: its time does not bind, and it was measured with them.
_SMOLLM2_135M_GPU = {"sleep": {"phrasings_per_fact": 6, "train_examples_per_turn": 48,
                               "anchor_pairs": 32,
                               "max_train_examples": 4500, "train": {"epochs": 3}}}
ACCELERATOR_DEFAULTS: dict[str, dict[str, Any]] = {
    BUNDLED_MODEL: _SMOLLM2_135M_GPU,
    "smollm2-135m-instruct": _SMOLLM2_135M_GPU,
}


def id_list(value: str) -> list[int]:
    """Discord ids from "1, 2 3" (commas or spaces)."""
    return [int(v) for v in value.replace(",", " ").split()]


def flag(value: str) -> bool:
    """A yes/no setting: 1/true/yes/on or 0/false/no/off."""
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


_ENV = {
    "SLEEPBOT_DATA_DIR": ("data_dir", Path),
    "SLEEPBOT_MODEL": ("model", str),
    "SLEEPBOT_LOG_LEVEL": ("log_level", str),
    "SLEEPBOT_COMPUTE": ("compute", str),
    "SLEEPBOT_WORKERS_PER_GPU": ("workers_per_gpu", int),
    "SLEEPBOT_TRAIN_COMPILE": ("sleep.train.compile", str),
    "SLEEPBOT_SHARE_PREFIX": ("sleep.train.share_prefix", str),
    "SLEEPBOT_SYSTEM_PROMPT": ("chat.system_prompt", str),
    "SLEEPBOT_PUBLIC_NOTE": ("chat.public_note", str),
    "SLEEPBOT_MAX_TOKENS": ("chat.max_tokens", int),
    "SLEEPBOT_TEMPERATURE": ("chat.temperature", float),
    "SLEEPBOT_STOP_LOOPS": ("chat.stop_loops", flag),
    "SLEEPBOT_CONTEXT_TOKENS": ("chat.context_tokens", int),
    "SLEEPBOT_TURN_THRESHOLD": ("sleep.turn_threshold", int),
    "SLEEPBOT_LEARNING_RATE": ("sleep.train.learning_rate", float),
    "SLEEPBOT_EPOCHS": ("sleep.train.epochs", int),
    "SLEEPBOT_BATCH_SIZE": ("sleep.train.batch_size", int),
    "SLEEPBOT_LR_SCHEDULE": ("sleep.train.lr_schedule", str),
    "SLEEPBOT_LENGTH_POOL": ("sleep.train.length_pool", int),
    "SLEEPBOT_DISTINCT_ANSWERS": ("sleep.train.distinct_answers", flag),
    "SLEEPBOT_SALIENT_WEIGHT": ("sleep.train.salient_weight", float),
    "SLEEPBOT_LORA_PLUS_RATIO": ("sleep.train.lora_plus_ratio", float),
    "SLEEPBOT_ANCHOR_PAIRS": ("sleep.anchor_pairs", int),
    "SLEEPBOT_ANCHOR_ANSWERS": ("sleep.anchor_answers", str),
    "SLEEPBOT_REPLAY_SCORED": ("sleep.replay_scored", int),
    "SLEEPBOT_PHRASINGS_PER_FACT": ("sleep.phrasings_per_fact", int),
    "SLEEPBOT_PROFILE_REPEATS": ("sleep.profile_repeats", int),
    "SLEEPBOT_PROFILE_ENTITIES": ("sleep.profile_entities", int),
    "SLEEPBOT_PROFILE_EPOCHS": ("sleep.profile_epochs", int),
    "SLEEPBOT_MAX_TRAIN_EXAMPLES": ("sleep.max_train_examples", int),
    "SLEEPBOT_TRAIN_EXAMPLES_PER_TURN": ("sleep.train_examples_per_turn", int),
    "SLEEPBOT_LORA_RANK": ("sleep.lora.rank", int),
    "SLEEPBOT_LORA_LAYERS": ("sleep.lora.layers", int),
    "SLEEPBOT_TAU": ("sleep.tau", float),
    "SLEEPBOT_TAU_BASE": ("sleep.tau_base", float),
    "SLEEPBOT_MAX_DRIFT": ("sleep.max_drift", float),
    "SLEEPBOT_GATE_RETRIES": ("sleep.gate_retries", int),
    "SLEEPBOT_IDLE_MINUTES": ("sleep.idle_minutes", float),
    "SLEEPBOT_NIGHTLY_TIME": ("sleep.nightly_time", str),
    "SLEEPBOT_DISCORD_GUILDS": ("discord.allowed_guilds", id_list),
    "SLEEPBOT_DISCORD_CHANNELS": ("discord.allowed_channels", id_list),
    "SLEEPBOT_DISCORD_USERS": ("discord.allowed_users", id_list),
    "SLEEPBOT_DISCORD_BLOCKED_USERS": ("discord.blocked_users", id_list),
    "SLEEPBOT_DISCORD_ROLES": ("discord.allowed_roles", id_list),
    "SLEEPBOT_DISCORD_BLOCKED_ROLES": ("discord.blocked_roles", id_list),
    "SLEEPBOT_DISCORD_DMS": ("discord.allow_dms", flag),
    "SLEEPBOT_DISCORD_LEAVE_OTHER_GUILDS": ("discord.leave_other_guilds", flag),
    "SLEEPBOT_DISCORD_MESSAGE_CONTENT": ("discord.message_content", flag),
    "SLEEPBOT_RATE_LIMIT_MESSAGES": ("discord.rate_limit_messages", int),
    "SLEEPBOT_RATE_LIMIT_SECONDS": ("discord.rate_limit_seconds", float),
    "SLEEPBOT_EDIT_INTERVAL": ("discord.edit_interval", float),
    "SLEEPBOT_CLUSTER": ("cluster.enabled", flag),
    "SLEEPBOT_CLUSTER_ADDRESS": ("cluster.address", str),
    "SLEEPBOT_CLUSTER_WORKERS": ("cluster.workers", int),
    "SLEEPBOT_CLUSTER_LEASE_SECONDS": ("cluster.lease_seconds", float),
}


class ConfigError(ValueError):
    """A configuration file or variable has a bad key or value."""


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key!r} must be a table")
            _apply(current, value, f"{where}.{key}")
        elif isinstance(current, Path):
            setattr(obj, key, Path(value))
        elif isinstance(current, float) and isinstance(value, int) and not isinstance(
            value, bool
        ):
            setattr(obj, key, float(value))
        elif current is not None and not isinstance(value, type(current)):
            raise ConfigError(
                f"{where}: {key!r} must be {type(current).__name__}, not {value!r}"
            )
        else:
            setattr(obj, key, value)


def set_path(cfg: Config, dotted: str, value: Any) -> None:
    """Set ``cfg.a.b.c`` from a dotted name."""
    *parents, last = dotted.split(".")
    obj = cfg
    for p in parents:
        obj = getattr(obj, p)
    setattr(obj, last, value)


def load_dotenv_file(path: Path = Path(".env")) -> None:
    """Read ``.env`` into the environment without overriding variables already set."""
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)


def _device() -> str:
    from runtime.platform import backend  # imports mlx: only when a model has GPU defaults

    return backend()


def load_config(
    config_file: Path | None = None,
    data_dir: Path | None = None,
    model: str | None = None,
    env: dict[str, str] | None = None,
    device: str | None = None,
) -> Config:
    """Resolve the configuration from defaults, per-model settings, file, env and flags.

    ``device`` ("cpu", "cuda", "metal"; default: where MLX computes in this process) picks the
    per-model settings for a GPU, which train more per cycle than the CPU's."""
    env = dict(os.environ if env is None else env)
    cfg = Config()
    if "SLEEPBOT_DATA_DIR" in env:
        cfg.data_dir = Path(env["SLEEPBOT_DATA_DIR"])
    if data_dir is not None:
        cfg.data_dir = Path(data_dir)
    file_values: dict[str, Any] = {}
    path = config_file or Path(env.get("SLEEPBOT_CONFIG", cfg.data_dir / "config.toml"))
    if config_file is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.is_file():
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    chosen_model = model or env.get("SLEEPBOT_MODEL") or file_values.get("model", cfg.model)
    if not isinstance(chosen_model, str) or not chosen_model.strip():
        raise ConfigError(f"{path}: 'model' must be a model name or path, not {chosen_model!r}")
    for key in (chosen_model, Path(chosen_model).name):
        if key in MODEL_DEFAULTS:
            _apply(cfg, MODEL_DEFAULTS[key], f"defaults for {key}")
            if key in ACCELERATOR_DEFAULTS and (device or _device()) != "cpu":
                _apply(cfg, ACCELERATOR_DEFAULTS[key], f"GPU defaults for {key}")
            break
    _apply(cfg, file_values, str(path))
    for var, (dotted, kind) in _ENV.items():
        if var in env and env[var] != "":
            try:
                set_path(cfg, dotted, kind(env[var]))
            except ValueError as exc:
                raise ConfigError(f"{var}={env[var]!r}: {exc}") from exc
    if data_dir is not None:
        cfg.data_dir = Path(data_dir)
    cfg.model = chosen_model
    problem = first_problem(cfg)
    if problem is not None:  # every setting is checked here, not when something first uses it
        dotted, why, value = problem
        origin = _origin(dotted, env, file_values, path)
        got = "" if origin.startswith("SLEEPBOT_") else f" (got {value!r})"
        raise ConfigError(f"{origin}: {dotted} {why}{got}")
    return cfg


# -- validation -----------------------------------------------------------------------------

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXTRACTION_MODES = ("patterns", "model", "both")
GENERAL_METRICS = ("accuracy", "gold_prob")
ANCHOR_ANSWERS = ("written", "base")
COMPUTE_MODES = ("auto", "native", "float32", "bfloat16")
AUTO_ON_OFF = ("auto", "on", "off")


def parse_time_of_day(text: str) -> tuple[int, int]:
    """``"HH:MM"`` (24-hour, local time) as (hour, minute); ValueError otherwise."""
    hour, sep, minute = str(text).strip().partition(":")
    if not (sep and hour.isdigit() and minute.isdigit() and len(minute) == 2):
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    h, m = int(hour), int(minute)
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"not a time of day (HH:MM, 00:00 to 23:59): {text!r}")
    return h, m


def _range(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False):
    def check(value: float) -> str | None:
        if low is not None and (value <= low if low_open else value < low):
            return f"must be {'above' if low_open else 'at least'} {low:g}"
        if high is not None and (value >= high if high_open else value > high):
            return f"must be {'below' if high_open else 'at most'} {high:g}"
        return None
    return check


def _one_of(choices: tuple[str, ...], fold: bool = False):
    def check(value: str) -> str | None:
        ok = (value.upper() if fold else value) in choices
        return None if ok else f"must be one of {', '.join(choices)}"
    return check


def _time_of_day(value: str) -> str | None:
    try:
        parse_time_of_day(value)
    except ValueError:
        return "must be a time of day HH:MM (00:00 to 23:59)"
    return None


def _not_blank(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


# Beyond their types (checked for every setting), what each value may be.
_RULES: dict[str, Any] = {
    "model": _not_blank,
    "log_level": _one_of(LOG_LEVELS, fold=True),
    "compute": _one_of(COMPUTE_MODES),
    "workers_per_gpu": _range(1),
    "sleep.train.compile": _one_of(AUTO_ON_OFF),
    "sleep.train.share_prefix": _one_of(AUTO_ON_OFF),
    "chat.system_prompt": _not_blank,
    "chat.bot_name": _not_blank,
    "chat.max_tokens": _range(1, 100_000),
    "chat.temperature": _range(0, 10),
    "chat.context_tokens": _range(64),
    "chat.summarize_at": _range(0, 1, low_open=True),
    "chat.keep_recent_turns": _range(0),
    "chat.max_message_chars": _range(1),
    "sleep.turn_threshold": _range(1),
    "sleep.replay_ratio": _range(0, 1),
    "sleep.replay_decay": _range(0, 1, low_open=True),
    "sleep.replay_scored": _range(0),
    "sleep.deep_every": _range(0),
    "sleep.tau": _range(0, 1),
    "sleep.tau_base": _range(0, 1),
    "sleep.max_drift": _range(0),
    "sleep.gate_retries": _range(0, 10),
    "sleep.gate_retry_scale": _range(0, 1, low_open=True, high_open=True),
    "sleep.phrasings_per_fact": _range(1),
    "sleep.anchor_pairs": _range(0),
    "sleep.profile_epochs": _range(0),
    "sleep.extraction": _one_of(EXTRACTION_MODES),
    "sleep.general_metric": _one_of(GENERAL_METRICS),
    "sleep.anchor_answers": _one_of(ANCHOR_ANSWERS),
    "sleep.idle_minutes": _range(0),
    "sleep.nightly_time": _time_of_day,
    "sleep.lora.rank": _range(1),
    "sleep.lora.scale": _range(0, low_open=True),
    "sleep.lora.layers": _range(1),
    "sleep.lora.dropout": _range(0, 1, high_open=True),
    "sleep.train.learning_rate": _range(0, 1, low_open=True),
    "sleep.train.epochs": _range(1),
    "sleep.train.batch_size": _range(1),
    "sleep.train.length_pool": _range(0),
    "sleep.train.max_seq_len": _range(16),
    "sleep.train.grad_clip": _range(0),
    "sleep.train.lr_schedule": _one_of(("constant", "cosine")),
    "sleep.train.warmup": _range(0, 1),
    "sleep.train.salient_weight": _range(0, low_open=True),
    "sleep.train.lora_plus_ratio": _range(1),
    "discord.rate_limit_messages": _range(1),
    "discord.rate_limit_seconds": _range(0, low_open=True),
    "discord.edit_interval": _range(0, low_open=True),
    "discord.refused_seconds": _range(0),
    "discord.confirm_seconds": _range(0, low_open=True),
    "discord.interaction_seconds": _range(0, low_open=True),
    "cluster.workers": _range(0, 1024),  # 0: auto
    "cluster.lease_seconds": _range(0, low_open=True),
    "cluster.max_attempts": _range(1),
    "cluster.object_store_mb": _range(80),
}


def _type_problem(value: Any, default: Any) -> str | None:
    """Whether ``value`` has the type of the field's default (bool is not an int here)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "must be a whole number"
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "must be text"
    if isinstance(default, list):  # the Discord id lists
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        return None if ok else "must be a list of ids (whole numbers)"
    return None


def first_problem(cfg: Config) -> tuple[str, str, Any] | None:
    """The first setting with a bad type or value, as (dotted name, what is wrong, value),
    or None when every setting is fine."""
    def walk(obj: Any, defaults: Any, prefix: str):
        for f in dataclasses.fields(obj):
            value, default = getattr(obj, f.name), getattr(defaults, f.name)
            dotted = f"{prefix}{f.name}"
            if dataclasses.is_dataclass(value):
                yield from walk(value, default, f"{dotted}.")
                continue
            yield dotted, value, default

    for dotted, value, default in walk(cfg, Config(), ""):
        if dotted == "sleep.lora.keys":
            ok = value is None or (isinstance(value, list) and value
                                   and all(isinstance(k, str) and k for k in value))
            problem = None if ok else "must be a list of module names"
        else:
            problem = _type_problem(value, default)
        if problem is None and dotted in _RULES:
            problem = _RULES[dotted](value)
        if problem is not None:
            return dotted, problem, value
    return None


def _origin(dotted: str, env: dict[str, str], file_values: dict[str, Any], path: Path) -> str:
    """Where the value of ``dotted`` came from, for the error message."""
    for var, (name, _) in _ENV.items():
        if name == dotted and env.get(var, "") != "":
            return f"{var}={env[var]!r}"
    node: Any = file_values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return "setting"
        node = node[part]
    return str(path)
