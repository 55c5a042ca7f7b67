"""Warm-up SFT: fine-tune on (question, chain of thought) pairs before PPO.

Only the answer tokens and the EOS carry loss. Prompt and answer are tokenised exactly as RL sees them: the
prompt alone (as `ppo.lm.rollout.encode_prompts` does), then the target, then EOS.

The trainer is handed its task: `pair_fn(example) -> (prompt text, target text)`. ppo.tasks.stages builds the
math one, and runs SFT from the command line: `python -m ppo sft --data-dir ../shared/data/gsm8k`.

Shapes: B = batch, L = sequence length.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ..adapters.base import param_groups
from ..lm.hook import prompt_positions
from ..lm.logprobs import logprobs_from_hidden, trunk_hidden
from ..lm.models import checkpointed
from . import distributed
from .checkpoint import DevFn, keep_if_best, load_state, save_checkpoint, truncate_log
from .cli import save_config
from .config import SFTConfig
from .data_order import batch_indices
from .fsdp import clip_grad_norm, load_optimizer_state, optimizer_state
from .metrics import MetricsLogger

# pair_fn(example) -> (prompt text, target text): what the task asks, and the answer to learn
PairFn = Callable[[Any], tuple[str, str]]


def encode_pair(tokenizer, prompt: str, target: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt + target + EOS, and a loss mask that is 1 on the target and EOS only."""
    prompt = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt + target, [0] * len(prompt) + [1] * len(target)


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    """Right-pad a batch. Shape: -> input_ids, attention_mask, loss_mask, each (B, L)."""
    L = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), L), dtype=torch.long)
    loss_mask = torch.zeros((len(rows), L), dtype=torch.float32)
    for r, (ids, mask) in enumerate(rows):
        input_ids[r, : len(ids)], attention_mask[r, : len(ids)] = torch.tensor(ids), 1
        loss_mask[r, : len(ids)] = torch.tensor(mask, dtype=torch.float32)
    return input_ids.to(device), attention_mask.to(device), loss_mask.to(device)


def sft_loss_sum(
    lm,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    loss_mask: torch.Tensor,
) -> torch.Tensor:
    """Summed negative log-likelihood of the loss-masked tokens: -sum_t m_t log pi(x_t | x_<t).

    Position t predicts token t + 1, so the states are [:, :-1] and the targets [:, 1:].
    """
    with prompt_positions(lm, attention_mask.bool() & (loss_mask == 0)):  # for LoReFT
        hidden = trunk_hidden(lm.base_model, input_ids, attention_mask)[:, :-1]  # (B, L-1, H)
    logprobs, _ = logprobs_from_hidden(
        hidden, lm.get_output_embeddings(), input_ids[:, 1:], 1.0, recompute=checkpointed(lm)
    )  # (B, L-1)
    return -(logprobs * loss_mask[:, 1:]).sum()


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Learning-rate multiplier: linear warm-up to 1 over `warmup` steps, then constant, linear or cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return 1.0


