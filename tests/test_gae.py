import pytest
import torch
from torch.testing import assert_close

from ppo.core.gae import compute_gae, masked_whiten


def slow_gae(rewards, values, gamma, lam):
    """Textbook GAE on one unpadded episode, as an explicit sum: A_t = sum_l (gamma lam)^l delta_{t+l}."""
    T = len(rewards)
    v = list(values) + [0.0]
    deltas = [rewards[t] + gamma * v[t + 1] - v[t] for t in range(T)]
    return [sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, T)) for t in range(T)]


def test_worked_example_from_style_guide():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.4, 0.3]])
    mask = torch.ones(1, 3)
    adv, ret = compute_gae(rewards, values, mask, gamma=1.0, lam=0.95)
    assert_close(adv, torch.tensor([[0.43675, 0.565, 0.7]]))
    assert_close(ret, adv + values)


def test_lam_zero_gives_td_errors():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.4, 0.3]])
    adv, _ = compute_gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=0.0)
    assert_close(adv, torch.tensor([[-0.1, -0.1, 0.7]]))


def test_terminal_value_is_zero_after_eos_and_padding_is_ignored():
    # Row 0 ends after 2 tokens; garbage rewards/values on its padding must not leak in.
    rewards = torch.tensor([[0.0, 1.0, 5.0, 7.0], [0.0, 0.0, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.6, 9.0, 9.0], [0.1, 0.2, 0.3, 0.4]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    adv, ret = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    for row, n in enumerate([2, 4]):
        expected = slow_gae(rewards[row, :n].tolist(), values[row, :n].tolist(), 0.9, 0.8)
        assert_close(adv[row, :n], torch.tensor(expected))
    assert (adv[0, 2:] == 0).all() and (ret[0, 2:] == 0).all()


def test_matches_slow_reference_on_random_batch():
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(5, 9, generator=g), torch.randn(5, 9, generator=g)
    lengths = [9, 1, 4, 7, 3]
    mask = torch.tensor([[1.0] * n + [0.0] * (9 - n) for n in lengths])
    adv, _ = compute_gae(rewards, values, mask, gamma=0.99, lam=0.95)
    for row, n in enumerate(lengths):
        expected = slow_gae(rewards[row, :n].tolist(), values[row, :n].tolist(), 0.99, 0.95)
        assert_close(adv[row, :n], torch.tensor(expected))


def test_whiten_uses_valid_tokens_only():
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, -50.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    w = masked_whiten(x, mask)
    valid = torch.tensor([1.0, 2.0, 3.0, 4.0])
    expected = (valid - valid.mean()) / valid.std()  # unbiased std, as the original
    assert_close(w[:, :2].flatten(), expected, atol=1e-6, rtol=1e-5)
    assert (w[:, 2] == 0).all()


@pytest.mark.parametrize("n_valid", [0, 1])
def test_whiten_guards_zero_or_one_valid_token(n_valid):
    x = torch.tensor([[5.0, 3.0]])
    mask = torch.tensor([[1.0, 0.0]]) if n_valid else torch.zeros(1, 2)
    w = masked_whiten(x, mask)
    assert torch.isfinite(w).all()
    assert_close(w, torch.zeros(1, 2))
