"""The pipeline's settings, built from the stages' own: no stage setting is declared twice.

The pipeline owns what is its alone: the data, how many questions each part uses, the seed and the output folder.
Every other setting belongs to a stage, and the command line reaches it under that stage's name:

    --NAME          a PPO setting (PPOConfig): --top-p, --kl-estimator, --adaptive-kl, --kl-coef, --vf-coef, ...
    --ppo-NAME      the PPO settings that SFT has too, or that read two ways here: --ppo-lr, --ppo-steps, ...
    --sft-NAME      an SFT setting (SFTConfig): --sft-lr, --sft-epochs, --sft-batch-size, --sft-max-len, ...
    --eval-NAME     an evaluation setting (EvalConfig): --eval-k, --eval-temperature, --eval-batch-size, ...

Two switches add stages (ppo.tasks.pipeline_baselines): --self-training (Offline-ST and Online-ST rows) and
--train-verifier (a verifier that reranks every model's --eval-k samples).

A stage setting not given takes the CPU preset's value (PRESET) where it has one, else the stage's own default.
Derived defaults: the learning rates follow the policy kind (LEARNING_RATES), a PPO minibatch is the whole
rollout, and evaluation writes as many tokens as PPO samples.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

from ..adapters.base import AdapterSpec
from ..train.checks import AT_LEAST_ONE, check_fields, flag
from ..train.cli import arg_options, build_parser, field_docs
from ..train.config import PPOConfig, SFTConfig
from ..train.model_settings import ModelSettings
from .eval_config import EvalConfig

STAGES = {"sft": SFTConfig, "ppo": PPOConfig, "eval": EvalConfig}
# One value for every stage: the model settings, the data, the prompt and the seed.
SHARED = (*(f.name for f in fields(ModelSettings)), "data_dir", "dataset", "answer_format", "prompt_template", "seed")
# Set by the pipeline for each stage, never by a flag.
OWNED = {"model", "output_dir", "max_questions", "dev_size", "split", "limit"}
# PPO settings whose bare name would read two ways in a pipeline: they take the --ppo- prefix.
PPO_PREFIXED = {name for name in SFTConfig.__dataclass_fields__} | {"steps", "eval_every"}
# The CPU preset: the stage defaults the pipeline changes (~45 min on 2 cores; docs/usage.md has the paper's).
PRESET = {
    "sft": {"epochs": 1.0, "batch_size": 8, "max_len": 384, "save_every": 20},
    "ppo": {"steps": 24, "rollout_batch_size": 8, "max_new_tokens": 256, "micro_batch_size": 4, "save_every": 8},
    "eval": {"batch_size": 64},
}
# (SFT, PPO) learning rates of each policy kind, where --sft-lr / --ppo-lr are not given. An adapter trains far
# fewer parameters from a zero or identity start, so it takes larger steps (the LoReFT paper: ~1e-3 in SFT).
LEARNING_RATES = {"none": (2e-5, 3e-6), "lora": (2e-4, 3e-5), "loreft": (1e-3, 3e-5), "direft": (1e-3, 3e-5)}


# What --help shows as the default of a derived setting.
DERIVED = {("sft", "lr"): "by policy kind, LEARNING_RATES: 2e-5 full, 2e-4 LoRA, 1e-3 LoReFT or DiReFT",
           ("ppo", "lr"): "by policy kind, LEARNING_RATES: 3e-6 full, 3e-5 adapters",
           ("ppo", "mini_batch_size"): "the whole rollout, rollout_batch_size * samples_per_prompt",
           ("eval", "max_new_tokens"): "PPO's max_new_tokens"}  # fmt: skip


def reachable(stage: str) -> list[str]:
    """The settings of `stage` that a pipeline flag reaches."""
    return [f.name for f in fields(STAGES[stage]) if f.name not in OWNED and f.name not in SHARED]


def flag_name(stage: str, name: str) -> str:
    """`lr` of sft -> 'sft_lr'; `top_p` of ppo -> 'top_p'; `lr` of ppo -> 'ppo_lr'; `k` of eval -> 'eval_k'."""
    return name if stage == "ppo" and name not in PPO_PREFIXED else f"{stage}_{name}"


@dataclass(frozen=True)
class PipelineConfig(ModelSettings):
    """ReFT end to end: warm-up SFT, SFT-continued and PPO from it, and the four models evaluated. The model,
    policy kind, device and memory settings (ModelSettings) hold for every stage; `model` is the base model."""

    data_dir: str | None = "../shared/data/gsm8k"
    """GSM8K folder (train.jsonl, test.jsonl) or SVAMP folder; `none` = openai/gsm8k from the hub."""
    dataset: Literal["gsm8k", "svamp"] = "gsm8k"
    """Which data format data_dir holds."""
    answer_format: Literal["ncot", "pcot"] = "ncot"
    """ncot = chains of thought; pcot = Python programs (SFT on data_dir/train_python_sdp.json, sandboxed runs)."""
    prompt_template: Literal["reft", "chat"] = "reft"
    """reft (the original prompt) or chat, in every stage."""
    train_questions: int = 320
    """Training questions used by every stage (the first N after the dev split)."""
    dev_size: int = 200
    """Questions carved out of train (seeded) for model selection."""
    dev_questions: int = 50
    """How many dev questions to evaluate each model on."""
    test_questions: int = 150
    """How many test questions to evaluate each model on (the held-out comparison)."""
    seed: int = 0
    """Seed for the splits, data order and sampling, in every stage."""
    output_dir: str = "runs/train-gsm8k"
    """Where every stage writes."""
    resume: bool = False
    """Continue an interrupted run in output_dir (finished stages are skipped)."""
    self_training: bool = False
    """Also run the paper's baselines from the warm-up, Offline-ST and Online-ST, at ReFT's budget of sampled
    answers (ppo.tasks.pipeline_baselines): two more rows."""
    train_verifier: bool = False
    """Also train a verifier on the warm-up's own answers, and rerank every model's --eval-k samples with it."""
    sft: dict = field(default_factory=dict)
    """SFT settings given (--sft-NAME), over the preset."""
    ppo: dict = field(default_factory=dict)
    """PPO settings given (--NAME, --ppo-NAME), over the preset."""
    eval: dict = field(default_factory=dict)
    """Evaluation settings given (--eval-NAME), over the preset."""

    def __post_init__(self) -> None:  # every stage's settings are built, and so checked, before any work
        super().__post_init__()
        check_fields(self, {"train_questions": AT_LEAST_ONE, "dev_questions": AT_LEAST_ONE,
                            "test_questions": AT_LEAST_ONE, "dev_size": AT_LEAST_ONE})  # fmt: skip
        for stage in STAGES:
            unknown = set(getattr(self, stage)) - set(reachable(stage))
            if unknown:
                raise ValueError(f"no {stage} setting {', '.join(sorted(unknown))} in the pipeline")
        stage_settings(self, "sft", self.model, Path(self.output_dir))
        stage_settings(self, "ppo", self.model, Path(self.output_dir))
        e = stage_settings(self, "eval", self.model, Path(self.output_dir))
        if self.train_verifier and e.k < 2:
            raise ValueError(f"--train-verifier reranks --eval-k samples: it needs --eval-k 2 or more (got {e.k})")

    def settings(self) -> dict:
        """Every setting this pipeline runs with, by its flag's name: its own, and each stage's (given, preset or
        default). This is what `pipeline_config.json` holds and a resumed run is compared against."""
        own = {k: v for k, v in asdict(self).items() if k not in STAGES}
        out = Path(self.output_dir)
        for stage in STAGES:
            built = asdict(stage_settings(self, stage, self.model, out))
            own.update({flag_name(stage, name): built[name] for name in reachable(stage)})
        return own


def stage_settings(c: PipelineConfig, stage: str, model: str, out: Path, **pinned):
    """The settings of one stage (an SFTConfig, PPOConfig or EvalConfig) that starts from `model` and writes to
    `out`: the stage's defaults, then the preset, the derived defaults, the flags given, and `pinned` last."""
    given = getattr(c, stage)
    derived = {}
    if stage in ("sft", "ppo"):
        derived["lr"] = LEARNING_RATES[AdapterSpec.parse(c.adapter).kind][stage == "ppo"]
    if stage == "ppo":
        ppo = {**PRESET["ppo"], **given}
        default = PPOConfig.__dataclass_fields__
        rollout = ppo.get("rollout_batch_size", default["rollout_batch_size"].default)
        derived["mini_batch_size"] = rollout * ppo.get("samples_per_prompt", default["samples_per_prompt"].default)
    if stage == "eval":
        derived["max_new_tokens"] = stage_settings(c, "ppo", model, out).max_new_tokens
    shared = {name: getattr(c, name) for name in SHARED if name in STAGES[stage].__dataclass_fields__}
    if stage == "sft":
        shared["dev_size"] = c.dev_size
    values = {**shared, **PRESET[stage], **derived, **given, "model": model, "output_dir": str(out), **pinned}
    try:
        return STAGES[stage](**values)
    except ValueError as err:  # "--k must be ..." is "--eval-k must be ..." here
        message = str(err)
        for name in reachable(stage):
            if message.startswith(flag(name) + " "):
                message = flag(flag_name(stage, name)) + message[len(flag(name)) :]
        raise ValueError(message) from None


