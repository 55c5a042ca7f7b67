"""Measuring a PPO step (`experiments/bench.py`, `make bench`; docs/benchmarks.md), side by side with TRL's
GRPOTrainer (the `bench` extra, never a library dependency) on the same model, prompts, completion length, number
of completions and update passes. TRL's steps run in its own `train()` loop and each of our measurements runs
between two of them (from a callback), so the two alternate. Also:
    rollout   the lean sampling loop (`ppo.lm.decode`) against plain `generate` on the same batch
    update    achieved FLOP/s (counted by torch's FlopCounterMode) against a matmul peak measured alongside
    memory    peak memory of one PPO step against one SFT step on the same batch, each in a fresh process
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..adapters.loading import load_model
from ..lm.models import checkpoint_activations, resolve_device
from ..tasks.data import load_gsm8k
from ..tasks.stages import math_pair_fn, math_prompt_fn, math_reward_fn
from ..train.config import PPOConfig, SFTConfig
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


class Ours:
    """Our PPO step (or, with GRPO's overrides, our GRPO step), the plain-generate baseline and the update's FLOPs,
    on the same questions."""

    def __init__(self, c: BenchConfig, **overrides):
        from ..adapters.loading import load_policy, make_reference
        from ..train.trainer import PPOTrainer

        self.ppo, self.examples, self.device = setup(c, **overrides)
        policy, self.tokenizer = load_policy(c.model, "shared", c.device, c.dtype, c.adapter)
        self.trainer = PPOTrainer(
            policy,
            make_reference(policy, self.ppo, False),
            self.tokenizer,
            self.ppo,
            math_prompt_fn(self.ppo.prompt_template, self.tokenizer),
            math_reward_fn(self.ppo),
        )
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
        out = sample(self.trainer.policy.lm, self.tokenizer, ids, mask, self.ppo.max_new_tokens, engine="hf")
        sync(self.device)
        return out.response_mask.sum().item() / (time.perf_counter() - start)


def run_trl(c: BenchConfig, *ours: Ours) -> list[float]:
    """TRL GRPO steps of the same work (seconds each); each of `ours` takes one measurement after each of them."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from ..tasks.rewards import score_responses

    lm, tokenizer = load_model(c.model, c.device, c.dtype)
    data = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": ex.question}], "gold": ex.answer} for ex in ours[0].examples]
    )

    def reward(completions, gold, **_) -> list[float]:  # the same 1 / 0.1 / 0 score as ours
        return score_responses([m[-1]["content"] for m in completions], gold)

    times = []

    class Alternate(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            sync(ours[0].device)
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync(ours[0].device)
            times.append(time.perf_counter() - self.start)
            for measured in ours:
                measured.step()

    args = GRPOConfig(
        output_dir="runs/bench/trl",
        per_device_train_batch_size=c.prompts * c.completions,
        num_generations=c.completions,
        max_completion_length=c.max_new_tokens,
        beta=0.05,
        # TRL's defaults that would make it other work than ours: it recomputes activations in backward unless told
        # not to (ours: --gradient-checkpointing), and multiplies its k3 by the ratio (ours: plain k3).
        gradient_checkpointing=c.gradient_checkpointing,
        use_bias_correction_kl=False,
        num_iterations=1,
        gradient_accumulation_steps=1,
        learning_rate=3e-6,
        temperature=1.0,
        max_steps=c.repeats + 1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=ours[0].device.type == "cpu",
        bf16=ours[0].device.type == "cuda",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=lm,
        reward_funcs=reward,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[Alternate()],
    )
    trainer.train()
    return times[1:]


def probe(c: BenchConfig) -> dict:
    """One PPO or SFT step on the batch, in this (fresh) process: its peak memory in bytes."""
    if c.probe == "ppo":
        Ours(c).trainer.step(setup(c)[1])
    else:
        from ..train.sft import SFTTrainer, encode_pair

        ppo, examples, _ = setup(c)
        lm, tokenizer = load_model(c.model, c.device, c.dtype)
        if c.gradient_checkpointing:
            checkpoint_activations(lm)
        n, micro = c.prompts * c.completions, ppo.micro_batch_size
        sft = SFTTrainer(
            lm,
            tokenizer,
            SFTConfig(batch_size=micro, grad_accum=n // micro, prompt_template="chat"),
            math_pair_fn("chat", tokenizer),
        )
        rows = []
        for ex in examples:  # prompt + exactly max_new_tokens target tokens: the PPO batch's shape
            ids, mask = encode_pair(tokenizer, *sft.pair_fn(ex))
            P, target = mask.index(1), ids[mask.index(1) :] * (1 + c.max_new_tokens)
            rows += [(ids[:P] + target[: c.max_new_tokens], [0] * P + [1] * c.max_new_tokens)] * c.completions
        sft.step(rows, 1e-6)
    if torch.cuda.is_available() and c.device != "cpu":
        return {"peak_bytes": torch.cuda.max_memory_allocated(), "kind": "cuda max_memory_allocated"}
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM"))
    return {"peak_bytes": int(hwm.split()[1]) * 1024, "kind": "process peak RSS (VmHWM)"}


def run_probe(c: BenchConfig, kind: str) -> dict:
    """`probe` in a fresh process, so that nothing else this process did counts in its peak."""
    names = (
        "model",
        "adapter",
        "data_dir",
        "prompts",
        "completions",
        "max_new_tokens",
        "micro_batch_size",
        "device",
        "dtype",
        "gradient_checkpointing",
    )

    def flag(n, v):
        return [f"--{'' if v else 'no-'}{n}"] if isinstance(v, bool) else [f"--{n}", str(v)]

    argv = [a for n in names for a in flag(n.replace("_", "-"), getattr(c, n))]
    out = subprocess.run(
        [sys.executable, "-m", "ppo.lab.bench", "--probe", kind, *argv], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """`python -m ppo bench --probe ppo|sft`: the memory probe (the benchmark itself is experiments/bench.py)."""
    from ..train.cli import parse_config

    print(json.dumps(probe(parse_config(BenchConfig, argv))))


if __name__ == "__main__":
    main()
