import pytest
import torch
from torch.testing import assert_close

from ppo.lm.logprobs import lm_logprobs
from ppo.lm.rollout import encode_prompts, response_mask_from_tokens, sample


def test_response_mask_ends_at_first_eos_inclusive_even_when_pad_is_eos():
    eos = 0
    response = torch.tensor([[5, 6, eos, eos, eos], [5, eos, 7, 8, eos], [5, 6, 7, 8, 9]])
    mask = response_mask_from_tokens(response, [eos])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert response_mask_from_tokens(torch.tensor([[5, 2, 6]]), [0, 2]).tolist() == [[1, 1, 0]]


def test_encode_prompts_left_pads_with_mask_from_lengths(tokenizer):
    ids, mask = encode_prompts(tokenizer, ["a b c", "x"], torch.device("cpu"))
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids[1, 2].item() == tokenizer.convert_tokens_to_ids("x")
    assert ids[1, 0].item() == tokenizer.pad_token_id


def test_sample_shapes_masks_and_texts(lm, tokenizer):
    torch.manual_seed(0)
    ids, mask = encode_prompts(tokenizer, ["a b c", "x", "y z"], torch.device("cpu"))
    s = sample(lm, tokenizer, ids, mask, max_new_tokens=6)
    B, T = 3, s.response_len
    assert s.input_ids.shape == (B, 3 + T) and s.attention_mask.shape == (B, 3 + T)
    assert torch.equal(s.attention_mask[:, 3:].float(), s.response_mask)
    lengths = s.response_mask.sum(1).long()
    for row in range(B):
        tokens = s.input_ids[row, 3 : 3 + lengths[row]].tolist()
        assert (tokens[-1] == 0) != bool(s.truncated[row])  # ends in EOS unless truncated
        assert 0 not in tokens[:-1]  # no EOS before the end
        assert s.texts[row] == tokenizer.decode(tokens, skip_special_tokens=True)


@pytest.mark.parametrize("engine", ["lean", "hf"])
def test_full_length_runs_every_row_to_the_limit_even_when_eos_is_all_but_certain(lm, tokenizer, engine):
    def eos_first(module, args, logits):
        logits[..., 0] += 30.0  # EOS (id 0) almost surely sampled first
        return logits

    lm.lm_head.register_forward_hook(eos_first)
    ids, mask = encode_prompts(tokenizer, ["a b c", "x"], torch.device("cpu"))
    torch.manual_seed(0)
    assert sample(lm, tokenizer, ids, mask, max_new_tokens=5, engine=engine).response_len == 1
    s = sample(lm, tokenizer, ids, mask, max_new_tokens=5, engine=engine, full_length=True)
    assert s.response_mask.tolist() == [[1.0] * 5] * 2 and s.truncated.all()
    assert (s.input_ids[:, 3:] == 0).any() == (engine == "lean")  # lean: EOS is a token; generate holds it back


def test_greedy_sample_follows_the_argmax(lm, tokenizer):
    ids, mask = encode_prompts(tokenizer, ["a b", "c"], torch.device("cpu"))
    s = sample(lm, tokenizer, ids, mask, max_new_tokens=4, greedy=True)
    T = s.response_len
    logprobs = lm_logprobs(lm, s.input_ids, s.attention_mask, T, 1.0)
    # Every chosen token is the most likely one, so its log-prob is the row maximum.
    logits = lm(
        s.input_ids, attention_mask=s.attention_mask, position_ids=(s.attention_mask.cumsum(-1) - 1).clamp(min=0)
    ).logits[:, -T - 1 : -1]
    best = torch.log_softmax(logits, -1).max(-1).values
    assert_close(logprobs * s.response_mask, best * s.response_mask, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("engine", ["lean", "hf"])
def test_sampling_frequencies_match_the_tempered_logprobs(lm, tokenizer, engine):
    """The log-probs used by PPO must be those of the distribution actually sampled (temperature included)."""
    # A hub model's generation_config may switch on knobs that reshape the distribution; they must stay off.
    lm.generation_config.no_repeat_ngram_size, lm.generation_config.top_k = 1, 3
    torch.manual_seed(0)
    n = 4000
    prompt = "a b c x y z the answer is"  # no_repeat_ngram_size = 1 would ban these nine words
    ids, mask = encode_prompts(tokenizer, [prompt] * n, torch.device("cpu"))
    s = sample(lm, tokenizer, ids, mask, max_new_tokens=1, temperature=0.5, engine=engine)
    first = s.input_ids[:, -1]
    freq = torch.bincount(first, minlength=lm.config.vocab_size).float() / n
    hidden = lm.model(ids[:1]).last_hidden_state[:, -1]
    probs = torch.softmax(lm.lm_head(hidden)[0] / 0.5, -1)
    assert (freq - probs).abs().max() < 0.03  # about 4 standard errors at n = 4000
    logprobs = lm_logprobs(lm, s.input_ids[:1], s.attention_mask[:1], 1, 0.5)
    assert_close(logprobs[0, 0].exp(), probs[first[0]], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("engine", ["lean", "hf"])
def test_no_hidden_top_k_default(engine):
    """transformers fills unset sampling knobs with top_k = 50; with top_k = 0 every token must stay reachable."""
    from conftest import make_lm, make_tokenizer

    tokenizer, lm = make_tokenizer(extra_words=175), make_lm(extra_words=175)
    torch.nn.init.normal_(lm.lm_head.weight, std=1e-4)  # a near-uniform next-token distribution, 200 words
    torch.manual_seed(0)
    ids, mask = encode_prompts(tokenizer, ["a"] * 3000, torch.device("cpu"))
    first = sample(lm, tokenizer, ids, mask, max_new_tokens=1, engine=engine).input_ids[:, 1]
    assert first.unique().numel() > 150
    truncated = sample(lm, tokenizer, ids, mask, max_new_tokens=1, top_k=10, engine=engine).input_ids[:, 1]
    assert truncated.unique().numel() <= 10
