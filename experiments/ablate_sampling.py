"""Ablation: temperature x top-p x samples per question, at an equal number of completions.

    make ablate-sampling-gsm8k                            # the GSM8K preset, resumable: rerun to continue
    python experiments/ablate_sampling.py --help          # every setting (ppo.lab.ablate.AblationConfig)

Every configuration starts from the same warm-up checkpoint, with the same seed(s), questions and step budget.
Results land in --output-dir: results.csv, results.md and PNG plots (with the plots extra).
"""

from __future__ import annotations

from ppo.lab.ablate import AblationConfig, run_ablation
from ppo.lab.grids import sampling_grid
from ppo.train.cli import command, parse_config


@command
def main(argv: list[str] | None = None) -> None:
    # 12 configurations in at most 90 min on 2 cores: 5 steps, responses of at most 192 tokens, and dev scored
    # once at the end (and once for the warm-up). Raise --steps and --max-new-tokens on a bigger machine.
    config = parse_config(
        AblationConfig, argv, output_dir="runs/ablate-sampling", steps=5, max_new_tokens=192, eval_every=5
    )
    print(run_ablation(config, sampling_grid(config.completions_per_step)))


if __name__ == "__main__":
    main()
