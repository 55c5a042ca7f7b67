"""Reranking k sampled answers by a scorer: keep the answer of the highest-scored sample (rerank@k).

Two scorers read the same way (`ppo.lm.scoring`: the scalar head at the answer's last token):
    critic    a ReFT checkpoint's own value head, which PPO trained to predict the score: reranking for free
    verifier  a separate LM-plus-head trained to tell right answers from wrong ones (the ReFT paper's reranking)
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file
from tqdm.auto import tqdm

from ..adapters.loading import load_model, load_policy
from ..lm.policy import VALUE_HEAD_FILE
from ..lm.scoring import head_scores
from ..train import distributed
from .eval_config import EvalConfig


def rerank(answers: list[float | None], scores: list[float]) -> float | None:
    """The answer of the highest-scored sample that has one (a program that failed has none); a tie goes to the
    earliest sample. None when no sample answered."""
    if len(answers) != len(scores):
        raise ValueError(f"{len(answers)} answers but {len(scores)} scores")
    answered = [(score, -i) for i, (a, score) in enumerate(zip(answers, scores)) if a is not None]
    return answers[-max(answered)[1]] if answered else None


def score_samples(scorer, prompts: list[str], samples: list[list[str]], batch_size: int, desc: str) -> list[list]:
    """A scorer's (policy, tokenizer) score for every sample of every question, in order of answer length (little
    padding); under torchrun rank r of N scores pairs r, r + N, ... and every rank gets all the scores back."""
    policy, tokenizer = scorer
    pairs = [(prompts[q], text) for q, texts in enumerate(samples) for text in texts]
    mine = sorted(range(distributed.rank(), len(pairs), distributed.world_size()), key=lambda i: len(pairs[i][1]))
    done = []
    for start in tqdm(range(0, len(mine), batch_size), desc=desc, unit="batch", disable=not distributed.is_main()):
        rows = mine[start : start + batch_size]
        done += zip(rows, head_scores(policy, tokenizer, [pairs[i][0] for i in rows], [pairs[i][1] for i in rows]))
    flat = [0.0] * len(pairs)
    for i, score in distributed.gather(done):
        flat[i] = score
    starts = [0]
    for texts in samples:
        starts.append(starts[-1] + len(texts))
    return [flat[a:b] for a, b in zip(starts, starts[1:])]


def head_state(spec: str) -> str:
    """'trained', 'zero' (saved but never trained: a critic-free run's checkpoint, whose head stays at its zero
    start) or 'none' (no saved head), for a model spec."""
    path = Path(spec) / VALUE_HEAD_FILE
    if not path.is_file():
        return "none"
    return "trained" if any(t.any() for t in load_file(path).values()) else "zero"


def has_head(spec: str) -> bool:
    """Whether a model spec is a folder with a trained value head (a ReFT checkpoint, or a verifier)."""
    return head_state(spec) == "trained"


def check_scorer(spec: str) -> None:
    """Before any model loads: a scorer is a folder with a trained value head (an untrained one scores every
    answer 0, and rerank@k would silently be the first sample's answer)."""
    state = head_state(spec)
    if state == "none":
        raise ValueError(f"{spec} has no {VALUE_HEAD_FILE}: reranking needs a ReFT checkpoint or a trained verifier")
    if state == "zero":
        raise ValueError(f"{spec} has a value head that was never trained (all zeros; a critic-free run?)")


def load_scorer(spec: str, device: str = "auto", dtype: str = "auto"):
    """A policy whose value head was trained (a ReFT checkpoint, or a verifier) and its tokenizer."""
    check_scorer(spec)
    policy, tokenizer = load_policy(spec, device=device, dtype=dtype)
    policy.eval()
    return policy, tokenizer


def load_evaluated(e: EvalConfig) -> tuple:
    """(lm, tokenizer, scorers) of the model an evaluation scores: rerank@k's scorers are the verifier, if given,
    and with --rerank-critic the model's own critic where it has a trained one (ReFT's checkpoint; an SFT model has
    no value head), whose LM is then the one evaluated (one copy in memory)."""
    scorers = {"critic": load_scorer(e.model, e.device, e.dtype)} if e.rerank_critic and has_head(e.model) else {}
    if e.verifier is not None:
        scorers["verifier"] = load_scorer(e.verifier, e.device, e.dtype)
    if "critic" in scorers:
        return scorers["critic"][0].lm, scorers["critic"][1], scorers
    return *load_model(e.model, e.device, e.dtype), scorers
