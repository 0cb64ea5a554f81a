"""Prompts follow the model's own chat template, not ChatML: a tiny model whose tokenizer uses
a Llama-3-style template (the paper's model family) runs chat, curation, training and a whole
sleep cycle without a single ChatML marker.

    .venv/bin/python -m pytest -q tests/test_chat_templates.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_tiny_model, quick_sleep

# Written here in the shape of Llama 3's template: header tokens around the role, the
# trimmed content, end-of-turn; a generation prompt opens the assistant's header.
LLAMA3_STYLE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)
USER_HEAD = "<|start_header_id|>user<|end_header_id|>\n\n"


@pytest.fixture(scope="module")
def llama3_model_dir(tmp_path_factory, bundled_model_dir) -> Path:
    path = make_tiny_model(tmp_path_factory.mktemp("llama3") / "tiny-llama3", bundled_model_dir)
    tc = json.loads((path / "tokenizer_config.json").read_text())
    tc["chat_template"] = LLAMA3_STYLE
    tc["bos_token"] = "<|endoftext|>"  # SmolLM2's BOS is <|im_start|>: not in this family
    (path / "tokenizer_config.json").write_text(json.dumps(tc))
    return path


@pytest.fixture
def llama3_config(tmp_path, llama3_model_dir):
    from runtime.config import load_config

    cfg = load_config(data_dir=tmp_path / "data", model=str(llama3_model_dir), env={})
    cfg.chat.max_tokens = 8
    return quick_sleep(cfg)


def test_prompts_use_the_models_template(llama3_model_dir) -> None:
    from mlx_lm.tokenizer_utils import load as load_tokenizer

    from runtime.generation import turn_prefix
    from sleep.training import build_example
    from sleep.types import QAPair

    tok = load_tokenizer(llama3_model_dir)
    head = turn_prefix(tok)
    assert head.endswith(USER_HEAD) and "<|im_start|>" not in head
    ex = build_example(tok, "Be brief.", QAPair("Where do I live?", "You live in Ghent."), 256)
    text = tok.decode(ex.ids)
    assert "<|im_start|>" not in text and "<|im_end|>" not in text
    prompt = tok.decode(ex.ids[: ex.prompt_len])
    assert prompt.endswith("Where do I live?<|eot_id|><|start_header_id|>assistant"
                           "<|end_header_id|>\n\n")
    assert tok.decode(ex.ids[ex.prompt_len:]) == "You live in Ghent.<|eot_id|>"


@pytest.mark.asyncio
async def test_a_whole_cycle_on_a_llama3_template(llama3_config) -> None:
    from bot.engine import open_engine
    from bot.orchestrator import Orchestrator
    from sleep.curation import _user_text_sequences

    async with open_engine(llama3_config) as engine:
        seqs = await engine.runtime.run(_user_text_sequences, ["I live in Ghent."])
        tok = engine.runtime.loaded.tokenizer
        (ids, start), = seqs
        assert tok.decode(ids[:start]).endswith(USER_HEAD)
        assert tok.decode(ids[start:]) == "I live in Ghent."
        orch = Orchestrator(engine)
        await orch.start(triggers=False)
        for text in ("My name is Ines.", "I live in Ghent.", "I keep a tortoise called Pebbles."):
            stream = orch.handle_message("ines", text)
            async for _ in stream:
                pass
            assert stream.reply is not None and stream.reply.saved
        report = await orch.run_now("ines")
        await orch.stop()
    assert report is not None and report.status == "accepted", report and report.reason
    assert any("Ghent" in f for f in report.facts)
    assert report.checkpoint == "ines/v0001"
