"""Settings, one frozen dataclass per stage: `SFTConfig` for warm-up SFT, `PPOConfig` for PPO (the original N-CoT
settings, `lqtrung1998/mwp_ReFT`; departures: docs/faithfulness.md). Field docstrings are the `--help` text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .checks import PPO_RULES, SFT_RULES, check_fields, check_ppo_combinations
from .model_settings import ModelSettings


@dataclass(frozen=True)
class PPOConfig(ModelSettings):
    """Reinforced fine-tuning with PPO: sample chains of thought, reward correct answers, update."""

    # --- models (and those of ModelSettings) ---
    ref_model: str | None = None
    """Frozen reference for the KL penalty; None means a frozen copy of the initial policy (the original)."""
    critic: Literal["shared", "separate"] = "shared"
    """Value head on the policy's own trunk (original), or on a separate copy of the trunk (2x compute); GAE only."""
    # --- data ---
    data_dir: str | None = None
    """Data folder (GSM8K JSONL, or SVAMP JSON as prepared for ReFT); None = openai/gsm8k from the hub."""
    dataset: Literal["gsm8k", "svamp"] = "gsm8k"
    """Which data format data_dir holds."""
    answer_format: Literal["ncot", "pcot"] = "ncot"
    """ncot = natural-language chain of thought; pcot = a Python solution() run in ppo.tasks.sandbox for the answer."""
    prompt_template: Literal["reft", "chat"] = "reft"
    """reft = "Question:\\n{q}\\nAnswer reasoning:\\n" (original); chat = the tokenizer's chat template."""
    max_questions: int | None = None
    """Use only the first N training questions (for quick runs)."""
    # --- rollout ---
    rollout_batch_size: int = 32
    """Questions sampled per PPO step (original: 32 for 7B models)."""
    samples_per_prompt: int = 1
    """Completions sampled per question (original: 1)."""
    max_prompt_len: int = 300
    """Prompts longer than this many tokens are skipped when the data is loaded (original: 300)."""
    max_new_tokens: int = 400
    """Response length limit (original: 700 tokens in all, prompt included)."""
    temperature: float = 1.0
    """Sampling temperature; the same scaling is applied to the policy, old-policy and reference log-probs."""
    top_k: int = 0
    """Top-k sampling, 0 = off (original: off). Policy log-probs are those of the truncated distribution sampled."""
    top_p: float = 1.0
    """Nucleus sampling, 1.0 = off (original: off); applied after top_k, as in transformers."""
    # --- reward ---
    correct_score: float = 1.0
    """Score when the extracted answer matches the gold answer."""
    partial_score: float = 0.1
    """Score when an answer was extracted but is wrong (original: 0.1 on numeric data)."""
    answer_tolerance: float = 1e-2
    """Absolute tolerance for a numeric match."""
    missing_eos_score: float | None = None
    """If set, responses cut at max_new_tokens get this score instead of being scored on their text."""
    program_timeout_s: float = 3.0
    """P-CoT: wall and CPU time limit per program; a program over it scores 0."""
    # --- KL penalty ---
    kl_coef: float = 0.05
    """beta, the per-token KL penalty weight (original: 0.05 N-CoT, 0.01 P-CoT)."""
    kl_estimator: Literal["k1", "k2", "k3"] = "k1"
    """KL estimator on the sampled tokens; k1 = logpi_old - logpi_ref (original)."""
    kl_in: Literal["reward", "loss"] = "reward"
    """Where the KL to the reference goes: a per-token penalty in the reward (original ReFT), or beta * KL added to
    the loss on the current policy (GRPO; needs kl_estimator k2 or k3, GRPO's is k3)."""
    adaptive_kl: bool = False
    """Steer beta towards kl_target (Ziegler et al. 2019) instead of keeping it fixed (original: fixed)."""
    kl_target: float = 6.0
    """Target sequence KL for the adaptive controller."""
    kl_horizon: int = 10000
    """Horizon of the adaptive controller, in sampled sequences."""
    # --- advantages ---
    advantage: Literal["gae", "grpo", "rloo", "dr_grpo"] = "gae"
    """gae = GAE on the value head (the paper's PPO); grpo, rloo, dr_grpo = each answer against the other answers
    to its question (ppo.core.group: no critic is run or trained; samples_per_prompt >= 2)."""
    gamma: float = 1.0
    """Discount (the code's gamma; the paper's text swaps the names)."""
    lam: float = 0.95
    """GAE lambda."""
    whiten_advantages: bool = True
    """GAE: whiten advantages over all valid tokens of the rollout (mean removed, not added back)."""
    # --- PPO update ---
    ppo_epochs: int = 2
    """Passes over each rollout batch."""
    mini_batch_size: int = 32
    """Sequences per optimizer step."""
    micro_batch_size: int = 4
    """Sequences per forward/backward pass; gradients accumulate up to mini_batch_size."""
    clip_eps: float = 0.2
    """Policy ratio clip: the ratio is kept in [1 - clip_eps, 1 + clip_eps_high]."""
    clip_eps_high: float | None = None
    """Upper ratio clip; none = clip_eps. Larger (DAPO's clip-higher: 0.28 against 0.2) lets rare tokens gain mass."""
    value_clip_eps: float = 0.2
    """Value clip around the rollout values."""
    vf_coef: float = 5.0
    """Weight of the value loss: L = L_policy + vf_coef * L_value - entropy_coef * H."""
    entropy_coef: float = 0.0
    """Entropy bonus weight (original: none)."""
    loss_aggregation: Literal["auto", "seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"] = "auto"
    """seq_mean_token_mean = token mean per sequence, then batch mean (original); token_mean = one mean over all
    tokens; seq_mean_token_sum_norm = token sum / max_new_tokens per sequence, then batch mean (Dr. GRPO).
    auto = the last for dr_grpo, the first otherwise."""
    # --- optimiser ---
    lr: float = 3e-7
    """AdamW learning rate, constant (original: 3e-7 for 7B; 3e-6 for small models)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    # --- run ---
    steps: int = 100
    """PPO steps (rollout + update) to run."""
    seed: int = 0
    """Seed for data order, sampling and minibatches."""
    output_dir: str = "runs/ppo"
    """Where settings, metrics and checkpoints go."""
    save_every: int = 0
    """Save a checkpoint every N steps (0 = only at the end)."""
    eval_every: int = 0
    """Score the dev questions every N steps, keeping the best policy in output_dir/best (0 = off)."""
    max_bad_steps: int = 3
    """Steps skipped for NaN/inf (in logits, advantages, loss or gradients) before the run stops with an error."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, PPO_RULES)
        check_ppo_combinations(self)

    @property
    def aggregation(self) -> str:
        """The loss aggregation in force: loss_aggregation, with auto resolved by the estimator."""
        if self.loss_aggregation != "auto":
            return self.loss_aggregation
        return "seq_mean_token_sum_norm" if self.advantage == "dr_grpo" else "seq_mean_token_mean"


