"""The ablation grids on the SVAMP P-CoT setting (ppo.lab.ablate_svamp): each cell is an arm of the experiment with a
few settings changed and nothing else, the arm's own record is shared, and cells are recorded, resumed and paired
with the first cell on the same test questions."""

import json
import re
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_reproduce import tiny

from ppo.core.kl import AdaptiveKLController
from ppo.lab import ablate_svamp, arms
from ppo.lab.ablate_svamp import cell_path, configurations, grid_cells, run_grid
from ppo.lab.ablate_svamp_config import ADAPTIVE, GRIDS, SvampAblationConfig
from ppo.lab.ablate_svamp_noise import noise_report, noise_text, p_value, points, read_runs, write_noise_report
from ppo.lab.ablate_svamp_report import cell_rows, near_best, pair_rows, run_intervals
from ppo.lab.reproduce import ReproduceConfig, run_reproduce
from ppo.train.cli import command, parse_config


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_every_cell_is_an_arm_with_only_its_own_settings_changed_at_the_same_budget(grid):
    c = ReproduceConfig(runs="")
    cells = GRIDS[grid]
    assert not cells[0].overrides  # the first cell, which the others are paired with, is the experiment's arm
    assert len({cell.name for cell in cells}) == len({cell.slug for cell in cells}) == len(cells)
    for cell in cells:
        base = asdict(arms.arm_config(c, cell.arm, 0, "warm"))
        changed = asdict(arms.arm_config(c, cell.arm, 0, "warm", cell.overrides, f"{grid}-{cell.slug}"))
        differ = {k for k in base if base[k] != changed[k]} - {"output_dir"}
        assert differ == {k for k, v in cell.overrides.items() if base[k] != v}, cell.name
        # the same 48 steps of 16 sampled answers, scored on dev at the same steps
        assert changed["rollout_batch_size"] * changed["samples_per_prompt"] == 16
        assert (changed["steps"], changed["eval_every"], changed["model"]) == (48, 12, "warm")


def test_the_grids_hold_what_the_issue_asks_for():
    settings = {g: [{**asdict(arms.arm_config(ReproduceConfig(runs=""), cell.arm, 0, "w")), **cell.overrides}
                    for cell in GRIDS[g]] for g in GRIDS}  # fmt: skip
    assert sorted(s["kl_coef"] for s in settings["kl"] if not s["adaptive_kl"] and s["kl_estimator"] == "k1") == [
        0.0, 0.01, 0.05, 0.2]  # fmt: skip
    assert [s["kl_estimator"] for s in settings["kl"]].count("k3") == 1
    assert [s["adaptive_kl"] for s in settings["kl"]].count(True) == 1
    assert sorted((s["temperature"], s["top_p"]) for s in settings["sampling"]) == [
        (t, p) for t in (0.7, 1.0, 1.3) for p in (0.9, 1.0)]  # fmt: skip
    group = [s for s in settings["estimators"] if s["samples_per_prompt"] == 4 and s["kl_in"] == "reward"]
    assert sorted(s["advantage"] for s in group) == ["dr_grpo", "gae", "grpo", "rloo"]
    assert all((s["ppo_epochs"], s["kl_estimator"], s["lam"]) == (2, "k1", 1.0) for s in group)  # the reft arm's


