"""Evaluation: greedy top-1 accuracy, and majority vote@k and pass@k over k samples.

The answer is extracted exactly as the reward extracts it (`rewards.extract_answers`: a trigger for N-CoT, the
sandboxed program's return value for P-CoT).

    ppo-evaluate --model runs/sft/final --data-dir ../shared/data/gsm8k --limit 100 --k 4
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..adapters.loading import load_model
from ..lm import decode
from ..lm.rollout import encode_prompts, eos_token_ids, sample
from ..lm.specs import check_model_spec
from ..lm.stream import stream
from ..train import distributed
from ..train.checks import (
    check_run_folder,
)
from ..train.cli import command, parse_config, save_config
from ..train.fsdp import gathered
from .data import Example, check_data_dir, load_examples, split_dev
from .eval_config import EvalConfig
from .formats import format_prompt
from .rewards import check_executor, extract_answers


def majority_vote(answers: list[float | None]) -> float | None:
    """The most common extracted answer (None ignored); a tie goes to the answer seen first."""
    counts = Counter(round(a, 6) for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(round(a, 6) for a in answers if a is not None and counts[round(a, 6)] == best)


def is_correct(answer: float | None, gold: float, tolerance: float) -> bool:
    return answer is not None and abs(answer - gold) <= tolerance


@torch.no_grad()
def decode_prompts(
    lm,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    batch_size: int,
    greedy: bool,
    temperature: float = 1.0,
    desc: str = "eval",
) -> list[str]:
    """Decode every prompt, in order of token length, so that prompts decoded together need little padding.

    Llama-family models decode by continuous batching (`ppo.lm.stream`): `batch_size` slots, and a slot whose
    answer has ended takes the next prompt. Other models decode `batch_size` prompts at a time with `generate`.
    Under torchrun rank r of N decodes prompts r, r + N, r + 2N, ... and every rank gets all the texts back."""
    mine = list(range(distributed.rank(), len(prompts), distributed.world_size()))
    encoded = {i: tokenizer(prompts[i], add_special_tokens=False)["input_ids"] for i in mine}
    order = sorted(mine, key=lambda i: len(encoded[i]))
    done: list[tuple[int, str]] = []
    device = next(lm.parameters()).device
    bar = tqdm(total=len(order), desc=desc, unit="answer", disable=not distributed.is_main())
    with gathered(lm), bar:  # FSDP2: whole weights throughout, so ranks need not decode as many batches
        if decode.supports(lm):
            knobs = (temperature, 0, 1.0, greedy)
            eos, pad = eos_token_ids(lm, tokenizer), tokenizer.pad_token_id
            out = stream(lm, [encoded[i] for i in order], max_new_tokens, eos, pad, batch_size, *knobs, bar.update)
            done += zip(order, tokenizer.batch_decode(out, skip_special_tokens=True))
        else:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                ids, mask = encode_prompts(tokenizer, [prompts[i] for i in rows], device)
                out = sample(lm, tokenizer, ids, mask, max_new_tokens, temperature=temperature, greedy=greedy)
                done += zip(rows, out.texts)
                bar.update(len(rows))
    texts: list[str] = [""] * len(prompts)
    for i, text in distributed.gather(done):
        texts[i] = text
    return texts


def evaluate(
    lm,
    tokenizer,
    examples: list[Example],
    template: str,
    max_new_tokens: int = 400,
    batch_size: int = 16,
    k: int = 1,
    temperature: float = 1.0,
    tolerance: float = 1e-2,
    desc: str = "eval",
    answer_format: str = "ncot",
    timeout_s: float = 3.0,
) -> tuple[dict, list[dict]]:
    """Top-1 (greedy) accuracy, and vote@k / pass@k when k > 1. Returns (summary, one record per question)."""
    prompts = [format_prompt(ex.question, template, tokenizer) for ex in examples]
    greedy = decode_prompts(lm, tokenizer, prompts, max_new_tokens, batch_size, True, desc=f"{desc} top-1")
    samples = [[] for _ in examples]
    if k > 1:
        many = decode_prompts(
            lm,
            tokenizer,
            [p for p in prompts for _ in range(k)],
            max_new_tokens,
            batch_size,
            False,
            temperature,
            desc=f"{desc} @{k}",
        )
        samples = [many[i * k : (i + 1) * k] for i in range(len(examples))]
    top1 = extract_answers(greedy, answer_format, timeout_s)
    flat = extract_answers([t for s in samples for t in s], answer_format, timeout_s)
    records = []
    for i, (ex, text, sampled) in enumerate(zip(examples, greedy, samples)):
        answers = flat[i * len(sampled) : (i + 1) * len(sampled)]
        records.append(
            {
                "question": ex.question,
                "gold": ex.answer,
                "response": text,
                "answer": top1[i],
                "correct": is_correct(top1[i], ex.answer, tolerance),
                "samples": sampled,
                "sample_answers": answers,
                "vote": majority_vote(answers),
                "pass": any(is_correct(a, ex.answer, tolerance) for a in answers),
            }
        )
    return summarize(records, k, tolerance), records


def summarize(records: list[dict], k: int, tolerance: float) -> dict:
    """Accuracies in percent over the records."""
    n = len(records)
    if not n:
        raise ValueError("no questions to evaluate")
    summary = {
        "n": n,
        "top1": 100.0 * sum(r["correct"] for r in records) / n,
        "answered": 100.0 * sum(r["answer"] is not None for r in records) / n,
    }
    if k > 1:
        summary[f"vote@{k}"] = 100.0 * sum(is_correct(r["vote"], r["gold"], tolerance) for r in records) / n
        summary[f"pass@{k}"] = 100.0 * sum(r["pass"] for r in records) / n
    return summary


@distributed.main_only
def write_results(out_dir: str | Path, summary: dict, records: list[dict]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def load_split(
    dataset: str, data_dir: str | None, split: str, dev_size: int, seed: int, answer_format: str = "ncot"
) -> list[Example]:
    """test, train (minus dev) or dev, with the same seeded dev split as training."""
    if split == "test":
        return load_examples(dataset, data_dir, "test")
    train, dev = split_dev(load_examples(dataset, data_dir, "train", answer_format), dev_size, seed)
    return dev if split == "dev" else train


@command
def main(argv: list[str] | None = None) -> None:
    """`ppo-evaluate` (or `python -m ppo evaluate`): top-1, vote@k and pass@k of a model on a split. A checkpoint
    that holds an adapter is evaluated with it. Every check comes before the model loads."""
    c = parse_config(EvalConfig, argv)
    check_model_spec(c.model)
    check_data_dir(c.dataset, c.data_dir, c.answer_format if c.split != "test" else "ncot",
                   ("test",) if c.split == "test" else ("train",))  # fmt: skip
    check_executor(c.answer_format)
    check_run_folder(c, Path(c.output_dir) / "config.json")
    distributed.init()
    torch.manual_seed(c.seed + distributed.rank())  # each rank its own samples
    examples = load_split(c.dataset, c.data_dir, c.split, c.dev_size, c.seed, c.answer_format)[: c.limit]
    lm, tokenizer = load_model(c.model, c.device, c.dtype)
    summary, records = evaluate(
        lm,
        tokenizer,
        examples,
        c.prompt_template,
        c.max_new_tokens,
        c.batch_size,
        c.k,
        c.temperature,
        c.tolerance,
        answer_format=c.answer_format,
        timeout_s=c.program_timeout_s,
    )
    save_config(c, Path(c.output_dir) / "config.json")
    write_results(c.output_dir, {**summary, "config": asdict(c)}, records)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
