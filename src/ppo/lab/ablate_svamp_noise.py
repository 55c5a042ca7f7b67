"""What the SVAMP ablation grids can tell apart: how far runs of one configuration scatter by chance, and so how far
apart two configurations must score before a test on their seeds' mean scores would tell them apart.

Two seeds of one configuration, scored greedily on the same test questions, still differ: the seed changes which
answers are sampled, and so the policy. Every configuration recorded at two seeds or more, in any of the three
grids, gives that run-to-run spread; pooled over them (ppo.tasks.stats.pooled_sd) it is the noise that a cell's
difference from another must clear, beyond the question-level noise that McNemar's test covers. At that SD each
cell's mean over its seeds is then compared with its grid's first cell's (stats.mean_difference): the test of a
setting, where McNemar's test is one of two runs.

    noise_report         the report, from the records
    write_noise_report   record_dir/ablations/noise.md, rewritten after each record a grid run makes
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

from ..tasks.stats import detectable, holm, mean_difference, pooled_sd, sd_interval, wilson_interval

SEEDS_COMPARED = ((1, 1), (1, 2), (2, 2), (3, 3))  # seeds of configuration A against seeds of B
Runs = list[tuple[str, list[tuple[int, float]]]]  # each configuration's name with its (seed, test top-1 %) by seed


def read_runs(configs: list[tuple[str, list[Path]]], read: dict[Path, dict] | None = None) -> tuple[Runs, int]:
    """Each configuration's records -> its (seed, test top-1) by seed, and the number of test questions (0 if
    none). read holds the records already read, by path, and gains those read here."""
    read = {} if read is None else read
    for path in {p for _, paths in configs for p in paths} - read.keys():
        read[path] = json.loads(path.read_text())
    records = [(name, [read[p] for p in paths]) for name, paths in configs]
    if len(sizes := {r["test"]["n"] for _, rs in records for r in rs}) > 1:
        raise ValueError(f"the records were scored on test sets of different sizes ({sorted(sizes)}): not comparable")
    runs = [(name, [(r["seed"], float(r["test"]["top1"])) for r in rs]) for name, rs in records]
    return runs, max(sizes, default=0)


def points(x: float, sign: str = "", digits: int = 2) -> str:
    """x to digits decimals, with a true minus sign and no negative zero; at two decimals less a last zero:
    16.80 -> 16.8, -0.45 -> −0.45, -0.001 -> 0.0."""
    text = format(round(x, digits) + 0.0, f"{sign}.{digits}f")
    return (text[:-1] if digits == 2 and text.endswith("0") else text).replace("-", "−")


def p_value(p: float) -> str:
    """p as the tables print it, by its value once rounded: two decimals from 0.1, three from 0.01, two significant
    digits below (0.0046, 1.2e-6), and 1 from 0.995."""
    if p >= 0.995:
        return "1"
    if round(p, 2) >= 0.1:
        return f"{p:.2f}"
    if round(p, 3) >= 0.01:
        return f"{p:.3f}"
    return re.sub(r"e-0*(\d)", r"e-\1", f"{p:#.2g}")


def against_first(grid: str, cells: Runs, n: int, sd: float, df: int) -> list[str]:
    """One grid's cells (numbered as in its table) by their mean over seeds, each against the first cell's mean:
    every run's test top-1 of n questions with its Wilson interval, the difference of means with its 95 % interval
    and p at the pooled sd, and in brackets p Holm-adjusted over the grid's cells."""
    (_, first_seeds), rest = cells[0], [(name, seeds) for name, seeds in cells[1:] if seeds]
    tests = [mean_difference([t for _, t in seeds], [t for _, t in first_seeds], sd, df) for _, seeds in rest]
    lines = [f"**{grid}**", "", "| cell | seeds | test top-1 by seed, % [95 % interval] | mean | against the first "
             "cell's mean, points [95 % interval] | p [Holm] |", "|---|---|---|---|---|---|"]  # fmt: skip
    for (name, seeds), test, adjusted in zip([cells[0], *rest], [None, *tests], [None, *holm([t["p"] for t in tests])]):
        intervals = [wilson_interval(round(top1 * n / 100), n) for _, top1 in seeds]
        by_seed = " / ".join(
            f"{top1:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" for (_, top1), (lo, hi) in zip(seeds, intervals)
        )
        mean = points(statistics.fmean(t for _, t in seeds))
        versus, ps = "", ""
        if test is not None:
            low, high = (points(test[end], "+", 1) for end in ("low", "high"))
            versus, ps = f"{points(test['diff'], '+')} [{low}, {high}]", f"{p_value(test['p'])} [{p_value(adjusted)}]"
        lines.append(f"| {name} | {', '.join(str(seed) for seed, _ in seeds)} | {by_seed} | {mean} | {versus} | {ps} |")
    return [*lines, ""]


