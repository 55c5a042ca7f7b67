"""The SVAMP experiment's report, from the records alone (ppo.lab.reproduce): no checkpoint is needed.

table.md        every model's test top-1 with its 95 % Wilson interval (n = all test questions), its dev top-1 at
                the chosen point, budget and training minutes; then the paired tests on the same test questions
                (McNemar's exact p, ppo.tasks.stats): ReFT against SFT-continued, TRL's GRPO, our GRPO and the
                self-training baselines, our GRPO against TRL's, seed by seed, every arm against the warm-up, and
                the warm-up against the base model when that is recorded
dev_curves.png  dev top-1 against sampled answers, and against training minutes, one line per arm x seed, from
                the warm-up's score (matplotlib, the `plots` extra)
reft_training.png  ReFT's score, KL, clip fraction and the critic's explained variance against step
scaling.png     accuracy against k (top-1, vote, pass, and rerank by the critic and the verifier) for each scale
                record, whose table closes table.md (ppo.lab.reproduce_scaling)
"""

from __future__ import annotations

import json
from pathlib import Path

from ..tasks.stats import holm, interval_text, paired
from .plotting import pyplot, save
from .reproduce_config import ARMS, ReproduceConfig, read_record, record_path, recorded_runs
from .reproduce_scaling import scaling_figure, scaling_table
from .warmup_builds import builds_note, start_of

# (arm, against): the comparisons the experiment is about, then each arm against its start
PAIRS = [("reft", "sft-continued"), ("reft", "trl-grpo"), ("reft", "grpo"), ("grpo", "trl-grpo"),
         ("reft", "offline-st"), ("reft", "online-st")]  # fmt: skip
FIGURE_KEYS = [("objective/score", "mean score (1 right, 0.1 wrong)"), ("objective/kl", "sequence KL (nats)"),
               ("policy/clipfrac", "clip fraction"), ("value/explained_var", "critic explained variance")]  # fmt: skip


def records(c: ReproduceConfig) -> tuple[dict | None, list[dict], dict | None]:
    """The warm-up's record, those of the runs that are done (`runs` first, then earlier sittings' arms), and the base
    model's."""
    warm, base = Path(c.record_dir) / "warmup.json", Path(c.record_dir) / "base.json"
    done = [record_path(c, *run) for run in recorded_runs(c)]
    runs = [json.loads(p.read_text()) for p in done if p.is_file()]
    return read_record(warm), runs, read_record(base)


