"""The ablation grids on the SVAMP P-CoT setting of the powered experiment (docs/ablations.md): the reft (or grpo)
arm with a few settings changed, from the experiment's warm-up, at its 768 sampled answers, selected on dev, and
scored on all 1,000 test questions.

    make ablate-kl                                     # beta, adaptive beta and k3; resumable: rerun to continue
    make ablate-sampling                               # temperature x top-p
    make ablate-estimators                             # GAE, GRPO, RLOO and Dr. GRPO at 4 answers x 4 questions
    make ablate-kl ARGS="--cells 2,3 --seeds 1"        # some cells, another seed
    make ablate-kl ARGS="--cells near-best --seeds 1"  # the second seed the first pass found due
    python experiments/ablate_svamp.py --help          # every setting (ppo.lab.ablate_svamp_config)

Finished cells are recorded in docs/results/svamp/ablations/GRID (a cell that changes nothing is the experiment's
own arm, recorded beside it) and skipped by a later run; the grid's table and figures are rewritten there.
"""

from __future__ import annotations

from ppo.lab.ablate_svamp import run_svamp_ablation
from ppo.lab.ablate_svamp_config import SvampAblationConfig
from ppo.train.cli import command, parse_config


@command
def main(argv: list[str] | None = None) -> None:
    print(run_svamp_ablation(parse_config(SvampAblationConfig, argv)))


if __name__ == "__main__":
    main()
