"""Short probes from the SVAMP experiment's warm-up (ppo.lab.reproduce), to choose its settings on dev before its
budget is spent: one RL arm (or Online-ST, which samples as they do) for a few steps, with this probe's settings
(lr, lam, kl_coef, ...), then one greedy scoring of the dev questions, paired against the warm-up's dev answers
(McNemar). Test is never scored here.

    python experiments/probe_svamp.py --arm reft --lam 1.0 --steps 16
    python experiments/probe_svamp.py --arm online-st --lr 3e-6 --steps 12
    python experiments/probe_svamp.py --help

Each probe's record (settings, per-step training metrics, minutes, dev answers, the paired test) lands in
`record_dir/probes/`, so that the search and its cost stay written down; a recorded probe is skipped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from ..adapters.loading import load_model
from ..tasks.self_training import run_online_st
from ..tasks.stages import preflight, run_ppo
from ..tasks.stats import interval_text, paired
from ..train.checks import AT_LEAST_ONE, check_fields
from ..train.metrics import read_jsonl
from . import arms, warmup_builds
from .reproduce_config import WARMUP_SETTINGS, ReproduceConfig, check_record, write_record

__all__ = ["ProbeConfig", "run_probe"]


@dataclass(frozen=True)
class ProbeConfig(ReproduceConfig):
    """The experiment's settings, and which arm to probe for how long."""

    arm: Literal["reft", "grpo", "online-st"] = "reft"
    """The arm probed, with the experiment's settings for it (ppo.lab.arms.arm_config), except the probe's lr (for
    online-st too, whose arm runs at warmup_lr)."""
    seed: int = 0
    """The arm's seed (data order and sampling)."""
    steps: int = 16
    """Steps of completions_per_step sampled answers each (online-st: its lr schedule spans these steps); dev is
    scored once, after the last."""
    name: str = ""
    """The record's name in record_dir/probes/ (default: arm, lr, lam for reft, and steps: reft-lr3e-06-lam1.0-16)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, {"steps": AT_LEAST_ONE})

    @property
    def label(self) -> str:
        lam = f"-lam{self.lam}" if self.arm == "reft" else ""  # GRPO runs no GAE
        return self.name or f"{self.arm}-lr{self.lr:g}{lam}-{self.steps}"


def halves(rows: list[dict], key: str) -> tuple[float, float]:
    """The mean of `key` over the first and the second half of the steps (the training reward's rise, if any)."""
    values = [r[key] for r in rows if key in r]
    mid = len(values) // 2
    return sum(values[:mid]) / max(mid, 1), sum(values[mid:]) / max(len(values) - mid, 1)


def run_probe(p: ProbeConfig) -> dict:
    """Train the probe (resumed within a sitting), score it on dev, record it; returns the record."""
    path = Path(p.record_dir) / "probes" / f"{p.label}.json"
    if path.is_file():
        print(f"[probe] {p.label}: recorded in {path}, skipped")
        return json.loads(path.read_text())
    warm_path = Path(p.record_dir) / arms.WARMUP_RECORD
    if warm_path.is_file():  # made by the experiment, or by the first probe (warmup_builds.warmup)
        check_record(p, warm_path, WARMUP_SETTINGS)
    preflight(arms.warmup_config(p), splits=("train",))
    train, dev, test = arms.splits(p)
    start = warmup_builds.warmup(p, train, dev, test)
    out = Path(p.output_dir) / "probes" / p.label
    config = arms.arm_config(p, p.arm, p.seed, start["folder"])
    if p.arm == "online-st":  # an SFT arm: its length is a fraction of an epoch, questions_per_step a step
        config = replace(config, epochs=p.steps * config.questions_per_step / len(train), lr=p.lr, eval_every=0,
                         save_every=p.steps, output_dir=str(out))  # fmt: skip
        folder = run_online_st(config, train)
    else:
        config = replace(config, steps=p.steps, eval_every=0, save_every=p.steps, output_dir=str(out))
        folder = run_ppo(config, train)
    lm, tokenizer = load_model(folder, p.device, p.dtype)
    rows = read_jsonl(out / "metrics.jsonl")
    # what the sampled answers scored: Online-ST logs the share right; the RL arms the reward and the share right
    score, accuracy = ("online/accuracy",) * 2 if p.arm == "online-st" else ("objective/score", "objective/accuracy")
    scored = arms.scored(p, lm, tokenizer, dev, f"{p.label} dev")
    own = warmup_builds.start_of(p.record_dir, start["fingerprint"], json.loads(warm_path.read_text()))
    record = {
        "config": asdict(p),
        "warmup": start["fingerprint"],
        "settings": asdict(config),
        "train_min": arms.train_minutes(rows),
        "score_halves": halves(rows, score),
        "accuracy_halves": halves(rows, accuracy),
        "dev": scored,
        "vs_warmup": paired(own["dev"]["correct"], scored["correct"]),
        "training": arms.training(rows),
    }
    write_record(path, record)
    return record


def answered(scored: dict) -> list[bool]:
    """Which questions got a program that ran and returned a number (the reward's 0.1 tier and above)."""
    return [a is not None for a in scored["answers"]]


def summary(record: dict, warm_dev: dict) -> str:
    """One line: the training reward's halves, dev top-1 with its interval, and the paired tests on the warm-up's
    dev answers, for right answers and for answered ones."""
    dev, c = record["dev"], record["config"]
    right, ran = record["vs_warmup"], paired(answered(warm_dev), answered(dev))
    lam = f" lam {c['lam']}" if c["arm"] == "reft" else ""
    return (f"{c['arm']} lr {c['lr']:g}{lam}, {c['steps']} steps: "
            f"score {record['score_halves'][0]:.3f} -> {record['score_halves'][1]:.3f}; "
            f"dev {interval_text(sum(dev['correct']), len(dev['correct']))}, {right['gain']:+.1f} points on the "
            f"warm-up ({right['only_b']} gained, {right['only_a']} lost, McNemar p = {right['p']:.2g}); answered "
            f"{ran['gain']:+.1f} points ({ran['only_b']} gained, {ran['only_a']} lost, p = {ran['p']:.2g}); "
            f"{record['train_min']:.1f} min of training")  # fmt: skip


def summaries(record_dir: str | Path) -> list[str]:
    """The summary of every recorded probe, by name."""
    warm = json.loads((Path(record_dir) / arms.WARMUP_RECORD).read_text())
    records = [json.loads(p.read_text()) for p in sorted((Path(record_dir) / "probes").glob("*.json"))]
    return [summary(r, warmup_builds.start_of(record_dir, r["warmup"], warm)["dev"]) for r in records]
