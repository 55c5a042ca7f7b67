"""The speed benchmark: one PPO step by phase, side by side with TRL's GRPOTrainer, and the four target ratios.

    make bench                                   # installs the bench extra (TRL), then runs this
    python experiments/bench.py --help           # every setting (ppo.lab.bench.BenchConfig)

The measuring code is in `ppo.lab.bench`; docs/benchmarks.md has the results and how to read them.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path

from ppo.lab.bench import GRPO, BenchConfig, Ours
from ppo.lab.bench_memory import run_probe
from ppo.lab.bench_trl import run_trl
from ppo.train.cli import parse_config
from ppo.train.metrics import matmul_peak


def summarize(c: BenchConfig, ours: Ours, grpo: Ours | None, trl_times: list[float], peak: float, memory: dict):
    """Medians and the five target ratios."""

    def med(key):
        return statistics.median(r[key] for r in ours.records)

    n = c.prompts * c.completions
    rollout_rate = statistics.median(r["response/length"] * n / r["time/rollout_s"] for r in ours.records)
    s = {
        "config": asdict(c),
        "matmul_peak_flops": peak,
        "update_flops": ours.update_flops,
        "ours_step_s": med("time/step_s"),
        "ours_phases_s": {k: med(f"time/{k}_s") for k in ("rollout", "score", "forward", "update")},
        "rollout_tokens_per_s": rollout_rate,
        "hf_generate_tokens_per_s": med("hf_generate_tokens_per_s"),
        "response_tokens": med("response/length") * n,
        "memory": memory,
    }
    s["update_flops_per_s"] = ours.update_flops / s["ours_phases_s"]["update"]
    s["a_step_ratio_vs_trl"] = s["ours_step_s"] / statistics.median(trl_times) if trl_times else None
    s["trl_step_s"] = statistics.median(trl_times) if trl_times else None
    s["grpo_step_s"] = statistics.median(r["time/step_s"] for r in grpo.records) if grpo else None
    s["e_grpo_ratio_vs_trl"] = s["grpo_step_s"] / s["trl_step_s"] if grpo and trl_times else None
    s["b_rollout_ratio_vs_generate"] = rollout_rate / s["hf_generate_tokens_per_s"]
    s["c_update_fraction_of_peak"] = s["update_flops_per_s"] / peak
    s["d_memory_ratio_vs_sft"] = memory["ppo"]["peak_bytes"] / memory["sft"]["peak_bytes"] if memory else None
    return s


def table(s: dict) -> str:
    def fmt(v, f):
        return "not run" if v is None else f.format(v)

    rows = [
        (
            "(a) PPO step / TRL GRPO step, same work (target <= 0.5)",
            fmt(s["a_step_ratio_vs_trl"], "{:.2f}"),
            f"{s['ours_step_s']:.1f} s vs {fmt(s['trl_step_s'], '{:.1f} s')}",
        ),
        (
            "(e) our GRPO step / TRL GRPO step, same algorithm (target <= 0.5)",
            fmt(s["e_grpo_ratio_vs_trl"], "{:.2f}"),
            f"{fmt(s['grpo_step_s'], '{:.1f} s')} vs {fmt(s['trl_step_s'], '{:.1f} s')}",
        ),
        (
            "(b) rollout / plain generate, tokens/s (target >= 2)",
            f"{s['b_rollout_ratio_vs_generate']:.2f}",
            f"{s['rollout_tokens_per_s']:.0f} vs {s['hf_generate_tokens_per_s']:.0f} tokens/s",
        ),
        (
            "(c) update FLOP/s / matmul peak (target >= 0.6)",
            f"{s['c_update_fraction_of_peak']:.2f}",
            f"{s['update_flops_per_s'] / 1e9:.0f} vs {s['matmul_peak_flops'] / 1e9:.0f} GFLOP/s",
        ),
        (
            "(d) PPO step / SFT step, peak memory (target <= 1.5)",
            fmt(s["d_memory_ratio_vs_sft"], "{:.2f}"),
            " vs ".join(f"{s['memory'][k]['peak_bytes'] / 2**30:.2f} GiB" for k in ("ppo", "sft"))
            if s["memory"]
            else "not run",
        ),
    ]
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in s["ours_phases_s"].items())
    return "\n".join(
        [
            "| target | ratio | measured |",
            "|---|---|---|",
            *(f"| {a} | {b} | {m} |" for a, b, m in rows),
            "",
            f"our step by phase (medians): {phases}",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    c = parse_config(BenchConfig, argv)
    ours = Ours(c)
    grpo = Ours(c, **GRPO) if c.grpo else None
    measured = [m for m in (ours, grpo) if m is not None]
    peak = matmul_peak(ours.device, next(ours.trainer.policy.parameters()).dtype)
    trl_times = run_trl(c, *measured) if c.trl else []
    for m in measured:
        while len(m.records) < c.repeats:  # without TRL: warm-up and repetitions back to back
            m.step()
    memory = {k: run_probe(c, k) for k in ("ppo", "sft")} if c.memory else {}
    s = summarize(c, ours, grpo, trl_times, peak, memory)
    records = {"records": ours.records, "grpo_records": grpo.records if grpo else [], "trl_times": trl_times}
    Path(c.output).parent.mkdir(parents=True, exist_ok=True)
    Path(c.output).write_text(json.dumps({**s, **records}, indent=2) + "\n")
    print(table(s))


if __name__ == "__main__":
    main()