def test_the_adaptive_cell_can_move_beta_within_the_budget():
    controller = AdaptiveKLController(0.01, ADAPTIVE["kl_target"], ADAPTIVE["kl_horizon"])
    for _ in range(48):  # the reft arm's KL ran at about 1 nat: twice the target, so beta rises every step
        controller.update(1.0, 16)
    assert controller.value > 0.02  # the default horizon (10,000 sequences) would leave it within 2 % of 0.01


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--grid", "lr"], "--grid"),
        (["--cells", "7"], "--cells takes numbers from 1 to 6 for the kl grid"),
        (["--grid", "estimators", "--cells", "0"], "from 1 to 6 for the estimators grid"),
        (["--seeds", "a"], "--seeds must be"),
    ],
)
def test_bad_settings_are_one_line_errors_before_any_work(argv, words, capsys, tmp_path):
    main = command(lambda argv: ablate_svamp.run_svamp_ablation(parse_config(SvampAblationConfig, argv)))
    with pytest.raises(SystemExit):
        main(["--data-dir", "/no/such/folder", "--record-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_a_grid_records_its_cells_shares_the_arms_record_resumes_and_pairs(tmp_path, monkeypatch):
    c = tiny(tmp_path, runs="")
    first, beta = GRIDS["kl"][0], GRIDS["kl"][2]  # the reft arm itself, and beta = 0.05
    text = run_grid(c, "kl", [first, beta], [0])
    arm = json.loads((tmp_path / "record" / "reft-seed0.json").read_text())  # the experiment's own record
    cell = json.loads(cell_path(c, "kl", beta, 0).read_text())
    assert cell_path(c, "kl", beta, 0).parent == tmp_path / "record" / "ablations" / "kl"
    assert cell["settings"]["kl_coef"] == 0.05 and arm["settings"]["kl_coef"] == c.kl_coef
    assert (cell["overrides"], cell["arm"]) == ({"kl_coef": 0.05}, "reft") and cell["warmup"] == arm["warmup"]
    assert cell["test"]["n"] == arm["test"]["n"] == 10 and [p["samples"] for p in cell["curve"]] == [8, 16]
    assert {row["objective/kl_coef"] for row in cell["training"]} == {0.05}  # the beta of every step, kept
    assert (tmp_path / "runs" / "kl-beta-0.05-seed0" / "metrics.jsonl").is_file()
    assert "| 1 | beta=0.01 (the reft arm) | 0 |" in text and "| 3 | beta=0.05 | 0 |" in text
    assert "| 2 | beta=0.0 | not run |" in text
    rows = {line.split(" | ")[0]: line for line in text.split("Paired")[1].splitlines() if line.startswith("| ")}
    assert rows["| 3"].count("p = ") == 2  # against the first cell and against the warm-up
    assert rows["| 1"].count("p = ") == 1  # the first cell: against the warm-up only
    out = tmp_path / "record" / "ablations" / "kl"
    assert (out / "table.md").read_text() == text and (out / "dev_curves.png").is_file()
    assert (out / "test_top1.png").is_file() and (out / "training.png").is_file()
    # the experiment's report sees the shared arm as its own, and a rerun trains nothing
    assert "| reft | 0 |" in run_reproduce(tiny(tmp_path, runs="reft:0"))
    trained = []

    def fake_run_arm(c, arm, seed, start, train, dev, test, overrides, label):  # a new cell: the recorded ones skipped
        trained.append(label)
        record = {k: v for k, v in cell.items() if k not in ("config", "grid", "cell", "overrides")}
        return {**record, "settings": {**cell["settings"], **overrides}}

    monkeypatch.setattr(arms, "run_arm", fake_run_arm)
    text = run_grid(c, "kl", [first, beta, GRIDS["kl"][1]], [0])
    assert trained == ["kl-beta-0.0"] and "| 2 | beta=0.0 | 0 |" in text
    # the reft arm is the first cell of every grid, and counts once among all the grids' configurations
    assert [(name, [p.name for p in paths]) for name, paths in ablate_svamp.configurations(c)] == [
        ("kl: beta=0.01 (the reft arm)", ["reft-seed0.json"]), ("kl: beta=0.0", ["beta-0.0-seed0.json"]),
        ("kl: beta=0.05", ["beta-0.05-seed0.json"])]  # fmt: skip
    seen = []  # the table when each of two new cells starts: a run of several cells shows each as it lands
    monkeypatch.setattr(
        arms, "run_arm", lambda *args: seen.append((out / "table.md").read_text()) or fake_run_arm(*args)
    )
    run_grid(c, "kl", [GRIDS["kl"][3], GRIDS["kl"][4]], [0])
    assert "| 4 | beta=0.2 | not run |" in seen[0] and "| 4 | beta=0.2 | 0 |" in seen[1]


def test_a_cell_recorded_with_other_settings_is_refused(tmp_path):
    c = tiny(tmp_path, runs="")
    beta = GRIDS["kl"][2]
    path = cell_path(c, "kl", beta, 0)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"config": asdict(c), "arm": "reft", "overrides": {"kl_coef": 0.2}}))
    with pytest.raises(ValueError, match="was made for another cell"):
        run_grid(c, "kl", [beta], [0])
    path.write_text(json.dumps({"config": {**asdict(c), "lr": 1.0}, "arm": "reft", "overrides": beta.overrides}))
    with pytest.raises(ValueError, match=r"other settings \(lr: 1.0\)"):
        run_grid(c, "kl", [beta], [0])
    assert not (tmp_path / "runs").exists()  # refused before any work
    # a record of a cell not asked for is checked too, since the table shows it
    path.write_text(json.dumps({"config": asdict(c), "arm": "reft", "overrides": beta.overrides}))
    other = cell_path(c, "kl", GRIDS["kl"][3], 0)
    other.write_text(json.dumps({"config": asdict(c), "arm": "reft", "overrides": {"kl_coef": 0.3}}))
    with pytest.raises(ValueError, match="beta-0.2-seed0.json was made for another cell"):
        run_grid(c, "kl", [beta], [0])