def table(warm: dict | None, runs: list[dict], base: dict | None = None, record_dir: str | Path | None = None) -> str:
    """The models, then the paired tests; each arm against the warm-up build it started from (warmup_builds)."""
    lines = ["| model | seed | test top-1 (95 % interval) | test answered % | dev top-1 % at the chosen point | "
             "chosen at (samples) | training min |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    if base is not None:
        t = base["test"]
        lines.append(f"| base model (no SFT) | | {interval_text(sum(t['correct']), t['n'])} | {t['answered']:.1f} | "
                     f"{base['dev']['top1']:.1f} | | |")  # fmt: skip
    if warm is not None:
        t = warm["test"]
        lines.append(f"| warm-up SFT | 0 | {interval_text(sum(t['correct']), t['n'])} | {t['answered']:.1f} | "
                     f"{warm['dev']['top1']:.1f} | 0 | {warm['train_min']:.1f} |")  # fmt: skip
    for r in runs:
        t, b = r["test"], r["best"]
        lines.append(f"| {r['arm']} | {r['seed']} | {interval_text(sum(t['correct']), t['n'])} | {t['answered']:.1f} "
                     f"| {b['dev_top1']:.1f} | {b['samples']} | {r['train_min']:.1f} |")  # fmt: skip
    return "\n".join(lines + pair_lines(warm, runs, base, record_dir)) + "\n"


def pair_lines(warm: dict | None, runs: list[dict], base: dict | None, record_dir: str | Path | None) -> list[str]:
    """The paired tests, in two families whose p-values are Holm-adjusted apart (ppo.tasks.stats.holm): the arms
    against each other (PAIRS, seed by seed), and each arm against the warm-up build it started from; then the
    warm-up against the base model, a family of one."""
    lines = [
        "",
        "Paired on the same test questions (McNemar's exact test): gain of the first over the second in "
        "points; only-first / only-second are the questions one got right and the other wrong; p Holm-adjusted "
        "within each family (the arms against each other; each arm against the warm-up).",
        "",
        "| first | second | seed | gain (points) | only first | only second | p | p, Holm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["arm"], r["seed"]): r for r in runs}
    arms = [((a, b, s), by[(a, s)], by[(b, s)]) for a, b in PAIRS for (arm, s) in by if arm == a and (b, s) in by]
    families = [arms]  # each a list of ((first, second, seed), first's record, second's record)
    if warm is not None:
        starts = [((arm, "warm-up", s), r, start_of(record_dir, r["warmup"], warm)) for (arm, s), r in by.items()]
        families.append(starts)
        if base is not None:
            families.append([(("warm-up", "base model", 0), warm, base)])
    for family in families:
        tests = [paired(second["test"]["correct"], first["test"]["correct"]) for _, first, second in family]
        for ((a, b, s), _, _), p, adjusted in zip(family, tests, holm([t["p"] for t in tests])):
            lines.append(f"| {a} | {b} | {s} | {p['gain']:+.1f} | {p['only_b']} | {p['only_a']} | {p['p']:.2g} "
                         f"| {adjusted:.2g} |")  # fmt: skip
    return lines + builds_note(record_dir, {r["warmup"] for r in runs}, warm)


def figures(c: ReproduceConfig, warm: dict | None, runs: list[dict]) -> list[Path]:
    plt = pyplot("reproduce")
    if plt is None:
        return []

    out, written = Path(c.record_dir), []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = {arm: f"C{i}" for i, arm in enumerate(ARMS)}  # one colour an arm, one line style a seed
    for r in sorted(runs, key=lambda r: (ARMS.index(r["arm"]), r["seed"])):
        start = [{"samples": 0, "train_min": 0.0, "dev_top1": warm["dev"]["top1"]}] if warm else []
        points = start + r["curve"]
        style = dict(color=colours[r["arm"]], linestyle=("-", "--", ":", "-.")[r["seed"] % 4], marker="o")
        for ax, x in zip(axes, ("samples", "train_min")):
            ax.plot([p[x] for p in points], [p["dev_top1"] for p in points], label=f"{r['arm']} s{r['seed']}", **style)
    axes[0].set(
        xlabel="sampled answers (SFT-continued, Offline-ST: the same passes over the questions)", ylabel="dev top-1 %"
    )
    axes[1].set(xlabel="training minutes (dev scoring left out)", ylabel="dev top-1 %")
    axes[1].legend(fontsize=8)
    written.append(save(fig, out / "dev_curves.png"))
    reft = [r for r in runs if r["arm"] == "reft"]
    if reft:
        fig, axes = plt.subplots(1, len(FIGURE_KEYS), figsize=(4 * len(FIGURE_KEYS), 3.5))
        for r in reft:
            for ax, (key, label) in zip(axes, FIGURE_KEYS):
                steps = [(row["step"], row[key]) for row in r["training"] if key in row]
                if steps:
                    ax.plot(*zip(*steps), label=f"seed {r['seed']}")
                ax.set(xlabel="PPO step", ylabel=label)
        axes[0].legend(fontsize=8)
        written.append(save(fig, out / "reft_training.png"))
    return written + scaling_figure(c)


def write_report(c: ReproduceConfig) -> str:
    """table.md and the figures in record_dir, from whatever is recorded; returns the table."""
    warm, runs, base = records(c)
    text = table(warm, runs, base, c.record_dir) + scaling_table(c)
    Path(c.record_dir).mkdir(parents=True, exist_ok=True)
    (Path(c.record_dir) / "table.md").write_text(text)
    figures(c, warm, runs)
    return text
