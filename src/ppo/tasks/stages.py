"""The training stages on a math task: warm-up SFT and PPO, each handed its task, skipped when done and resumed
from the last checkpoint when interrupted.

The trainers (ppo.train) know nothing of math problems. This module hands them the task: how a question is asked
(`math_prompt_fn`), what SFT learns (`math_pair_fn`) and how an answer is scored (`math_reward_fn`).

    python -m ppo sft --data-dir ../shared/data/gsm8k --epochs 1 --output-dir runs/sft
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from ..adapters.loading import check_adapter_fits, ensure_adapter, load_model, load_policy, make_reference
from ..lm.models import checkpoint_activations
from ..lm.specs import check_model_spec
from ..train import distributed
from ..train.checkpoint import DevFn, latest_checkpoint, restore_interrupted_save
from ..train.checks import check_run_folder
from ..train.cli import command, parse_config
from ..train.config import PPOConfig, SFTConfig
from ..train.fsdp import shard_for_training
from ..train.metrics import CURVE_KEYS, curve_table, read_jsonl
from ..train.sft import SFTTrainer
from ..train.trainer import PPOTrainer
from .data import Example, check_data_dir, load_examples, split_dev
from .formats import drop_long_prompts, format_prompt, format_target
from .rewards import check_executor, score_responses


def math_prompt_fn(template: str, tokenizer) -> Callable[[Example], str]:
    """How a question is asked: the prompt template (`reft` or `chat`) around it."""
    return lambda example: format_prompt(example.question, template, tokenizer)


def math_pair_fn(template: str, tokenizer, answer_format: str = "ncot") -> Callable[[Example], tuple[str, str]]:
    """What SFT learns: the prompt, and the annotated chain of thought (ncot) or program (pcot) after it."""
    return lambda example: (format_prompt(example.question, template, tokenizer), format_target(example, answer_format))


def math_reward_fn(config: PPOConfig) -> Callable[[list[str], list[Example]], list[float]]:
    """The original's rule-based reward: 1 correct, 0.1 wrong but extracted, 0 no answer (or a failed program)."""
    c = config

    def reward(texts: list[str], examples: list[Example]) -> list[float]:
        return score_responses(
            texts,
            [ex.answer for ex in examples],
            c.answer_tolerance,
            c.correct_score,
            c.partial_score,
            c.answer_format,
            c.program_timeout_s,
        )

    return reward


def preflight(config: SFTConfig | PPOConfig, splits: tuple[str, ...] = ("train",)) -> None:
    """Everything about a stage that can be checked before a model loads: the model specs, the data folder, the
    program executor (P-CoT), and whether the adapter fits the model. Each failure is one line (a ValueError)."""
    for spec in (config.model, getattr(config, "ref_model", None)):
        if spec is not None:
            check_model_spec(spec)
    check_data_dir(config.dataset, config.data_dir, config.answer_format, splits)
    check_executor(config.answer_format)
    check_adapter_fits(config.adapter, config.model)


def training_questions(c: SFTConfig) -> list[Example]:
    """The questions an SFT-like stage trains on: train minus the seeded dev split, the first max_questions."""
    train, _ = split_dev(load_examples(c.dataset, c.data_dir, "train", c.answer_format), c.dev_size, c.seed)
    return train[: c.max_questions]


def prepare_lm(config: SFTConfig, lm) -> None:
    """Make a loaded LM ready to train as `config` says: its adapter (the checkpoint's, else a fresh one of
    --adapter), --gradient-checkpointing, and --fsdp (the decoder layers, 1/N per rank)."""
    ensure_adapter(lm, config.adapter, config.model)
    if config.gradient_checkpointing:
        checkpoint_activations(lm)
    if config.fsdp:
        shard_for_training(config.adapter, lm)


