import math

import pytest
import torch

from ppo.core.verifier import last_token_values, verifier_counts, verifier_loss, verifier_stats


def test_the_score_is_read_at_each_answers_last_valid_token():
    values = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert last_token_values(values, mask).tolist() == [3.0, 5.0, 12.0]
    with pytest.raises(ValueError, match=r"answers \[1\] have no valid token"):
        last_token_values(values, torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]]))


def test_the_loss_is_the_binary_cross_entropy_written_out():
    scores, labels = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0])
    loss, stats = verifier_loss(scores, labels)
    p = [1 / (1 + math.exp(-s)) for s in scores.tolist()]
    by_hand = -(math.log(p[0]) + math.log(1 - p[1]) + math.log(1 - p[2])) / 3
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    assert stats["verifier/accuracy"] == pytest.approx(2 / 3)  # 0.5 > 0 calls a wrong answer right
    assert stats["verifier/p_right"] == pytest.approx(p[0]) and stats["verifier/p_wrong"] == pytest.approx(
        (p[1] + p[2]) / 2
    )


def test_the_gradient_raises_right_answers_and_lowers_wrong_ones():
    scores = torch.zeros(2, requires_grad=True)
    verifier_loss(scores, torch.tensor([1.0, 0.0]))[0].backward()
    assert scores.grad[0] < 0 < scores.grad[1]  # descent moves s_right up and s_wrong down


def test_a_batch_of_one_kind_logs_nan_for_the_other():
    _, stats = verifier_loss(torch.tensor([1.0, 2.0]), torch.tensor([1, 1]))
    assert math.isnan(stats["verifier/p_wrong"]) and stats["verifier/accuracy"] == 1.0


def test_the_stats_of_two_batches_summed_are_the_stats_of_both_together():
    scores, labels = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0]), torch.tensor([1, 0, 0, 1, 1])
    summed = verifier_counts(scores[:2], labels[:2]) + verifier_counts(scores[2:], labels[2:])
    whole = verifier_loss(scores, labels)[1]
    assert verifier_stats(summed) == pytest.approx({k: v for k, v in whole.items() if k != "verifier/loss"})
    assert whole["verifier/accuracy"] == pytest.approx(3 / 5)  # 2 and 1 right-signed on right, -1 on wrong
