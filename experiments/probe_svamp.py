"""A short probe from the SVAMP experiment's warm-up, scored on dev and paired against it (docs/results.md).

    python experiments/probe_svamp.py --arm reft --lam 1.0 --steps 16
    python experiments/probe_svamp.py --help              # every setting (ppo.lab.probe.ProbeConfig)

The record lands in --record-dir/probes (docs/results/svamp/probes); a recorded probe is skipped.
"""

from __future__ import annotations

from ppo.lab.probe import ProbeConfig, run_probe, summaries
from ppo.train.cli import command, parse_config


@command
def main(argv: list[str] | None = None) -> None:
    config = parse_config(ProbeConfig, argv)
    run_probe(config)
    print("\n".join(summaries(config.record_dir)))  # every recorded probe, by name


if __name__ == "__main__":
    main()
