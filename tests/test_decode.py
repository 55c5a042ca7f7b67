"""The lean sampling loop computes what a plain forward pass computes, and samples what generate samples."""

import pytest
import torch
from conftest import make_lm
from torch.testing import assert_close
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from ppo.lm import decode
from ppo.lm.rollout import encode_prompts, sample

PROMPTS = ["a b c", "x", "a b c", "y z", "x"]  # different lengths (left padding) and repeats (prefix sharing)


def test_logits_at_every_step_equal_a_plain_forward_pass(lm, tokenizer):
    ids, mask = encode_prompts(tokenizer, PROMPTS, torch.device("cpu"))
    torch.manual_seed(0)
    out = decode.generate(lm, ids, mask, 5, [0], 0, temperature=1.0)  # (B, P + T)
    P, T = ids.shape[1], out.shape[1] - ids.shape[1]
    full_mask = torch.cat([mask, torch.ones(len(PROMPTS), T, dtype=torch.long)], 1)
    reference = lm(out, attention_mask=full_mask, position_ids=(full_mask.cumsum(-1) - 1).clamp(min=0)).logits
    cache = decode.StaticCache(lm, len(PROMPTS), P + T, "cpu", torch.float32)
    key_mask = full_mask.bool()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        got = [decode.forward(lm, ids, positions, key_mask[:, :P], cache, 0)]
        for t in range(T - 1):
            got.append(
                decode.forward(
                    lm, out[:, P + t : P + t + 1], positions[:, -1:] + 1 + t, key_mask[:, : P + t + 1], cache, P + t
                )
            )
    assert_close(torch.stack(got, 1), reference[:, P - 1 : -1], atol=1e-5, rtol=1e-5)


def test_greedy_tokens_equal_generate(tokenizer):
    lm = make_lm(seed=3, layers=3)
    ids, mask = encode_prompts(tokenizer, PROMPTS, torch.device("cpu"))
    lean = sample(lm, tokenizer, ids, mask, max_new_tokens=8, greedy=True, engine="lean")
    hf = sample(lm, tokenizer, ids, mask, max_new_tokens=8, greedy=True, engine="hf")
    assert torch.equal(lean.input_ids, hf.input_ids) and lean.texts == hf.texts
    assert torch.equal(lean.response_mask, hf.response_mask) and torch.equal(lean.truncated, hf.truncated)


@pytest.mark.parametrize("top_k, top_p", [(0, 1.0), (3, 1.0), (0, 0.6), (4, 0.8)])
def test_top_k_top_p_keep_the_same_tokens_as_transformers(top_k, top_p):
    torch.manual_seed(0)
    logits = torch.randn(6, 40)
    expected = logits / 0.7
    if top_k:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1:
        expected = TopPLogitsWarper(top_p)(None, expected)
    allowed = torch.isfinite(expected)
    draws = torch.stack([decode.next_tokens(logits, 0.7, top_k, top_p, False) for _ in range(3000)], 1)  # (6, n)
    for row in range(6):
        seen = torch.zeros(40, dtype=torch.bool)
        seen[draws[row]] = True
        assert not (seen & ~allowed[row]).any()  # never a token transformers cuts
        freq = torch.bincount(draws[row], minlength=40).float() / draws.shape[1]
        assert (freq - expected[row].softmax(-1)).abs().max() < 0.04  # and the kept ones at their odds


def test_a_model_without_the_llama_layout_falls_back_to_generate(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    assert decode.supports(make_lm()) and not decode.supports(
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2))
    )
    with pytest.raises(ValueError, match="engine"):
        sample(make_lm(), tokenizer, *encode_prompts(tokenizer, ["a"], torch.device("cpu")), 2, engine="fast")


def test_rows_that_finish_leave_the_batch_and_the_tokens_stay_those_of_generate(tokenizer):
    lm = make_lm(seed=5, layers=3)  # its greedy answers end after 7, 12, 12, 7, 2, 12, 12 and 5 tokens
    prompts = ["a b c", "x", "y z", "b c a", "z", "c", "x y z", "a"]
    ids, mask = encode_prompts(tokenizer, prompts, torch.device("cpu"))
    kept, real = [], decode.StaticCache.keep
    decode.StaticCache.keep = lambda self, rows: kept.append(int(rows.sum())) or real(self, rows)
    try:
        lean = sample(lm, tokenizer, ids, mask, max_new_tokens=12, greedy=True, engine="lean")
    finally:
        decode.StaticCache.keep = real
    hf = sample(lm, tokenizer, ids, mask, max_new_tokens=12, greedy=True, engine="hf")
    assert kept == [4]  # after step 7, four of the eight rows had ended: they left the batch
    assert torch.equal(lean.input_ids, hf.input_ids) and lean.texts == hf.texts
    assert torch.equal(lean.response_mask, hf.response_mask)
