"""ReFT end to end: warm-up SFT, PPO, and the comparison table (base, SFT, SFT-continued, ReFT).

make train-gsm8k                             # N-CoT GSM8K, the CPU preset (defaults of PipelineConfig)
make train-svamp-pcot                        # P-CoT SVAMP, the CPU preset
python experiments/run_reft.py --help        # every setting
python experiments/run_reft.py --resume ...  # continue an interrupted run
"""

from __future__ import annotations

import time

from ppo.tasks.pipeline import PipelineConfig, results_table, run_pipeline
from ppo.train.cli import parse_config


def main(argv: list[str] | None = None) -> None:
    config = parse_config(PipelineConfig, argv)
    start = time.perf_counter()
    summary = run_pipeline(config)
    print("\n" + results_table(summary["results"]))
    stages = ", ".join(f"{k} {v / 60:.1f}" for k, v in summary["stage_seconds"].items())
    print(
        f"\nthis invocation: {(time.perf_counter() - start) / 60:.1f} min; stages over all invocations, in min: "
        f"{stages}\neverything is in {config.output_dir}/ (results.md, results.json)"
    )


if __name__ == "__main__":
    main()
