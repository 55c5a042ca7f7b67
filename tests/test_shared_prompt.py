"""Shared-prompt passes (ppo.lm.shared_prompt) give what the per-row pass gives, for every policy kind."""

import pytest
import torch
from conftest import make_lm
from test_adapter import perturb
from torch.testing import assert_close

from ppo.adapters.loading import attach
from ppo.lm.hook import adapter_of
from ppo.lm.policy import PolicyWithValue
from ppo.lm.reference import FrozenLM, SameNetwork
from ppo.lm.rollout import encode_prompts
from ppo.lm.shared_prompt import shares_prompts

KINDS = ["none", "lora", "loreft", "direft", "loreft:rank=2,layers=1,first=1,last=2,tied=false"]
PROMPTS = ["a b c", "x", "a b c y z"]  # left padding of 0 to 4 tokens
K, T = 2, 4


def rows(tokenizer, seed: int = 0):
    """Each prompt twice (k = 2), then T random response tokens, the second answer of each prompt cut short."""
    ids, mask = encode_prompts(tokenizer, [p for p in PROMPTS for _ in range(K)], torch.device("cpu"))
    response = torch.randint(2, 25, (len(ids), T), generator=torch.Generator().manual_seed(seed))
    response_mask = torch.ones_like(response)
    response_mask[1::K, T - 2 :] = 0  # right padding after an early EOS
    return torch.cat([ids, response], 1), torch.cat([mask, response_mask], 1), response_mask.float()


def policy_of(kind: str) -> PolicyWithValue:
    lm = make_lm(layers=3)
    if kind != "none":
        perturb(attach(lm, kind, base="tiny"))
    policy = PolicyWithValue(lm)
    with torch.no_grad():
        policy.value_head.weight.normal_(generator=torch.Generator().manual_seed(2))
    return policy


@pytest.mark.parametrize("kind", KINDS)
def test_log_probs_values_entropy_loss_and_gradients_equal_the_per_row_pass(kind, tokenizer):
    policy, (ids, mask, response_mask) = policy_of(kind), rows(tokenizer)
    assert shares_prompts(policy.lm, ids, mask, K, T)
    params = [p for p in policy.parameters() if p.requires_grad]
    results = []
    for group in (1, K):
        policy.zero_grad(set_to_none=True)
        logprobs, values, ent = policy.logprobs_and_values(ids, mask, T, 0.7, with_entropy=True, group=group)
        loss = -(logprobs * response_mask).sum() + (values * response_mask).square().sum()
        loss.backward()
        results.append((logprobs * response_mask, values * response_mask, ent * response_mask, loss.detach()))
        results[-1] += tuple(p.grad.clone() for p in params)
    for per_row, shared in zip(*results):  # float sums in another order: gradients of k rows meet in their prompt
        assert_close(shared, per_row, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("kind", ["none", "loreft"])
def test_the_reference_log_probs_equal_the_per_row_pass(kind, tokenizer):
    policy, (ids, mask, response_mask) = policy_of(kind), rows(tokenizer)
    adapter = adapter_of(policy.lm)
    reference = FrozenLM(policy.lm) if adapter is None else SameNetwork(policy.lm, adapter.frozen_copy())
    with torch.no_grad():
        per_row, shared = (reference.logprobs(ids, mask, T, 1.0, group=g) * response_mask for g in (1, K))
    assert_close(shared, per_row, atol=2e-5, rtol=1e-4)


def test_rows_whose_prompts_differ_take_the_per_row_pass(tokenizer):
    policy, (ids, mask, _) = policy_of("none"), rows(tokenizer)
    moved = ids.roll(1, 0), mask.roll(1, 0)  # blocks of two prompts each
    assert not shares_prompts(policy.lm, *moved, K, T)
    assert not shares_prompts(policy.lm, ids[:5], mask[:5], K, T)  # not whole blocks
    assert not shares_prompts(policy.lm, ids, mask, 1, T)
    with torch.no_grad():
        per_row = policy.logprobs_and_values(*moved, T, 1.0)[0]
        fallback = policy.logprobs_and_values(*moved, T, 1.0, group=K)[0]
    assert torch.equal(fallback, per_row)
