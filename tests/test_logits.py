import math

import torch
from torch.testing import assert_close

from ppo.core.logits import entropy, token_logprobs

# One position, two tokens with probabilities 1/4 and 3/4: logits [0, ln 3].
LOGITS = torch.tensor([[[0.0, math.log(3.0)]]])  # (B=1, T=1, V=2)


def test_the_log_prob_of_the_sampled_token_is_its_log_softmax():
    assert_close(token_logprobs(LOGITS, torch.tensor([[1]])), torch.tensor([[math.log(0.75)]]))
    assert_close(token_logprobs(LOGITS, torch.tensor([[0]])), torch.tensor([[math.log(0.25)]]))


def test_entropy_by_hand():
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))  # 0.562335
    assert_close(entropy(LOGITS), torch.tensor([[expected]]))
    assert abs(expected - 0.562335) < 1e-6


def test_a_cut_token_adds_nothing_and_gives_no_nan():
    cut = torch.tensor([[[0.0, float("-inf"), math.log(3.0)]]])  # the middle token cut by top-k / top-p
    assert_close(entropy(cut), entropy(LOGITS))
    assert_close(token_logprobs(cut, torch.tensor([[2]])), torch.tensor([[math.log(0.75)]]))
    only = torch.tensor([[[0.0, float("-inf")]]])
    assert_close(entropy(only), torch.zeros(1, 1))


def test_the_entropy_gradient_flows_through_the_logits():
    logits = LOGITS.clone().requires_grad_(True)
    entropy(logits).sum().backward()
    # dH/dz_i = -p_i (log p_i + H): for p = [1/4, 3/4] the two components are equal and opposite.
    h = entropy(LOGITS).item()
    p = torch.tensor([0.25, 0.75])
    assert_close(logits.grad[0, 0], -p * (p.log() + h))
