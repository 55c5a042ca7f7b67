"""The verifier: an LM with a scalar head, trained to tell right answers from wrong ones (Cobbe et al. 2021; the
ReFT paper's reranking), on answers the task sampled and labelled.

It trains with SFT's loop (`SFTTrainer`: batches, schedule, resume, checkpoints, logs); only a row and its loss
differ. A row is (prompt, answer, label); the loss is the binary cross-entropy of the head's output at the
answer's last token (`ppo.core.verifier`), a mean over the step's answers. Each step's log line adds how well the
verifier scored that step's answers before it learned from them (verifier/accuracy, p_right, p_wrong). The
checkpoint is a `PolicyWithValue` folder, so `ppo-evaluate --verifier FOLDER` reranks with it.

Shapes: B = answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..core.verifier import verifier_counts, verifier_loss, verifier_stats
from ..lm.policy import PolicyWithValue
from ..lm.scoring import answer_scores, encode_answers
from . import distributed
from .config import SFTConfig
from .sampled_config import SampledSFTConfig
from .sft import SFTTrainer

# triple_fn(example) -> (prompt text, answer text, label): a sampled answer and whether it was right
TripleFn = Callable[[Any], tuple[str, str, float]]


@dataclass(frozen=True)
class VerifierConfig(SampledSFTConfig):
    """Train a verifier: sample `k` answers to each training question from `model`, label each by whether it is
    right, and train the model with a scalar head on the labels (SFT's settings drive the training; --fsdp and
    --eval-every are not supported)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.refuse("fsdp", "eval_every")


class VerifierTrainer(SFTTrainer):
    """SFT's loop over (prompt, answer, label) rows, with the verifier's loss on `policy`'s head."""

    def __init__(self, policy: PolicyWithValue, tokenizer, config: SFTConfig, triple_fn: TripleFn):
        super().__init__(policy.lm, tokenizer, config, triple_fn, model=policy)
        self.counts = torch.zeros(5)  # the step's verifier_counts, summed over its micro-batches

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
        scores = answer_scores(self.model, *batch)  # (B,)
        self.counts += verifier_counts(scores, labels)
        return verifier_loss(scores, labels)[0] * len(rows)  # (B,) -> summed

    def step(self, rows: list, lr: float) -> dict[str, float]:
        """SFT's step, and the verifier's stats over the whole step's answers (every rank's): how often the sign of
        the score is right, and the mean probability it gives right and wrong answers, before the update."""
        self.counts = torch.zeros(5)
        metrics = super().step(rows, lr)
        return {**metrics, **verifier_stats(distributed.all_reduce(self.counts))}