class SFTTrainer:
    """Supervised fine-tuning with token-mean loss over answer tokens, gradient accumulation and resume.

    Under torchrun each rank takes its block of a step's examples, and the summed gradients equal one process's.
    What a row is and what it costs are four methods (encode, length, units, loss_sum), which the verifier's
    trainer (ppo.train.verifier_training) replaces; the loop, the schedule, the checkpoints and the logs are shared."""

    def __init__(self, lm, tokenizer, config: SFTConfig, pair_fn: PairFn, model=None):
        self.lm, self.tokenizer, self.config, self.pair_fn = lm, tokenizer, config, pair_fn
        self.model = model if model is not None else lm  # what trains and is saved: the LM, or LM plus a head
        distributed.broadcast_parameters(self.model)  # every replica starts from rank 0's weights
        self.device = next(lm.parameters()).device
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(param_groups(self.model, config.weight_decay), lr=config.lr)
        self.step_count, self.best_dev = 0, float("-inf")

    def encode(self, example) -> tuple[list[int], list[int]]:
        """A training row: token ids of prompt + target + EOS, and the loss mask (1 on the target and EOS)."""
        return encode_pair(self.tokenizer, *self.pair_fn(example))

    def length(self, row) -> int:
        return len(row[0])  # rows longer than max_len are skipped

    def units(self, row) -> int:
        return sum(row[1])  # the step's loss is a mean over these: answer tokens

    def loss_sum(self, rows: list) -> torch.Tensor:
        return sft_loss_sum(self.lm, *collate(rows, self.tokenizer.pad_token_id, self.device))

    def total_steps(self, n_examples: int) -> int:
        c = self.config
        drawn = int(round(c.epochs * n_examples, 6))  # epochs = m / n draws m examples, whatever the float error
        return max(1, drawn // (c.batch_size * c.grad_accum))

    def step(self, rows: list[tuple[list[int], list[int]]], lr: float) -> dict[str, float]:
        """One optimizer step over batch_size * grad_accum examples; the loss is a mean over their answer tokens.

        Under torchrun `rows` is the whole step's batch: every rank knows the token count, and works on its block."""
        c = self.config
        n_tokens, loss_sum = sum(self.units(row) for row in rows), torch.zeros(())
        mine = distributed.split_evenly(rows, "batch_size * grad_accum")
        for start in range(0, len(mine), c.batch_size):
            loss = self.loss_sum(mine[start : start + c.batch_size]) / n_tokens
            loss.backward()
            loss_sum += loss.detach().cpu()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        distributed.all_reduce_gradients(self.params)
        grad_norm = clip_grad_norm(self.params, c.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return {
            "loss": float(distributed.all_reduce(loss_sum)),
            "grad_norm": float(grad_norm),
            "lr": lr,
            "tokens": n_tokens,
        }

    def train(self, examples: list, dev_fn: DevFn | None = None) -> list[dict]:
        """Run all steps (continuing from a resumed step_count); log loss to metrics.jsonl; save output_dir/final.

        With `dev_fn` and config.eval_every, the model is scored on dev every eval_every steps (and after the last)
        and the best one is kept in output_dir/best."""
        c, out = self.config, Path(self.config.output_dir)
        encoded = [self.encode(ex) for ex in examples]
        kept = [row for row in encoded if self.length(row) <= c.max_len]
        if not kept:
            raise ValueError(f"no SFT examples of at most max_len = {c.max_len} tokens (of {len(encoded)})")
        print(f"[sft] {len(kept)} examples ({len(encoded) - len(kept)} skipped: longer than {c.max_len} tokens)")
        save_config(c, out / "config.json")
        truncate_log(out / "metrics.jsonl", self.step_count)  # drop steps logged after the checkpoint we resumed
        board = out / "tensorboard" if c.tensorboard else None
        logger, history = MetricsLogger(out / "metrics.jsonl", board, self.step_count), []
        total, per_step = self.total_steps(len(kept)), c.batch_size * c.grad_accum
        warmup = int(c.warmup_ratio * total)
        bar = tqdm(
            range(self.step_count, total),
            desc="sft",
            unit="step",
            initial=self.step_count,
            total=total,
            disable=not distributed.is_main(),
        )
        for step in bar:
            rows = [kept[i] for i in batch_indices(len(kept), per_step, step, c.seed)]
            lr = c.lr * lr_factor(step, total, warmup, c.schedule)
            start = time.perf_counter()
            metrics = {"step": step + 1, "epoch": (step + 1) * per_step / len(kept), **self.step(rows, lr)}
            metrics["time/step_s"] = time.perf_counter() - start  # training only, dev scoring not included
            if dev_fn is not None and c.eval_every and ((step + 1) % c.eval_every == 0 or step + 1 == total):
                metrics["eval/dev_score"], self.best_dev = keep_if_best(
                    dev_fn, self.lm, self.model, self.tokenizer, self.best_dev, out / "best", self.step_count
                )
            metrics["time/elapsed_s"] = logger.elapsed()
            logger.log(metrics)
            history.append(metrics)
            bar.set_postfix_str(f"loss={metrics['loss']:.3f}")
            if c.save_every and (step + 1) % c.save_every == 0 and step + 1 < total:
                self.save(out / f"checkpoint-{step + 1}")
        logger.close()
        self.save(out / "final")
        return history

    def save(self, path: str | Path) -> None:
        """An atomic checkpoint: model, tokenizer, optimizer, RNG states and step."""
        state = {"step": self.step_count, "optimizer": optimizer_state(self.model, self.optimizer)}
        save_checkpoint(path, self.model, self.tokenizer, {**state, "best_dev": self.best_dev})

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint (the model weights must already be loaded from it)."""
        state = load_state(path)
        self.step_count, self.best_dev = state["step"], state.get("best_dev", float("-inf"))
        load_optimizer_state(self.model, self.optimizer, state["optimizer"])
