"""Reranking k sampled answers by a scorer: keep the answer of the highest-scored sample (rerank@k).

Two scorers read the same way (`ppo.lm.scoring`: the scalar head at the answer's last token):
    critic    a ReFT checkpoint's own value head, which PPO trained to predict the score: reranking for free
    verifier  a separate LM-plus-head trained to tell right answers from wrong ones (the ReFT paper's reranking)
"""

from __future__ import annotations

from pathlib import Path

from ..adapters.loading import load_policy
from ..lm.policy import VALUE_HEAD_FILE


def rerank(answers: list[float | None], scores: list[float]) -> float | None:
    """The answer of the highest-scored sample that has one (a program that failed has none); a tie goes to the
    earliest sample. None when no sample answered."""
    if len(answers) != len(scores):
        raise ValueError(f"{len(answers)} answers but {len(scores)} scores")
    answered = [(score, -i) for i, (a, score) in enumerate(zip(answers, scores)) if a is not None]
    return answers[-max(answered)[1]] if answered else None


def load_scorer(spec: str, device: str = "auto", dtype: str = "auto"):
    """A policy whose value head was trained (a ReFT checkpoint, or a verifier) and its tokenizer; a folder without a
    saved head is an error, since a fresh head scores every answer 0."""
    if not (Path(spec) / VALUE_HEAD_FILE).is_file():
        raise ValueError(f"{spec} has no {VALUE_HEAD_FILE}: reranking needs a ReFT checkpoint or a trained verifier")
    policy, tokenizer = load_policy(spec, device=device, dtype=dtype)
    policy.eval()
    return policy, tokenizer