def test_the_grids_pairs_are_holm_adjusted_within_each_column():
    def rec(right: int) -> dict:
        return {"seed": 0, "warmup": "w", "test": {"correct": [i < right for i in range(8)]}}

    warm = {"fingerprint": "w", "test": {"correct": [False] * 8}}
    rows = [(SimpleNamespace(name="one"), [rec(6)]), (SimpleNamespace(name="two"), [rec(5)])]
    lines = pair_rows(rows, warm, None)
    # against the warm-up: p = 2 / 2**6 = 0.031 and 2 / 2**5 = 0.062; Holm: 2 x 0.031 = 0.062, then max(0.062, 0.062)
    assert "| 1 | one | 0 |  | +75.0 (6 / 0, p = 0.031; Holm 0.062) |" in lines
    # against the first cell, a family of one: two lost the one question one alone got right
    assert "| 2 | two | 0 | -12.5 (0 / 1, p = 1; Holm 1) | +62.5 (5 / 0, p = 0.062; Holm 0.062) |" in lines


def test_every_run_of_a_grid_is_drawn_with_its_wilson_interval_cell_by_cell():
    def rec(seed: int, right: int) -> dict:
        return {"seed": seed, "test": {"correct": [i < right for i in range(20)], "n": 20, "top1": 5.0 * right}}

    rows = [(SimpleNamespace(name="one"), [rec(0, 10), rec(1, 4)]), (SimpleNamespace(name="two"), []),
            (SimpleNamespace(name="three"), [rec(0, 20)])]  # fmt: skip
    points = run_intervals(rows)
    assert [p[0] for p in points] == ["1. one, s0", "1. one, s1", "3. three, s0"]  # a cell not run has no point
    label, top1, low, high = points[0]
    assert top1 == 50.0 and round(low, 1) == 29.9 and round(high, 1) == 70.1  # Wilson, 10 of 20
    _, top1, low, high = points[2]
    assert (top1, high) == (100.0, 100.0) and round(low, 1) == 83.9  # 20 of 20: an interval, not a point


