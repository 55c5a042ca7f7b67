"""Full fine-tuning, LoRA and LoReFT (and DiReFT) in one PPO step on the same batch: trainable parameters, step
time by phase and peak memory. The batch and settings are `make bench`'s (ppo.lab.bench.BenchConfig).

    make bench-adapters                                     # the table in docs/adapters.md
    python experiments/bench_adapters.py --kinds none,loreft --repeats 2
    python experiments/bench_adapters.py --checkpointing off,on    # each kind without and with checkpointing
    python experiments/bench_adapters.py --random-init --model runs/bench/shape --device cuda   # GPU, no weights

Peak memory comes from a fresh process per kind (ppo.lab.bench_memory.run_probe), so no kind inherits another's peak.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ppo.lab.bench import BenchConfig, Ours
from ppo.lab.bench_memory import run_probe

PHASES = ("rollout", "forward", "update")


def measure(c: BenchConfig) -> dict:
    """One warm-up step, then c.repeats timed PPO steps (medians), the trainable parameters, and peak memory."""
    ours = Ours(c)
    policy = ours.trainer.policy
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    head = sum(p.numel() for p in policy.value_head.parameters())
    base = sum(p.numel() for n, p in policy.lm.named_parameters() if not n.startswith("ppo_adapter."))
    steps = []
    for i in range(c.repeats + 1):
        torch.manual_seed(i)
        steps.append(ours.trainer.step(ours.examples))
    steps = steps[1:]

    def med(key):
        return statistics.median(s[key] for s in steps)

    return {
        "adapter": c.adapter,
        "checkpointing": c.gradient_checkpointing,
        "trainable": trainable,
        "adapter_params": trainable - head,
        "base_params": base,
        "step_s": med("time/step_s"),
        **{f"{p}_s": med(f"time/{p}_s") for p in PHASES},
        "response_tokens": med("response/length") * c.prompts * c.completions,
        "peak_bytes": run_probe(c, "ppo")["peak_bytes"],
    }


def table(rows: list[dict]) -> str:
    """Peak memory against full fine-tuning: its default (no checkpointing), and with the same checkpointing."""
    full = {r["checkpointing"]: r["peak_bytes"] for r in rows if r["adapter"] == "none"}

    def ratio(r, base):
        return f"{r['peak_bytes'] / base:.2f}" if base else "-"

    lines = [
        "| policy | checkpointing | trainable parameters (adapter + value head) | % of the LM | PPO step s | "
        "rollout s | forward s | update s | peak memory GiB | memory / full | memory / full, same checkpointing |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = "full fine-tuning" if r["adapter"] == "none" else r["adapter"]
        lines.append(
            f"| {name} | {'on' if r['checkpointing'] else 'off'} | {r['trainable']:,} "
            f"({r['adapter_params']:,} + {r['trainable'] - r['adapter_params']:,}) | "
            f"{100 * r['adapter_params'] / r['base_params']:.3f} | {r['step_s']:.1f} | "
            f"{r['rollout_s']:.1f} | {r['forward_s']:.1f} | {r['update_s']:.1f} | "
            f"{r['peak_bytes'] / 2**30:.2f} | {ratio(r, full.get(False))} | "
            f"{ratio(r, full.get(r['checkpointing']))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="none,lora,loreft,direft", help="comma-separated adapter specs")
    parser.add_argument("--checkpointing", default="off", help="off, on, or off,on: gradient checkpointing")
    parser.add_argument("--repeats", type=int, default=3, help="timed PPO steps per kind, after one warm-up")
    parser.add_argument("--model", default=BenchConfig.model)
    parser.add_argument("--data-dir", default=BenchConfig.data_dir, help="GSM8K folder (the prompts)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="random weights of the model's shape (make bench-shape); answers run to full length",
    )
    parser.add_argument("--output", default="runs/bench/adapters.json")
    args = parser.parse_args(argv)
    settings = args.checkpointing.split(",")
    if not set(settings) <= {"off", "on"}:
        parser.error(f"--checkpointing takes off, on, or off,on (got {args.checkpointing!r})")
    rows, start = [], time.perf_counter()
    for kind in args.kinds.split(","):
        for setting in settings:
            c = BenchConfig(
                model=args.model,
                adapter=kind,
                data_dir=args.data_dir,
                repeats=args.repeats,
                device=args.device,
                random_init=args.random_init,
                trl=False,
                gradient_checkpointing=setting == "on",
            )
            rows.append(measure(c))
            print(
                f"[bench-adapters] {kind}, checkpointing {setting}: {rows[-1]['step_s']:.1f} s/step, "
                f"{rows[-1]['peak_bytes'] / 2**30:.2f} GiB",
                flush=True,
            )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"rows": rows, "wall_s": time.perf_counter() - start}, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
