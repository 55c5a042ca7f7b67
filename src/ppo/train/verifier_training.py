"""The verifier: an LM with a scalar head, trained to tell right answers from wrong ones (Cobbe et al. 2021; the
ReFT paper's reranking), on answers the task sampled and labelled.

It trains with SFT's loop (`SFTTrainer`: batches, schedule, resume, checkpoints, logs); only a row and its loss
differ. A row is (prompt, answer, label); the loss is the binary cross-entropy of the head's output at the
answer's last token (`ppo.core.verifier`), a mean over the step's answers. The checkpoint is a `PolicyWithValue`
folder, so `ppo-evaluate --verifier FOLDER` reranks with it.

Shapes: B = answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..core.verifier import verifier_loss
from ..lm.policy import PolicyWithValue
from ..lm.scoring import answer_scores, encode_answers
from .config import SFTConfig
from .sft import SFTTrainer

# triple_fn(example) -> (prompt text, answer text, label): a sampled answer and whether it was right
TripleFn = Callable[[Any], tuple[str, str, float]]


@dataclass(frozen=True)
class VerifierConfig(SFTConfig):
    """Train a verifier: sample `k` answers to each training question from `model`, label each by whether it is
    right, and train the model with a scalar head on the labels (SFT's settings drive the training)."""

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


class VerifierTrainer(SFTTrainer):
    """SFT's loop over (prompt, answer, label) rows, with the verifier's loss on `policy`'s head."""

    def __init__(self, policy: PolicyWithValue, tokenizer, config: SFTConfig, triple_fn: TripleFn):
        super().__init__(policy.lm, tokenizer, config, triple_fn, model=policy)

    def encode(self, example) -> tuple[str, str, float, int]:
        prompt, answer, label = self.pair_fn(example)
        count = lambda text: len(self.tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        return prompt, answer, float(label), count(prompt) + count(answer) + 1  # as encode_answers lays it out

    def length(self, row) -> int:
        return row[3]

    def units(self, row) -> int:
        return 1  # the loss is a mean over answers

    def loss_sum(self, rows: list) -> torch.Tensor:
        batch = encode_answers(self.tokenizer, [r[0] for r in rows], [r[1] for r in rows], self.device)
        labels = torch.tensor([r[2] for r in rows], device=self.device)
        return verifier_loss(answer_scores(self.model, *batch), labels)[0] * len(rows)  # (B,) -> summed
