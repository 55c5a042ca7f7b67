"""Measuring a PPO step (`experiments/bench.py`, `make bench`; docs/benchmarks.md), side by side with TRL's
GRPOTrainer (the `bench` extra, never a library dependency) on the same model, prompts, completion length, number
of completions and update passes. TRL's steps run in its own `train()` loop and each of our measurements runs
between two of them (from a callback), so the two alternate. Also:
    rollout   the lean sampling loop (`ppo.lm.decode`) against plain `generate` on the same batch
    update    achieved FLOP/s (counted by torch's FlopCounterMode) against a matmul peak measured alongside
    memory    peak memory of one PPO step against one SFT step on the same batch, each in a fresh process
TRL's side is `ppo.lab.bench_trl`, the memory probe `ppo.lab.bench_memory`. With `random_init` the model has the
shape of `model` and random weights, and every response runs to max_new_tokens: a machine with no copy of the
weights can measure speed (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..adapters.loading import ensure_adapter, load_model
from ..lm.models import checkpoint_activations, random_model, resolve_device
from ..lm.policy import PolicyWithValue
from ..tasks.data import load_gsm8k
from ..tasks.stages import math_prompt_fn, math_reward_fn
from ..train.config import PPOConfig
from ..train.metrics import sync


@dataclass(frozen=True)
class BenchConfig:
    """Time a PPO step against TRL GRPO on the same work."""

    model: str = "smollm2-135m"
    """Model: `smollm2-135m`, a local folder or a hub id."""
    adapter: str = "none"
    """Our policy: none (full fine-tuning), lora, loreft, direft (ppo.adapters.base); TRL always fine-tunes fully."""
    data_dir: str = "../shared/data/gsm8k"
    """GSM8K folder; the prompts are its first training questions, in the chat template."""
    prompts: int = 4
    """Questions per step."""
    completions: int = 4
    """Completions per question (TRL's num_generations)."""
    max_new_tokens: int = 128
    """Completion length limit."""
    repeats: int = 3
    """Timed repetitions, after one warm-up."""
    micro_batch_size: int = 8
    """Sequences per forward/backward pass in our update."""
    device: str = "auto"
    """auto, cpu, cuda."""
    dtype: str = "auto"
    """auto = bf16 on GPU, fp32 on CPU."""
    gradient_checkpointing: bool = False
    """Our policy recomputes layer activations and logits in backward (ppo.lm.models.checkpoint_activations)."""
    trl: bool = True
    """Run TRL's GRPOTrainer side by side (needs the bench extra)."""
    grpo: bool = True
    """Also time our GRPO (advantage grpo, KL k3 in the loss, as TRL's): the same algorithm as TRL's on both sides."""
    memory: bool = True
    """Measure peak memory of a PPO step and an SFT step, each in a fresh process."""
    random_init: bool = False
    """Random weights of the model's shape (its config.json; `make bench-shape` writes a folder of config and
    tokenizer only, to carry), and every response run to max_new_tokens, for ours and TRL's: no weights needed."""
    output: str = "runs/bench/results.json"
    """Where the measurements go (the table is printed)."""
    probe: str | None = None
    """Internal: `ppo` or `sft` runs one step and prints its peak memory (see run_probe)."""


# Our GRPO as TRL's GRPOTrainer (1.16) runs it here: group advantages scaled by the std, no critic, beta * k3 in the
# loss, and one token mean over the batch (its default loss_type "dapo"). Left different, at no cost in compute:
# TRL's std eps is 1e-4 (ours 1e-6). With one pass of one minibatch both skip the old-policy forward pass.
GRPO = {"advantage": "grpo", "kl_in": "loss", "kl_estimator": "k3", "loss_aggregation": "token_mean"}


def setup(c: BenchConfig, **overrides):
    n = c.prompts * c.completions  # one minibatch of every completion: one optimizer step
    ppo = PPOConfig(
        model=c.model,
        adapter=c.adapter,
        device=c.device,
        dtype=c.dtype,
        prompt_template="chat",
        rollout_batch_size=c.prompts,
        samples_per_prompt=c.completions,
        mini_batch_size=n,
        micro_batch_size=min(c.micro_batch_size, n),
        ppo_epochs=1,
        max_new_tokens=c.max_new_tokens,
        kl_coef=0.05,
        lr=3e-6,
        steps=1,
        gradient_checkpointing=c.gradient_checkpointing,
        **overrides,
    )
    return ppo, load_gsm8k(c.data_dir, "train")[: c.prompts], resolve_device(c.device)


def load_lm(c: BenchConfig):
    """The benchmark's LM and tokenizer: the model's weights, or random ones of its shape (`random_init`)."""
    if c.random_init:
        return random_model(c.model, c.device, c.dtype)
    return load_model(c.model, c.device, c.dtype)


class Ours:
    """Our PPO step (or, with GRPO's overrides, our GRPO step), the plain-generate baseline and the update's FLOPs,
    on the same questions."""

    def __init__(self, c: BenchConfig, **overrides):
        from ..adapters.loading import make_reference
        from ..train.trainer import PPOTrainer

        self.ppo, self.examples, self.device = setup(c, **overrides)
        lm, self.tokenizer = load_lm(c)
        ensure_adapter(lm, c.adapter, c.model)
        policy = PolicyWithValue(lm, critic="shared")
        self.trainer = PPOTrainer(
            policy,
            make_reference(policy, self.ppo, False),
            self.tokenizer,
            self.ppo,
            math_prompt_fn(self.ppo.prompt_template, self.tokenizer),
            math_reward_fn(self.ppo),
        )
        self.trainer.full_length = c.random_init  # random weights: responses of a fixed length, not of chance
        if c.gradient_checkpointing:  # after the reference is made, as in run_ppo
            checkpoint_activations(policy.lm)
        self.records, self.update_flops = [], None

    def step(self) -> None:
        if self.update_flops is None:  # the warm-up step counts the update's FLOPs
            counter, update = FlopCounterMode(display=False), self.trainer.update

            def counted(batch):
                with counter:
                    return update(batch)

            self.trainer.update = counted
            self.trainer.step(self.examples)
            self.trainer.update, self.update_flops = update, counter.get_total_flops()
            return
        torch.manual_seed(len(self.records))
        metrics = self.trainer.step(self.examples)
        metrics["hf_generate_tokens_per_s"] = self.hf_generate_rate()
        self.records.append(metrics)

    def hf_generate_rate(self) -> float:
        """Generated tokens per second of plain `generate` on the same prompts and limits."""
        from ..lm.rollout import encode_prompts, sample

        prompts = [self.trainer.prompt_fn(ex) for ex in self.examples for _ in range(self.ppo.samples_per_prompt)]
        ids, mask = encode_prompts(self.tokenizer, prompts, self.device)
        sync(self.device)
        start = time.perf_counter()
        lm, full = self.trainer.policy.lm, self.trainer.full_length
        out = sample(lm, self.tokenizer, ids, mask, self.ppo.max_new_tokens, engine="hf", full_length=full)
        sync(self.device)
        return out.response_mask.sum().item() / (time.perf_counter() - start)
