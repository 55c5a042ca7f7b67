"""The benchmark's summary: medians of the measurements and the six target ratios, and the table
`experiments/bench.py` prints (docs/benchmarks.md)."""

from __future__ import annotations

import statistics
from dataclasses import asdict

import torch

from .bench import BenchConfig, Ours
from .machine import cpu_name


def summarize(c: BenchConfig, ours: Ours, grpo: Ours | None, trl_times, peak: float, memory: dict, floor: dict):
    """Medians and the six target ratios."""

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
        "decode_floor": floor,
        "device": device_name(ours.device),
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

    f = s["decode_floor"]
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
        (
            "(f) decode step: its memory floor / its time (target >= 0.85)",
            f"{f['floor_over_step']:.2f}",
            f"{f['floor_s'] * 1e3:.1f} ms floor ({f['bytes_read'] / 2**20:.0f} MiB at "
            f"{f['copy_bandwidth_bytes_per_s'] / 1e9:.1f} GB/s) vs {f['step_s'] * 1e3:.1f} ms",
        ),
    ]
    phases = ", ".join(f"{k} {v:.2f} s" for k, v in s["ours_phases_s"].items())
    return "\n".join(
        [
            "| target | ratio | measured |",
            "|---|---|---|",
            *(f"| {a} | {b} | {m} |" for a, b, m in rows),
            "",
            f"our step by phase (medians): {phases}; device: {s['device']}",
        ]
    )


def device_name(device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
