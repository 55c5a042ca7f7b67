"""The ablation grids: each a list of (name, PPOConfig overrides), everything else held fixed by the runner
(ppo.lab.ablate)."""

from __future__ import annotations

Grid = list[tuple[str, dict]]


def kl_grid() -> Grid:
    """beta in {0, 0.01, 0.05 (the paper's N-CoT value), 0.2}, the adaptive controller, and k3 at 0.05."""
    grid = [(f"beta={b}", {"kl_coef": b}) for b in (0.0, 0.01, 0.05, 0.2)]
    return grid + [
        ("adaptive", {"kl_coef": 0.05, "adaptive_kl": True, "kl_target": 1.0}),
        ("beta=0.05,k3", {"kl_coef": 0.05, "kl_estimator": "k3"}),
    ]


def adapter_grid() -> Grid:
    """Full fine-tuning, LoRA and LoReFT (ppo.adapters.base) from the same warm-up. Each kind has its own learning rate
    (these override --lr): a few adapter weights need larger steps than the whole LM (LoRA ~10x, LoReFT ~30x)."""
    return [
        ("full", {"lr": 3e-6}),
        ("lora", {"adapter": "lora", "lr": 3e-5}),
        ("loreft", {"adapter": "loreft", "lr": 1e-4}),
    ]


def sampling_grid(completions_per_step: int) -> Grid:
    """Temperature x top-p x samples per question, at an equal number of sampled completions per step (more
    samples per question means fewer questions)."""
    grid = []
    for samples in (1, 4):
        if completions_per_step % samples:
            raise ValueError(f"completions_per_step = {completions_per_step} is not a multiple of {samples}")
        for temperature in (0.7, 1.0, 1.3):
            for top_p in (1.0, 0.9):
                grid.append(
                    (
                        f"T={temperature},top_p={top_p},k={samples}",
                        {
                            "temperature": temperature,
                            "top_p": top_p,
                            "samples_per_prompt": samples,
                            "rollout_batch_size": completions_per_step // samples,
                        },
                    )
                )
    return grid


def estimator_grid(completions_per_step: int, samples: int = 4) -> Grid:
    """PPO with GAE and the value head (the paper's), GRPO, RLOO and Dr. GRPO, each with `samples` answers per
    question and the same completions per step; the KL stays in the reward for all four, so that only the
    advantage estimator changes."""
    if completions_per_step % samples:
        raise ValueError(f"completions_per_step = {completions_per_step} is not a multiple of {samples}")
    group = {"samples_per_prompt": samples, "rollout_batch_size": completions_per_step // samples}
    return [(name, {**group, "advantage": name}) for name in ("gae", "grpo", "rloo", "dr_grpo")]
