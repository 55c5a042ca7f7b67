"""The whole ReFT recipe: warm-up SFT, then PPO from the warm-up checkpoint, against two baselines.
N-CoT or P-CoT (`answer_format`), on GSM8K or SVAMP (`dataset`).

Stages (each skipped when its output exists, each resumable from its last checkpoint with --resume):
    sft            warm-up SFT on the training questions' chains of thought
    sft_continued  the baseline: more SFT, as many extra epochs over the questions as PPO makes (with
                   --sft-eval-every, scored on dev on that schedule and its best kept, as --ppo-eval-every does
                   for ReFT; the warm-up itself is never selected)
    ppo            ReFT: PPO from the warm-up checkpoint, the same questions, reference = warm-up checkpoint
    eval           base, SFT, SFT-continued and ReFT on the same dev and test questions
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from ..train import distributed
from ..train.checks import NOT_RESULTS, check_run_folder
from ..train.cli import command
from .data import load_examples, split_dev
from .eval_config import EvalConfig
from .evaluate import evaluate, write_results
from .pipeline_baselines import baseline_configs
from .pipeline_config import PipelineConfig, parse_pipeline, stage_settings
from .rerank import check_scorer, load_evaluated
from .self_training import run_offline_st, run_online_st
from .stages import preflight, run_ppo, run_sft
from .verifier_stage import run_verifier


def scored(e: EvalConfig, lm, tokenizer, examples: list, desc: str, k: int | None = None, scorers: dict | None = None):
    """`evaluate` with the pipeline's evaluation settings (k = 1 for dev selection: greedy top-1 only)."""
    return evaluate(lm, tokenizer, examples, e.prompt_template, e.max_new_tokens, e.batch_size, k or e.k,
                    e.temperature, e.tolerance, desc, e.answer_format, e.program_timeout_s, scorers)  # fmt: skip


def run_eval(c: PipelineConfig, name: str, model: str, splits: dict, out: Path, verifier: str | None = None) -> dict:
    """Evaluate one model on every split (skipping what is already written); returns {split: summary}. `verifier`:
    the one the pipeline trained (--train-verifier), in place of --eval-verifier."""
    results, loaded, e = {}, None, stage_settings(c, "eval", model, out / "eval" / name)
    e = replace(e, verifier=verifier) if verifier else e
    for split, examples in splits.items():
        folder = out / "eval" / name / split
        if not (folder / "summary.json").is_file():
            lm, tokenizer, scorers = loaded = loaded or load_evaluated(e)  # once per model, if needed
            summary, records = scored(e, lm, tokenizer, examples, f"{name}/{split}", scorers=scorers)
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


def check_before_work(c: PipelineConfig, settings: dict, out: Path) -> None:
    """The model specs, data folder and executor (`preflight`), a verifier given, one process for Online-ST, and the
    run folder: empty, or `--resume` with the same settings (a rerun with others is refused, naming them)."""
    preflight(stage_settings(c, "ppo", c.model, out / "ppo"), splits=("train", "test"))  # model and ref_model
    if (verifier := stage_settings(c, "eval", c.model, out / "eval").verifier) is not None:
        check_scorer(verifier)
    if c.self_training and distributed.world_size() > 1:
        raise ValueError("--self-training runs Online-ST, which runs in one process for now: drop it under torchrun")
    if out.exists() and any(out.iterdir()) and not c.resume:
        raise FileExistsError(f"{out} is not empty: pass --resume to continue it, or choose another --output-dir")
    check_run_folder(settings, out / "pipeline_config.json", NOT_RESULTS | {"sft_save_every", "ppo_save_every"})


