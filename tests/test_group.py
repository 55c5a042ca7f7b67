"""The critic-free estimators (ppo.core.group), asymmetric clipping, the constant-normalised loss and the KL as a
loss, on hand-computed numbers."""

import math

import pytest
import torch
from torch.testing import assert_close

from ppo.core.group import (
    dr_grpo_advantages,
    equal_groups,
    group_advantages,
    grpo_advantages,
    per_token,
    rloo_advantages,
)
from ppo.core.losses import kl_loss, policy_loss
from ppo.core.masked import aggregate, aggregate_size

# Two questions, four samples each: one right answer in four, then two right and two partly right.
SCORES = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.1, 1.0, 1.0, 0.1])


def test_grpo_divides_by_the_unbiased_std_of_each_group():
    # group 1: mean 0.25, std sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5; group 2: mean 0.55, std sqrt(4 * 0.45^2 / 3)
    s2 = math.sqrt(4 * 0.45**2 / 3)
    expected = [1.5, -0.5, -0.5, -0.5, -0.45 / s2, 0.45 / s2, 0.45 / s2, -0.45 / s2]
    assert_close(grpo_advantages(SCORES, 4), torch.tensor(expected), atol=1e-5, rtol=1e-5)


def test_rloo_subtracts_the_mean_of_the_other_samples():
    # group 1: 1 - 0 = 1 and 0 - 1/3; group 2: 0.1 - (2.1 / 3) = -0.6 and 1 - (1.2 / 3) = 0.6
    expected = [1.0, -1 / 3, -1 / 3, -1 / 3, -0.6, 0.6, 0.6, -0.6]
    assert_close(rloo_advantages(SCORES, 4), torch.tensor(expected))


def test_dr_grpo_only_centres():
    expected = [0.75, -0.25, -0.25, -0.25, -0.45, 0.45, 0.45, -0.45]
    assert_close(dr_grpo_advantages(SCORES, 4), torch.tensor(expected))


def test_groups_are_consecutive_rows_of_k():
    # k = 2 on the same scores: four groups of two
    assert_close(dr_grpo_advantages(SCORES, 2), torch.tensor([0.5, -0.5, 0.0, 0.0, -0.45, 0.45, 0.45, -0.45]))


@pytest.mark.parametrize("estimator", ["grpo", "rloo", "dr_grpo"])
def test_a_group_of_equal_scores_gets_zero_advantage_and_no_nan(estimator):
    scores = torch.tensor([0.1, 0.1, 0.1, 1.0, 1.0, 1.0])
    advantages = group_advantages(scores, 3, estimator)
    assert torch.isfinite(advantages).all() and torch.equal(advantages, torch.zeros(6))


@pytest.mark.parametrize("estimator", ["grpo", "rloo", "dr_grpo"])
def test_a_group_of_one_or_a_ragged_batch_is_an_error(estimator):
    with pytest.raises(ValueError, match="at least 2 samples per question"):
        group_advantages(SCORES, 1, estimator)
    with pytest.raises(ValueError, match="do not split into groups of 3"):
        group_advantages(SCORES, 3, estimator)


def test_an_unknown_estimator_is_an_error():
    with pytest.raises(ValueError, match="unknown group estimator 'gae'"):
        group_advantages(SCORES, 4, "gae")


def test_equal_groups_counts_the_groups_without_signal():
    assert equal_groups(torch.tensor([1.0, 1.0, 0.0, 1.0, 0.1, 0.1]), 2) == pytest.approx(2 / 3)
    assert equal_groups(SCORES, 4) == 0.0


