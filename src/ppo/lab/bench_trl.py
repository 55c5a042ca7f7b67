"""TRL's GRPOTrainer on `make bench`'s work (the `bench` extra; only experiments/bench.py imports this): its steps
run in its own `train()` loop, and each of our measurements runs between two of them, from a callback, so that the
two alternate on the same machine state."""

from __future__ import annotations

import time
from pathlib import Path

from ..train.metrics import sync
from .bench import BenchConfig, Ours, load_lm


def run_trl(c: BenchConfig, *ours: Ours) -> list[float]:
    """TRL GRPO steps of the same work (seconds each); each of `ours` takes one measurement after each of them."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from ..tasks.rewards import score_responses

    lm, tokenizer = load_lm(c)
    if c.random_init:  # TRL loads its reference from the model's folder: one with these same random weights
        folder = Path(c.output).parent / "random-init"
        lm.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        lm.config._name_or_path = str(folder)
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
        generation_kwargs={"min_new_tokens": c.max_new_tokens} if c.random_init else None,  # full length, as ours
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
