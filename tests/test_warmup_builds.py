"""Warm-up builds (ppo.lab.warmup_builds): a rebuilt warm-up whose weights differ from the recorded one's is scored
once on dev and test, and the reports pair each run with the build it started from."""

import json
from types import SimpleNamespace

from test_reproduce import tiny

from ppo.lab import arms, warmup_builds
from ppo.lab.ablate_svamp_report import grid_table
from ppo.lab.reproduce_report import table


def test_a_new_build_is_scored_once_before_its_first_arm_and_counted_against_the_record(tmp_path, capsys):
    c = tiny(tmp_path, runs="")
    train, dev, test = arms.splits(c)
    start = warmup_builds.warmup(c, train, dev, test)
    path = tmp_path / "record" / "warmup.json"
    recorded = json.loads(path.read_text())
    assert recorded["fingerprint"] == start["fingerprint"]
    warmup_builds.record_build(c, start, dev, test)  # warmup.json's own build: nothing to score
    assert not (tmp_path / "record" / "warmup-builds").exists()
    # pretend the record came from other bits, whose first dev answer differed
    recorded["fingerprint"], recorded["dev"]["answers"][0] = "0" * 16, "not an answer"
    path.write_text(json.dumps(recorded))
    capsys.readouterr()
    assert warmup_builds.warmup(c, train, dev, test) == start
    assert "not the recorded warm-up's (0000000000000000)" in capsys.readouterr().out
    assert not (tmp_path / "record" / "warmup-builds").exists()  # scored only when an arm starts from it
    warmup_builds.record_build(c, start, dev, test)
    build = json.loads(warmup_builds.build_path(c.record_dir, start["fingerprint"]).read_text())
    assert build["fingerprint"] == start["fingerprint"] and build["machine"]
    assert build["same_answers"] == {"dev": len(dev) - 1, "test": len(test)}
    assert build["test"]["n"] == len(test) and len(build["dev"]["correct"]) == len(dev)
    assert json.loads(path.read_text()) == recorded  # the record itself is left alone
    out = capsys.readouterr().out
    assert f"on {len(dev) - 1} / {len(dev)} dev and {len(test)} / {len(test)} test questions" in out
    warmup_builds.record_build(c, start, dev, test)  # a build already scored is not scored again
    assert "scoring" not in capsys.readouterr().out


def build_records(tmp_path) -> dict:
    """warmup.json's record (build f: one of four right) and build g's (three right), g's written in tmp_path."""
    warm = {"fingerprint": "f", "train_min": 2.0, "dev": {"top1": 40.0, "n": 4},
            "test": {"n": 4, "answered": 75.0, "correct": [True, False, False, False]}}  # fmt: skip
    g = {"fingerprint": "g", "dev": {"n": 4}, "test": {"n": 4, "correct": [True, True, True, False]},
         "same_answers": {"dev": 3, "test": 2}}  # fmt: skip
    path = warmup_builds.build_path(tmp_path, "g")
    path.parent.mkdir()
    path.write_text(json.dumps(g))
    return warm


def run(seed: int, warmup: str, correct: list[bool]) -> dict:
    test = {"n": 4, "answered": 100.0, "top1": 25.0 * sum(correct), "correct": correct}
    return {"arm": "reft", "seed": seed, "warmup": warmup, "best": {"dev_top1": 50.0, "samples": 8},
            "train_min": 1.0, "test": test, "training": []}  # fmt: skip


def test_the_experiments_table_pairs_each_run_with_its_own_build(tmp_path):
    warm = build_records(tmp_path)
    runs = [run(0, "f", [True, True, True, False]), run(1, "g", [True, True, True, False]), run(2, "h", [True] * 4)]
    text = table(warm, runs, record_dir=tmp_path)
    assert "| reft | warm-up | 0 | +50.0 | 2 | 0 | 0.5 | 1 |" in text  # against warmup.json, its own build
    assert "| reft | warm-up | 1 | +0.0 | 0 | 0 | 1 | 1 |" in text  # against build g, the same answers
    assert "| reft | warm-up | 2 | +75.0 | 3 | 0 | 0.25 | 0.75 |" in text  # h never scored: warmup.json's; Holm over 3
    note = text.splitlines()[-1]
    assert note.startswith(
        "Note: the runs started from 3 warm-up builds, each paired with its own where it was "
        "scored: f (warmup.json); g (the same answer"
    )
    assert "g (the same answer as warmup.json on 3 / 4 dev and 2 / 4 test questions)" in note
    assert "h (not scored: its runs are paired with warmup.json)" in note
    assert "| reft | warm-up | 1 | +50.0 |" in table(warm, runs)  # without a record folder: warmup.json's record


def test_the_grids_table_pairs_each_cell_with_its_own_build(tmp_path):
    warm = build_records(tmp_path)
    rows = [(SimpleNamespace(name="first"), [run(0, "f", [True, False, True, False])]),
            (SimpleNamespace(name="second"), [run(0, "g", [True, True, True, False])])]  # fmt: skip
    text = grid_table(rows, warm, tmp_path)
    assert "| 1 | first | 0 |  | +25.0 (1 / 0, p = 1; Holm 1) |" in text
    assert "| 2 | second | 0 | +25.0 (1 / 0, p = 1; Holm 1) | +0.0 (0 / 0, p = 1; Holm 1) |" in text
    assert text.startswith("One row a cell: the mean ± spread of test top-1 over its seeds, and the first seed's run")
    assert "Note: the cells started from 2 warm-up builds" in text and "f (warmup.json); g (the same answer" in text
    one = grid_table(rows[:1], warm, tmp_path)
    assert "warm-up builds" not in one


def test_without_a_warmup_record_no_build_is_called_warmup_json(tmp_path):
    note = " ".join(warmup_builds.builds_note(tmp_path, {"a", "b"}, None))
    assert "a (not scored" in note and "b (not scored" in note and "(warmup.json)" not in note
