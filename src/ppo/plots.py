"""PNG plots of an ablation (matplotlib, an optional extra: `pip install -e .[plots]`).

    curves.png             reward, KL and dev accuracy against step, one line per configuration (first seed)
    final_accuracy.png     final dev accuracy per configuration, mean and spread over seeds
    accuracy_vs_beta.png   final dev accuracy against beta (the `beta=...` configurations of the KL grid)
"""
from __future__ import annotations

from pathlib import Path

from .metrics import read_jsonl

CURVES = [("objective/reward", "mean reward (score - beta KL)"), ("objective/kl", "sequence KL to reference (nats)"),
          ("eval/dev_score", "dev top-1 %")]


def plot_ablation(output_dir: str | Path, grid: list[tuple[str, dict]], seeds: list[int], rows: list[dict],
                  ) -> list[Path]:
    """Write the plots into output_dir; returns their paths (none, with a note, without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")                 # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        print("[ablate] matplotlib is not installed (pip install -e .[plots]): tables only, no plots")
        return []
    out, written = Path(output_dir), []
    fig, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 4))
    for name, _ in grid:
        log = out / name / f"seed-{seeds[0]}" / "metrics.jsonl"
        records = read_jsonl(log) if log.is_file() else []
        for ax, (key, label) in zip(axes, CURVES):
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                ax.plot(*zip(*points), marker="o" if key.startswith("eval") else None, label=name)
            ax.set(xlabel="PPO step", ylabel=label)
    axes[0].legend(fontsize=7)
    written.append(save(fig, out / "curves.png"))
    if rows:
        fig, ax = plt.subplots(figsize=(max(5, len(rows) * 0.8), 4))
        ax.bar(range(len(rows)), [r["dev_top1"] for r in rows], yerr=[r["dev_top1_std"] for r in rows])
        ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=45, ha="right", fontsize=7)
        ax.set(ylabel="final dev top-1 %")
        written.append(save(fig, out / "final_accuracy.png"))
    betas = [(float(r["name"].split("=")[1]), r) for r in rows
             if r["name"].startswith("beta=") and "," not in r["name"]]
    if betas:
        fig, ax = plt.subplots(figsize=(5, 4))
        betas.sort(key=lambda pair: pair[0])
        ax.errorbar([b for b, _ in betas], [r["dev_top1"] for _, r in betas],
                    yerr=[r["dev_top1_std"] for _, r in betas], marker="o", capsize=3)
        ax.set(xlabel="beta (kl_coef)", ylabel="final dev top-1 %", xscale="symlog", xlim=(-0.001, None))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xticks([b for b, _ in betas])
        written.append(save(fig, out / "accuracy_vs_beta.png"))
    return written


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.clf()
    return path
