"""Batch generation: the prompts' shared start is run once and changes no answer."""

from __future__ import annotations

from runtime.generation import complete, complete_batch, shared_prefix_len


def test_shared_prefix_leaves_every_prompt_a_token_of_its_own():
    assert shared_prefix_len([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2  # identical: one token left each
    assert shared_prefix_len([[7], [7]]) == 0
    assert shared_prefix_len([[1, 2], [3, 4]]) == 0
    assert shared_prefix_len([]) == 0


def test_batch_with_a_long_shared_start_answers_like_one_at_a_time(tiny_runtime):
    system = "You are a careful assistant. " * 12  # well over the prefill threshold
    history = [{"role": "user", "content": "My sister is called Marisol."},
               {"role": "assistant", "content": "Nice to meet her."}]
    questions = ["What is my sister's name?", "Where do I live?", "Hi"]
    conversations = [[{"role": "system", "content": system}, *history,
                      {"role": "user", "content": q}] for q in questions]
    batched = tiny_runtime.call(complete_batch, None, None, conversations, 12)
    alone = [tiny_runtime.call(complete, None, None, c, 12).text.strip() for c in conversations]
    assert batched == alone
    assert any(batched)  # the comparison is not between empty strings
