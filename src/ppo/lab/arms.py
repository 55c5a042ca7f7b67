"""The warm-up's settings and the arms of the SVAMP experiment (ppo.lab.reproduce; the warm-up itself is trained and
recorded by ppo.lab.warmup_builds), each from the warm-up checkpoint, on the same training questions, with the same
budget, and scored the same way.

    reft           PPO with GAE at `lam` and the value head, 1 answer per question, 2 epochs, the KL (k1) in the reward
    grpo           our GRPO: `group` answers per question, 1 epoch, the KL (k3) in the loss
    trl-grpo       TRL's GRPOTrainer with the same settings and our sandboxed reward (ppo.lab.trl_arm)
    sft-continued  more SFT, as many passes over the questions as ReFT makes (the paper's baseline)
    offline-st     the paper's Offline-ST: the warm-up samples `samples` answers (here one to each of the first 768
                   questions), and SFT runs on the programs plus the right samples, for SFT-continued's steps
    online-st      the paper's Online-ST: each step samples as ReFT does (16 questions x 1 answer) and takes one SFT
                   step on the right answers, for ReFT's steps, with SFT-continued's learning rate

Every arm is scored on dev at `points` evenly spaced points of its budget, and the best point (the earliest of
ties) is the arm's model, scored once on test. Training time is the sum of the step times, and Offline-ST's
sampling: dev scoring is left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from pathlib import Path

from ..adapters.loading import load_model
from ..tasks.data import load_examples, split_dev
from ..tasks.evaluate import evaluate
from ..tasks.sampled import sampling_minutes
from ..tasks.self_training import OfflineSTConfig, OnlineSTConfig, run_offline_st, run_online_st
from ..tasks.stages import run_ppo, run_sft
from ..train.config import PPOConfig, SFTConfig
from ..train.metrics import read_jsonl
from .machine import cpu_name
from .reproduce_config import ReproduceConfig

WARMUP_RECORD = "warmup.json"
# Per-step training metrics kept in a record (the second figure: ReFT's reward, KL, clip fraction and critic).
TRAINING_KEYS = ("objective/score", "objective/accuracy", "objective/kl", "objective/kl_k1", "objective/kl_coef",
                 "objective/reward", "policy/clipfrac", "value/explained_var", "response/length", "online/accuracy",
                 "online/kept", "loss", "time/step_s")  # fmt: skip
SFT_ARMS = ("sft-continued", "offline-st")  # step through `sft_steps` batches of 8; the others through `rl_steps`


def common(c: ReproduceConfig) -> dict:
    return {"device": c.device, "dtype": c.dtype, "data_dir": c.data_dir, "dataset": "svamp", "answer_format": "pcot"}


def splits(c: ReproduceConfig) -> tuple[list, list, list]:
    """The training questions, the seeded dev split carved from train before them, and the test questions."""
    train, dev = split_dev(load_examples("svamp", c.data_dir, "train", "pcot"), c.dev_size, 0)
    return train[: c.train_questions], dev, load_examples("svamp", c.data_dir, "test")[: c.test_questions]


def warmup_config(c: ReproduceConfig) -> SFTConfig:
    """The warm-up: SFT on the training questions' programs (the paper's warm-up, scaled to this CPU)."""
    return SFTConfig(model=c.model, **common(c), max_questions=c.train_questions, dev_size=c.dev_size, max_len=384,
                     epochs=c.warmup_epochs, lr=c.warmup_lr, batch_size=8, save_every=20, seed=0,
                     output_dir=str(Path(c.output_dir) / "warmup"))  # fmt: skip


def arm_config(c: ReproduceConfig, arm: str, seed: int, warmup: str, overrides: dict | None = None,
               label: str | None = None) -> PPOConfig | SFTConfig:  # fmt: skip
    """Our trainers' settings for an arm (trl-grpo takes the grpo arm's, ppo.lab.trl_arm); an ablation's cell
    (ppo.lab.ablate_svamp) changes some of them (`overrides`, checked as any setting is) in its own folder `label`."""
    config = base_config(c, arm, seed, warmup, str(Path(c.output_dir) / f"{label or arm}-seed{seed}"))
    return replace(config, **overrides) if overrides else config


def base_config(c: ReproduceConfig, arm: str, seed: int, warmup: str, out: str) -> PPOConfig | SFTConfig:
    every = (c.sft_steps if arm in SFT_ARMS else c.rl_steps) // c.points
    sft = dict(
        model=warmup,
        **common(c),
        dev_size=c.dev_size,
        max_len=384,
        lr=c.warmup_lr,
        batch_size=8,
        epochs=c.samples / c.train_questions,
        eval_every=every,
        save_every=every,
        seed=seed,
        output_dir=out,
    )
    sampled = dict(temperature=1.0, max_new_tokens=c.max_new_tokens)  # as the RL arms sample
    if arm == "sft-continued":
        return SFTConfig(**sft)
    if arm == "offline-st":
        k, questions = c.offline_sampling
        return OfflineSTConfig(**sft, **sampled, k=k, sample_questions=questions, sft_examples=c.sft_steps * 8)
    if arm == "online-st":
        return OnlineSTConfig(**sft, **sampled, k=1, questions_per_step=c.completions_per_step)
    shared = dict(model=warmup, **common(c), steps=c.rl_steps, max_new_tokens=c.max_new_tokens, temperature=1.0,
                  lr=c.lr, kl_coef=c.kl_coef, mini_batch_size=c.completions_per_step,
                  micro_batch_size=c.micro_batch_size, eval_every=every, save_every=every, seed=seed,
                  output_dir=out)  # fmt: skip
    if arm == "reft":
        return PPOConfig(**shared, advantage="gae", lam=c.lam, rollout_batch_size=c.completions_per_step,
                         samples_per_prompt=1, ppo_epochs=2, kl_in="reward", kl_estimator="k1")  # fmt: skip
    return PPOConfig(**shared, advantage="grpo", rollout_batch_size=c.completions_per_step // c.group,
                     samples_per_prompt=c.group, ppo_epochs=1, kl_in="loss", kl_estimator="k3")  # fmt: skip


def fingerprint(folder: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of a checkpoint's weight files: the same bits, the same print."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def scored(c: ReproduceConfig, lm, tokenizer, examples: list, desc: str) -> dict:
    """Greedy top-1 with the one prompt and answer extraction of every model, and each question's answer."""
    summary, records = evaluate(lm, tokenizer, examples, "reft", c.eval_max_new_tokens, c.eval_batch_size,
                                desc=desc, answer_format="pcot")  # fmt: skip
    return {**summary, "answers": [r["answer"] for r in records], "correct": [bool(r["correct"]) for r in records]}


