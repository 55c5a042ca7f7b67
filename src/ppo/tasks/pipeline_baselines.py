"""The pipeline's optional stages: the paper's self-training baselines and a verifier, at ReFT's budget.

What is matched is the number of sampled answers, as between the RL arms of `ppo.lab.reproduce`:
    Online-ST   ReFT's answers per step (k = samples_per_prompt answers to rollout_batch_size questions), for as
                many passes over the questions as ReFT makes, at the SFT stage's learning rate
    Offline-ST  ReFT's answers drawn once up front: k = ceil(ReFT's answers / questions) per question; then SFT on
                the annotations plus the right ones, for as many passes as ReFT makes (SFT-continued's)
    verifier    the same k per question, drawn from the warm-up; one pass over the labelled answers
Every stage samples at PPO's temperature and answer length, and labels answers as PPO's reward does.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

from ..train.config import PPOConfig, SFTConfig
from ..train.verifier_training import VerifierConfig
from .self_training import OfflineSTConfig, OnlineSTConfig


def sampling(ppo: PPOConfig, batch_size: int) -> dict:
    """How the baselines draw and label answers: as PPO does."""
    return {"temperature": ppo.temperature, "max_new_tokens": ppo.max_new_tokens, "sample_batch_size": batch_size,
            "program_timeout_s": ppo.program_timeout_s, "tolerance": ppo.answer_tolerance}  # fmt: skip


def answers_per_question(ppo: PPOConfig, questions: int) -> int:
    """Offline-ST's and the verifier's k: ReFT's sampled answers spread over the questions, rounded up."""
    return math.ceil(ppo.steps * ppo.rollout_batch_size * ppo.samples_per_prompt / questions)


def baseline_configs(sft: SFTConfig, ppo: PPOConfig, questions: int, batch_size: int, out: Path) -> dict:
    """{stage name: settings} of Offline-ST, Online-ST and the verifier, from the warm-up's SFT settings (`sft`, its
    model the warm-up checkpoint) and PPO's; `batch_size` decodes the samples (evaluation's)."""
    skip = {"epochs", "output_dir", "grad_accum", "eval_every"}  # set here; no dev selection in these stages
    base = {f.name: getattr(sft, f.name) for f in fields(SFTConfig) if f.name not in skip}
    passes = ppo.steps * ppo.rollout_batch_size / questions  # how many times ReFT goes over the questions
    k, draw = answers_per_question(ppo, questions), sampling(ppo, batch_size)
    online = {"k": ppo.samples_per_prompt, "questions_per_step": ppo.rollout_batch_size, "grad_accum": 1}
    return {
        "offline_st": OfflineSTConfig(
            **base, **draw, k=k, epochs=passes, grad_accum=sft.grad_accum, output_dir=str(out / "offline_st")
        ),
        "online_st": OnlineSTConfig(**base, **draw, **online, epochs=passes, output_dir=str(out / "online_st")),
        "verifier": VerifierConfig(
            **base, **draw, k=k, epochs=1.0, grad_accum=sft.grad_accum, output_dir=str(out / "verifier")
        ),
    }
