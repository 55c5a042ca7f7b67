"""The settings of an ablation (`AblationConfig`): PPO from one warm-up checkpoint over a grid (ppo.lab.ablate runs
it), checked when built, before the warm-up loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..lm.models import check_device, check_dtype
from ..train.checks import AT_LEAST_ONE, COUNT, NON_NEGATIVE, POSITIVE, check_choices, check_fields


@dataclass(frozen=True)
class AblationConfig:
    """PPO from one warm-up checkpoint over a grid; the defaults are the CPU preset (docs/ablations.md)."""

    warmup: str = "runs/train-gsm8k/sft/final"
    """Warm-up checkpoint every configuration starts from, and the frozen reference (make train-gsm8k writes it)."""
    data_dir: str | None = "../shared/data/gsm8k"
    """GSM8K or SVAMP folder; `none` = GSM8K from the hub."""
    dataset: Literal["gsm8k", "svamp"] = "gsm8k"
    """Which data format data_dir holds."""
    answer_format: Literal["ncot", "pcot"] = "ncot"
    """ncot = chains of thought; pcot = Python programs, run in the sandbox (as the warm-up was trained)."""
    train_questions: int = 320
    """Training questions (the first N after the dev split, as in the pipeline)."""
    dev_size: int = 200
    """Dev split carved from train (seeded, as in the pipeline)."""
    dev_questions: int = 50
    """Dev questions scored for each configuration."""
    steps: int = 8
    """PPO steps per configuration (the budget)."""
    completions_per_step: int = 8
    """Sampled completions per step, the same for every configuration."""
    eval_every: int = 4
    """Score dev every N steps, for the accuracy curves (the last step is always scored)."""
    max_new_tokens: int = 256
    """Response length limit, in PPO and on dev."""
    lr: float = 3e-6
    """PPO learning rate."""
    kl_coef: float = 0.05
    """beta where the grid does not set it (the paper: 0.05 for N-CoT, 0.01 for P-CoT)."""
    micro_batch_size: int = 4
    """Sequences per forward/backward pass."""
    eval_batch_size: int = 64
    """Dev questions decoded together."""
    seeds: str = "0"
    """Comma-separated seeds; each configuration runs once per seed (mean and spread in the table)."""
    device: str = "auto"
    """auto, cpu, cuda."""
    dtype: str = "auto"
    """auto = bf16 on GPU, fp32 on CPU."""
    output_dir: str = "runs/ablate"
    """One folder per configuration and seed, plus results.csv, results.md and the plots."""

    def __post_init__(self) -> None:  # checked before the warm-up loads, like every stage's settings
        counts = ("train_questions", "dev_size", "dev_questions", "steps", "completions_per_step", "max_new_tokens",
                  "micro_batch_size", "eval_batch_size")  # fmt: skip
        rules = {**dict.fromkeys(counts, AT_LEAST_ONE), "eval_every": COUNT, "lr": POSITIVE, "kl_coef": NON_NEGATIVE}
        check_fields(self, rules)
        check_choices(self)
        if not all(s.strip().isdigit() for s in self.seeds.split(",")):
            raise ValueError(f"--seeds must be comma-separated integers >= 0, like 0,1 (got {self.seeds!r})")
        check_device(self.device)
        check_dtype(self.dtype)