def run_pipeline(c: PipelineConfig) -> dict:
    """Run every stage; returns {config, results: {model: {split: summary}}, stage_seconds}.

    Everything that can be checked is checked before any work, and before anything is written: every stage's
    settings (when `c` was built), the model, the data folder, the executor, and the run folder (a rerun with
    other settings is refused, naming them)."""
    distributed.init()
    out = Path(c.output_dir)
    settings = c.settings()
    check_before_work(c, settings, out)
    train, dev = split_dev(load_examples(c.dataset, c.data_dir, "train", c.answer_format), c.dev_size, c.seed)
    train = train[: c.train_questions]
    test = load_examples(c.dataset, c.data_dir, "test")[: c.test_questions]
    splits = {"dev": dev[: c.dev_questions], "test": test}
    extra = {}
    if c.self_training or c.train_verifier:  # their settings, checked before any work
        warmup, batch = str(out / "sft" / "final"), stage_settings(c, "eval", c.model, out).batch_size
        sft_settings, ppo_settings = stage_settings(c, "sft", warmup, out), stage_settings(c, "ppo", warmup, out)
        extra = baseline_configs(sft_settings, ppo_settings, len(train), batch, out)
    distributed.barrier()  # every rank has looked, and the data has loaded, before rank 0 writes
    write_settings(settings, out / "pipeline_config.json")
    torch.manual_seed(c.seed + distributed.rank())  # under torchrun, each rank its own samples
    # Stage wall times add up over resumed invocations (a skipped stage adds ~0).
    previous = out / "results.json"
    times = json.loads(previous.read_text()).get("stage_seconds", {}) if previous.is_file() else {}
    start = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal start
        times[name] = round(times.get(name, 0.0) + time.perf_counter() - start, 1)
        start = time.perf_counter()

    sft = run_sft(stage_settings(c, "sft", c.model, out / "sft", eval_every=0), train)  # the warm-up: its final
    lap("sft")
    ppo = stage_settings(c, "ppo", sft, out / "ppo")
    ppo_epochs_over_data = ppo.steps * ppo.rollout_batch_size / len(train)  # passes PPO makes over the questions
    e = stage_settings(c, "eval", sft, out / "eval")

    def dev_fn(name: str):  # dev top-1, for the selection of both arms (--sft-eval-every, --ppo-eval-every)
        return lambda lm, tok: scored(e, lm, tok, splits["dev"], f"{name} dev", k=1)[0]["top1"]

    more = stage_settings(c, "sft", sft, out / "sft_continued", epochs=ppo_epochs_over_data)
    continued = run_sft(more, train, dev_fn=dev_fn("sft_continued"))
    lap("sft_continued")
    reft = run_ppo(ppo, train, dev_fn=dev_fn("ppo"))
    lap("ppo")
    baselines, verifier = run_baselines(c, extra, train, lap)
    models = {"base": c.model, "SFT": sft, "SFT-continued": continued, "ReFT": reft, **baselines}
    results = {name: run_eval(c, name, path, splits, out, verifier) for name, path in models.items()}
    lap("eval")
    summary = {"config": settings, "results": results, "stage_seconds": times}
    write_summary(out, summary)
    return summary


def run_baselines(c: PipelineConfig, extra: dict, train: list, lap) -> tuple[dict, str | None]:
    """The optional stages (ppo.tasks.pipeline_baselines): Offline-ST and Online-ST with --self-training, a verifier
    with --train-verifier. Returns {row name: model} and the verifier (None without one)."""
    models, verifier = {}, None
    if c.self_training:
        models["Offline-ST"] = run_offline_st(extra["offline_st"], train)
        lap("offline_st")
        models["Online-ST"] = run_online_st(extra["online_st"], train)
        lap("online_st")
    if c.train_verifier:  # from the warm-up's own answers; it reranks every model's samples
        verifier = run_verifier(extra["verifier"], train)
        lap("verifier")
    return models, verifier


@distributed.main_only
def write_summary(out: Path, summary: dict) -> None:
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "results.md").write_text(results_table(summary["results"]) + "\n")


@command
def main(argv: list[str] | None = None) -> None:
    """`ppo-reft`: warm-up SFT, PPO and the comparison table; `--resume` continues an interrupted run."""
    config = parse_pipeline(argv)
    start = time.perf_counter()
    summary = run_pipeline(config)
    print("\n" + results_table(summary["results"]))
    stages = ", ".join(f"{k} {v / 60:.1f}" for k, v in summary["stage_seconds"].items())
    print(
        f"\nthis invocation: {(time.perf_counter() - start) / 60:.1f} min; stages over all invocations, in min: "
        f"{stages}\neverything is in {config.output_dir}/ (results.md, results.json)"
    )


@distributed.main_only
def write_settings(settings: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