def noise_text(runs: Runs, n: int, grids: dict[str, Runs] | None = None) -> str:
    """The report (Markdown): the configurations with several seeds, the pooled run-to-run SD with its 95 %
    interval, the spread of every configuration's lowest seed, the smallest detectable differences, and, for each
    of grids (name -> its cells, the first the one the others are compared with), its cells' means against the
    first's."""
    repeated = [(name, seeds) for name, seeds in runs if len(seeds) > 1]
    lines = ["# What the ablation grids can tell apart", "",
             f"Rewritten after each record a grid run makes (`ppo.lab.ablate_svamp_noise`). Test top-1 in %, each run "
             f"on the same {n} test questions.", ""]  # fmt: skip
    if not repeated:
        return "\n".join(lines + ["No configuration has two seeds yet: the run-to-run spread is unknown.", ""])
    sd, df = pooled_sd([[top1 for _, top1 in seeds] for _, seeds in repeated])
    low, high = sd_interval(sd, df)
    lines += ["| configuration | test top-1 by seed | largest minus smallest |", "|---|---|---|"]
    for name, seeds in repeated:
        tops = [top1 for _, top1 in seeds]
        by_seed = " / ".join(f"{top1:.1f} (seed {seed})" for seed, top1 in seeds)
        lines.append(f"| {name} | {by_seed} | {max(tops) - min(tops):.1f} |")
    lines += ["", f"- **One run's SD around its configuration's mean, pooled: {sd:.2f} points** ({df} degrees of "
              f"freedom; 95 % interval {low:.2f} to {high:.2f}). Two one-seed runs of one configuration then differ "
              f"with an SD of {sd * 2**0.5:.2f} points."]  # fmt: skip
    if len(lowest := [seeds[0][1] for _, seeds in runs]) > 1:
        lines.append(f"- The lowest seed recorded of each of the {len(lowest)} configurations: an SD of "
                     f"{statistics.stdev(lowest):.2f} points ({min(lowest):.1f} to {max(lowest):.1f}), configurations "
                     "and seeds' noise together.")  # fmt: skip
    lines += [f"- The smallest true difference between two configurations' mean test top-1 that a two-sided test at "
              f"0.05 finds with 80 % power, at the pooled SD, with Student's t at {df} degrees of freedom:", "",
              "| seeds of A against seeds of B | difference |", "|---|---|"]  # fmt: skip
    lines += [f"| {a} against {b} | {detectable(sd, a, b, df):.1f} points |" for a, b in SEEDS_COMPARED]
    compared = [(grid, cells) for grid, cells in (grids or {}).items() if len(cells) > 1 and cells[0][1]]
    if compared:
        lines += ["", "## Each cell against its grid's first cell, by the mean over its seeds", "",
                  f"Student's t at the pooled SD ({sd:.2f} points, {df} degrees of freedom), one SD for every "
                  "configuration; the runs are scored on the same questions, so this asks whether other seeds would "
                  "repeat a gap, and McNemar's tests in each grid's table.md whether other questions would. A cell "
                  "with one seed carries a run's whole spread. Each run's interval is Wilson's; in brackets after p, p "
                  "Holm-adjusted over the grid's cells.", ""]  # fmt: skip
        for grid, cells in compared:
            lines += against_first(grid, cells, n, sd, df)
    return "\n".join(lines + [""])


def noise_report(
    configs: list[tuple[str, list[Path]]], grids: dict[str, list[tuple[str, list[Path]]]] | None = None
) -> str:
    """noise_text from every configuration's records (ppo.lab.ablate_svamp.configurations) and each grid's cells with
    theirs (ppo.lab.ablate_svamp.grid_cells), the first cell first."""
    read: dict[Path, dict] = {}  # the grids' cells hold the configurations' records: each is read once
    by_grid = {grid: read_runs(cells, read)[0] for grid, cells in (grids or {}).items()}
    return noise_text(*read_runs(configs, read), by_grid)


def write_noise_report(
    record_dir: str | Path,
    configs: list[tuple[str, list[Path]]],
    grids: dict[str, list[tuple[str, list[Path]]]] | None = None,
) -> Path:
    """record_dir/ablations/noise.md: noise_report(configs, grids)."""
    path = Path(record_dir) / "ablations" / "noise.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(noise_report(configs, grids))
    return path
