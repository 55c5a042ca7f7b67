"""The report of an ablation grid on the SVAMP setting (ppo.lab.ablate_svamp), from its records alone: `rows` is
each cell of the grid, in order, with its records by seed.

table.md        one row a cell (mean and spread of test top-1 over seeds; the first seed's test top-1 with the
                interval, answered, dev at the chosen point, KL where training ended, minutes), then each cell
                paired with the first cell and with the warm-up, seed by seed, on the same test questions
dev_curves.png  dev top-1 against sampled answers, one line a cell x seed
training.png    score and sequence KL against step
test_top1.png   test top-1 of every run with its 95 % interval, beside the warm-up's: which gaps stand out of noise
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..tasks.stats import holm, interval_text, paired, wilson_interval
from . import arms
from .plotting import pyplot, save
from .reproduce_config import ReproduceConfig, read_record
from .warmup_builds import builds_note, start_of

NEAR_BEST = 3.0  # dev points: cells whose first seed is this close to the best first seed are due a second seed
FIRST_PASS_SEED = 0  # the seed of the first pass (the runner's default --seeds), whichever seeds ran since


def mean_kl(record: dict, last: int = 8) -> float | None:
    """The sequence KL to the reference over the last `last` training steps (where the run ended up)."""
    kl = [row["objective/kl"] for row in record["training"] if "objective/kl" in row][-last:]
    return statistics.fmean(kl) if kl else None


def grid_table(rows: list, warm: dict | None, record_dir: str | Path | None = None) -> str:
    """One row a cell: test top-1 of its first seed with the interval, the mean and spread over seeds, answered,
    dev at the chosen point, the KL where training ended, minutes; then each cell paired with the first cell (the
    experiment's arm) and with the warm-up build it started from (warmup_builds.start_of; warmup.json's record where
    that build was never scored), seed by seed, on the same test questions."""
    return "\n".join(cell_rows(rows) + pair_rows(rows, warm, record_dir)) + "\n"


def first_pass(recs: list[dict]) -> dict | None:
    """A cell's record at FIRST_PASS_SEED, or None: a cell run only at another seed has not had its first pass."""
    return next((r for r in recs if r["seed"] == FIRST_PASS_SEED), None)


def near_best(rows: list) -> list[int]:
    """The cells (numbers from 1) whose first seed's dev top-1 at its chosen point is within NEAR_BEST points of the
    best first seed's: what the first pass found near the best. Later seeds change nothing here, so that a second
    seed that happens to score high on dev cannot drop another cell from the list."""
    first = {number: r["best"]["dev_top1"] for number, (_, recs) in enumerate(rows, 1) if (r := first_pass(recs))}
    best = max(first.values(), default=0.0)
    return [number for number, dev in first.items() if round(best - dev, 6) <= NEAR_BEST]  # 100 k / n: not exact


