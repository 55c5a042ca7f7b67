"""The paper's self-training baselines (section 4.2), from the warm-up, on the same training questions as ReFT.

Offline-ST  sample k answers to each training question from the warm-up once, keep the right ones without
            duplicates, and run SFT on the original data plus the kept samples
Online-ST   each step samples k answers to each of `questions_per_step` questions from the current model, as ReFT
            samples, keeps the right ones and takes one SFT step on them: at k = 1 and ReFT's questions per step,
            the same sampled answers per step as ReFT

    python -m ppo offline-st --model runs/sft/final --data-dir ../shared/data/svamp --dataset svamp \\
        --answer-format pcot --max-questions 800 --k 4 --output-dir runs/offline-st
    python -m ppo online-st --model runs/sft/final ... --k 1 --questions-per-step 16 --epochs 0.96 --lr 3e-6
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..adapters.loading import load_model
from ..train import distributed
from ..train.checkpoint import DevFn, keep_if_best, latest_checkpoint, restore_interrupted_save, truncate_log
from ..train.checks import check_run_folder
from ..train.cli import command, parse_config, save_config
from ..train.config import SFTConfig
from ..train.data_order import batch_indices
from ..train.metrics import MetricsLogger
from ..train.sampled_config import SampledSFTConfig
from ..train.sft import SFTTrainer, lr_factor
from .data import Example
from .formats import format_target
from .rewards import answer_match, extract_program
from .sampled import labelled_samples, sample_and_label
from .stages import math_pair_fn, preflight, prepare_lm, run_sft, training_questions


@dataclass(frozen=True)
class OfflineSTConfig(SampledSFTConfig):
    """Offline self-training: SFT from `model` on the original data plus its own right answers, k per question."""

    sample_questions: int | None = None
    """Sample only the first N training questions (None = all): N * k answers are drawn in all."""
    sft_examples: int | None = None
    """Examples the SFT draws in all, however many samples were kept (None = `epochs` passes over the data), so
    that its steps can match another stage's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("sample_questions", "sft_examples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1 (got {getattr(self, name)!r})")


def as_target(text: str, answer_format: str) -> str:
    """A right sample as an SFT solution: the program (pcot), or the reasoning before the answer the reward read
    (ncot, `rewards.answer_match`, with a "Therefore," or "So" before it; `formats.format_target` appends the
    trigger with the gold value, which this answer equals)."""
    if answer_format == "pcot":
        return extract_program(text).strip()
    match = answer_match(text)
    reasoning = text[: match.start()] if match else text
    return re.sub(r"\s*\b(therefore|so)\b\s*,?\s*$", "", reasoning, flags=re.IGNORECASE).strip()


def own_example(examples: list[Example], row: dict, answer_format: str) -> Example:
    """A sampled answer (a row of `sampled`) as an SFT example of its question."""
    return replace(examples[row["question"]], solution=as_target(row["answer"], answer_format))


def with_own_answers(examples: list[Example], rows: list[dict], answer_format: str) -> tuple[list[Example], int]:
    """The original examples, then every question's right samples that differ from each other and from its
    annotated solution. Returns them and how many samples were added."""
    seen = {i: {format_target(ex, answer_format)} for i, ex in enumerate(examples) if ex.solution}  # as trained on
    added = []
    for row in rows:
        own = own_example(examples, row, answer_format)
        if row["label"] > 0.5 and own.solution:
            target, trained = format_target(own, answer_format), seen.setdefault(row["question"], set())
            if target not in trained:
                trained.add(target)
                added.append(own)
    return examples + added, len(added)


def run_offline_st(c: OfflineSTConfig, examples: list[Example], dev_fn: DevFn | None = None) -> str:
    """Sample and label once (kept in output_dir), then SFT in output_dir/sft; returns its model (`run_sft`'s: the
    best on dev with `dev_fn` and c.eval_every, else the final one)."""
    distributed.init()
    out = Path(c.output_dir)
    check_run_folder(c, out / "config.json")
    save_config(c, out / "config.json")  # before the samples, so a rerun with other settings is refused
    rows = labelled_samples(c, examples[: c.sample_questions], out)  # indices into that prefix are examples'
    data, added = with_own_answers(examples, rows, c.answer_format)
    print(f"[offline-st] {len(examples)} annotated examples + {added} right samples of their own")
    sft = SFTConfig(**{f.name: getattr(c, f.name) for f in fields(SFTConfig)})
    epochs = c.sft_examples / len(data) if c.sft_examples else c.epochs
    return run_sft(replace(sft, epochs=epochs, output_dir=str(out / "sft")), data, dev_fn)


