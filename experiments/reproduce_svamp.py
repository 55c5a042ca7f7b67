"""ReFT against SFT-continued, our GRPO and TRL's GRPO on SVAMP P-CoT, at an equal budget (docs/results.md).

    make reproduce-svamp                                  # everything, resumable: rerun to continue
    make reproduce-svamp ARGS="--runs reft:0"             # one arm x seed
    python experiments/reproduce_svamp.py --help          # every setting (ppo.lab.reproduce.ReproduceConfig)

Finished arms are recorded in --record-dir (docs/results/svamp) and skipped by a later run; the table and the
figures are rewritten there from the records at the end of every run.
"""

from __future__ import annotations

from ppo.lab.reproduce import ReproduceConfig, run_reproduce
from ppo.train.cli import command, parse_config


@command
def main(argv: list[str] | None = None) -> None:
    print(run_reproduce(parse_config(ReproduceConfig, argv)))


if __name__ == "__main__":
    main()