def test_the_noise_report_pools_the_seeds_of_every_configuration_with_two(tmp_path):
    def record(name: str, seed: int, top1: float) -> Path:
        path = tmp_path / f"{name}-seed{seed}.json"
        path.write_text(json.dumps({"seed": seed, "test": {"n": 1000, "top1": top1}}))
        return path

    configs = [("a", [record("a", 0, 18.0), record("a", 1, 16.0)]), ("b", [record("b", 0, 15.0)]),
               ("c", [record("c", 0, 12.0), record("c", 2, 16.0)])]  # fmt: skip
    text = write_noise_report(tmp_path, configs).read_text()  # s^2 = (4 / 2 + 16 / 2) / 2 = 5, 2 degrees of freedom
    assert "each run on the same 1000 test questions" in text
    assert (
        "| a | 18.0 (seed 0) / 16.0 (seed 1) | 2.0 |" in text and "| c | 12.0 (seed 0) / 16.0 (seed 2) | 4.0 |" in text
    )
    assert "| b |" not in text  # one seed: no spread of its own
    # interval: sqrt(5) x sqrt(2 / 7.3778) and sqrt(2 / 0.05064), the chi-square table at df = 2
    assert "pooled: 2.24 points** (2 degrees of freedom; 95 % interval 1.16 to 14.05)" in text
    assert "differ with an SD of 3.16 points" in text  # sqrt(2) x sqrt(5)
    assert "each of the 3 configurations: an SD of 3.00 points (12.0 to 18.0)" in text  # 18, 15, 12
    assert "| 1 against 1 | 17.0 points |" in text  # (4.3027 + 1.0607, Student's t at 2 df) x sqrt(5) x sqrt(2)
    runs = [("a", [(0, 18.0)]), ("b", [(0, 15.0)])]
    assert "the run-to-run spread is unknown" in noise_text(runs, 1000)
    one = noise_text([("a", [(0, 18.4), (1, 15.2), (2, 16.0)])], 1000)  # one configuration, three seeds
    assert "(2 degrees of freedom;" in one and "lowest seed" not in one  # no spread across one configuration


def test_the_noise_report_compares_each_cells_mean_over_seeds_with_its_grids_first(tmp_path):
    def record(name: str, seed: int, top1: float) -> Path:
        path = tmp_path / f"{name}-seed{seed}.json"
        path.write_text(json.dumps({"seed": seed, "test": {"n": 1000, "top1": top1}}))
        return path

    a, b, c = [record("a", 0, 18.0), record("a", 1, 16.0)], [record("b", 0, 15.0)], [record("c", 0, 12.0)]
    c.append(record("c", 2, 16.0))
    configs = [("a", a), ("b", b), ("c", c)]  # pooled: s^2 = 5 at 2 df, as above
    grids = {"g": [("1. a", a), ("2. b", b), ("3. not run", []), ("4. c", c)], "h": [("1. b", b), ("2. a", a)],
             "i": [("1. not run", []), ("2. b", b)]}  # fmt: skip
    text = write_noise_report(tmp_path, configs, grids).read_text()
    # b against a: 15 - 17, se = sqrt(5) sqrt(1 + 1/2) = 2.7386, t = 0.7303; at 2 df p = 1 - t / sqrt(2 + t^2) = 0.541
    # and the interval -2 +- 4.3027 se; c against a: 14 - 17, se = sqrt(5), t = 1.342, p = 0.312. Holm over g's two:
    # 2 x 0.312 = 0.624 for c, and b's 0.541 rises to it (the adjusted p-values keep the raw ones' order)
    # each run's Wilson interval: 180 of 1000 -> (0.18 + 1.92 / 1000) / 1.00384 -+ 1.9525 sqrt(0.1476 / 1000 + 9.6e-7)
    # = 0.1574 to 0.2050
    assert "| 1. a | 0, 1 | 18.0 [15.7, 20.5] / 16.0 [13.9, 18.4] | 17.0 |  |  |" in text
    assert "| 2. b | 0 | 15.0 [12.9, 17.3] | 15.0 | −2.0 [−13.8, +9.8] | 0.54 [0.62] |" in text
    assert "| 4. c | 0, 2 | 12.0 [10.1, 14.2] / 16.0 [13.9, 18.4] | 14.0 | −3.0 [−12.6, +6.6] | 0.31 [0.62] |" in text
    # h is its own family: a against b alone, Holm over one test leaves it as it is
    assert "| 2. a | 0, 1 | 18.0 [15.7, 20.5] / 16.0 [13.9, 18.4] | 17.0 | +2.0 [−9.8, +13.8] | 0.54 [0.54] |" in text
    assert "not run" not in text and "**i**" not in text  # a cell not run has no row; a grid without its first, none
    assert "**g**" in text and "**h**" in text and "(2.24 points, 2 degrees of freedom)" in text
    ps = (0.9951, 0.5, 0.0996, 0.0304, 0.00996, 0.005, 0.0046, 1.2e-6)  # each rounded before its form is chosen
    assert [p_value(p) for p in ps] == ["1", "0.50", "0.10", "0.030", "0.010", "0.0050", "0.0046", "1.2e-6"]
    assert [points(-0.45), points(16.8), points(2, "+")] == ["−0.45", "16.8", "+2.0"]  # a true minus sign
    assert [points(-1e-15, "+"), points(-0.04, "+", 1)] == ["+0.0", "+0.0"]  # never a negative zero
    read: dict = {}
    read_runs(grids["g"], read)
    assert sorted(read) == sorted(a + b + c)  # every record of the grid's cells, each once
    a[0].unlink()  # read again from the same dict, a's record is not read from disk a second time
    runs = [("a", [(0, 18.0), (1, 16.0)]), ("b", [(0, 15.0)]), ("c", [(0, 12.0), (2, 16.0)])]
    assert read_runs(configs, read) == (runs, 1000)
    other = tmp_path / "d-seed0.json"
    other.write_text(json.dumps({"seed": 0, "test": {"n": 500, "top1": 15.0}}))
    with pytest.raises(ValueError, match=r"different sizes \(\[500, 1000\]\)"):
        read_runs([*configs, ("d", [other])], read)


