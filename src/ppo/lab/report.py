"""The report of an ablation: a table and PNG plots from each run's result.json and metrics.jsonl.

collect         one row per configuration: final dev accuracy, mean reward, mean sequence KL, mean response
                length, step time and wall time, as mean and spread over seeds; incomplete and failed runs are
                listed. Each row also keeps which dev questions the final policy of the first seed got right,
                for the interval and the paired test.
write_ablation  results.csv and results.md: dev top-1 with the 95 % Wilson interval of the first seed's answers,
                and each configuration against the first (the baseline) on the same questions and seed, with
                McNemar's exact p (ppo.tasks.stats). Several seeds' answers to the same questions are not
                independent, so they are not pooled: the spread over seeds is the ± column.
plot_ablation   (matplotlib, an optional extra: `pip install -e .[plots]`)
                curves.png             reward, KL and dev accuracy against step, one line per configuration
                final_accuracy.png     final dev accuracy per configuration, mean and spread over seeds
                accuracy_vs_beta.png   final dev accuracy against beta (the `beta=...` configurations)
"""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

from ..tasks.stats import interval_text, paired, wilson_interval
from ..train.metrics import read_jsonl
from .plotting import pyplot, save

RESULT_FILE = "result.json"
METRICS = ["dev_top1", "reward", "kl", "length", "step_s", "wall_s"]

CURVES = [
    ("objective/reward", "mean reward (score - beta KL)"),
    ("objective/kl", "sequence KL to reference (nats)"),
    ("eval/dev_score", "dev top-1 %"),
]


