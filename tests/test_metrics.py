import math

from ppo.train.metrics import JsonlLogger, all_finite, curve_table, mean_stats, read_jsonl


def test_mean_stats_averages_each_key_over_the_dicts_that_have_it():
    assert mean_stats([{"a": 1.0, "b": 2.0}, {"a": 3.0}]) == {"a": 2.0, "b": 2.0}


def test_all_finite():
    assert all_finite({"a": 1.0, "b": 2}) and not all_finite({"a": math.nan}) and not all_finite({"a": math.inf})


def test_jsonl_round_trip_and_curve_table(tmp_path):
    logger = JsonlLogger(tmp_path / "deep" / "metrics.jsonl")
    for step in (1, 2, 3):
        logger.log({"step": step, "objective/score": step / 10})
    records = read_jsonl(tmp_path / "deep" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]
    table = curve_table(records, ["objective/score", "missing"], every=2).splitlines()
    assert table[0] == "| step | objective/score | missing |"
    assert table[2:] == ["| 1 | 0.1 |  |", "| 3 | 0.3 |  |"]