def pipeline_parser() -> argparse.ArgumentParser:
    """The pipeline's own flags, then every reachable stage setting under its flag (see the module docstring)."""
    parser = build_parser(PipelineConfig, skip=tuple(STAGES))
    for stage, cls in STAGES.items():
        group = parser.add_argument_group(
            f"{stage} settings ({cls.__name__}; not given: the preset's, else the stage's)"
        )
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        for name in reachable(stage):
            preset = DERIVED.get((stage, name), PRESET[stage].get(name, cls.__dataclass_fields__[name].default))
            options = arg_options(hints[name])
            if "action" not in options and "choices" not in options:
                options.setdefault("metavar", name.upper())
            group.add_argument("--" + flag_name(stage, name).replace("_", "-"), dest=f"{stage}.{name}",
                               default=argparse.SUPPRESS, help=f"{docs.get(name, '')} (default: {preset})",
                               **options)  # fmt: skip
    return parser


def parse_pipeline(argv: list[str] | None = None) -> PipelineConfig:
    """The command line as a PipelineConfig: `--sft-lr 1e-4 --top-p 0.9` -> sft={"lr": 1e-4}, ppo={"top_p": 0.9}."""
    values, stages = {}, {stage: {} for stage in STAGES}
    for key, value in vars(pipeline_parser().parse_args(argv)).items():
        stage, _, name = key.rpartition(".")
        (stages[stage] if stage else values)[name] = value
    return PipelineConfig(**values, **stages)
