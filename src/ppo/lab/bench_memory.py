"""The benchmark's memory probe: the peak memory of one PPO step and of one SFT step on `make bench`'s batch, each
measured in a fresh process (`python -m ppo bench --probe ppo|sft ...`), so that nothing else counts in its peak."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from ..lm.models import checkpoint_activations
from ..tasks.stages import math_pair_fn
from ..train.config import SFTConfig
from .bench import BenchConfig, Ours, load_lm, setup


def probe(c: BenchConfig) -> dict:
    """One PPO or SFT step on the batch, in this (fresh) process: its peak memory in bytes."""
    if c.probe == "ppo":
        Ours(c).trainer.step(setup(c)[1])
    else:
        from ..train.sft import SFTTrainer, encode_pair

        ppo, examples, _ = setup(c)
        lm, tokenizer = load_lm(c)
        if c.gradient_checkpointing:
            checkpoint_activations(lm)
        n, micro = c.prompts * c.completions, ppo.micro_batch_size
        sft = SFTTrainer(
            lm,
            tokenizer,
            SFTConfig(batch_size=micro, grad_accum=n // micro, prompt_template="chat"),
            math_pair_fn("chat", tokenizer),
        )
        rows = []
        for ex in examples:  # prompt + exactly max_new_tokens target tokens: the PPO batch's shape
            ids, mask = encode_pair(tokenizer, *sft.pair_fn(ex))
            P, target = mask.index(1), ids[mask.index(1) :] * (1 + c.max_new_tokens)
            rows += [(ids[:P] + target[: c.max_new_tokens], [0] * P + [1] * c.max_new_tokens)] * c.completions
        sft.step(rows, 1e-6)
    if torch.cuda.is_available() and c.device != "cpu":
        return {"peak_bytes": torch.cuda.max_memory_allocated(), "kind": "cuda max_memory_allocated"}
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    return {"peak_bytes": int(hwm.split()[1]) * 1024, "kind": "process peak RSS (VmHWM)"}


def run_probe(c: BenchConfig, kind: str) -> dict:
    """`probe` in a fresh process, so that nothing else this process did counts in its peak."""
    names = (
        "model",
        "adapter",
        "data_dir",
        "prompts",
        "completions",
        "max_new_tokens",
        "micro_batch_size",
        "device",
        "dtype",
        "gradient_checkpointing",
        "random_init",
    )

    def flag(n, v):
        return [f"--{'' if v else 'no-'}{n}"] if isinstance(v, bool) else [f"--{n}", str(v)]

    argv = [a for n in names for a in flag(n.replace("_", "-"), getattr(c, n))]
    out = subprocess.run(
        [sys.executable, "-m", "ppo.lab.bench_memory", "--probe", kind, *argv],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """`python -m ppo bench --probe ppo|sft`: the memory probe (the benchmark itself is experiments/bench.py)."""
    from ..train.cli import parse_config

    print(json.dumps(probe(parse_config(BenchConfig, argv))))


if __name__ == "__main__":
    main()
