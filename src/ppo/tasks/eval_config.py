"""The settings of an evaluation (`ppo-evaluate`, and the pipeline's `--eval-NAME`), checked before any model loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..lm.models import check_device, check_dtype
from ..train.checks import EVAL_RULES, check_choices, check_fields


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a model's answers on a split."""

    model: str = "smollm2-135m"
    """Model to evaluate: `smollm2-135m`, a local folder or a hub id."""
    device: str = "auto"
    """Device: auto, cpu, cuda, ..."""
    dtype: str = "auto"
    """auto = bf16 on GPU, fp32 on CPU."""
    data_dir: str | None = None
    """Data folder (GSM8K JSONL or SVAMP JSON); None = openai/gsm8k from the hub."""
    dataset: Literal["gsm8k", "svamp"] = "gsm8k"
    """Which data format data_dir holds."""
    answer_format: Literal["ncot", "pcot"] = "ncot"
    """ncot = chain of thought; pcot = a Python solution(), run in ppo.tasks.sandbox."""
    program_timeout_s: float = 3.0
    """P-CoT: time limit per program."""
    split: Literal["test", "dev", "train"] = "test"
    """dev = the seeded dev split carved from train (as SFT and the pipeline carve it)."""
    dev_size: int = 200
    """Size of the dev split (must match the one used in training)."""
    seed: int = 0
    """Seed of the dev split and of sampling."""
    limit: int | None = None
    """Evaluate the first N questions of the split only."""
    prompt_template: Literal["reft", "chat"] = "reft"
    """The prompt, shared with SFT and RL."""
    max_new_tokens: int = 400
    """Answer length limit."""
    batch_size: int = 64
    """Questions decoded together."""
    k: int = 1
    """Samples per question for vote@k and pass@k (1 = greedy top-1 only)."""
    temperature: float = 1.0
    """Sampling temperature for the k samples (the paper: 1.0)."""
    rerank_critic: bool = False
    """With k > 1: also rerank@k by the model's own value head (a ReFT checkpoint's critic)."""
    verifier: str | None = None
    """With k > 1: also rerank@k by this verifier checkpoint (a folder with a trained value head)."""
    tolerance: float = 1e-2
    """Absolute tolerance for a correct answer."""
    output_dir: str = "runs/eval"
    """Where predictions.jsonl and summary.json go."""

    def __post_init__(self) -> None:  # before any model loads
        check_choices(self)
        check_device(self.device)
        check_dtype(self.dtype)
        check_fields(self, EVAL_RULES)
        if (self.rerank_critic or self.verifier is not None) and self.k < 2:
            raise ValueError(f"reranking picks one of k samples: it needs --k 2 or more (got --k {self.k})")
