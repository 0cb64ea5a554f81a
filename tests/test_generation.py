"""Generation: batches run the prompts' shared start once and change no answer; a reply that
loops stops after one copy of the loop."""

from __future__ import annotations

from runtime.generation import (
    LOOP_MIN,
    complete,
    complete_batch,
    loop_keep,
    loop_period,
    shared_prefix_len,
    stream_reply,
)


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


# --- loops: a greedy small model repeating itself to max_tokens ---------------------------

DOT = 0  # the sentence-ending token in the integer sequences below


def _ends(token: int) -> bool:
    return token == DOT


def test_a_long_block_repeated_twice_is_a_loop_a_short_one_needs_three_copies():
    long_block = [1, 2, 3, 4, 5, 6, 7, DOT]  # LOOP_LONG tokens
    assert loop_period([9] + long_block * 2) == len(long_block)
    assert loop_period([9] + long_block + long_block[:-1]) == 0  # the second copy unfinished
    short = [1, 2, 3, 4, DOT]
    assert loop_period([9] + short * 2) == 0  # "yes, yes": emphasis, not yet a loop
    assert loop_period([9] + short * 3) == len(short)
    # Blocks under LOOP_MIN tokens ("ha ha") count only through a multiple of them.
    assert loop_period([1, 2] * 5) == 0
    assert loop_period([1, 2] * 6) == 4
    assert loop_period([5] * 9) == LOOP_MIN  # one token over and over
    assert loop_period(list(range(1, 200))) == 0
    assert loop_period([]) == 0


def test_the_cut_keeps_one_copy_and_ends_at_a_sentence_end():
    prefix, block = [20, 21, DOT], [1, 2, 3, 4, 5, 6, 7, DOT]
    ids = prefix + block * 2
    assert loop_keep(ids, loop_period(ids), _ends) == len(prefix + block)
    # The repeating block seen rotated ("She's X. She's X. She's"): the cut still falls after a
    # whole copy, at the sentence end that closes it.
    rotated = prefix + block + block + block[:3]
    period = loop_period(rotated)
    assert period == len(block)
    assert loop_keep(rotated, period, _ends) == len(prefix + block)
    # No sentence end inside: right after the first copy.
    plain = [20, 21] + [1, 2, 3, 4, 5, 6, 7, 8] * 2
    assert loop_keep(plain, loop_period(plain), _ends) == 10


def test_a_looping_reply_stops_after_one_copy_and_what_is_yielded_is_the_reply(tiny_runtime):
    """The tiny random model loops at once; the cut reply is the start of the uncut one."""
    messages = [{"role": "user", "content": "Tell me about my sister."}]
    full = tiny_runtime.call(complete, None, None, messages, 64, 0.0, False)
    pieces: list[str] = []

    def collect(ctx):
        gen = stream_reply(ctx, None, None, messages, 64)
        while True:
            try:
                pieces.append(next(gen))
            except StopIteration as stop:
                return stop.value

    cut = tiny_runtime.call(collect)
    assert full.generation_tokens == 64
    assert cut.generation_tokens < 64  # generation stopped at the loop, not at max_tokens
    assert cut.text and full.text.startswith(cut.text) and len(cut.text) < len(full.text)
    assert "".join(pieces) == cut.text  # nothing shown that the reply does not hold
    ids = tiny_runtime.call(lambda ctx: ctx.tokenizer.encode(cut.text, add_special_tokens=False))
    assert loop_period(ids) == 0
