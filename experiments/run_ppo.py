"""PPO on GSM8K or SVAMP training questions, from any starting checkpoint (SmolLM2, or a warm-up SFT folder).

    python experiments/run_ppo.py --model runs/sft/final --data-dir ../shared/data/gsm8k --steps 50

Every flag is a field of `ppo.train.config.PPOConfig`; `--help` lists them. `torchrun --nproc_per_node=N` runs it on N
processes (docs/distributed.md). Rerunning the same command resumes from the
last checkpoint in --output-dir (and does nothing once output_dir/final exists).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ppo.tasks.data import load_examples
from ppo.tasks.stages import run_ppo
from ppo.train import distributed
from ppo.train.cli import parse_config
from ppo.train.config import PPOConfig


def main(argv: list[str] | None = None) -> None:
    config = parse_config(PPOConfig, argv)
    distributed.init()  # under torchrun; a no-op otherwise
    torch.manual_seed(config.seed + distributed.rank())  # each rank its own samples
    start = time.perf_counter()
    examples = load_examples(config.dataset, config.data_dir, "train", config.answer_format)
    final = run_ppo(config, examples[: config.max_questions])
    for line in (Path(config.output_dir) / "metrics.jsonl").read_text().splitlines():
        metrics = json.loads(line)
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
    print(
        f"[ppo] done in {time.perf_counter() - start:.1f} s; metrics in {config.output_dir}/metrics.jsonl, "
        f"policy in {final}"
    )


if __name__ == "__main__":
    main()