def cell_rows(rows: list) -> list[str]:
    """The grid's first table, under a line that says which columns are the first seed's: one row a cell, with
    "second seed due" where the first pass found it near the best (near_best) and it has one seed."""
    near = near_best(rows)
    lines = [
        "One row a cell: the mean ± spread of test top-1 over its seeds, and the first seed's run in every other "
        "column (each run's own figures are in its record).",
        "",
        "| # | cell | seeds | test top-1, first seed (95 % interval) | mean ± spread over seeds | answered % | "
        "dev top-1 at the chosen point | chosen at (answers) | sequence KL, last 8 steps | training min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for number, (cell, recs) in enumerate(rows, 1):
        if not recs:
            lines.append(f"| {number} | {cell.name} | not run | | | | | | | |")
            continue
        first, tops = recs[0], [r["test"]["top1"] for r in recs]
        spread = f"{statistics.fmean(tops):.1f} ± {statistics.stdev(tops):.1f}" if len(tops) > 1 else "one seed"
        kl = mean_kl(first)
        due = " (second seed due)" if len(recs) == 1 and number in near else ""
        lines.append(
            f"| {number} | {cell.name} | {', '.join(str(r['seed']) for r in recs)} | "
            f"{interval_text(sum(first['test']['correct']), first['test']['n'])} | {spread} | "
            f"{first['test']['answered']:.1f} | {first['best']['dev_top1']:.1f}{due} | {first['best']['samples']} | "
            f"{'' if kl is None else f'{kl:.2f}'} | {first['train_min']:.1f} |"
        )
    return lines


def pair_rows(rows: list, warm: dict | None, record_dir: str | Path | None) -> list[str]:
    """The grid's second table: each run paired with the first cell at its seed and with its own warm-up build; in
    each column, the p-values also Holm-adjusted over the column's tests (a family of a grid's runs)."""
    base = {r["seed"]: r for r in rows[0][1]} if rows else {}
    runs, columns = [], ([], [])
    for number, (cell, recs) in enumerate(rows, 1):
        for r in recs:
            other = base.get(r["seed"]) if number > 1 else None
            own = start_of(record_dir, r["warmup"], warm)
            tests = [paired(theirs["test"]["correct"], r["test"]["correct"]) if theirs else None
                     for theirs in (other, own)]  # fmt: skip
            runs.append((number, cell.name, r["seed"], tests))
            for column, test in zip(columns, tests):
                if test:
                    column.append(test)
    adjusted = [iter(holm([t["p"] for t in column])) for column in columns]
    lines = [
        "",
        "Paired on the same test questions (McNemar's exact test), seed by seed: the cell's gain in points, the "
        "questions only it / only the other got right, p, and p Holm-adjusted over the column's tests.",
        "",
        "| # | cell | seed | against the first cell | against the warm-up |",
        "|---|---|---|---|---|",
    ]
    for number, name, seed, tests in runs:
        texts = [versus_text(t, next(a)) if t else "" for t, a in zip(tests, adjusted)]
        lines.append(f"| {number} | {name} | {seed} | {texts[0]} | {texts[1]} |")
    return lines + builds_note(record_dir, {r["warmup"] for _, recs in rows for r in recs}, warm, "cells")


def versus_text(p: dict, adjusted: float) -> str:
    """'+1.6 (43 / 27, p = 0.072; Holm 0.43)' from a paired test and its adjusted p."""
    return f"{p['gain']:+.1f} ({p['only_b']} / {p['only_a']}, p = {p['p']:.2g}; Holm {adjusted:.2g})"


def grid_figures(c: ReproduceConfig, grid: str, records: list, warm: dict | None) -> list[Path]:
    """dev_curves.png (dev top-1 against sampled answers, from the warm-up's score) and training.png (score and
    sequence KL against step), one line a cell x seed."""
    plt = pyplot("ablate")
    if plt is None:
        return []

    out = Path(c.record_dir) / "ablations" / grid
    start = [{"samples": 0, "dev_top1": warm["dev"]["top1"]}] if warm else []
    rows = grid_runs(records)
    if not rows:
        return []
    curves, ax = plt.subplots(figsize=(7, 4.5))
    training, axes = plt.subplots(1, 2, figsize=(11, 4))
    for number, label, r in rows:
        style = dict(color=f"C{(number - 1) % 10}", linestyle=("-", "--", ":", "-.")[r["seed"] % 4])
        points = start + r["curve"]
        ax.plot([p["samples"] for p in points], [p["dev_top1"] for p in points], marker="o", label=label, **style)
        for axis, key in zip(axes, ("objective/score", "objective/kl")):
            steps = [(row["step"], row[key]) for row in r["training"] if key in row]
            if steps:
                axis.plot(*zip(*steps), label=label, **style)
    ax.set(xlabel="sampled answers", ylabel="dev top-1 %", title=f"{grid} grid: dev top-1, n = {c.dev_size}")
    ax.legend(fontsize=7)
    axes[0].set(xlabel="PPO step", ylabel="mean score (1 right, 0.1 wrong)")
    axes[1].set(xlabel="PPO step", ylabel="sequence KL (nats)")
    axes[1].legend(fontsize=7)
    figures = [save(curves, out / "dev_curves.png"), save(training, out / "training.png")]
    return figures + [interval_figure(plt, grid, records, warm, out / "test_top1.png")]


def grid_runs(records: list) -> list[tuple[int, str, dict]]:
    """(cell number, label, record) of every run, cell by cell and seed by seed: what each figure draws a mark of."""
    return [(n, f"{n}. {cell.name}, s{r['seed']}", r) for n, (cell, recs) in enumerate(records, 1) for r in recs]


def run_intervals(rows: list) -> list[tuple[str, float, float, float]]:
    """(label, test top-1 %, low, high) of every run, cell by cell and seed by seed: the 95 % Wilson interval."""
    points = []
    for _, label, r in grid_runs(rows):
        low, high = wilson_interval(sum(r["test"]["correct"]), r["test"]["n"])
        points.append((label, r["test"]["top1"], 100 * low, 100 * high))
    return points


def interval_figure(plt, grid: str, rows: list, warm: dict | None, path: Path) -> Path:
    """test_top1.png: one point a run with its 95 % interval, and the first cell's runs (dotted) and the warm-up's
    score (dashed) as lines to read the others against. Overlapping intervals are not a paired test: the table has
    those."""
    points = run_intervals(rows)  # not empty: grid_figures draws nothing for a grid with no run
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.35 * len(points)))
    y = range(len(points), 0, -1)  # the first cell on top
    ax.errorbar([p[1] for p in points], list(y), xerr=[[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]],
                fmt="o", color="C0", capsize=3)  # fmt: skip
    for i, top1 in enumerate(sorted({r["test"]["top1"] for r in rows[0][1]})):
        ax.axvline(top1, color="C0", linestyle=":", linewidth=1, label="the first cell's runs" if i == 0 else None)
    if warm and "test" in warm:
        ax.axvline(warm["test"]["top1"], color="grey", linestyle="--", label=f"warm-up {warm['test']['top1']:.1f} %")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    n = next(r["test"]["n"] for _, recs in rows for r in recs)
    ax.set(yticks=list(y), yticklabels=[p[0] for p in points], xlabel=f"test top-1 % (95 % interval), n = {n}",
           title=f"{grid} grid: every run on the same test questions")  # fmt: skip
    return save(fig, path)


def write_grid_report(c: ReproduceConfig, grid: str, rows: list) -> str:
    """table.md and the figures in record_dir/ablations/GRID, from the records alone; returns the table."""
    warm = read_record(Path(c.record_dir) / arms.WARMUP_RECORD)
    text = grid_table(rows, warm, c.record_dir)
    out = Path(c.record_dir) / "ablations" / grid
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    grid_figures(c, grid, rows, warm)
    return text
