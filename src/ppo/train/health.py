"""NaN and inf: a check that every rank takes together, and the error that makes the trainer skip a step."""

from __future__ import annotations

import torch

from . import distributed
from .fsdp import local


class NonFiniteError(RuntimeError):
    """NaN or inf where a step cannot use it: the step is skipped (see `PPOTrainer.skip`)."""


def check_finite(what: str, *tensors: torch.Tensor) -> None:
    """Raise NonFiniteError if any rank has a NaN or inf in `tensors` (so all ranks skip the step together)."""
    if not distributed.all_true(all(bool(torch.isfinite(local(t)).all()) for t in tensors)):
        raise NonFiniteError(f"NaN or inf in the {what}")
