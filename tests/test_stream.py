"""Continuous batching gives each prompt the answer that decoding it alone gives, and samples the same distribution."""

import pytest
import torch
from conftest import make_lm

from ppo.lm import decode, stream
from ppo.lm.rollout import encode_prompts, sample

PROMPTS = ["a b c", "x", "y z", "b c a", "z", "c", "x y z", "a", "x", "a b c"]  # repeats share a prefill


def ids_of(tokenizer, texts):
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def test_greedy_answers_equal_decoding_each_prompt_alone(tokenizer):
    lm = make_lm(seed=5, layers=3)  # its greedy answers end after 2 to 12 tokens: slots free at different steps
    calls, real = [], stream.prefill
    stream.prefill = lambda model, ids, mask: calls.append(len(ids)) or real(model, ids, mask)
    try:
        got = stream.stream(lm, ids_of(tokenizer, PROMPTS), 12, [0], 0, slots=3, greedy=True)
    finally:
        stream.prefill = real
    assert len(calls) > 1 and sum(calls) == len(PROMPTS)  # prompts entered as slots freed, each once
    for text, answer in zip(PROMPTS, got):
        ids, mask = encode_prompts(tokenizer, [text], torch.device("cpu"))
        alone = sample(lm, tokenizer, ids, mask, max_new_tokens=12, greedy=True, engine="hf")
        n = int(alone.response_mask.sum())
        assert answer == alone.input_ids[0, ids.shape[1] : ids.shape[1] + n].tolist()
    assert any(len(a) == 12 and a[-1] != 0 for a in got) and any(a[-1] == 0 for a in got)  # truncated and ended


def test_more_slots_than_prompts_and_one_slot_give_the_same_answers(tokenizer):
    lm = make_lm(seed=5, layers=3)
    prompts = ids_of(tokenizer, PROMPTS[:4])
    wide = stream.stream(lm, prompts, 9, [0], 0, slots=16, greedy=True)
    assert wide == stream.stream(lm, prompts, 9, [0], 0, slots=1, greedy=True)
    ids, mask = encode_prompts(tokenizer, PROMPTS[:4], torch.device("cpu"))
    batch = decode.generate(lm, ids, mask, 9, [0], 0, greedy=True)[:, ids.shape[1] :]
    for answer, row in zip(wide, batch.tolist()):
        assert answer == row[: len(answer)]


def test_sampled_first_tokens_follow_the_tempered_softmax(tokenizer):
    lm = make_lm(seed=1)
    prompt = ids_of(tokenizer, ["a b"])[0]
    torch.manual_seed(0)
    got = stream.stream(lm, [prompt] * 3000, 1, [0], 0, slots=64, temperature=0.8)
    freq = torch.bincount(torch.tensor([a[0] for a in got]), minlength=lm.config.vocab_size).float() / 3000
    with torch.no_grad():
        expected = (lm(torch.tensor([prompt])).logits[0, -1] / 0.8).softmax(-1)
    assert (freq - expected).abs().max() < 0.04


def test_bad_settings_fail_at_once(tokenizer):
    lm = make_lm()
    assert stream.stream(lm, [], 4, [0], 0, slots=2) == []
    with pytest.raises(ValueError, match="slots"):
        stream.stream(lm, [[1]], 4, [0], 0, slots=0)
    with pytest.raises(ValueError, match="empty prompt"):
        stream.stream(lm, [[1], []], 4, [0], 0, slots=2)
