import math

import pytest
import torch
from torch.testing import assert_close

from ppo.core.kl import AdaptiveKLController, FixedKLController, kl_estimate, shape_rewards


def test_one_token_values():
    lp, ref = torch.log(torch.tensor([0.9])), torch.log(torch.tensor([0.5]))
    assert kl_estimate(lp, ref, "k1").item() == pytest.approx(0.587787, abs=1e-6)
    assert kl_estimate(lp, ref, "k2").item() == pytest.approx(0.172747, abs=1e-6)
    assert kl_estimate(lp, ref, "k3").item() == pytest.approx(0.143342, abs=1e-6)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_exact_expectation_equals_true_kl(estimator):
    q, p = torch.tensor([0.9, 0.1]), torch.tensor([0.5, 0.5])
    expectation = (q * kl_estimate(q.log(), p.log(), estimator)).sum()
    assert expectation.item() == pytest.approx(0.368064, abs=1e-6)
    assert expectation.item() == pytest.approx((q * (q / p).log()).sum().item(), abs=1e-6)


def test_k3_is_never_negative_and_zero_for_equal_models():
    delta = torch.linspace(-5, 5, 101)
    assert (kl_estimate(delta, torch.zeros(101), "k3") >= 0).all()
    for est in ["k1", "k2", "k3"]:
        assert_close(kl_estimate(torch.full((3,), -1.3), torch.full((3,), -1.3), est), torch.zeros(3))
    with pytest.raises(ValueError):
        kl_estimate(delta, delta, "k4")


def test_shape_rewards_puts_score_on_last_valid_token():
    scores = torch.tensor([1.0, 0.1])
    kl = torch.tensor([[0.2, 0.4, 0.6], [1.0, 2.0, 3.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    rewards = shape_rewards(scores, kl, mask, kl_coef=0.5)
    assert_close(rewards, torch.tensor([[-0.1, -0.2, -0.3 + 1.0], [-0.5, -1.0 + 0.1, 0.0]]))


def test_fixed_controller_never_moves():
    ctl = FixedKLController(0.05)
    ctl.update(current_kl=100.0, n_steps=32)
    assert ctl.value == 0.05


def test_adaptive_controller_follows_ziegler():
    ctl = AdaptiveKLController(0.1, target=6.0, horizon=10000)
    ctl.update(current_kl=9.0, n_steps=100)  # error = 0.5 clipped to 0.2
    assert ctl.value == pytest.approx(0.1 * (1 + 0.2 * 100 / 10000))
    ctl.update(current_kl=5.4, n_steps=100)  # error = -0.1
    assert ctl.value == pytest.approx(0.1 * (1 + 0.2 * 0.01) * (1 - 0.1 * 0.01))
    restored = AdaptiveKLController(1.0, 6.0, 10000)
    restored.load_state_dict(ctl.state_dict())
    assert math.isclose(restored.value, ctl.value)