def run_sft(config: SFTConfig, examples: list[Example], dev_fn: DevFn | None = None) -> str:
    """Run SFT as configured: skipped when output_dir/final exists, resumed from the last checkpoint when there is
    one; refused when output_dir holds a run with other settings.

    Returns the model to use: output_dir/best when dev selection ran (`dev_fn` and config.eval_every), else final.
    """
    distributed.init()
    out = Path(config.output_dir)
    check_run_folder(config, out / "config.json")
    restore_interrupted_save(out / "best")
    if not (out / "final").is_dir():
        last = latest_checkpoint(out)
        lm, tokenizer = load_model(str(last) if last else config.model, config.device, config.dtype)
        prepare_lm(config, lm)
        trainer = SFTTrainer(
            lm, tokenizer, config, math_pair_fn(config.prompt_template, tokenizer, config.answer_format)
        )
        if last:
            trainer.resume(last)
        trainer.train(examples, dev_fn=dev_fn)
    return str(out / "best") if dev_fn is not None and (out / "best").is_dir() else str(out / "final")


def run_ppo(config: PPOConfig, examples: list[Example], dev_fn: DevFn | None = None) -> str:
    """Run PPO as configured: skipped when output_dir/final exists, resumed from the last checkpoint when there is
    one; refused when output_dir holds a run with other settings. The reference is `ref_model`, else the starting
    checkpoint `model`, frozen (`make_reference`).

    Returns the policy to use: output_dir/best when dev selection ran (see `PPOTrainer.train`), else final.
    """
    distributed.init()
    check_executor(config.answer_format)
    out = Path(config.output_dir)
    check_run_folder(config, out / "config.json")
    restore_interrupted_save(out / "best")
    if not (out / "final").is_dir():
        last = latest_checkpoint(out)
        policy, tokenizer = load_policy(
            str(last) if last else config.model, config.critic, config.device, config.dtype, config.adapter
        )
        reference = make_reference(policy, config, resumed=last is not None)
        if config.gradient_checkpointing:
            checkpoint_activations(policy.lm, policy.critic_trunk)
        if config.fsdp:  # the policy's and the reference's layers, 1/N per rank
            shard_for_training(config.adapter, policy.lm, reference.lm)
        examples, dropped = drop_long_prompts(examples, tokenizer, config.prompt_template, config.max_prompt_len)
        print(f"[ppo] {len(examples)} questions ({dropped} skipped: prompt longer than {config.max_prompt_len})")
        trainer = PPOTrainer(
            policy,
            reference,
            tokenizer,
            config,
            math_prompt_fn(config.prompt_template, tokenizer),
            math_reward_fn(config),
        )
        # Every run samples from its own seed, whatever ran in this process before it (a grid's earlier runs); a
        # resumed run then takes the random state saved in its checkpoint.
        torch.manual_seed(config.seed + distributed.rank())  # each rank its own samples
        if last:
            trainer.resume(last)
        trainer.train(examples, dev_fn=dev_fn)
    return str(out / "best") if (out / "best").is_dir() else str(out / "final")


@command
def sft_main(argv: list[str] | None = None) -> None:
    """`ppo-sft` (or `python -m ppo sft`): warm-up SFT from the command line; rerun the same command to resume."""
    c = parse_config(SFTConfig, argv)
    preflight(c)
    print(f"[sft] done: {run_sft(c, training_questions(c))}")


@command
def ppo_main(argv: list[str] | None = None) -> None:
    """`ppo-rl`: PPO from any starting checkpoint (SmolLM2, or a warm-up SFT folder); rerun the same command to
    resume. Every flag is a field of `PPOConfig`; under `torchrun` each rank samples its own questions."""
    config = parse_config(PPOConfig, argv)
    preflight(config)
    distributed.init()  # under torchrun; a no-op otherwise
    start = time.perf_counter()
    examples = load_examples(config.dataset, config.data_dir, "train", config.answer_format)
    final = run_ppo(config, examples[: config.max_questions])
    print(f"[ppo] done in {time.perf_counter() - start:.1f} s; policy in {final}")
    print(curve_table(read_jsonl(Path(config.output_dir) / "metrics.jsonl"), CURVE_KEYS))
