"""The paper's self-training baselines (section 4.2), from the warm-up, on the same training questions as ReFT.

Offline-ST  sample k answers to each training question from the warm-up once, keep the right ones without
            duplicates, and run SFT on the original data plus the kept samples

    python -m ppo offline-st --model runs/sft/final --data-dir ../shared/data/svamp --dataset svamp \\
        --answer-format pcot --max-questions 800 --k 4 --output-dir runs/offline-st
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ..train import distributed
from ..train.checks import check_run_folder
from ..train.cli import command, parse_config, save_config
from ..train.config import SFTConfig
from ..train.sampled_config import SampledSFTConfig
from .data import Example, load_examples, split_dev
from .rewards import extract_program
from .sampled import labelled_samples
from .stages import preflight, run_sft


@dataclass(frozen=True)
class OfflineSTConfig(SampledSFTConfig):
    """Offline self-training: SFT from `model` on the original data plus its own right answers, k per question."""


def as_target(text: str, answer_format: str) -> str:
    """A right sample as an SFT solution: the program (pcot), or the reasoning before its last answer trigger
    (ncot; `formats.format_target` appends the trigger with the gold value, which this answer equals)."""
    if answer_format == "pcot":
        return extract_program(text).strip()
    return re.split(r"\s*Therefore, the answer is", text)[0].strip()


def with_own_answers(examples: list[Example], rows: list[dict], answer_format: str) -> tuple[list[Example], int]:
    """The original examples, then every question's right samples that differ from each other and from its
    annotated solution. Returns them and how many samples were added."""
    seen = {i: {(ex.solution or "").strip()} for i, ex in enumerate(examples)}
    added = []
    for row in rows:
        target, q = as_target(row["answer"], answer_format), row["question"]
        if row["label"] > 0.5 and target and target not in seen[q]:
            seen[q].add(target)
            added.append(replace(examples[q], solution=target))
    return examples + added, len(added)


def run_offline_st(c: OfflineSTConfig, examples: list[Example]) -> str:
    """Sample and label once (kept in output_dir), then SFT in output_dir/sft; returns its final model."""
    distributed.init()
    out = Path(c.output_dir)
    check_run_folder(c, out / "config.json")
    save_config(c, out / "config.json")  # before the samples, so a rerun with other settings is refused
    data, added = with_own_answers(examples, labelled_samples(c, examples, out), c.answer_format)
    print(f"[offline-st] {len(examples)} annotated examples + {added} right samples of their own")
    sft = SFTConfig(**{f.name: getattr(c, f.name) for f in fields(SFTConfig)})
    return run_sft(replace(sft, output_dir=str(out / "sft")), data)


@command
def offline_main(argv: list[str] | None = None) -> None:
    """`python -m ppo offline-st`: Offline-ST from a warm-up checkpoint; rerun the same command to resume."""
    c = parse_config(OfflineSTConfig, argv)
    preflight(c)
    train, _ = split_dev(load_examples(c.dataset, c.data_dir, "train", c.answer_format), c.dev_size, c.seed)
    print(f"[offline-st] done: {run_offline_st(c, train[: c.max_questions])}")
