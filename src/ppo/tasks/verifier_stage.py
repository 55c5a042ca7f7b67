"""The verifier stage on a math task: sample k answers to each training question from a model, label each by
whether its answer is right (extracted as the reward extracts it), and train a verifier on the labels
(`ppo.train.verifier_training`). Skipped when done; resumed from the samples and the last checkpoint when interrupted.

    python -m ppo verifier --model runs/sft/final --data-dir ../shared/data/svamp --dataset svamp \\
        --answer-format pcot --max-questions 800 --k 4 --output-dir runs/verifier
    ppo-evaluate --model runs/sft/final --k 8 --verifier runs/verifier/final ...      # rerank@8 with it
"""

from __future__ import annotations

from pathlib import Path

from ..adapters.loading import load_policy
from ..lm.models import checkpoint_activations
from ..train import distributed
from ..train.checkpoint import latest_checkpoint
from ..train.checks import check_run_folder
from ..train.cli import command, parse_config, save_config
from ..train.verifier_training import VerifierConfig, VerifierTrainer
from .data import Example
from .sampled import labelled_samples
from .stages import preflight, training_questions


def check_labels(rows: list[dict]) -> str:
    """Both labels must occur: from one kind only, a verifier learns a constant. Returns a one-line count."""
    right = sum(r["label"] > 0.5 for r in rows)
    if right in (0, len(rows)):
        kind = "wrong" if right == 0 else "right"
        raise ValueError(f"all {len(rows)} sampled answers are {kind}: a verifier needs both kinds (more --k, "
                         f"more questions, or another --model)")  # fmt: skip
    return f"{len(rows)} answers, {right} right ({100 * right / len(rows):.1f} %)"


def run_verifier(c: VerifierConfig, examples: list[Example]) -> str:
    """Sample and label (once: the samples are kept in output_dir), then train; returns output_dir/final."""
    distributed.init()
    out = Path(c.output_dir)
    check_run_folder(c, out / "config.json")
    if (out / "final").is_dir():
        return str(out / "final")
    save_config(c, out / "config.json")  # before the samples, so a rerun with other settings is refused
    rows = labelled_samples(c, examples, out)
    print(f"[verifier] {check_labels(rows)}")
    last = latest_checkpoint(out)
    policy, tokenizer = load_policy(str(last) if last else c.model, device=c.device, dtype=c.dtype, adapter=c.adapter)
    if c.gradient_checkpointing:
        checkpoint_activations(policy.lm)
    trainer = VerifierTrainer(policy, tokenizer, c, lambda r: (r["prompt"], r["answer"], r["label"]))
    if last:
        trainer.resume(last)
    trainer.train(rows)
    return str(out / "final")


@command
def main(argv: list[str] | None = None) -> None:
    """`ppo-verifier` (or `python -m ppo verifier`): a verifier from a model's own labelled samples; rerun the same
    command to resume."""
    c = parse_config(VerifierConfig, argv)
    preflight(c)
    print(f"[verifier] done: {run_verifier(c, training_questions(c))}")
