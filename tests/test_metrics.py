import math

import pytest
import torch

from ppo.core.buffer import RolloutBatch
from ppo.core.kl import kl_estimate
from ppo.train.metrics import MetricsLogger, all_finite, curve_table, mean_stats, read_jsonl, rollout_stats


def test_mean_stats_averages_each_key_over_the_dicts_that_have_it():
    assert mean_stats([{"a": 1.0, "b": 2.0}, {"a": 3.0}]) == {"a": 2.0, "b": 2.0}


def test_all_finite():
    assert all_finite({"a": 1.0, "b": 2}) and not all_finite({"a": math.nan}) and not all_finite({"a": math.inf})


def test_jsonl_round_trip_and_curve_table(tmp_path):
    logger = MetricsLogger(tmp_path / "deep" / "metrics.jsonl")
    for step in (1, 2, 3):
        logger.log({"step": step, "objective/score": step / 10})
    records = read_jsonl(tmp_path / "deep" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    table = curve_table(records, ["objective/score", "missing"], every=2).splitlines()
    assert table[0] == "| step | objective/score | missing |"
    assert table[2:] == ["| 1 | 0.1 |  |", "| 3 | 0.3 |  |"]


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows of a log folder: each tag's (step, value) pairs, purged steps left out."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_gets_every_finite_number_under_its_jsonl_name(tmp_path):
    logger = MetricsLogger(tmp_path / "metrics.jsonl", tmp_path / "tb")
    logger.log({"step": 1, "objective/score": 0.25, "value/explained_var": math.nan, "note": "text"})
    logger.log({"step": 2, "objective/score": 0.5, "value/explained_var": 0.75})
    logger.close()
    assert scalars(tmp_path / "tb") == {"objective/score": [(1, 0.25), (2, 0.5)], "value/explained_var": [(2, 0.75)]}


def test_tensorboard_drops_what_a_crashed_try_logged_after_the_resumed_step(tmp_path):
    first = MetricsLogger(tmp_path / "metrics.jsonl", tmp_path / "tb")
    for step in (1, 2, 3):
        first.log({"step": step, "loss": float(step)})
    first.close()
    resumed = MetricsLogger(tmp_path / "metrics.jsonl", tmp_path / "tb", start_step=2)  # checkpoint of step 2
    resumed.log({"step": 3, "loss": 30.0})
    resumed.close()
    assert scalars(tmp_path / "tb") == {"loss": [(1, 1.0), (2, 2.0), (3, 30.0)]}


def test_no_tensorboard_folder_unless_asked(tmp_path):
    MetricsLogger(tmp_path / "metrics.jsonl").log({"step": 1, "loss": 1.0})
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_tensorboard_drops_a_crashed_try_that_never_reached_a_checkpoint(tmp_path):
    first = MetricsLogger(tmp_path / "metrics.jsonl", tmp_path / "tb")
    for step in (1, 2):
        first.log({"step": step, "loss": float(step)})
    first.close()
    again = MetricsLogger(tmp_path / "metrics.jsonl", tmp_path / "tb")  # a fresh start: metrics.jsonl is emptied
    again.log({"step": 1, "loss": 10.0})
    again.close()
    assert scalars(tmp_path / "tb") == {"loss": [(1, 10.0)]}


def test_elapsed_time_goes_on_from_the_step_a_resumed_run_continues_from(tmp_path):
    from ppo.train.checkpoint import truncate_log

    path = tmp_path / "metrics.jsonl"
    first = MetricsLogger(path)
    assert 0.0 <= first.elapsed() <= first.elapsed()
    first.log({"step": 1, "time/elapsed_s": 100.0})
    first.log({"step": 2, "time/elapsed_s": 250.0})  # logged after the checkpoint of step 1: dropped on resume
    truncate_log(path, 1)
    resumed = MetricsLogger(path, start_step=1)
    assert 100.0 <= resumed.elapsed() < 250.0
    assert MetricsLogger(tmp_path / "fresh.jsonl").elapsed() < 100.0


def test_rollout_stats_log_k1_beside_the_estimator_the_reward_used():
    old = torch.tensor([[-1.0, -2.0, -0.5], [-0.2, -0.2, -3.0]])  # (B, T) log-probs of the sampled tokens
    ref = torch.tensor([[-1.5, -1.0, -9.0], [-0.4, -0.2, -1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # the first answer is 2 tokens long
    zeros = torch.zeros(2, 3)
    batch = RolloutBatch(zeros, zeros, mask, old, ref, zeros, torch.zeros(2), zeros, zeros, zeros)
    k3 = kl_estimate(old, ref, "k3") * mask
    stats = rollout_stats(batch, k3, torch.zeros(2, dtype=torch.bool), 0.01, 1.0, critic=False)
    # k1 by sequence: 0.5 - 1.0 = -0.5 (the masked -0.5 + 9.0 left out) and 0.2 + 0 - 2.0 = -1.8; mean -1.15
    assert stats["objective/kl_k1"] == pytest.approx(-1.15)
    assert stats["objective/kl"] == pytest.approx(k3.sum(1).mean().item()) and stats["objective/kl"] > 0
    under_k1 = rollout_stats(batch, kl_estimate(old, ref, "k1") * mask, torch.zeros(2, dtype=torch.bool), 0.01, 1.0)
    assert under_k1["objective/kl"] == under_k1["objective/kl_k1"] == pytest.approx(-1.15)
