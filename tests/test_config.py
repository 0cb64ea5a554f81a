"""Configuration (runtime/config.py): the paper's defaults, then TOML file, env and flag overrides.

    export LD_PRELOAD=/lib/x86_64-linux-gnu/libopenblas.so.0
    .venv/bin/python -m pytest -q tests/test_config.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.config import BUNDLED_MODEL, Config, ConfigError, load_config


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("make", [Config, None], ids=["dataclass", "load_config"])
def test_defaults_are_the_papers(tmp_path, make):
    # The paper's values are the defaults of any model without measured settings of its own.
    cfg = make() if make else load_config(data_dir=tmp_path, model="some/model-dir", env={})
    lora, train, sleep, chat = cfg.sleep.lora, cfg.sleep.train, cfg.sleep, cfg.chat
    assert (lora.rank, lora.scale, lora.layers) == (16, 2.0, 8)  # alpha 32 / rank 16
    assert train.learning_rate == 1e-4
    assert (train.epochs, train.batch_size) == (1, 1)
    assert (sleep.replay_ratio, sleep.replay_decay) == (0.2, 0.85)
    assert sleep.deep_every == 5
    assert sleep.turn_threshold == 10
    assert chat.summarize_at == 0.8
    assert cfg.model == (BUNDLED_MODEL if make else "some/model-dir")
    assert "remember" in chat.system_prompt  # ../shared/LESSONS.md: it must believe it remembers


def test_toml_file_overrides_defaults(tmp_path):
    write_toml(tmp_path / "config.toml", """
model = "some/dir"
[chat]
max_tokens = 64
context_tokens = 1024
[sleep]
replay_ratio = 0.3
tau = 1
[sleep.lora]
rank = 8
[sleep.train]
learning_rate = 5e-5
""")
    cfg = load_config(data_dir=tmp_path, env={})
    assert cfg.model == "some/dir"
    assert (cfg.chat.max_tokens, cfg.chat.context_tokens) == (64, 1024)
    assert cfg.sleep.replay_ratio == 0.3
    assert cfg.sleep.tau == 1.0 and isinstance(cfg.sleep.tau, float)  # int widened to float
    assert cfg.sleep.lora.rank == 8 and cfg.sleep.lora.scale == 2.0  # siblings untouched
    assert cfg.sleep.train.learning_rate == 5e-5
    assert cfg.chat.summarize_at == 0.8


def test_explicit_config_file_and_sleepbot_config(tmp_path):
    explicit = write_toml(tmp_path / "elsewhere" / "my.toml", "[chat]\nmax_tokens = 12\n")
    assert load_config(explicit, data_dir=tmp_path, env={}).chat.max_tokens == 12
    env = {"SLEEPBOT_CONFIG": str(explicit)}
    assert load_config(data_dir=tmp_path, env=env).chat.max_tokens == 12
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", data_dir=tmp_path, env={})


def test_env_overrides_file_and_flags_override_env(tmp_path):
    write_toml(tmp_path / "config.toml", """
