"""ReFT against continued SFT, our GRPO and TRL's GRPO on SVAMP P-CoT: one warm-up, the same training questions and
the same budget for every arm, selection on dev only, and every arm scored on all 1,000 test questions.

    make reproduce-svamp                                   # everything, resumable: rerun to continue
    make reproduce-svamp ARGS="--runs reft:0"              # one arm (a sitting's worth)
    python experiments/reproduce_svamp.py --help           # every setting (ReproduceConfig)

Stages, each skipped when done:
    warm-up   SFT on the first `train_questions` P-CoT programs of train minus the seeded dev split (rebuilt
              bit for bit in a new sitting: its weights' fingerprint is kept in the record and compared)
    arms      `runs`, each arm x seed from the warm-up (ppo.lab.arms): trained for `samples` sampled answers
              (SFT-continued: as many passes over the questions as ReFT makes), dev top-1 scored at `points`
              evenly spaced points, the best point on dev scored on test
    report    the table with intervals and paired tests, and the figures (ppo.lab.reproduce_report)

Run folders (`output_dir`) hold checkpoints; they need not outlive a sitting. What must is small and lands in
`record_dir`: the warm-up's and each finished arm's record (curves, dev and test answers per question), so that
a later sitting skips finished arms, and the report needs no checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..tasks.stages import preflight
from . import arms
from .reproduce_config import WARMUP_SETTINGS, ReproduceConfig, check_record, record_path, recorded_runs, write_record
from .reproduce_report import write_report

__all__ = ["ReproduceConfig", "run_reproduce"]


def run_reproduce(c: ReproduceConfig) -> str:
    """Every stage not yet recorded, then the report; returns the table (Markdown)."""
    if (warm := Path(c.record_dir) / arms.WARMUP_RECORD).is_file():  # every record is checked before any work
        check_record(c, warm, WARMUP_SETTINGS)
    for path in [record_path(c, *run) for run in recorded_runs(c)]:  # earlier sittings' arms too: the table shows them
        if path.is_file():
            check_record(c, path)
    preflight(arms.warmup_config(c), splits=("train", "test"))
    train, dev, test = arms.splits(c)
    warmup = arms.warmup(c, train, dev, test)
    for arm, seed in c.run_list():
        path = record_path(c, arm, seed)
        if path.is_file():
            print(f"[reproduce] {arm} seed {seed}: recorded in {path}, skipped")
            continue
        record = arms.run_arm(c, arm, seed, warmup, train, dev, test)
        write_record(path, {"config": asdict(c), **record})
        print(f"[reproduce] {arm} seed {seed}: test top-1 {record['test']['top1']:.1f} %, recorded in {path}")
    return write_report(c)