def test_a_grid_run_ends_with_the_report_of_what_all_grids_tell_apart(tmp_path):
    c = SvampAblationConfig(grid="sampling", data_dir="../shared/data/svamp", record_dir=str(tmp_path)).experiment()
    assert "| 2 | T=0.7, top-p=1.0 | not run |" in run_grid(c, "sampling", [], [0])  # nothing to run: the reports
    assert "No configuration has two seeds yet" in (tmp_path / "ablations" / "noise.md").read_text()


def test_near_best_is_the_first_passs_cells_within_three_dev_points_of_its_best():
    def rec(seed: int, dev: float) -> dict:
        return {"seed": seed, "best": {"dev_top1": dev, "samples": 768}, "train_min": 1.0, "training": [],
                "test": {"correct": [True, False], "n": 2, "top1": 50.0, "answered": 100.0}}  # fmt: skip

    rows = [(SimpleNamespace(name="one"), [rec(0, 38.0), rec(1, 45.0)]), (SimpleNamespace(name="two"), []),
            (SimpleNamespace(name="three"), [rec(0, 40.0)]), (SimpleNamespace(name="four"), [rec(0, 36.5)]),
            (SimpleNamespace(name="five"), [rec(0, 37.0)])]  # fmt: skip
    # the best first seed is 40.0: 38.0 and 37.0 are within 3 points, 36.5 is not; seed 1's 45.0 moves nothing
    assert near_best(rows) == [1, 3, 5]
    due = [line.split(" | ")[1] for line in cell_rows(rows) if "(second seed due)" in line]
    assert due == ["three", "five"]  # one already has its second seed; four is 3.5 points below the best
    # dev scores are 100 k / n: 17 and 8 right of 300 are 3 points apart, their floats 3.0000000000000004
    assert near_best([(None, [rec(0, 100 * 17 / 300)]), (None, [rec(0, 100 * 8 / 300)])]) == [1, 2]
    # the first pass is seed 0: a cell run only at seed 1 is neither the best nor near it (32.5 is 3.5 below 36.0)
    assert near_best([(None, [rec(0, 36.0)]), (None, [rec(1, 45.0)]), (None, [rec(0, 32.5)])]) == [1]