@dataclass(frozen=True)
class SFTConfig(ModelSettings):
    """Warm-up supervised fine-tuning on chains of thought."""

    # --- data (the model: ModelSettings) ---
    data_dir: str | None = None
    """Folder with train.jsonl (GSM8K) or train_nl.json (SVAMP); None = openai/gsm8k from the hub."""
    dataset: Literal["gsm8k", "svamp"] = "gsm8k"
    """Which data format data_dir holds."""
    answer_format: Literal["ncot", "pcot"] = "ncot"
    """Train on chains of thought (ncot) or on Python programs (pcot: data_dir/train_python_sdp.json)."""
    prompt_template: Literal["reft", "chat"] = "reft"
    """The prompt, shared with RL and evaluation."""
    max_questions: int | None = None
    """Train on the first N questions only (after the dev split is removed)."""
    dev_size: int = 200
    """Questions carved out of train (seeded) for model selection; never trained on."""
    max_len: int = 512
    """Longer (prompt + target) examples are skipped, and counted."""
    # --- optimisation ---
    epochs: float = 2.0
    """Passes over the training questions (the original warms up for 1-2 epochs)."""
    lr: float = 1e-5
    """Peak AdamW learning rate."""
    schedule: Literal["constant", "linear", "cosine"] = "linear"
    """Decay after warm-up."""
    warmup_ratio: float = 0.03
    """Fraction of the steps spent warming the learning rate up linearly from 0."""
    batch_size: int = 8
    """Examples per forward/backward pass."""
    grad_accum: int = 1
    """Passes accumulated per optimizer step."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm."""
    # --- run ---
    seed: int = 0
    """Seed for the data order and the dev split."""
    output_dir: str = "runs/sft"
    """Where settings, metrics and checkpoints go; the final model is in output_dir/final."""
    save_every: int = 0
    """Checkpoint every N optimizer steps (0 = only at the end)."""
    eval_every: int = 0
    """Score the dev questions every N steps, keeping the best model in output_dir/best (0 = off; needs the
    caller's dev scorer: the pipeline's SFT-continued stage and `ppo.lab.reproduce` give one)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fields(self, SFT_RULES)
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"--warmup-ratio must be in [0, 1) (got {self.warmup_ratio!r})")
