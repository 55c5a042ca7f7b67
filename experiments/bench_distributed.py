"""PPO steps under torchrun: seconds per step, and peak memory per rank, for one process, DDP or FSDP2
(docs/distributed.md). The batch is `make bench`'s (ppo.bench.BenchConfig), global: N ranks share it.

    python experiments/bench_distributed.py                                    # 1 process
    torchrun --nproc_per_node=2 experiments/bench_distributed.py               # DDP, 2 ranks
    torchrun --nproc_per_node=2 experiments/bench_distributed.py --fsdp        # FSDP2, 2 ranks

Each run appends one JSON line to --output; rank 0 prints it.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from ppo import distributed
from ppo.bench import BenchConfig, setup
from ppo.fsdp import shard_layers
from ppo.policy import load_policy
from ppo.reference import make_reference
from ppo.trainer import PPOTrainer


def peak_bytes(device: str) -> int:
    """This process's peak: CUDA's max allocated on a GPU, else the peak resident set (VmHWM)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated()
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    return int(hwm.split()[1]) * 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdp", action="store_true", help="shard the decoder layers (FSDP2)")
    parser.add_argument("--repeats", type=int, default=2, help="timed PPO steps, after one warm-up")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default="../shared/data/gsm8k")
    parser.add_argument("--output", default="runs/bench-distributed/results.jsonl")
    args = parser.parse_args(argv)
    distributed.init()
    bench = BenchConfig(data_dir=args.data_dir, device=args.device)
    config, examples, device = setup(bench)
    policy, tokenizer = load_policy(config.model, "shared", config.device, config.dtype)
    reference = make_reference(policy, config, resumed=False)
    if args.fsdp:
        shard_layers(policy.lm)
        shard_layers(reference.lm)
    trainer = PPOTrainer(policy, reference, tokenizer, config)
    mine = distributed.split_evenly(examples)
    steps = []
    for i in range(args.repeats + 1):
        torch.manual_seed(1000 * distributed.rank() + i)
        steps.append(trainer.step(mine))
    timed = steps[1:]
    peaks = distributed.gather([peak_bytes(str(device))])
    result = {"ranks": distributed.world_size(), "mode": "fsdp2" if args.fsdp else "ddp" if distributed.world_size() > 1
              else "single", "device": str(device), "threads": torch.get_num_threads(),
              "rollouts": bench.prompts * bench.completions, "max_new_tokens": bench.max_new_tokens,
              **{k: statistics.median(s[f"time/{k}"] for s in timed) for k in ("step_s", "rollout_s", "update_s")},
              "peak_gib_per_rank": [round(p / 2 ** 30, 2) for p in peaks]}
    if distributed.is_main():
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "a") as f:
            f.write(json.dumps(result) + "\n")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
