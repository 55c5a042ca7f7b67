"""PPO on GSM8K training questions, from any starting checkpoint (the default SmolLM2, or a warm-up SFT folder).

    python experiments/ppo_gsm8k.py --data-dir ../shared/data/gsm8k --steps 2 --rollout-batch-size 2 ...

Every flag is a field of `ppo.config.PPOConfig`; `--help` lists them.
"""
from __future__ import annotations

import time

import torch

from ppo.cli import parse_config
from ppo.config import PPOConfig
from ppo.data import drop_long_prompts, load_gsm8k
from ppo.models import load_model
from ppo.policy import frozen_copy, load_policy
from ppo.trainer import PPOTrainer


def main(argv: list[str] | None = None) -> None:
    config = parse_config(PPOConfig, argv)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    policy, tokenizer = load_policy(config.model, config.critic, config.device, config.dtype)
    ref_model = (frozen_copy(policy.lm) if config.ref_model is None
                 else frozen_copy(load_model(config.ref_model, config.device, config.dtype)[0]))
    examples = load_gsm8k(config.data_dir, "train")[:config.max_questions]
    examples, dropped = drop_long_prompts(examples, tokenizer, config.prompt_template, config.max_prompt_len)
    print(f"[ppo] {len(examples)} training questions ({dropped} dropped: prompt > {config.max_prompt_len} tokens)"
          f"; models loaded in {time.perf_counter() - start:.1f} s")
    trainer = PPOTrainer(policy, ref_model, tokenizer, config)
    history = trainer.train(examples)
    for metrics in history:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
    print(f"[ppo] {config.steps} steps in {time.perf_counter() - start:.1f} s; "
          f"metrics in {config.output_dir}/metrics.jsonl, policy in {config.output_dir}/final")


if __name__ == "__main__":
    main()