def test_near_best_cells_run_once_the_first_pass_is_done_and_are_refused_before(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(ablate_svamp, "run_grid", lambda c, grid, cells, seeds: ran.append((cells, seeds)) or "")
    main = command(lambda argv: ablate_svamp.run_svamp_ablation(parse_config(SvampAblationConfig, argv)))
    argv = ["--grid", "kl", "--cells", "near-best", "--seeds", "1", "--record-dir", str(tmp_path)]
    c = SvampAblationConfig(record_dir=str(tmp_path)).experiment()
    for number, (cell, dev) in enumerate(zip(GRIDS["kl"], (38.0, 40.0, 36.5, 37.0, 30.0, 41.0)), 1):
        if number == 4:
            with pytest.raises(SystemExit):  # cells 4 to 6 not run yet: a one-line error, and nothing run
                main(argv)
            err = capsys.readouterr().err
            assert "needs the kl grid's first pass: cell(s) 4, 5, 6 have no seed-0 record" in err
            assert err.count("\n") == 1
            assert ran == []
        path = cell_path(c, "kl", cell, 0)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"seed": 0, "best": {"dev_top1": dev}, "test": {"n": 1000, "top1": 15.0}}))
    main(argv)
    assert ran == [([GRIDS["kl"][n] for n in (0, 1, 5)], [1])]  # 38.0, 40.0 and 41.0: within 3 points of 41.0


def table_rows(lines: list[str], start: int) -> list[list[str]]:
    """The cells of a Markdown table's rows, from its header at lines[start], without the header and rule."""
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_the_docs_lead_tables_are_noise_mds_and_noise_md_is_what_the_committed_records_give():
    # docs/ablations.md copies each grid's table by hand, under its own cell names: this fails a copy that drifts
    # from the records, or a record that lands without its write-up
    root = Path(__file__).resolve().parents[1]
    c = SvampAblationConfig(grid="kl", data_dir="../shared/data/svamp", record_dir=str(root / "docs/results/svamp"))
    c = c.experiment()
    noise = (root / "docs/results/svamp/ablations/noise.md").read_text()
    assert noise == noise_report(configurations(c), grid_cells(c))
    lines = noise.splitlines()
    by_grid = {lines[i - 2].strip("*"): table_rows(lines, i) for i, line in enumerate(lines) if "| p [Holm] |" in line}
    docs = (root / "docs/ablations.md").read_text().splitlines()
    header = "| cell | test top-1 by seed, % [95 % interval] | mean | against the reft arm's mean, points"
    starts = [i for i, line in enumerate(docs) if line.startswith(header)]
    grids = [re.findall(r"ablation-runs\.md#the-(\w+)-grid", "\n".join(docs[:i]))[-1] for i in starts]
    assert sorted(grids) == sorted(GRIDS) == sorted(by_grid)
    pooled = re.search(r"pooled: ([\d.]+) points\*\* \((\d+) degrees", noise).groups()
    assert "pooled SD, {} points on {} degrees of freedom".format(*pooled) in " ".join(docs)
    for grid, start in zip(grids, starts):
        rows = table_rows(docs, start)
        assert [row[0].split(".")[0] for row in rows] == [row[0].split(".")[0] for row in by_grid[grid]], grid
        for row, cell in zip(rows, by_grid[grid]):  # the docs' name has every setting the cell's names
            mine, docs_name = name_keys(cell[0].split(". ", 1)[1]), iter(name_keys(row[0].split(". ", 1)[1]))
            assert all(key in docs_name for key in mine), (row[0], cell[0])
        assert [row[1:] for row in rows] == [row[2:] for row in by_grid[grid]], grid  # noise.md adds the seeds


def name_keys(name: str) -> list:
    """The settings a cell's name holds, in order: its estimator, k3, adaptive, and its numbers, as floats."""
    name = name.lower().replace("dr. grpo", "dr_grpo")
    keys = re.findall(r"dr_grpo|grpo|rloo|gae|k3|adaptive|\d+(?:\.\d+)?", name)
    return [key if key.isalpha() or "_" in key or key == "k3" else float(key) for key in keys]
