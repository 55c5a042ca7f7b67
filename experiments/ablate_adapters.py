"""Comparison: full fine-tuning, LoRA and LoReFT in PPO from the same warm-up, at equal steps.

    make ablate-adapters                                  # the CPU preset, resumable: rerun to continue
    python experiments/ablate_adapters.py --help          # every setting (ppo.lab.ablate.AblationConfig)

Every configuration starts from the same warm-up checkpoint, with the same seed(s), questions and step budget.
Results land in --output-dir: results.csv, results.md and PNG plots (with the plots extra).
"""

from __future__ import annotations

from ppo.lab.ablate import AblationConfig, run_ablation
from ppo.lab.grids import adapter_grid
from ppo.train.cli import command, parse_config


@command
def main(argv: list[str] | None = None) -> None:
    # The sampling grid's CPU preset: 5 steps, responses of at most 192 tokens, dev scored at the end.
    config = parse_config(
        AblationConfig, argv, output_dir="runs/ablate-adapters", steps=5, max_new_tokens=192, eval_every=5
    )
    print(run_ablation(config, adapter_grid()))


if __name__ == "__main__":
    main()
