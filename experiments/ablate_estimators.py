"""Ablation: the advantage estimator. PPO with GAE and the value head (the paper's), GRPO, RLOO and Dr. GRPO, on
SVAMP P-CoT, with the same 4 answers to each question and the same steps.

    make ablate-estimators-short                            # the 8-step preset, resumable: rerun to continue
    python experiments/ablate_estimators.py --help          # every setting (ppo.lab.ablate.AblationConfig)

Every configuration starts from the same warm-up checkpoint (make warmup-svamp-pcot), with the same seed(s),
questions and step budget. Results land in --output-dir: results.csv, results.md (dev top-1 with its interval, each
estimator against GAE on the same questions, step time) and PNG plots (with the plots extra).
"""

from __future__ import annotations

from ppo.lab.ablate import AblationConfig, run_ablation
from ppo.lab.grids import estimator_grid
from ppo.train.cli import command, parse_config

# 8 steps of 16 answers (4 questions x 4), responses of at most 192 tokens, beta = 0.01 (the paper's P-CoT value),
# and 100 dev questions scored after step 8 (and once for the warm-up). On 2026-12-02 here a step took about 140 s
# and a dev scoring about 2.5 min: some 22 min a configuration, 1.5 hours for the grid after a 45-min warm-up, so
# that all of it fits in one sitting (run folders do not outlive a sitting here).
PRESET = dict(
    warmup="runs/warmup-svamp-pcot/final",
    data_dir="../shared/data/svamp",
    dataset="svamp",
    answer_format="pcot",
    train_questions=800,
    dev_questions=100,
    steps=8,
    completions_per_step=16,
    eval_every=8,
    max_new_tokens=192,
    kl_coef=0.01,
    output_dir="runs/ablate-estimators",
)


@command
def main(argv: list[str] | None = None) -> None:
    config = parse_config(AblationConfig, argv, **PRESET)
    print(run_ablation(config, estimator_grid(config.completions_per_step)))


if __name__ == "__main__":
    main()
