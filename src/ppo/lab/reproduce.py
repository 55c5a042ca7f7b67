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
    base      the base model before the warm-up, scored on dev and test (`base` in `runs`)
    scale     accuracy against k of the warm-up and a chosen arm, with the critic's and a verifier's reranking
              (ppo.lab.reproduce_scaling: scale:warmup, scale:ARM:SEED and verifier in `runs`)
    report    the table with intervals and paired tests, and the figures (ppo.lab.reproduce_report)

Run folders (`output_dir`) hold checkpoints; they need not outlive a sitting. What must is small and lands in
`record_dir`: the warm-up's and each finished arm's record (curves, dev and test answers per question), so that
a later sitting skips finished arms, and the report needs no checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..adapters.loading import load_model
from ..tasks.stages import preflight
from . import arms, reproduce_scaling, warmup_builds
from .reproduce_config import (
    BASE_SETTINGS,
    SCALING_SETTINGS,
    WARMUP_SETTINGS,
    ReproduceConfig,
    check_record,
    record_path,
    recorded_runs,
    write_record,
)
from .reproduce_report import write_report

__all__ = ["ReproduceConfig", "run_reproduce"]

BASE_RECORD = "base.json"


def run_reproduce(c: ReproduceConfig) -> str:
    """Every stage not yet recorded, then the report; returns the table (Markdown)."""
    if (warm := Path(c.record_dir) / arms.WARMUP_RECORD).is_file():  # every record is checked before any work
        check_record(c, warm, WARMUP_SETTINGS)
    if (base_path := Path(c.record_dir) / BASE_RECORD).is_file():
        check_record(c, base_path, BASE_SETTINGS)
    for path in [record_path(c, *run) for run in recorded_runs(c)]:  # earlier sittings' arms too: the table shows them
        if path.is_file():
            check_record(c, path)
    check_scaling(c)
    preflight(arms.warmup_config(c), splits=("train", "test"))
    train, dev, test = arms.splits(c)
    warmup = warmup_builds.warmup(c, train, dev, test)
    for arm, seed in c.run_list():
        path = record_path(c, arm, seed)
        if path.is_file():
            print(f"[reproduce] {arm} seed {seed}: recorded in {path}, skipped")
            continue
        warmup_builds.record_build(c, warmup, dev, test)  # once, before the first arm from a build not yet scored
        record = arms.run_arm(c, arm, seed, warmup, train, dev, test)
        write_record(path, {"config": asdict(c), **record})
        print(f"[reproduce] {arm} seed {seed}: test top-1 {record['test']['top1']:.1f} %, recorded in {path}")
    if ("base", "", 0) in c.work():
        base(c, dev, test)
    reproduce_scaling.run_scaling(c, warmup, train, test)
    if ("verifier", "", 0) in c.work():
        reproduce_scaling.run_verifier_scores(c, warmup, train)
    return write_report(c)


def base(c: ReproduceConfig, dev: list, test: list) -> None:
    """The base model, before any SFT, scored on dev and test with the same prompt and answer extraction as every
    other model (the paper's table starts with it); recorded once."""
    path = Path(c.record_dir) / BASE_RECORD
    if path.is_file():
        print(f"[reproduce] base model: recorded in {path}, skipped")
        return
    lm, tokenizer = load_model(c.model, c.device, c.dtype)
    write_record(path, {"config": asdict(c), "model": c.model, "dev": arms.scored(c, lm, tokenizer, dev, "base dev"),
                        "test": arms.scored(c, lm, tokenizer, test, "base test")})  # fmt: skip


def check_scaling(c: ReproduceConfig) -> None:
    """Before any work: the scale and verifier records were made with these settings (the warm-up's scale record
    and the verifier depend on the warm-up's and the scaling settings only), and an arm to scale is recorded or
    runs first."""
    for path in reproduce_scaling.scale_paths(c):
        warm = path.stem == f"scale-{reproduce_scaling.WARMUP}"
        check_record(c, path, (*WARMUP_SETTINGS, *SCALING_SETTINGS) if warm else tuple(asdict(c)))
    if (path := Path(c.record_dir) / reproduce_scaling.VERIFIER_RECORD).is_file():
        check_record(c, path, (*WARMUP_SETTINGS, *SCALING_SETTINGS, "max_new_tokens"))
    for arm, seed in c.scale_list():
        recorded = record_path(c, arm, seed).is_file() or (arm, seed) in c.run_list()
        if arm != reproduce_scaling.WARMUP and not recorded:
            raise ValueError(f"scale:{arm}:{seed} needs that arm's record ({record_path(c, arm, seed)}): add "
                             f"{arm}:{seed} to --runs before it")  # fmt: skip
