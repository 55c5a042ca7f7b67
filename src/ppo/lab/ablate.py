"""Ablations: PPO from one warm-up checkpoint over a grid of settings, with everything else held fixed.

grid      (ppo.lab.grids) a list of (name, PPOConfig overrides): `kl_grid()` (beta and the estimator),
          `sampling_grid()`, `adapter_grid()` (full fine-tuning, LoRA, LoReFT), `estimator_grid()` (GAE, GRPO,
          RLOO, Dr. GRPO)
run_grid  each configuration x seed in its own folder, sequentially; a finished one (result.json) is skipped,
          an interrupted one resumes from its checkpoint, a failing one leaves error.txt and the grid goes on
report    (ppo.lab.report) the table and the plots
"""

from __future__ import annotations

import json
import statistics
import time
import traceback
from pathlib import Path
from typing import Callable

from ..train.checks import check_run_folder
from ..train.config import PPOConfig
from ..train.metrics import read_jsonl
from .ablation_config import AblationConfig
from .grids import Grid
from .report import RESULT_FILE, collect, plot_ablation, write_ablation

DEV_FILE = "dev_predictions.jsonl"  # each run's last dev scoring, one record per question


def config_for(base: PPOConfig, overrides: dict, seed: int, out: Path) -> PPOConfig:
    return PPOConfig(**{**vars(base), **overrides, "seed": seed, "output_dir": str(out)})


def check_settings(base: PPOConfig, grid: Grid, seeds: list[int], output_dir: str | Path) -> None:
    """Refuse to go on with a folder that was run with other settings: its results would be silently mixed in."""
    for name, overrides in grid:
        for seed in seeds:
            out = Path(output_dir) / name / f"seed-{seed}"
            check_run_folder(config_for(base, overrides, seed, out), out / "config.json")  # as run_ppo will


def run_one(base: PPOConfig, name: str, overrides: dict, seed: int, run: Callable, out: Path) -> str:
    """One configuration x seed in `out`: 'done', 'skipped' (already done) or 'failed' (see error.txt)."""
    if (out / RESULT_FILE).is_file():
        return "skipped"
    config = config_for(base, overrides, seed, out)
    start = time.perf_counter()
    try:
        dev_top1 = run(config)
    except Exception:  # noqa: BLE001 -- reported in error.txt and results.md
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.txt").write_text(traceback.format_exc())
        return "failed"
    rows = [r for r in read_jsonl(out / "metrics.jsonl") if "objective/reward" in r]
    answers = out / DEV_FILE  # which dev questions the final policy got right, when `run` wrote them
    result = {
        "name": name,
        "seed": seed,
        "dev_top1": dev_top1,
        "wall_s": time.perf_counter() - start,
    }
    for key, metric in (("reward", "objective/reward"), ("kl", "objective/kl"), ("length", "response/length"),
                        ("step_s", "time/step_s")):  # fmt: skip
        if values := [r[metric] for r in rows if metric in r]:
            result[key] = statistics.fmean(values)
    if answers.is_file():
        result["dev_correct"] = [bool(r["correct"]) for r in read_jsonl(answers)]
    (out / "error.txt").unlink(missing_ok=True)
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return "done"


def run_grid(
    base: PPOConfig, grid: Grid, seeds: list[int], run: Callable[[PPOConfig], float], output_dir: str | Path
) -> dict[str, str]:
    """Every configuration x seed, in order. `run(config)` trains and returns the final dev top-1 %."""
    check_settings(base, grid, seeds, output_dir)
    status = {}
    for name, overrides in grid:
        for seed in seeds:
            out = Path(output_dir) / name / f"seed-{seed}"
            status[f"{name}/seed-{seed}"] = s = run_one(base, name, overrides, seed, run, out)
            print(f"[ablate] {name} seed {seed}: {s}")
    return status


def run_ablation(c: AblationConfig, grid: Grid) -> str:
    """Run (or resume) the grid, then write results.csv, results.md and the plots. Returns the Markdown."""
    from ..adapters.loading import load_model
    from ..tasks.data import load_examples, split_dev
    from ..tasks.evaluate import evaluate
    from ..tasks.stages import run_ppo

    if not Path(c.warmup).is_dir():
        raise FileNotFoundError(
            f"no warm-up checkpoint at {c.warmup}: run `make train-gsm8k` (its sft/final) or pass --warmup"
        )
    train, dev = split_dev(load_examples(c.dataset, c.data_dir, "train", c.answer_format), c.dev_size, 0)
    train, dev, seeds = train[: c.train_questions], dev[: c.dev_questions], [int(s) for s in c.seeds.split(",")]

    def dev_top1(lm, tokenizer, answers: Path | None = None) -> float:
        """Dev top-1 %; with `answers`, the per-question records are written there (the last call's stay)."""
        summary, records = evaluate(
            lm, tokenizer, dev, "reft", c.max_new_tokens, c.eval_batch_size, desc="dev", answer_format=c.answer_format
        )
        if answers is not None:
            answers.write_text("".join(json.dumps(r) + "\n" for r in records))
        return summary["top1"]

    def run(config: PPOConfig) -> float:
        out = Path(config.output_dir)
        run_ppo(config, train, dev_fn=lambda lm, tokenizer: dev_top1(lm, tokenizer, out / DEV_FILE))
        last = read_jsonl(out / "metrics.jsonl")[-1]
        if "eval/dev_score" in last:  # the final policy was scored at the last step
            return last["eval/dev_score"]
        return dev_top1(*load_model(str(out / "final"), c.device, c.dtype), out / DEV_FILE)

    base = PPOConfig(
        model=c.warmup,
        data_dir=c.data_dir,
        dataset=c.dataset,
        answer_format=c.answer_format,
        kl_coef=c.kl_coef,
        device=c.device,
        dtype=c.dtype,
        steps=c.steps,
        rollout_batch_size=c.completions_per_step,
        mini_batch_size=c.completions_per_step,
        micro_batch_size=c.micro_batch_size,
        max_new_tokens=c.max_new_tokens,
        lr=c.lr,
        eval_every=c.eval_every,
        save_every=c.eval_every,
    )
    warmup_top1 = warmup_score(c, lambda: dev_top1(*load_model(c.warmup, c.device, c.dtype)))
    run_grid(base, grid, seeds, run, c.output_dir)
    rows, missing = collect(c.output_dir, grid, seeds)
    text = write_ablation(c.output_dir, rows, missing, warmup_top1)
    plot_ablation(c.output_dir, grid, seeds, rows, warmup_top1)
    return text


def warmup_score(c: AblationConfig, score: Callable[[], float]) -> float:
    """The warm-up's dev top-1 (step 0 of every curve), scored once per grid and kept in warmup.json."""
    path, key = Path(c.output_dir) / "warmup.json", {"warmup": c.warmup, "dev_questions": c.dev_questions}
    if path.is_file() and (old := json.loads(path.read_text()))["key"] == key:
        return old["dev_top1"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "dev_top1": (top1 := score())}) + "\n")
    return top1
