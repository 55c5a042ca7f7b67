"""GSM8K as P-CoT: every training solution whose calculator notes make a program that returns the gold answer,
written as `def solution():` programs in the ReFT release's format (ppo.tasks.gsm8k_pcot). Offline, deterministic.

    python experiments/gsm8k_pcot.py --data-dir ../shared/data/gsm8k --out-dir runs/gsm8k-pcot
    ppo-sft --dataset gsm8k --answer-format pcot --data-dir runs/gsm8k-pcot ...   # then train on it
"""

from __future__ import annotations

from ppo.tasks.gsm8k_pcot import PcotConfig, write_pcot
from ppo.train.cli import command, parse_config


@command
def main(argv: list[str] | None = None) -> None:
    config = parse_config(PcotConfig, argv)
    path, written, left_out = write_pcot(config)
    total = written + sum(left_out.values())
    print(f"[gsm8k-pcot] {written} of {total} training solutions ({100 * written / total:.1f} %) as programs "
          f"in {path}")  # fmt: skip
    for reason, n in left_out.most_common():
        print(f"[gsm8k-pcot] left out, {reason}: {n}")


if __name__ == "__main__":
    main()
