"""The whole ReFT recipe: warm-up SFT, then PPO from the warm-up checkpoint, against two baselines.
N-CoT or P-CoT (`answer_format`), on GSM8K or SVAMP (`dataset`).

Stages (each skipped when its output exists, each resumable from its last checkpoint with --resume):
    sft            warm-up SFT on the training questions' chains of thought
    sft_continued  the baseline: more SFT, as many extra epochs over the questions as PPO makes
    ppo            ReFT: PPO from the warm-up checkpoint, the same questions, reference = warm-up checkpoint
    eval           base, SFT, SFT-continued and ReFT on the same dev and test questions
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

import torch

from ..adapters.base import AdapterSpec
from ..adapters.loading import load_model
from ..train import distributed
from ..train.checks import check_run_folder
from ..train.cli import command, parse_config, save_config
from ..train.config import ModelSettings, PPOConfig, SFTConfig
from .data import load_examples, split_dev
from .evaluate import evaluate, write_results
from .stages import preflight, run_ppo, run_sft


@dataclass(frozen=True)
class PipelineConfig(ModelSettings):
    """ReFT end to end. The defaults are the CPU preset (docs/usage.md has the paper-scale preset). The model,
    policy kind, device and memory settings (ModelSettings) hold for every stage; `model` is the base model."""

    data_dir: str | None = "../shared/data/gsm8k"
    """GSM8K folder (train.jsonl, test.jsonl) or SVAMP folder; `none` = openai/gsm8k from the hub."""
    dataset: Literal["gsm8k", "svamp"] = "gsm8k"
    """Which data format data_dir holds."""
    answer_format: Literal["ncot", "pcot"] = "ncot"
    """ncot = chains of thought; pcot = Python programs (SFT on data_dir/train_python_sdp.json, sandboxed runs)."""
    prompt_template: Literal["reft", "chat"] = "reft"
    """reft (the original prompt) or chat."""
    train_questions: int = 320
    """Training questions used by every stage (the first N after the dev split)."""
    dev_size: int = 200
    """Questions carved out of train (seeded) for model selection."""
    dev_questions: int = 50
    """How many dev questions to evaluate each model on."""
    test_questions: int = 150
    """How many test questions to evaluate each model on (the held-out comparison)."""
    sft_epochs: float = 1.0
    """Warm-up SFT epochs."""
    sft_lr: float | None = None
    """Warm-up SFT peak learning rate; none = by policy kind (LEARNING_RATES: 2e-5 full, 2e-4 LoRA, 1e-3 LoReFT)."""
    sft_batch_size: int = 8
    """SFT examples per optimizer step."""
    max_len: int = 384
    """SFT examples longer than this (prompt + target tokens) are skipped."""
    ppo_steps: int = 24
    """PPO steps; the SFT-continued baseline gets as many epochs over the questions as these steps make."""
    rollout_batch_size: int = 8
    """Questions per PPO step."""
    samples_per_prompt: int = 1
    """Samples per question per PPO step."""
    ppo_eval_every: int = 0
    """Score the dev questions every N PPO steps; ReFT is then the best-on-dev policy (0 = the last policy)."""
    ppo_lr: float | None = None
    """PPO learning rate; none = by policy kind (3e-6 full, the original's small-model setting; 3e-5 adapters)."""
    kl_coef: float = 0.05
    """KL penalty beta."""
    max_new_tokens: int = 256
    """Response length limit, in PPO and in evaluation."""
    micro_batch_size: int = 4
    """Sequences per PPO forward/backward pass."""
    eval_batch_size: int = 25
    """Questions decoded together in evaluation."""
    seed: int = 0
    """Seed for the splits, data order and sampling."""
    output_dir: str = "runs/train-gsm8k"
    """Where every stage writes."""
    resume: bool = False
    """Continue an interrupted run in output_dir (finished stages are skipped)."""


# (SFT, PPO) learning rates of each policy kind, where --sft-lr / --ppo-lr are not given. An adapter trains far
# fewer parameters from a zero or identity start, so it takes larger steps (the LoReFT paper: ~1e-3 in SFT).
LEARNING_RATES = {"none": (2e-5, 3e-6), "lora": (2e-4, 3e-5), "loreft": (1e-3, 3e-5), "direft": (1e-3, 3e-5)}


def learning_rates(c: PipelineConfig) -> tuple[float, float]:
    sft, ppo = LEARNING_RATES[AdapterSpec.parse(c.adapter).kind]
    return sft if c.sft_lr is None else c.sft_lr, ppo if c.ppo_lr is None else c.ppo_lr


def model_settings(c: PipelineConfig, model: str) -> dict:
    """The settings every stage shares (ModelSettings), for a stage that starts from `model`."""
    return {**{f.name: getattr(c, f.name) for f in fields(ModelSettings)}, "model": model}


def sft_config(c: PipelineConfig, model: str, epochs: float, out: Path) -> SFTConfig:
    return SFTConfig(
        **model_settings(c, model),
        prompt_template=c.prompt_template,
        dataset=c.dataset,
        answer_format=c.answer_format,
        epochs=epochs,
        lr=learning_rates(c)[0],
        batch_size=c.sft_batch_size,
        max_len=c.max_len,
        seed=c.seed,
        output_dir=str(out),
        save_every=20,
    )


def ppo_config(c: PipelineConfig, model: str, out: Path) -> PPOConfig:
    return PPOConfig(
        **model_settings(c, model),
        prompt_template=c.prompt_template,
        dataset=c.dataset,
        answer_format=c.answer_format,
        rollout_batch_size=c.rollout_batch_size,
        samples_per_prompt=c.samples_per_prompt,
        mini_batch_size=c.rollout_batch_size * c.samples_per_prompt,
        micro_batch_size=c.micro_batch_size,
        max_new_tokens=c.max_new_tokens,
        kl_coef=c.kl_coef,
        lr=learning_rates(c)[1],
        steps=c.ppo_steps,
        seed=c.seed,
        output_dir=str(out),
        save_every=8,
        eval_every=c.ppo_eval_every,
    )


def run_eval(c: PipelineConfig, name: str, model: str, splits: dict, out: Path) -> dict:
    """Evaluate one model on every split (skipping what is already written); returns {split: summary}."""
    results, loaded = {}, None
    for split, examples in splits.items():
        folder = out / "eval" / name / split
        if not (folder / "summary.json").is_file():
            lm, tokenizer = loaded = loaded or load_model(model, c.device, c.dtype)  # once per model, if needed
            summary, records = evaluate(
                lm,
                tokenizer,
                examples,
                c.prompt_template,
                c.max_new_tokens,
                c.eval_batch_size,
                desc=f"{name}/{split}",
                answer_format=c.answer_format,
            )
            write_results(folder, summary, records)
        results[split] = json.loads((folder / "summary.json").read_text())
    return results


def results_table(results: dict[str, dict]) -> str:
    """A Markdown table: one row per model, top-1 accuracy and answered fraction per split."""
    splits = list(next(iter(results.values())))
    head = "| model | " + " | ".join(f"{s} top-1 % | {s} answered %" for s in splits) + " |"
    rows = [
        f"| {name} | " + " | ".join(f"{r[s]['top1']:.1f} | {r[s]['answered']:.1f}" for s in splits) + " |"
        for name, r in results.items()
    ]
    n = " ".join(f"{s}: {next(iter(results.values()))[s]['n']} questions." for s in splits)
    return "\n".join([head, "|---" * (1 + 2 * len(splits)) + "|", *rows, "", n])


def run_pipeline(c: PipelineConfig) -> dict:
    """Run every stage; returns {config, results: {model: {split: summary}}, stage_seconds}.

    Everything that can be checked is checked before any work, and before anything is written: every stage's
    settings, the model, the data folder, the executor, and the run folder (a rerun with other settings is refused,
    naming them)."""
    distributed.init()
    out = Path(c.output_dir)
    warmup = sft_config(c, c.model, c.sft_epochs, out / "sft")  # each stage's settings, checked now, not minutes in
    ppo_config(c, c.model, out / "ppo")
    preflight(warmup, splits=("train", "test"))
    if out.exists() and any(out.iterdir()) and not c.resume:
        raise FileExistsError(f"{out} is not empty: pass --resume to continue it, or choose another --output-dir")
    check_run_folder(c, out / "pipeline_config.json")
    distributed.barrier()  # every rank has looked before rank 0 writes
    save_config(c, out / "pipeline_config.json")
    torch.manual_seed(c.seed + distributed.rank())  # under torchrun, each rank its own samples
    train, dev = split_dev(load_examples(c.dataset, c.data_dir, "train", c.answer_format), c.dev_size, c.seed)
    train = train[: c.train_questions]
    test = load_examples(c.dataset, c.data_dir, "test")[: c.test_questions]
    splits = {"dev": dev[: c.dev_questions], "test": test}
    # Stage wall times add up over resumed invocations (a skipped stage adds ~0).
    previous = out / "results.json"
    times = json.loads(previous.read_text()).get("stage_seconds", {}) if previous.is_file() else {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        times[name] = round(times.get(name, 0.0) + time.perf_counter() - start, 1)
        start = time.perf_counter()

    sft = run_sft(sft_config(c, c.model, c.sft_epochs, out / "sft"), train)
    lap("sft")
    ppo_epochs_over_data = c.ppo_steps * c.rollout_batch_size / len(train)  # passes PPO makes over the questions
    continued = run_sft(sft_config(c, sft, ppo_epochs_over_data, out / "sft_continued"), train)
    lap("sft_continued")

    def dev_top1(lm, tokenizer) -> float:
        return evaluate(
            lm,
            tokenizer,
            splits["dev"],
            c.prompt_template,
            c.max_new_tokens,
            c.eval_batch_size,
            desc="ppo dev",
            answer_format=c.answer_format,
        )[0]["top1"]

    reft = run_ppo(ppo_config(c, sft, out / "ppo"), train, dev_fn=dev_top1)
    lap("ppo")
    models = {"base": c.model, "SFT": sft, "SFT-continued": continued, "ReFT": reft}
    results = {name: run_eval(c, name, path, splits, out) for name, path in models.items()}
    lap("eval")
    summary = {"config": asdict(c), "results": results, "stage_seconds": times}
    write_summary(out, summary)
    return summary


@distributed.main_only
def write_summary(out: Path, summary: dict) -> None:
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "results.md").write_text(results_table(summary["results"]) + "\n")


@command
def main(argv: list[str] | None = None) -> None:
    """`ppo-reft`: warm-up SFT, PPO and the comparison table; `--resume` continues an interrupted run."""
    config = parse_config(PipelineConfig, argv)
    start = time.perf_counter()
    summary = run_pipeline(config)
    print("\n" + results_table(summary["results"]))
    stages = ", ".join(f"{k} {v / 60:.1f}" for k, v in summary["stage_seconds"].items())
    print(
        f"\nthis invocation: {(time.perf_counter() - start) / 60:.1f} min; stages over all invocations, in min: "
        f"{stages}\neverything is in {config.output_dir}/ (results.md, results.json)"
    )