def test_per_token_puts_the_response_advantage_on_each_valid_token():
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.equal(per_token(torch.tensor([2.0, -1.0]), mask), torch.tensor([[2.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]))


def clip_gradients(ratios, advantages, clip_eps, clip_eps_high):
    """d loss / d logpi for one row of tokens, token_mean: -A * ratio / n where the surrogate is live, else 0."""
    logprobs = torch.log(torch.tensor([ratios])).requires_grad_(True)
    loss, stats = policy_loss(
        logprobs, torch.zeros(1, len(ratios)), torch.tensor([advantages]), torch.ones(1, len(ratios)),
        clip_eps, "token_mean", clip_eps_high,
    )  # fmt: skip
    loss.backward()
    return logprobs.grad[0], stats


# (ratio, advantage) in every quadrant, with the bounds [1 - 0.2, 1 + 0.28]:
QUADRANTS = [
    (1.1, 1.0),  # A > 0, inside: live
    (1.25, 1.0),  # A > 0, above 1.2 but below 1.28: live only with clip-higher
    (1.3, 1.0),  # A > 0, above 1.28: clipped, no push
    (0.7, 1.0),  # A > 0, below 0.8: live (the clip only stops pushing in the advantage's direction)
    (0.7, -1.0),  # A < 0, below 0.8: clipped
    (0.85, -1.0),  # A < 0, inside: live
    (1.3, -1.0),  # A < 0, above 1.28: live
]


@pytest.mark.parametrize(
    "high, live", [(0.28, [1, 1, 0, 1, 0, 1, 1]), (0.2, [1, 0, 0, 1, 0, 1, 1]), (None, [1, 0, 0, 1, 0, 1, 1])]
)
def test_asymmetric_clipping_stops_the_push_only_past_its_own_bound(high, live):
    ratios, advantages = zip(*QUADRANTS)
    grad, stats = clip_gradients(ratios, advantages, 0.2, high)
    expected = torch.tensor([-a * r / len(ratios) * on for (r, a), on in zip(QUADRANTS, live)])
    assert_close(grad, expected)
    assert stats["policy/clipfrac"] == pytest.approx(live.count(0) / len(live))


def test_the_constant_normalised_loss_divides_every_response_by_max_tokens():
    x = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # mean over responses of (token sum / 8): (6 / 8 + 4 / 8) / 2; the per-length mean would be (2 + 4) / 2
    assert aggregate(x, mask, "seq_mean_token_sum_norm", max_tokens=8).item() == pytest.approx(0.625)
    assert aggregate(x, mask, "seq_mean_token_mean").item() == pytest.approx(3.0)
    with pytest.raises(ValueError, match="needs max_tokens"):
        aggregate(x, mask, "seq_mean_token_sum_norm")


def test_the_constant_normalised_loss_accumulates_over_micro_batches_exactly():
    torch.manual_seed(0)
    x, mask = torch.randn(6, 5), (torch.rand(6, 5) > 0.3).float()
    whole = aggregate(x, mask, "seq_mean_token_sum_norm", 7)
    size = aggregate_size(mask, "seq_mean_token_sum_norm")
    parts = sum(
        aggregate(x[i : i + 2], mask[i : i + 2], "seq_mean_token_sum_norm", 7)
        * aggregate_size(mask[i : i + 2], "seq_mean_token_sum_norm") / size
        for i in range(0, 6, 2)
    )  # fmt: skip
    assert_close(parts, whole)


def test_the_kl_loss_is_k3_on_the_current_policy_with_its_gradient():
    # delta = logpi - logpi_ref = 0.5 on one token, -0.2 on another: k3 = exp(-delta) - 1 + delta
    logprobs = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -1.8]])
    loss = kl_loss(logprobs, ref, torch.ones(1, 2), "k3", "token_mean")
    k3 = [math.exp(-0.5) - 1 + 0.5, math.exp(0.2) - 1 - 0.2]
    assert loss.item() == pytest.approx(sum(k3) / 2)
    loss.backward()  # d k3 / d logpi = 1 - exp(-delta)
    assert_close(logprobs.grad, torch.tensor([[(1 - math.exp(-0.5)) / 2, (1 - math.exp(0.2)) / 2]]))


def test_the_kl_penalty_is_centred_in_its_group_and_never_divided_by_the_std():
    from ppo.core.group import with_kl_penalty

    scores, kl = torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.1, 0.3, 0.2, 0.2])
    assert_close(with_kl_penalty(scores, kl, 0.1, 4, "grpo"), torch.tensor([0.01, -0.01, 0.0, 0.0]))
    assert_close(with_kl_penalty(scores, kl, 0.1, 4, "rloo"), torch.tensor([0.01, -0.01, 0.0, 0.0]) * 4 / 3)
    torch.manual_seed(0)  # RLOO and Dr. GRPO are linear: the same as the estimator on the penalised totals
    s, k = torch.rand(8), torch.rand(8)
    for name in ("rloo", "dr_grpo"):
        assert_close(with_kl_penalty(s, k, 0.3, 4, name), group_advantages(s - 0.3 * k, 4, name))
