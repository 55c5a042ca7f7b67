"""Answers a model sampled itself, each labelled right or wrong by its extracted answer (as the reward extracts it).
Drawn once per run folder and kept in `samples.jsonl` (and how long the drawing took, in `sampling.json`), so that
a resumed stage does not draw them again. The
verifier (`verifier_stage`) and Offline-ST (`self_training`) train on them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..adapters.loading import load_model
from ..train import distributed
from ..train.sampled_config import SampledSFTConfig
from .data import Example
from .decoding import decode_prompts
from .evaluate import is_correct
from .formats import format_prompt
from .rewards import extract_answers

SAMPLES_FILE, TIMING_FILE = "samples.jsonl", "sampling.json"


def sample_and_label(lm, tokenizer, examples: list[Example], c: SampledSFTConfig) -> list[dict]:
    """k answers to each question at c.temperature, each with label 1.0 (right) or 0.0 (wrong or no answer)."""
    prompts = [format_prompt(ex.question, c.prompt_template, tokenizer) for ex in examples]
    texts = decode_prompts(lm, tokenizer, [p for p in prompts for _ in range(c.k)], c.max_new_tokens,
                           c.sample_batch_size, False, c.temperature, desc="own samples")  # fmt: skip
    answers = extract_answers(texts, c.answer_format, c.program_timeout_s)
    return [{"question": i // c.k, "prompt": prompts[i // c.k], "answer": text,
             "label": float(is_correct(a, examples[i // c.k].answer, c.tolerance))}
            for i, (text, a) in enumerate(zip(texts, answers))]  # fmt: skip


@distributed.main_only
def write_samples(out: Path, rows: list[dict], seconds: float) -> None:
    (out / TIMING_FILE).write_text(json.dumps({"answers": len(rows), "sample_s": seconds}) + "\n")
    tmp = (out / SAMPLES_FILE).with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out / SAMPLES_FILE)


def sampling_minutes(out: Path) -> float:
    """How long drawing and labelling a run folder's samples took (loading the model left out)."""
    return json.loads((out / TIMING_FILE).read_text())["sample_s"] / 60


def labelled_samples(c: SampledSFTConfig, examples: list[Example], out: Path) -> list[dict]:
    """The run folder's samples: read when kept, else drawn from c.model and kept. The caller has saved the run's
    settings first, so a rerun with others is refused before it could reuse these."""
    if not (out / SAMPLES_FILE).is_file():
        torch.manual_seed(c.seed + distributed.rank())  # under torchrun, each rank its own answers
        lm, tokenizer = load_model(c.model, c.device, c.dtype)
        start = time.perf_counter()
        rows = sample_and_label(lm, tokenizer, examples, c)
        write_samples(out, rows, time.perf_counter() - start)
        del lm
    distributed.barrier()
    return [json.loads(line) for line in (out / SAMPLES_FILE).read_text(encoding="utf-8").splitlines()]