def collect(output_dir: str | Path, grid: list[tuple[str, dict]], seeds: list[int]) -> tuple[list[dict], list[str]]:
    """Rows of mean and spread (sample std over seeds) per configuration, and the runs that are missing."""
    rows, missing = [], []
    for name, _ in grid:
        results = []
        for seed in seeds:
            folder = Path(output_dir) / name / f"seed-{seed}"
            if (folder / RESULT_FILE).is_file():
                results.append(json.loads((folder / RESULT_FILE).read_text()))
            else:
                why = (
                    "failed (error.txt)"
                    if (folder / "error.txt").is_file()
                    else "incomplete"
                    if folder.is_dir()
                    else "not run"
                )
                missing.append(f"{name} seed {seed}: {why}")
        if results:
            row = {"name": name, "seeds": len(results)}
            for m in METRICS:
                values = [r[m] for r in results if m in r]  # step_s: not in results of older versions
                row[m] = statistics.fmean(values) if values else None
                row[f"{m}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            first = next((r for r in results if r["seed"] == seeds[0]), {})
            if "dev_correct" in first:
                row["dev_correct"] = first["dev_correct"]
            rows.append(row)
    return rows, missing


def write_ablation(
    output_dir: str | Path, rows: list[dict], missing: list[str], warmup_top1: float | None = None
) -> str:
    """results.csv and results.md in output_dir (with the warm-up's own dev top-1, if given); returns the Markdown."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if rows:
        fields = sorted({k for r in rows for k in r if k != "dev_correct"}, key=list(rows[0]).index)
        with (out / "results.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    base = rows[0] if rows else None
    lines = [
        "| configuration | seeds | dev top-1 % | 95 % interval (n) | vs "
        + (base["name"] if base else "baseline")
        + " (points, p) | mean reward | mean KL (nats/seq) | mean length | step s | wall min |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def cell(m, f):
            if r[m] is None:
                return "–"
            return f"{r[m]:{f}} ± {r[m + '_std']:{f}}" if r["seeds"] > 1 else f"{r[m]:{f}}"

        lines.append(
            f"| {r['name']} | {r['seeds']} | {cell('dev_top1', '.1f')} | {interval(r)} | {versus(base, r)} | "
            f"{cell('reward', '.3f')} | {cell('kl', '.2f')} | {cell('length', '.0f')} | {cell('step_s', '.1f')} | "
            f"{r['wall_s'] / 60:.1f} |"
        )
    if warmup_top1 is not None:
        shown = f"{warmup_top1:.1f} %"
        if base and "dev_correct" in base:  # scored once, on the same dev questions
            n = len(base["dev_correct"])
            shown = interval_text(round(warmup_top1 * n / 100), n)
        lines += ["", f"The warm-up checkpoint itself, before any PPO step: dev top-1 {shown}."]
    if any(r["seeds"] > 1 for r in rows):
        note = "Dev top-1 is the mean ± spread over seeds; the interval and the paired test use the first seed."
        lines += ["", note]
    if missing:
        lines += ["", "Missing runs (not in the table):", *(f"- {m}" for m in missing)]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text)
    return text


def interval(row: dict) -> str:
    """The 95 % Wilson interval of the row's dev answers (the first seed's): '[10.9, 25.5] (100)'."""
    if "dev_correct" not in row:
        return "–"
    lo, hi = wilson_interval(sum(row["dev_correct"]), len(row["dev_correct"]))
    return f"[{100 * lo:.1f}, {100 * hi:.1f}] ({len(row['dev_correct'])})"


def versus(base: dict, row: dict) -> str:
    """The row against the baseline on the same questions and seed: '+4.0, p = 0.39'."""
    if row is base:
        return "baseline"
    if "dev_correct" not in row or len(row["dev_correct"]) != len(base.get("dev_correct", [])):
        return "–"
    test = paired(base["dev_correct"], row["dev_correct"])
    return f"{test['gain']:+.1f}, p = {test['p']:.2g}"


def plot_ablation(
    output_dir: str | Path,
    grid: list[tuple[str, dict]],
    seeds: list[int],
    rows: list[dict],
    warmup_top1: float | None = None,
) -> list[Path]:
    """Write the plots into output_dir; returns their paths (none, with a note, without matplotlib). The dev
    curves start at step 0 from `warmup_top1`, the warm-up checkpoint's own score, when it is given."""
    plt = pyplot("ablate")
    if plt is None:
        return []
    out, written = Path(output_dir), []
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 4))
    colors = plt.get_cmap("tab10" if len(grid) <= 10 else "tab20")  # one distinct colour per configuration
    for index, (name, _) in enumerate(grid):
        log = out / name / f"seed-{seeds[0]}" / "metrics.jsonl"
        records = read_jsonl(log) if log.is_file() else []
        for ax, (key, label) in zip(axes, CURVES):
            points = [(r["step"], r[key]) for r in records if key in r]
            if key.startswith("eval") and warmup_top1 is not None and points:
                points.insert(0, (0, warmup_top1))
            if points:
                ax.plot(*zip(*points), marker="o" if key.startswith("eval") else None, label=name, color=colors(index))
            ax.set(xlabel="PPO step", ylabel=label)
    axes[-1].legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    written.append(save(fig, out / "curves.png"))
    if rows:
        fig, ax = plt.subplots(figsize=(max(5, len(rows) * 0.8), 4))
        ax.bar(range(len(rows)), [r["dev_top1"] for r in rows], yerr=[r["dev_top1_std"] for r in rows])
        ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=45, ha="right", fontsize=7)
        ax.set(ylabel="final dev top-1 %")
        written.append(save(fig, out / "final_accuracy.png"))
    betas = [
        (float(r["name"].split("=")[1]), r) for r in rows if r["name"].startswith("beta=") and "," not in r["name"]
    ]
    if betas:
        fig, ax = plt.subplots(figsize=(5, 4))
        betas.sort(key=lambda pair: pair[0])
        ax.errorbar(
            [b for b, _ in betas],
            [r["dev_top1"] for _, r in betas],
            yerr=[r["dev_top1_std"] for _, r in betas],
            marker="o",
            capsize=3,
        )
        ax.set(xlabel="beta (kl_coef)", ylabel="final dev top-1 %", xscale="symlog", xlim=(-0.001, None))
        from matplotlib.ticker import ScalarFormatter

        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xticks([b for b, _ in betas])
        written.append(save(fig, out / "accuracy_vs_beta.png"))
    return written
