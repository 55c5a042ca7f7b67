"""What the SVAMP ablation grids can tell apart: how far two runs of one configuration differ by chance, and so how
far apart two configurations must score before a test on their seeds' mean scores would tell them apart.

Two seeds of one configuration, scored greedily on the same 1,000 test questions, still differ: the seed changes
which answers are sampled, and so the policy. Every configuration recorded at two seeds or more, in any of the three
grids, gives that run-to-run spread; pooled over them (ppo.tasks.stats.pooled_sd) it is the noise that a one-seed
cell's difference from the first cell must clear, beyond the question-level noise that McNemar's test covers.

    write_noise_report   record_dir/ablations/noise.md, rewritten after every grid run
"""

from __future__ import annotations

import json
from pathlib import Path

from ..tasks.stats import detectable, pooled_sd, sd_interval

SEEDS_COMPARED = ((1, 1), (1, 2), (2, 2), (3, 3))  # seeds of configuration A against seeds of B


def scores(configs: list[tuple[str, list[Path]]]) -> list[tuple[str, list[float]]]:
    """Each configuration's records (by seed) -> their test top-1 (%)."""
    return [(name, [float(json.loads(p.read_text())["test"]["top1"]) for p in paths]) for name, paths in configs]


def noise_text(configs: list[tuple[str, list[float]]]) -> str:
    """The report (Markdown): the configurations with several seeds, the pooled run-to-run SD with its 95 %
    interval, the spread of every configuration's first seed, and the smallest detectable differences."""
    repeated = [(name, scores) for name, scores in configs if len(scores) > 1]
    lines = ["# What the ablation grids can tell apart", "",
             "Rewritten from the records after every grid run (`ppo.lab.ablate_svamp_noise`). Test top-1 in %, each "
             "on the same 1,000 SVAMP test questions.", ""]  # fmt: skip
    if not repeated:
        return "\n".join(lines + ["No configuration has two seeds yet: the run-to-run spread is unknown.", ""])
    sd, df = pooled_sd([scores for _, scores in repeated])
    low, high = sd_interval(sd, df)
    firsts = [scores[0] for _, scores in configs]
    spread, _ = pooled_sd([firsts])
    lines += ["| configuration | test top-1 by seed | largest minus smallest |", "|---|---|---|"]
    lines += [f"| {name} | {' / '.join(f'{s:.1f}' for s in scores)} | {max(scores) - min(scores):.1f} |"
              for name, scores in repeated]  # fmt: skip
    lines += ["", f"- **Run-to-run SD within one configuration, pooled: {sd:.2f} points** ({df} degrees of freedom; "
              f"95 % interval {low:.2f} to {high:.2f}).",
              f"- The first seed of all {len(firsts)} configurations spreads with an SD of {spread:.2f} points "
              f"({min(firsts):.1f} to {max(firsts):.1f}); if the configurations did not differ, it would estimate the "
              "same run-to-run SD.",
              "- The smallest true difference between two configurations' mean test top-1 that a two-sided test at "
              "0.05 finds with 80 % power (normal approximation, so too small with this few degrees of freedom; the "
              "second figure takes the SD's upper bound):", "",
              "| seeds of A against seeds of B | at the pooled SD | at its upper bound |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {a} against {b} | {detectable(sd, a, b):.1f} points | {detectable(high, a, b):.1f} points |"
              for a, b in SEEDS_COMPARED]  # fmt: skip
    return "\n".join(lines + [""])


def write_noise_report(record_dir: str | Path, configs: list[tuple[str, list[Path]]]) -> Path:
    """record_dir/ablations/noise.md from every configuration's records (ppo.lab.ablate_svamp.configurations)."""
    path = Path(record_dir) / "ablations" / "noise.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(noise_text(scores(configs)))
    return path