@dataclass(frozen=True)
class OnlineSTConfig(SampledSFTConfig):
    """Online self-training: each step samples k answers to each of `questions_per_step` questions from the current
    model, keeps the right ones and takes one SFT step on them; `epochs` passes over the questions in all."""

    questions_per_step: int = 16
    """Questions sampled per step (ReFT's rollout_batch_size, for the same answers per step at k = 1)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.questions_per_step < 1:
            raise ValueError(f"--questions-per-step must be an integer >= 1 (got {self.questions_per_step!r})")
        self.refuse("fsdp", "grad_accum")  # one step's kept answers are one update

    def total_steps(self, n_questions: int) -> int:
        return max(1, round(self.epochs * n_questions / self.questions_per_step))


def online_step(trainer: SFTTrainer, c: OnlineSTConfig, batch: list[Example], lr: float) -> dict:
    """Sample, keep the right answers, and take one SFT step on them (none kept: no update, the step counted)."""
    rows = sample_and_label(trainer.lm, trainer.tokenizer, batch, c)
    kept = [own_example(batch, r, c.answer_format) for r in rows if r["label"] > 0.5]
    encoded = [row for row in map(trainer.encode, kept) if trainer.length(row) <= c.max_len]
    metrics = {"online/accuracy": sum(r["label"] for r in rows) / len(rows), "online/kept": len(encoded)}
    if encoded:
        return {**metrics, **trainer.step(encoded, lr)}
    trainer.step_count += 1
    return metrics


def run_online_st(c: OnlineSTConfig, examples: list[Example], dev_fn: DevFn | None = None) -> str:
    """Online-ST from c.model for c.total_steps steps, resumed from the last checkpoint. With `dev_fn` and
    c.eval_every, scored on dev every eval_every steps and after the last, and the best kept in output_dir/best,
    which is returned; else output_dir/final."""
    distributed.init()
    if distributed.world_size() > 1:
        raise ValueError("Online-ST runs in one process for now (each rank would keep a different number of answers)")
    out = Path(c.output_dir)
    check_run_folder(c, out / "config.json")
    restore_interrupted_save(out / "best")
    chosen = out / ("best" if dev_fn is not None and c.eval_every else "final")
    if (out / "final").is_dir():
        return str(chosen)
    last = latest_checkpoint(out)
    lm, tokenizer = load_model(str(last) if last else c.model, c.device, c.dtype)
    prepare_lm(c, lm)
    trainer = SFTTrainer(lm, tokenizer, c, math_pair_fn(c.prompt_template, tokenizer, c.answer_format))
    torch.manual_seed(c.seed)  # the answers drawn; a resumed run continues the checkpoint's random stream
    if last:
        trainer.resume(last)
    save_config(c, out / "config.json")
    truncate_log(out / "metrics.jsonl", trainer.step_count)
    board = out / "tensorboard" if c.tensorboard else None
    logger, total = MetricsLogger(out / "metrics.jsonl", board, trainer.step_count), c.total_steps(len(examples))
    for step in tqdm(range(trainer.step_count, total), desc="online-st", unit="step", initial=trainer.step_count,
                     total=total):  # fmt: skip
        batch = [examples[i] for i in batch_indices(len(examples), c.questions_per_step, step, c.seed)]
        start = time.perf_counter()
        metrics = online_step(trainer, c, batch, c.lr * lr_factor(step, total, int(c.warmup_ratio * total), c.schedule))
        metrics["time/step_s"] = time.perf_counter() - start  # sampling and the update; dev scoring left out
        if dev_fn is not None and c.eval_every and ((step + 1) % c.eval_every == 0 or step + 1 == total):
            metrics["eval/dev_score"], trainer.best_dev = keep_if_best(
                dev_fn, lm, lm, tokenizer, trainer.best_dev, out / "best", trainer.step_count
            )
        logger.log({"step": step + 1, **metrics, "time/elapsed_s": logger.elapsed()})
        if c.save_every and (step + 1) % c.save_every == 0 and step + 1 < total:
            trainer.save(out / f"checkpoint-{step + 1}")
    logger.close()
    trainer.save(out / "final")
    return str(chosen)


@command
def online_main(argv: list[str] | None = None) -> None:
    """`python -m ppo online-st`: Online-ST from a warm-up checkpoint; rerun the same command to resume."""
    c = parse_config(OnlineSTConfig, argv)
    preflight(c)
    print(f"[online-st] done: {run_online_st(c, training_questions(c))}")


@command
def offline_main(argv: list[str] | None = None) -> None:
    """`python -m ppo offline-st`: Offline-ST from a warm-up checkpoint; rerun the same command to resume."""
    c = parse_config(OfflineSTConfig, argv)
    preflight(c)
    print(f"[offline-st] done: {run_offline_st(c, training_questions(c))}")
