"""The speed benchmark: one PPO step by phase, side by side with TRL's GRPOTrainer, and the six target ratios.

    make bench                                   # installs the bench extra (TRL), then runs this
    make bench ARGS="--random-init"              # random weights of the model's shape, every answer full length
    python experiments/bench.py --help           # every setting (ppo.lab.bench.BenchConfig)

The measuring code is in `ppo.lab.bench*`; docs/benchmarks.md has the results and how to read them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ppo.lab.bench import GRPO, BenchConfig, Ours
from ppo.lab.bench_decode import decode_floor
from ppo.lab.bench_memory import run_probe
from ppo.lab.bench_report import summarize, table
from ppo.lab.bench_trl import run_trl
from ppo.train.cli import parse_config
from ppo.train.metrics import matmul_peak


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
    prompt = max(len(ours.tokenizer(ours.trainer.prompt_fn(ex)).input_ids) for ex in ours.examples)
    floor = decode_floor(ours.trainer.policy.lm, c.prompts * c.completions, prompt, min(c.max_new_tokens, 64))
    s = summarize(c, ours, grpo, trl_times, peak, memory, floor)
    records = {"records": ours.records, "grpo_records": grpo.records if grpo else [], "trl_times": trl_times}
    Path(c.output).parent.mkdir(parents=True, exist_ok=True)
    Path(c.output).write_text(json.dumps({**s, **records}, indent=2) + "\n")
    print(table(s))


if __name__ == "__main__":
    main()
