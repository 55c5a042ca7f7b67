import pytest
import torch
from conftest import make_lm
from torch.testing import assert_close

from ppo.adapters.loading import load_policy
from ppo.lm.logprobs import lm_logprobs, logprobs_from_hidden, position_ids_from_mask
from ppo.lm.policy import PolicyWithValue
from ppo.lm.reference import frozen_copy


def full_logprobs(lm, ids, T, temperature=1.0):
    """The plain way: full logits, full log-softmax, gather (no padding in `ids`)."""
    logits = lm(ids).logits[:, -T - 1 : -1] / temperature  # (B, T, V)
    return torch.log_softmax(logits, -1).gather(-1, ids[:, -T:, None]).squeeze(-1)  # (B, T)


def test_position_ids_skip_left_padding():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 3]]


def test_value_head_starts_at_zero(lm):
    policy = PolicyWithValue(lm)
    ids = torch.randint(1, 20, (2, 6))
    _, values = policy(ids, torch.ones_like(ids), response_len=3)
    assert values.shape == (2, 3)
    assert (values == 0).all()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_logprobs_equal_full_log_softmax(lm, temperature):
    ids = torch.randint(1, 20, (3, 9))
    got = lm_logprobs(lm, ids, torch.ones_like(ids), 5, temperature)
    assert_close(got, full_logprobs(lm, ids, 5, temperature), atol=1e-5, rtol=1e-5)
    hidden = lm.model(ids).last_hidden_state[:, -6:-1]
    small_chunks, ent = logprobs_from_hidden(hidden, lm.lm_head, ids[:, -5:], temperature, True, chunk_size=2)
    assert_close(small_chunks, got, atol=1e-5, rtol=1e-5)
    p = torch.softmax(lm.lm_head(hidden) / temperature, -1)
    assert_close(ent, -(p * p.log()).sum(-1), atol=1e-5, rtol=1e-5)


def test_left_padded_batch_equals_each_sequence_alone(lm):
    """The left-padding pitfall: padded, batched log-probs must equal running each sequence by itself."""
    policy = PolicyWithValue(lm)
    torch.nn.init.normal_(policy.value_head.weight)  # non-zero values, so they are compared too
    prompts = [[5, 6, 7, 8, 9], [11, 12], [13, 14, 15]]
    responses = [[3, 4, 0], [8, 0, 0], [9, 9, 9]]  # 0 is EOS == pad; row 1 stops early
    resp_lens = [3, 2, 3]
    P, T = 5, 3
    ids = torch.zeros(3, P + T, dtype=torch.long)
    mask = torch.zeros(3, P + T, dtype=torch.long)
    for i, (p, r, n) in enumerate(zip(prompts, responses, resp_lens)):
        ids[i, P - len(p) : P], ids[i, P:] = torch.tensor(p), torch.tensor(r)
        mask[i, P - len(p) : P + n] = 1
    logprobs, values, _ = policy.logprobs_and_values(ids, mask, T, temperature=1.0)
    for i, (p, r, n) in enumerate(zip(prompts, responses, resp_lens)):
        alone = torch.tensor([p + r[:n]])
        lp_alone, v_alone, _ = policy.logprobs_and_values(alone, torch.ones_like(alone), n, temperature=1.0)
        assert_close(logprobs[i, :n], lp_alone[0], atol=1e-5, rtol=1e-4)
        assert_close(values[i, :n], v_alone[0], atol=1e-5, rtol=1e-4)


def test_dropout_is_off():
    policy = PolicyWithValue(make_lm(dropout=0.5)).train()
    ids = torch.randint(1, 20, (2, 8))
    a = policy.logprobs_and_values(ids, torch.ones_like(ids), 4, 1.0)[0]
    b = policy.logprobs_and_values(ids, torch.ones_like(ids), 4, 1.0)[0]
    assert torch.equal(a, b)


def test_frozen_copy_is_frozen_and_equal(lm):
    ref = frozen_copy(lm)
    assert not any(p.requires_grad for p in ref.parameters())
    ids = torch.randint(1, 20, (2, 6))
    assert_close(
        lm_logprobs(ref, ids, torch.ones_like(ids), 3, 1.0), lm_logprobs(lm, ids, torch.ones_like(ids), 3, 1.0)
    )


@pytest.mark.parametrize("critic", ["shared", "separate"])
def test_save_and_load_keep_the_value_head(tmp_path, lm, tokenizer, critic):
    policy = PolicyWithValue(lm, critic=critic)
    torch.nn.init.normal_(policy.value_head.weight)
    if critic == "separate":  # make the critic trunk differ from the policy trunk
        torch.nn.init.normal_(policy.critic_trunk.layers[0].mlp.up_proj.weight)
    policy.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_policy(str(tmp_path), device="cpu")
    assert loaded.critic == critic
    ids = torch.randint(1, 20, (2, 7))
    for a, b in zip(
        policy.logprobs_and_values(ids, torch.ones_like(ids), 3, 1.0)[:2],
        loaded.logprobs_and_values(ids, torch.ones_like(ids), 3, 1.0)[:2],
    ):
        assert_close(a, b)


def test_separate_critic_does_not_touch_policy_trunk(lm):
    policy = PolicyWithValue(lm, critic="separate")
    torch.nn.init.normal_(policy.value_head.weight)
    ids = torch.randint(1, 20, (2, 6))
    _, values = policy(ids, torch.ones_like(ids), 3)
    values.sum().backward()
    assert all(p.grad is None for p in policy.lm.parameters())
    assert any(p.grad is not None for p in policy.critic_trunk.parameters())
    with pytest.raises(ValueError):
        PolicyWithValue(lm, critic="both")


@pytest.mark.parametrize("top_k, top_p", [(0, 0.8), (5, 1.0)])
def test_k1_kl_is_unbiased_under_the_samplers_truncation(tokenizer, top_k, top_p):
    """Sample at T = 0.7 with top-p (or top-k); mean k1 = logpi_old - logpi_ref must estimate the exact
    KL(pi_sampled || pi_ref) of the known next-token distributions. Log-probs of the untruncated policy would not."""
    from conftest import make_lm

    from ppo.lm.rollout import encode_prompts, sample
    from ppo.lm.sampling import truncate

    policy, ref, T, n = PolicyWithValue(make_lm(0)), make_lm(1), 0.7, 6000
    ids, mask = encode_prompts(tokenizer, ["a b"] * n, torch.device("cpu"))
    torch.manual_seed(0)
    s = sample(policy.lm, tokenizer, ids, mask, max_new_tokens=1, temperature=T, top_k=top_k, top_p=top_p)
    with torch.no_grad():
        q = torch.softmax(truncate(policy.lm(ids[:1]).logits[0, -1] / T, top_k, top_p), -1)  # what is sampled
        p = torch.softmax(ref(ids[:1]).logits[0, -1] / T, -1)  # the reference
        exact = (q[q > 0] * (q[q > 0] / p[q > 0]).log()).sum()
        ref_lp = lm_logprobs(ref, s.input_ids, s.attention_mask, 1, T)[:, 0]
        k1 = policy.logprobs_and_values(s.input_ids, s.attention_mask, 1, T, top_k=top_k, top_p=top_p)[0][:, 0] - ref_lp
        naive = policy.logprobs_and_values(s.input_ids, s.attention_mask, 1, T)[0][:, 0] - ref_lp
    se = k1.std() / n**0.5
    assert abs(k1.mean() - exact) < 4 * se
    assert abs(naive.mean() - exact) > 10 * se  # the untruncated log-probs are visibly biased