def training(rows: list[dict]) -> list[dict]:
    """The per-step metrics a record keeps: TRAINING_KEYS, and TRL's own (trl/...)."""
    return [{"step": r["step"], **{k: v for k, v in r.items() if k in TRAINING_KEYS or k.startswith("trl/")}}
            for r in rows]  # fmt: skip


def train_minutes(rows: list[dict], upto: int | None = None) -> float:
    return sum(r.get("time/step_s", 0.0) for r in rows if upto is None or r["step"] <= upto) / 60


def train_arm(c: ReproduceConfig, arm: str, seed: int, start: dict, train: list, dev_fn,
              overrides: dict | None = None, label: str | None = None) -> tuple:  # fmt: skip
    """Train one arm x seed from the warm-up (resumed within a sitting where its trainer can), scoring dev with
    `dev_fn` on its schedule; `overrides` and `label` as in arm_config. Returns (its settings, its best dev point's
    folder)."""
    if arm == "trl-grpo":
        from .trl_arm import run_trl_grpo

        config = arm_config(c, "grpo", seed, start["folder"], overrides, label or arm)
        return config, run_trl_grpo(c, config, train, dev_fn, Path(config.output_dir))
    config = arm_config(c, arm, seed, start["folder"], overrides, label)
    run = {"sft-continued": run_sft, "offline-st": run_offline_st, "online-st": run_online_st}.get(arm, run_ppo)
    return config, run(config, train, dev_fn)


def run_arm(c: ReproduceConfig, arm: str, seed: int, start: dict, train: list, dev: list, test: list,
            overrides: dict | None = None, label: str | None = None) -> dict:  # fmt: skip
    """Train one arm x seed (an ablation's cell: with `overrides`, in folder `label`), score its best dev point on
    test, and return its record."""

    def dev_fn(lm, tokenizer) -> float:
        return scored(c, lm, tokenizer, dev, f"{label or arm} dev")["top1"]

    config, best = train_arm(c, arm, seed, start, train, dev_fn, overrides, label)
    out = Path(config.output_dir)
    rows = read_jsonl(out / ("sft" if arm == "offline-st" else "") / "metrics.jsonl")
    sampling = sampling_minutes(out) if arm == "offline-st" else 0.0  # before its first step
    per_sample = c.samples / (c.sft_steps if arm in SFT_ARMS else c.rl_steps)  # budget used by a step
    curve = [{"step": r["step"], "samples": round(r["step"] * per_sample),
              "train_min": sampling + train_minutes(rows, r["step"]), "dev_top1": r["eval/dev_score"]}
             for r in rows if "eval/dev_score" in r]  # fmt: skip
    lm, tokenizer = load_model(best, c.device, c.dtype)
    return {
        "arm": arm,
        "seed": seed,
        "warmup": start["fingerprint"],
        "machine": cpu_name(),  # the float kernels, and so the bits, can depend on the CPU
        "chosen": fingerprint(best),  # the chosen checkpoint's weights, which a rebuild can be compared with
        "settings": asdict(config),
        "curve": curve,
        "best": max(curve, key=lambda p: (p["dev_top1"], -p["step"])),
        "train_min": sampling + train_minutes(rows),
        "test": scored(c, lm, tokenizer, test, f"{label or arm} test"),
        "training": training(rows),
    }
