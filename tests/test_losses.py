import pytest
import torch
from torch.testing import assert_close

from ppo.core.losses import entropy_bonus, explained_variance, policy_loss, total_loss, value_loss
from ppo.core.masked import aggregate, aggregate_size

EPS = 0.2


def one_token_policy_loss(ratio: float, advantage: float):
    """Loss and d loss / d logprob for a single token with the given ratio and advantage."""
    logprobs = torch.tensor([[torch.log(torch.tensor(ratio)).item()]], requires_grad=True)
    loss, stats = policy_loss(logprobs, torch.zeros(1, 1), torch.tensor([[advantage]]), torch.ones(1, 1), EPS)
    loss.backward()
    return loss.item(), logprobs.grad.item(), stats


# (ratio, advantage, expected loss, expected gradient, clipped?)
# The gradient of -A * ratio w.r.t. logprob is -A * ratio; it is 0 when the clipped term is the max.
QUADRANTS = [
    (1.5, 1.0, -1.2, 0.0, True),  # A > 0, ratio above 1 + eps: clipped, no push further up
    (0.5, 1.0, -0.5, -0.5, False),  # A > 0, ratio below 1 - eps: unclipped, keeps pushing up
    (0.5, -1.0, 0.8, 0.0, True),  # A < 0, ratio below 1 - eps: clipped, no push further down
    (1.5, -1.0, 1.5, 1.5, False),  # A < 0, ratio above 1 + eps: unclipped, keeps pushing down
]


@pytest.mark.parametrize("ratio, adv, loss, grad, clipped", QUADRANTS)
def test_policy_loss_four_quadrants(ratio, adv, loss, grad, clipped):
    got_loss, got_grad, stats = one_token_policy_loss(ratio, adv)
    assert got_loss == pytest.approx(loss, abs=1e-6)
    assert got_grad == pytest.approx(grad, abs=1e-6)
    assert stats["policy/clipfrac"] == (1.0 if clipped else 0.0)


def test_policy_loss_inside_trust_region_is_plain_surrogate():
    loss, grad, stats = one_token_policy_loss(1.1, 2.0)
    assert loss == pytest.approx(-2.2, abs=1e-6) and grad == pytest.approx(-2.2, abs=1e-6)
    assert stats["policy/approx_kl"] == pytest.approx(1.1 - 1 - torch.log(torch.tensor(1.1)).item(), abs=1e-6)


def test_value_loss_worked_example():
    loss, stats = value_loss(torch.ones(1, 1), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(0.32, abs=1e-6)
    assert stats["value/clipfrac"] == 1.0


def test_value_loss_unclipped_when_close():
    loss, stats = value_loss(torch.tensor([[0.1]]), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2)
    assert loss.item() == pytest.approx(0.5 * 0.81, abs=1e-6)
    assert stats["value/clipfrac"] == 0.0


def test_aggregations_differ_as_documented():
    x = torch.tensor([[1.0, 1.0, 1.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert aggregate(x, mask, "seq_mean_token_mean").item() == pytest.approx((1.0 + 4.0) / 2)
    assert aggregate(x, mask, "token_mean").item() == pytest.approx(7.0 / 4)
    with pytest.raises(ValueError):
        aggregate(x, mask, "mean")


@pytest.mark.parametrize("mode", ["seq_mean_token_mean", "token_mean"])
def test_micro_batch_weights_reproduce_the_minibatch_loss(mode):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, generator=g)
    mask = (torch.rand(6, 5, generator=g) > 0.3).float()
    full = aggregate(x, mask, mode)
    parts = sum(
        aggregate(x[s : s + 2], mask[s : s + 2], mode)
        * aggregate_size(mask[s : s + 2], mode)
        / aggregate_size(mask, mode)
        for s in range(0, 6, 2)
    )
    assert_close(parts, full)


def test_explained_variance():
    returns = torch.tensor([[1.0, 2.0, 3.0, 99.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(returns, 2.0), returns, mask) == pytest.approx(0.0)


def test_the_total_loss_is_policy_plus_weighted_value_minus_weighted_entropy():
    # L = L_pi + c_v L_V - c_e H = 1 + 0.5 * 2 - 0.01 * 3
    assert_close(total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), 0.5, 0.01), torch.tensor(1.97))
    assert_close(total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(3.0), 0.0, 0.0), torch.tensor(1.0))


def test_the_entropy_bonus_is_aggregated_over_valid_tokens_only():
    ent = torch.tensor([[1.0, 3.0, 100.0], [2.0, 100.0, 100.0]])  # 100: padding, never counted
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert_close(entropy_bonus(ent, mask, "seq_mean_token_mean"), torch.tensor((2.0 + 2.0) / 2))
    assert_close(entropy_bonus(ent, mask, "token_mean"), torch.tensor(6.0 / 3))