model = "from-file"
[chat]
max_tokens = 64
[sleep]
turn_threshold = 20
""")
    env = {"SLEEPBOT_MAX_TOKENS": "32", "SLEEPBOT_LORA_RANK": "4", "SLEEPBOT_TAU": "0.75",
           "SLEEPBOT_MODEL": "from-env", "SLEEPBOT_TURN_THRESHOLD": ""}
    cfg = load_config(data_dir=tmp_path, env=env)
    assert cfg.chat.max_tokens == 32
    assert cfg.sleep.lora.rank == 4
    assert cfg.sleep.tau == 0.75
    assert cfg.model == "from-env"
    assert cfg.sleep.turn_threshold == 20  # an empty variable does not override
    assert load_config(data_dir=tmp_path, model="from-flag", env=env).model == "from-flag"


def test_data_dir_from_env_and_flag(tmp_path):
    write_toml(tmp_path / "env-dir" / "config.toml", "[chat]\nmax_tokens = 7\n")
    cfg = load_config(env={"SLEEPBOT_DATA_DIR": str(tmp_path / "env-dir")})
    assert cfg.data_dir == tmp_path / "env-dir"
    assert cfg.chat.max_tokens == 7  # the config file is found in the env's data dir
    cfg = load_config(data_dir=tmp_path / "flag-dir",
                      env={"SLEEPBOT_DATA_DIR": str(tmp_path / "env-dir")})
    assert cfg.data_dir == tmp_path / "flag-dir"
    assert cfg.chat.max_tokens == 256


@pytest.mark.parametrize("text,key", [
    ("colour = 'blue'\n", "colour"),
    ("[chat]\nmax_token = 3\n", "max_token"),
    ("[sleep.lora]\nalpha = 32\n", "alpha"),
    ("[nonsense]\nx = 1\n", "nonsense"),
])
def test_unknown_key_is_an_error(tmp_path, text, key):
    path = write_toml(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError, match=f"unknown setting '{key}'") as err:
        load_config(data_dir=tmp_path, env={})
    assert str(path) in str(err.value)


def test_scalar_for_a_table_is_an_error(tmp_path):
    write_toml(tmp_path / "config.toml", "sleep = 3\n")
    with pytest.raises(ConfigError, match="'sleep' must be a table"):
        load_config(data_dir=tmp_path, env={})


def test_bad_toml_is_an_error(tmp_path):
    write_toml(tmp_path / "config.toml", "[chat\nmax_tokens = \n")
    with pytest.raises(ConfigError, match="config.toml"):
        load_config(data_dir=tmp_path, env={})


@pytest.mark.parametrize("var,value", [
    ("SLEEPBOT_MAX_TOKENS", "lots"),
    ("SLEEPBOT_TEMPERATURE", "warm"),
    ("SLEEPBOT_LORA_RANK", "1.5"),
])
def test_bad_env_value_is_an_error(tmp_path, var, value):
    with pytest.raises(ConfigError, match=f"{var}={value!r}"):
        load_config(data_dir=tmp_path, env={var: value})


def test_to_dict_is_json(tmp_path):
    cfg = load_config(data_dir=tmp_path, env={})
    out = json.loads(json.dumps(cfg.to_dict()))
    assert out["data_dir"] == str(tmp_path)
    assert out["sleep"]["lora"]["rank"] == 16


def test_bundled_model_has_its_own_measured_sleep_window(tmp_path):
    """The 135M model's settings come from `bench memory` (README, Results), not the paper's."""
    cfg = load_config(data_dir=tmp_path, env={}, device="cpu")
    assert cfg.model == BUNDLED_MODEL
    train = cfg.sleep.train
    assert (train.learning_rate, train.epochs, train.batch_size) == (3e-4, 2, 4)
    # 8 anchors and 21 examples per exchange: the examples 24 more anchors took go to the facts
    assert (cfg.sleep.phrasings_per_fact, cfg.sleep.anchor_pairs) == (4, 8)
    assert (cfg.sleep.train_examples_per_turn, cfg.sleep.max_train_examples) == (21, 1200)
    # replay takes half a cycle once the buffer fills it: earlier facts are lost less often
    assert cfg.sleep.replay_ratio == 0.5
    # the adapter reaches 12 of its 30 blocks (the paper's 8 recalled less: README, Results)
    assert (cfg.sleep.lora.rank, cfg.sleep.lora.scale, cfg.sleep.lora.layers) == (16, 2.0, 12)
    assert cfg.sleep.replay_scored == 128  # replay the most forgotten facts first
    # each fact also said in 4 profiles beside other facts (README, "Knowledge augmentation")
    assert (cfg.sleep.profile_repeats, cfg.sleep.profile_size) == (4, 4)
    assert load_config(data_dir=tmp_path, env={"SLEEPBOT_PROFILE_REPEATS": "0"}
                       ).sleep.profile_repeats == 0
    env_cfg = load_config(data_dir=tmp_path, env={"SLEEPBOT_LEARNING_RATE": "1e-4"})
    assert env_cfg.sleep.train.learning_rate == 1e-4  # the environment still wins


@pytest.mark.parametrize("device", ["cuda", "metal"])
def test_on_a_gpu_the_bundled_model_trains_more_per_cycle(tmp_path, device):
    """A GPU trains a cycle in seconds: 6 phrasings per fact, 48 examples per kept exchange
    for 3 epochs and 4,500 in all, with all 32 anchors (the CPU's 4, 21 for 2, 1,200 and 8
    keep a 10-turn cycle near its minute). Everything else is the CPU's, a file or the
    environment still wins, and a model without GPU settings is unchanged."""
    cpu = load_config(data_dir=tmp_path, env={}, device="cpu")
    gpu = load_config(data_dir=tmp_path, env={}, device=device)
    assert (gpu.sleep.train_examples_per_turn, gpu.sleep.train.epochs) == (48, 3)
    assert (gpu.sleep.phrasings_per_fact, cpu.sleep.phrasings_per_fact) == (6, 4)
    assert (gpu.sleep.max_train_examples, cpu.sleep.max_train_examples) == (4500, 1200)
    assert (gpu.sleep.anchor_pairs, cpu.sleep.anchor_pairs) == (32, 8)
    assert gpu.sleep.train.learning_rate == cpu.sleep.train.learning_rate
    env = {"SLEEPBOT_EPOCHS": "2", "SLEEPBOT_TRAIN_EXAMPLES_PER_TURN": "16"}
    pinned = load_config(data_dir=tmp_path, env=env, device=device)
    assert (pinned.sleep.train_examples_per_turn, pinned.sleep.train.epochs) == (16, 2)
    toml = tmp_path / "c.toml"
    toml.write_text("[sleep.train]\nepochs = 1\n")
    assert load_config(toml, data_dir=tmp_path, env={}, device=device).sleep.train.epochs == 1
    other = load_config(data_dir=tmp_path, model="some/model-dir", env={}, device=device)
    assert other.sleep.train.epochs == load_config(
        data_dir=tmp_path, model="some/model-dir", env={}, device="cpu").sleep.train.epochs


def test_env_example_lists_every_setting_the_environment_can_set():
    from runtime.config import _ENV

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    assert [name for name in _ENV if name not in text] == []


def test_env_example_states_the_bundled_models_defaults():
    """.env.example quotes the bundled model's training defaults; they must not go stale."""
    import re

    from runtime.config import BUNDLED_MODEL, MODEL_DEFAULTS

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    train = MODEL_DEFAULTS[BUNDLED_MODEL]["sleep"]["train"]
    m = re.search(r"lr ([\d.e-]+), (\d+) epochs, batches\s+(?:# )?of (\d+)", text)
    assert m, "the bundled model's defaults are not stated in .env.example"
    assert (float(m[1]), int(m[2]), int(m[3])) == (
        train["learning_rate"], train["epochs"], train["batch_size"])
