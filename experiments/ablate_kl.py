"""Ablation: beta in {0, 0.01, 0.05, 0.2}, the adaptive controller, and the k3 estimator.

    make ablate-kl-gsm8k                            # the GSM8K preset, resumable: rerun to continue
    python experiments/ablate_kl.py --help          # every setting (ppo.lab.ablate.AblationConfig)

Every configuration starts from the same warm-up checkpoint, with the same seed(s), questions and step budget.
Results land in --output-dir: results.csv, results.md and PNG plots (with the plots extra).
"""

from __future__ import annotations

from ppo.lab.ablate import AblationConfig, run_ablation
from ppo.lab.grids import kl_grid
from ppo.train.cli import command, parse_config


@command
def main(argv: list[str] | None = None) -> None:
    config = parse_config(AblationConfig, argv, output_dir="runs/ablate-kl")
    print(run_ablation(config, kl_grid()))


if __name__ == "__main__":
    main()
