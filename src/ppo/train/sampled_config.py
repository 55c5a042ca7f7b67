"""Settings of a stage that trains on answers the model sampled itself: SFT's settings, and how the answers are
drawn and labelled. The verifier (`ppo.train.verifier_training`) and Offline-ST (`ppo.tasks.self_training`) build
on it."""

from __future__ import annotations

from dataclasses import dataclass

from .config import SFTConfig


@dataclass(frozen=True)
class SampledSFTConfig(SFTConfig):
    """SFT on `k` answers per training question sampled from `model`, each labelled right or wrong."""

    k: int = 4
    """Answers sampled per training question (the paper samples 100 with a 7B model)."""
    temperature: float = 1.0
    """Sampling temperature of those answers."""
    max_new_tokens: int = 256
    """Answer length limit when sampling."""
    sample_batch_size: int = 64
    """Questions decoded together when sampling."""
    program_timeout_s: float = 3.0
    """P-CoT: time limit per program when labelling."""
    tolerance: float = 1e-2
    """Absolute tolerance for a right answer, as in the reward and evaluation."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("k", "max_new_tokens", "sample_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1 (got {getattr(self, name)!r})")
        if not self.temperature > 0:
            raise ValueError(f"--temperature must be a finite number > 0 (got {self.temperature!r})")

    def refuse(self, *names: str) -> None:
        """SFT settings that a stage built on this one does not act on yet: set, they are an error, not ignored."""
        for name in names:
            if getattr(self, name) != type(self).__dataclass_fields__[name].default:
                raise ValueError(f"--{name.replace('_', '-')} is not supported by this stage yet")
