"""The run around PPO steps: the step loop with its logging, model selection on dev, and the checkpoints a run
resumes from. `PPOTrainer` (ppo.train.trainer) is a `PPORun`: the trainer holds the math of one step, this the
bookkeeping of many."""

from __future__ import annotations

from pathlib import Path

from tqdm.auto import tqdm

from . import distributed
from .checkpoint import DevFn, keep_if_best, load_state, save_checkpoint, truncate_log
from .cli import save_config
from .data_order import batch_indices
from .fsdp import load_optimizer_state, optimizer_state
from .health import check_finite
from .metrics import PPO_BAR_KEYS, MetricsLogger, format_metrics


class PPORun:
    """Needs what PPOTrainer sets up: config, policy, tokenizer, optimizer, params, kl_ctl, generator, step_count,
    best_dev, bad_steps, and step(examples) -> metrics."""

    def train(self, examples: list, output_dir: str | Path | None = None, dev_fn: DevFn | None = None) -> list[dict]:
        """Run config.steps PPO steps over a seeded shuffle of `examples`, logging to metrics.jsonl.

        With `dev_fn` and config.eval_every, the policy is scored on dev every eval_every steps and the best one
        is kept in output_dir/best."""
        c = self.config
        if not examples:
            raise ValueError("no training examples")
        out = Path(output_dir or c.output_dir)
        save_config(c, out / "config.json")
        truncate_log(out / "metrics.jsonl", self.step_count)  # drop steps logged after the checkpoint we resumed
        board = out / "tensorboard" if c.tensorboard else None
        logger, history = MetricsLogger(out / "metrics.jsonl", board, self.step_count), []
        bar = tqdm(
            range(self.step_count, c.steps),
            desc="ppo",
            unit="step",
            initial=self.step_count,
            total=c.steps,
            disable=not distributed.is_main(),
        )
        for step in bar:  # under torchrun each rank takes its block of the step's questions
            order = distributed.split_evenly(batch_indices(len(examples), c.rollout_batch_size, step, c.seed))
            batch = [examples[i] for i in order]
            metrics = {"step": step + 1, **self.step(batch)}
            if dev_fn is not None and c.eval_every and (step + 1) % c.eval_every == 0:
                metrics["eval/dev_score"] = self.select(dev_fn, out / "best")
            metrics["time/elapsed_s"] = logger.elapsed()  # the run's wall time so far, dev scoring included
            logger.log(metrics)
            history.append(metrics)
            bar.set_postfix_str(format_metrics(metrics, PPO_BAR_KEYS))
            if c.save_every and (step + 1) % c.save_every == 0:
                self.save(out / f"checkpoint-{step + 1}")
        logger.close()
        self.save(out / "final")
        return history

    def select(self, dev_fn: DevFn, path: Path) -> float:
        """Model selection on dev: score the policy, and keep it in `path` when it beats the best so far."""
        score, self.best_dev = keep_if_best(dev_fn, self.policy.lm, self.policy, self.tokenizer, self.best_dev,
                                            path, self.step_count)  # fmt: skip
        return score

    def save(self, path: str | Path) -> None:
        """An atomic checkpoint: policy (HF format, value head beside it), tokenizer and trainer state."""
        check_finite("policy weights (not saved)", *self.params)
        save_checkpoint(
            path,
            self.policy,
            self.tokenizer,
            {
                "step": self.step_count,
                "optimizer": optimizer_state(self.policy, self.optimizer),
                "kl_ctl": self.kl_ctl.state_dict(),
                "generator": self.generator.get_state(),
                "best_dev": self.best_dev,
                "bad_steps": self.bad_steps,
            },
        )

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by `save` (the policy weights must already be loaded from it)."""
        state = load_state(path)
        self.step_count = state["step"]
        load_optimizer_state(self.policy, self.optimizer, state["optimizer"])
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        self.generator.set_state(state["generator"])
        self.best_dev = state["best_dev"]
        self.bad_steps = state.get("bad_steps", 0)
