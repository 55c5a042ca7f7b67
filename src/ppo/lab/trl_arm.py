"""The trl-grpo arm of the SVAMP experiment: TRL's GRPOTrainer from the warm-up, with our grpo arm's settings and our
sandboxed reward, scored on dev on the same schedule (the `bench` extra; only ppo.lab.arms imports this, lazily).

The settings that have a TRL name take our grpo arm's values: answers per question, answers per step, response
length, temperature, learning rate (constant), beta with plain k3 (TRL's ratio correction off), clip 0.2, one
update per rollout, the sequence-mean token-mean loss (`loss_type="grpo"`) and advantages divided by the group's
std. TRL keeps its own data order, sampler and numerics. It has no resume here: an interrupted arm starts over.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..adapters.loading import load_model
from ..tasks.formats import format_prompt
from ..tasks.rewards import score_responses
from ..train.checkpoint import DevFn, keep_if_best
from ..train.config import PPOConfig
from .reproduce_config import ReproduceConfig


def run_trl_grpo(c: ReproduceConfig, ours: PPOConfig, train: list, dev_fn: DevFn, out: Path) -> str:
    """Train TRL's GRPO for ours.steps steps; write out/metrics.jsonl (step time, dev score, TRL's own logs as
    trl/...) and keep the best dev point in out/best. Returns that folder."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    lm, tokenizer = load_model(ours.model, c.device, c.dtype)
    data = Dataset.from_list(
        [{"prompt": format_prompt(ex.question, "reft", tokenizer), "gold": ex.answer} for ex in train]
    )

    def reward(completions: list[str], gold: list[float], **_) -> list[float]:  # ours: 1 right, 0.1 wrong, 0 none
        return score_responses(completions, gold, ours.answer_tolerance, ours.correct_score, ours.partial_score,
                               "pcot", ours.program_timeout_s)  # fmt: skip

    rows: dict[int, dict] = {}

    class Schedule(TrainerCallback):
        best = float("-inf")

        def on_step_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, model=None, **kwargs):
            step = state.global_step
            rows.setdefault(step, {"step": step})["time/step_s"] = time.perf_counter() - self.start
            if step % ours.eval_every == 0:
                model.eval()
                with torch.no_grad():
                    score, self.best = keep_if_best(dev_fn, model, model, tokenizer, self.best, out / "best", step)
                rows[step]["eval/dev_score"] = score
                model.train()

        def on_log(self, args, state, control, logs=None, **kwargs):
            row = rows.setdefault(state.global_step, {"step": state.global_step})
            row.update({f"trl/{k}": v for k, v in (logs or {}).items() if isinstance(v, (int, float))})

    args = GRPOConfig(
        output_dir=str(out / "trl"),
        per_device_train_batch_size=ours.rollout_batch_size * ours.samples_per_prompt,
        num_generations=ours.samples_per_prompt,
        max_completion_length=ours.max_new_tokens,
        temperature=ours.temperature,
        learning_rate=ours.lr,
        lr_scheduler_type="constant",
        beta=ours.kl_coef,
        use_bias_correction_kl=False,
        epsilon=ours.clip_eps,
        loss_type="grpo",
        scale_rewards="group",
        num_iterations=ours.ppo_epochs,
        gradient_accumulation_steps=1,
        activation_checkpointing=False,  # TRL recomputes activations by default; ours does not
        max_grad_norm=ours.max_grad_norm,
        max_steps=ours.steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_dropout=True,
        use_cpu=lm.device.type == "cpu",
        bf16=lm.device.type == "cuda",
        seed=ours.seed,
    )
    trainer = GRPOTrainer(model=lm, reward_funcs=reward, args=args, train_dataset=data, processing_class=tokenizer,
                          callbacks=[Schedule()])  # fmt: skip
    trainer.train()
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").write_text("".join(json.dumps(rows[s]) + "\n" for s in sorted(rows) if s > 0))
    return str(out / "best")
